//! myai-core: the hot path of myai's memory, in pure Rust (no pyo3 here).
//!
//! Modules share names with their glue in `rust/myai-py` and their tests in `tests/test_<name>.py`.

pub mod chunk;
pub mod compress;
pub mod dedup;
pub mod embed;
pub mod error;
pub mod index;
pub mod normalize;
pub mod tokens;

pub use error::{Error, Result};
