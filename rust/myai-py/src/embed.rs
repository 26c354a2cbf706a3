//! Bindings of `myai_core::embed`: pooling a static embedding table over texts.

use myai_core::embed::{static_embed as core_embed, Table};
use numpy::{
    dtype, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

use crate::tokens::PyTokenizer;

/// Checks the table's kind, shape and layout, naming the fix, before any cast that would
/// fail with a less helpful message.
fn check_table<'py>(table: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let py = table.py();
    let arr = table.cast::<PyUntypedArray>().map_err(|_| {
        PyValueError::new_err(format!(
            "table must be a numpy array, not {}",
            table
                .get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })?;
    if arr.ndim() != 2 {
        return Err(PyValueError::new_err(format!(
            "table must be 2-D (tokens x dim), not {}-D",
            arr.ndim()
        )));
    }
    if !arr.dtype().is_equiv_to(&dtype::<f32>(py)) {
        return Err(PyValueError::new_err(format!(
            "table must have dtype float32, not {}; use table.astype(numpy.float32)",
            arr.dtype()
        )));
    }
    if !arr.is_c_contiguous() {
        return Err(PyValueError::new_err(
            "table must be C-contiguous; use numpy.ascontiguousarray(table)",
        ));
    }
    arr.cast::<PyArray2<f32>>()
        .cloned()
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

#[pyfunction]
fn static_embed<'py>(
    py: Python<'py>,
    tokenizer: PyRef<'_, PyTokenizer>,
    table: &Bound<'py, PyAny>,
    texts: Vec<PyBackedStr>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let arr = check_table(table)?;
    let ro = arr.try_readonly()?;
    let data = ro.as_slice()?;
    let [rows, dim] = [ro.shape()[0], ro.shape()[1]];
    let tok = tokenizer.inner.clone();
    let n = texts.len();
    let out = crate::detach(py, || {
        let table = Table::new(data, rows, dim)?;
        let refs: Vec<&str> = texts.iter().map(|s| &**s).collect();
        core_embed(&tok, table, &refs)
    })?;
    PyArray1::from_vec(py, out).reshape([n, dim])
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(static_embed, m)?)?;
    Ok(())
}
