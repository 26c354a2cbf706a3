//! pyo3 glue: `myai._core`. Thin wrappers only; every algorithm lives in `myai-core`.
//!
//! Conventions: extract arguments first, run the work through [`detach`] (GIL released, errors
//! mapped, Ctrl-C turned into KeyboardInterrupt), return plain Python values.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError, PyValueError};
use pyo3::prelude::*;

mod chunk;
mod compress;
mod dedup;
mod embed;
mod index;
mod normalize;
mod tokens;

create_exception!(
    _core,
    MyaiError,
    PyException,
    "Base class of every error raised by myai."
);
create_exception!(
    _core,
    CorruptDataError,
    MyaiError,
    "Serialised data (an index, a store file) failed its integrity checks."
);
create_exception!(
    _core,
    TokenizerError,
    MyaiError,
    "A tokenizer file could not be loaded."
);

/// Maps a core error to the Python exception of its kind.
pub(crate) fn to_py(e: myai_core::Error) -> PyErr {
    use myai_core::Error as E;
    match e {
        E::InvalidArgument(m) => PyValueError::new_err(m),
        e @ E::Corrupt { .. } => CorruptDataError::new_err(e.to_string()),
        e @ E::Tokenizer(_) => TokenizerError::new_err(e.to_string()),
        e @ E::Io { .. } => PyOSError::new_err(e.to_string()),
    }
}

/// Runs `f` with the GIL released, maps its error, and raises KeyboardInterrupt if Ctrl-C
/// arrived meanwhile. Every call longer than a few microseconds goes through here.
pub(crate) fn detach<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> myai_core::Result<T> + Send,
{
    let r = py.detach(f);
    py.check_signals()?;
    r.map_err(to_py)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MyaiError", py.get_type::<MyaiError>())?;
    m.add("CorruptDataError", py.get_type::<CorruptDataError>())?;
    m.add("TokenizerError", py.get_type::<TokenizerError>())?;
    normalize::register(m)?;
    tokens::register(m)?;
    chunk::register(m)?;
    dedup::register(m)?;
    embed::register(m)?;
    index::register(m)?;
    compress::register(m)?;
    Ok(())
}
