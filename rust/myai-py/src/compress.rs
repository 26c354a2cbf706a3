//! Bindings of `myai_core::compress`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use myai_core::compress::{
    collapse_repeated_lines as collapse, stats, zstd_compress as compress,
    zstd_decompress as decompress, Codec, Span,
};
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};

use crate::tokens::{counter_of, PyTokenizer};

#[pyfunction]
#[pyo3(signature = (text, chunks, duplicates = None, tokenizer = None, level = Some(3)))]
fn compression_stats<'py>(
    py: Python<'py>,
    text: &str,
    chunks: Vec<(usize, usize, usize)>,
    duplicates: Option<Vec<bool>>,
    tokenizer: Option<PyRef<'py, PyTokenizer>>,
    level: Option<i32>,
) -> PyResult<Bound<'py, PyDict>> {
    let counter = counter_of(tokenizer.as_deref());
    let spans: Vec<Span> = chunks
        .iter()
        .map(|&(start, end, tokens)| Span { start, end, tokens })
        .collect();
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
fn zstd_decompress<'py>(
    py: Python<'py>,
    data: &[u8],
    max_size: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = crate::detach(py, || decompress(data, max_size))?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
#[pyo3(signature = (texts, mask_numbers = false))]
fn collapse_repeated_lines(
    py: Python<'_>,
    texts: Vec<PyBackedStr>,
    mask_numbers: bool,
) -> PyResult<(Vec<Option<String>>, usize)> {
    crate::detach(py, || {
        let refs: Vec<&str> = texts.iter().map(|t| &**t).collect();
        Ok(collapse(&refs, mask_numbers))
    })
}

/// zstd with an optional trained dictionary, prepared once.
#[pyclass(frozen, name = "ZstdCodec", module = "myai._core")]
pub struct PyZstdCodec {
    inner: Codec,
}

#[pymethods]
impl PyZstdCodec {
    #[new]
    #[pyo3(signature = (level = 3, dictionary = None))]
    fn new(level: i32, dictionary: Option<&[u8]>) -> PyResult<Self> {
        Ok(PyZstdCodec {
            inner: Codec::new(level, dictionary.unwrap_or_default()).map_err(crate::to_py)?,
        })
    }

    #[staticmethod]
    #[pyo3(signature = (samples, max_size = 16384))]
    fn train<'py>(
        py: Python<'py>,
        samples: Vec<PyBackedBytes>,
        max_size: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let d = crate::detach(py, || {
            let refs: Vec<&[u8]> = samples.iter().map(|s| &**s).collect();
            Codec::train(&refs, max_size)
        })?;
        Ok(PyBytes::new(py, &d))
    }

    #[getter]
    fn dictionary<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.dictionary())
    }

    #[getter]
    fn level(&self) -> i32 {
        self.inner.level()
    }

    fn compress_batch<'py>(
        &self,
        py: Python<'py>,
        data: Vec<PyBackedBytes>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let out = crate::detach(py, || {
            let refs: Vec<&[u8]> = data.iter().map(|s| &**s).collect();
            self.inner.compress_batch(&refs)
        })?;
        Ok(out.iter().map(|z| PyBytes::new(py, z)).collect())
    }

    #[pyo3(signature = (data, max_size = 1 << 30))]
    fn decompress<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        max_size: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        // Segments are small: decompressing with the GIL held is cheaper than releasing it.
        let out = if data.len() < 64 * 1024 {
            self.inner
                .decompress(data, max_size)
                .map_err(crate::to_py)?
        } else {
            crate::detach(py, || self.inner.decompress(data, max_size))?
        };
        Ok(PyBytes::new(py, &out))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(collapse_repeated_lines, m)?)?;
    m.add_class::<PyZstdCodec>()?;
    m.add_function(wrap_pyfunction!(compression_stats, m)?)?;
    m.add_function(wrap_pyfunction!(zstd_compress, m)?)?;
    m.add_function(wrap_pyfunction!(zstd_decompress, m)?)?;
    Ok(())
}
