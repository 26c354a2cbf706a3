//! Bindings of `myai_core::index`: the `Bm25Index` class.
//!
//! The core index sits behind an `RwLock`, so searches from several Python threads run
//! together while adds and removals take the lock alone. Every method waits for the lock
//! with the GIL released, so a long add never stalls Python threads that do not touch it.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict};

use myai_core::index::Bm25Index as Core;
use myai_core::Error;

/// A non-negative integer id, or a ValueError naming the argument.
fn id_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    match obj.extract::<u64>() {
        Ok(v) => Ok(v),
        Err(e) => match obj.extract::<i64>() {
            Ok(v) if v < 0 => Err(PyValueError::new_err(format!(
                "{name} must be >= 0, got {v}"
            ))),
            _ if obj.is_instance_of::<pyo3::types::PyInt>() => Err(PyValueError::new_err(format!(
                "{name} does not fit in 64 bits"
            ))),
            _ => Err(e),
        },
    }
}

fn ids_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<u64>> {
    obj.try_iter()?.map(|x| id_arg(&x?, name)).collect()
}

#[pyclass(name = "Bm25Index", module = "myai._core", frozen)]
pub struct PyBm25Index {
    inner: RwLock<Core>,
    // Fixed at construction; read without the lock.
    k1: f64,
    b: f64,
}

impl PyBm25Index {
    fn read(&self) -> myai_core::Result<RwLockReadGuard<'_, Core>> {
        self.inner
            .read()
            .map_err(|_| Error::invalid("the index was poisoned by a failed write"))
    }
    fn write(&self) -> myai_core::Result<RwLockWriteGuard<'_, Core>> {
        self.inner
            .write()
            .map_err(|_| Error::invalid("the index was poisoned by a failed write"))
    }

    fn run_search(
        &self,
        py: Python<'_>,
        query: &str,
        top_k: i64,
        doc_ids: Option<&Bound<'_, PyAny>>,
        exhaustive: bool,
    ) -> PyResult<Vec<(u64, f64)>> {
        if top_k < 0 {
            return Err(PyValueError::new_err(format!(
                "top_k must be >= 0, got {top_k}"
            )));
        }
        let filter = doc_ids.map(|d| ids_arg(d, "doc_ids")).transpose()?;
        let hits = crate::detach(py, || {
            let idx = self.read()?;
            let f = filter.as_deref();
            if exhaustive {
                idx.search_exhaustive(query, top_k as usize, f)
            } else {
                idx.search(query, top_k as usize, f)
            }
        })?;
        Ok(hits.into_iter().map(|(c, s)| (c, s as f64)).collect())
    }
}

#[pymethods]
impl PyBm25Index {
    #[new]
    #[pyo3(signature = (k1 = 1.2, b = 0.75, stem = true, stopwords = true))]
    fn new(k1: f64, b: f64, stem: bool, stopwords: bool) -> PyResult<Self> {
        let inner = Core::new(k1, b, stem, stopwords).map_err(crate::to_py)?;
        Ok(PyBm25Index {
            k1: inner.k1(),
            b: inner.b(),
            inner: RwLock::new(inner),
        })
    }

    fn add(
        &self,
        py: Python<'_>,
        chunk_id: &Bound<'_, PyAny>,
        doc_id: &Bound<'_, PyAny>,
        text: PyBackedStr,
    ) -> PyResult<()> {
        let (c, d) = (id_arg(chunk_id, "chunk_id")?, id_arg(doc_id, "doc_id")?);
        crate::detach(py, || self.write()?.add(c, d, &text))
    }

    fn add_batch(
        &self,
        py: Python<'_>,
        chunk_ids: &Bound<'_, PyAny>,
        doc_ids: &Bound<'_, PyAny>,
        texts: Vec<PyBackedStr>,
    ) -> PyResult<()> {
        let (c, d) = (
            ids_arg(chunk_ids, "chunk_ids")?,
            ids_arg(doc_ids, "doc_ids")?,
        );
        crate::detach(py, || self.write()?.add_batch(&c, &d, &texts))
    }

    fn remove(&self, py: Python<'_>, chunk_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let c = id_arg(chunk_id, "chunk_id")?;
        crate::detach(py, || Ok(self.write()?.remove(c)))
    }

    fn remove_document(&self, py: Python<'_>, doc_id: &Bound<'_, PyAny>) -> PyResult<usize> {
        let d = id_arg(doc_id, "doc_id")?;
        crate::detach(py, || Ok(self.write()?.remove_document(d)))
    }

    #[pyo3(signature = (query, top_k = 10, doc_ids = None))]
    fn search(
        &self,
        py: Python<'_>,
        query: PyBackedStr,
        top_k: i64,
        doc_ids: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<(u64, f64)>> {
        self.run_search(py, &query, top_k, doc_ids, false)
    }

    #[pyo3(signature = (query, top_k = 10, doc_ids = None))]
    fn search_exhaustive(
        &self,
        py: Python<'_>,
        query: PyBackedStr,
        top_k: i64,
        doc_ids: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<(u64, f64)>> {
        self.run_search(py, &query, top_k, doc_ids, true)
    }

    fn analyze(&self, py: Python<'_>, text: PyBackedStr) -> PyResult<Vec<String>> {
        crate::detach(py, || Ok(self.read()?.analyze(&text)))
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let v = crate::detach(py, || Ok(self.read()?.to_bytes()))?;
        Ok(PyBytes::new(py, &v))
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let inner = crate::detach(py, || Core::from_bytes(data))?;
        Ok(PyBm25Index {
            k1: inner.k1(),
            b: inner.b(),
            inner: RwLock::new(inner),
        })
    }

    fn memory_bytes(&self, py: Python<'_>) -> PyResult<usize> {
        crate::detach(py, || Ok(self.read()?.memory_bytes()))
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = crate::detach(py, || Ok(self.read()?.stats()))?;
        let d = PyDict::new(py);
        d.set_item("chunks", s.chunks)?;
        d.set_item("documents", s.documents)?;
        d.set_item("terms", s.terms)?;
        d.set_item("postings", s.postings)?;
        d.set_item("dead_postings", s.dead_postings)?;
        d.set_item("total_terms", s.total_terms)?;
        d.set_item("avgdl", s.avgdl)?;
        Ok(d)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        crate::detach(py, || Ok(self.read()?.len()))
    }

    fn __contains__(&self, py: Python<'_>, chunk_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(c) = chunk_id.extract::<u64>() else {
            return Ok(false);
        };
        crate::detach(py, || Ok(self.read()?.contains(c)))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let (len, terms) = crate::detach(py, || {
            let i = self.read()?;
            Ok((i.len(), i.num_terms()))
        })?;
        Ok(format!(
            "Bm25Index(k1={}, b={}, chunks={len}, terms={terms})",
            self.k1, self.b
        ))
    }

    #[getter]
    fn num_terms(&self, py: Python<'_>) -> PyResult<usize> {
        crate::detach(py, || Ok(self.read()?.num_terms()))
    }

    #[getter]
    fn k1(&self) -> f64 {
        self.k1
    }

    #[getter]
    fn b(&self) -> f64 {
        self.b
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBm25Index>()
}
