//! Bindings of `myai_core::compress`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use myai_core::compress::{stats, zstd_compress as compress, zstd_decompress as decompress, Span};

use crate::chunk::counter_of;
use crate::tokens::PyTokenizer;

#[pyfunction]
#[pyo3(signature = (text, chunks, duplicates = None, tokenizer = None, level = 3))]
fn compression_stats<'py>(
    py: Python<'py>,
    text: &str,
    chunks: Vec<(usize, usize, usize)>,
    duplicates: Option<Vec<bool>>,
    tokenizer: Option<PyRef<'py, PyTokenizer>>,
    level: i32,
) -> PyResult<Bound<'py, PyDict>> {
    let counter = counter_of(tokenizer.as_deref());
    let spans: Vec<Span> = chunks.iter().map(|&(start, end, tokens)| Span { start, end, tokens }).collect();
    let dups = duplicates.unwrap_or_default();
    let st = crate::detach(py, || stats(text, &spans, &dups, counter.as_ref(), level))?;
    let d = PyDict::new(py);
    d.set_item("original_bytes", st.original_bytes)?;
    d.set_item("original_tokens", st.original_tokens)?;
    d.set_item("chunks", st.chunks)?;
    d.set_item("chunked_bytes", st.chunked_bytes)?;
    d.set_item("chunked_tokens", st.chunked_tokens)?;
    d.set_item("overlap_bytes", st.overlap_bytes)?;
    d.set_item("overlap_tokens", st.overlap_tokens)?;
    d.set_item("duplicate_chunks", st.duplicate_chunks)?;
    d.set_item("dedup_saved_bytes", st.dedup_saved_bytes)?;
    d.set_item("dedup_saved_tokens", st.dedup_saved_tokens)?;
    d.set_item("stored_bytes", st.stored_bytes)?;
    d.set_item("stored_tokens", st.stored_tokens)?;
    d.set_item("zstd_bytes", st.zstd_bytes)?;
    d.set_item("storage_ratio", st.storage_ratio)?;
    d.set_item("context_ratio", st.context_ratio)?;
    d.set_item("overhead_percent", st.overhead_percent)?;
    d.set_item("efficiency", st.efficiency)?;
    Ok(d)
}

#[pyfunction]
#[pyo3(signature = (data, level = 3))]
fn zstd_compress<'py>(py: Python<'py>, data: &[u8], level: i32) -> PyResult<Bound<'py, PyBytes>> {
    let out = crate::detach(py, || compress(data, level))?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
#[pyo3(signature = (data, max_size = 1 << 30))]
fn zstd_decompress<'py>(py: Python<'py>, data: &[u8], max_size: usize) -> PyResult<Bound<'py, PyBytes>> {
    let out = crate::detach(py, || decompress(data, max_size))?;
    Ok(PyBytes::new(py, &out))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(compression_stats, m)?)?;
    m.add_function(wrap_pyfunction!(zstd_compress, m)?)?;
    m.add_function(wrap_pyfunction!(zstd_decompress, m)?)?;
    Ok(())
}
