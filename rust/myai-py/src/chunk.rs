//! Bindings of `myai_core::chunk`.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use rayon::prelude::*;

use myai_core::chunk::{chunk, validate, ChunkSpan};

use crate::tokens::{counter_of, PyTokenizer};

fn spans_to_py<'py>(
    py: Python<'py>,
    text: &str,
    spans: &[ChunkSpan],
    return_text: bool,
) -> PyResult<Bound<'py, PyList>> {
    let items: Vec<Bound<'py, PyTuple>> = spans
        .iter()
        .map(|s| {
            if return_text {
                let t = PyString::new(py, &text[s.start..s.end]);
                PyTuple::new(
                    py,
                    [
                        s.start.into_pyobject(py)?.into_any(),
                        s.end.into_pyobject(py)?.into_any(),
                        s.tokens.into_pyobject(py)?.into_any(),
                        t.into_any(),
                    ],
                )
            } else {
                PyTuple::new(py, [s.start, s.end, s.tokens])
            }
        })
        .collect::<PyResult<_>>()?;
    PyList::new(py, items)
}

#[pyfunction]
#[pyo3(signature = (text, chunk_size, chunk_overlap = 0, tokenizer = None, return_text = false))]
fn chunk_text<'py>(
    py: Python<'py>,
    text: &str,
    chunk_size: i64,
    chunk_overlap: i64,
    tokenizer: Option<PyRef<'py, PyTokenizer>>,
    return_text: bool,
) -> PyResult<Bound<'py, PyList>> {
    let (size, overlap) = validate(chunk_size, chunk_overlap).map_err(crate::to_py)?;
    let counter = counter_of(tokenizer.as_deref());
    let spans = crate::detach(py, || chunk(text, size, overlap, counter.as_ref()))?;
    spans_to_py(py, text, &spans, return_text)
}

#[pyfunction]
#[pyo3(signature = (texts, chunk_size, chunk_overlap = 0, tokenizer = None, return_text = false))]
fn chunk_text_batch<'py>(
    py: Python<'py>,
    texts: Vec<String>,
    chunk_size: i64,
    chunk_overlap: i64,
    tokenizer: Option<PyRef<'py, PyTokenizer>>,
    return_text: bool,
) -> PyResult<Bound<'py, PyList>> {
    let (size, overlap) = validate(chunk_size, chunk_overlap).map_err(crate::to_py)?;
    let counter = counter_of(tokenizer.as_deref());
    let all = crate::detach(py, || {
        texts
            .par_iter()
            .map(|t| chunk(t, size, overlap, counter.as_ref()))
            .collect::<myai_core::Result<Vec<_>>>()
    })?;
    let lists: Vec<Bound<'py, PyList>> = texts
        .iter()
        .zip(&all)
        .map(|(t, s)| spans_to_py(py, t, s, return_text))
        .collect::<PyResult<_>>()?;
    PyList::new(py, lists)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(chunk_text, m)?)?;
    m.add_function(wrap_pyfunction!(chunk_text_batch, m)?)?;
    Ok(())
}
