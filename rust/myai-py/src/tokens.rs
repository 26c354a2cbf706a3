//! Bindings of `myai_core::tokens`: the `Tokenizer` class and the count functions.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use myai_core::tokens::{TokenCounter, Tokenizer};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

/// A tokenizer shared with the other glue modules (the chunker takes `PyRef<PyTokenizer>`).
#[pyclass(frozen, name = "Tokenizer", module = "myai._core")]
pub struct PyTokenizer {
    pub inner: Arc<Tokenizer>,
}

fn estimator() -> Arc<Tokenizer> {
    static EST: OnceLock<Arc<Tokenizer>> = OnceLock::new();
    EST.get_or_init(|| Arc::new(Tokenizer::estimator())).clone()
}

fn wrap(t: Tokenizer) -> PyTokenizer {
    PyTokenizer { inner: Arc::new(t) }
}

fn count_batch(py: Python<'_>, t: &Tokenizer, texts: &[PyBackedStr]) -> PyResult<Vec<usize>> {
    crate::detach(py, || {
        let refs: Vec<&str> = texts.iter().map(|s| &**s).collect();
        Ok(t.count_batch(&refs))
    })
}

#[pymethods]
impl PyTokenizer {
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        crate::detach(py, || Tokenizer::from_file(&path)).map(wrap)
    }

    #[staticmethod]
    fn from_str(py: Python<'_>, json: &str) -> PyResult<Self> {
        crate::detach(py, || Tokenizer::from_str(json)).map(wrap)
    }

    #[staticmethod]
    fn from_gguf(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        crate::detach(py, || Tokenizer::from_gguf(&path)).map(wrap)
    }

    #[staticmethod]
    fn estimator() -> Self {
        PyTokenizer { inner: estimator() }
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    fn encode(&self, py: Python<'_>, text: &str) -> PyResult<Vec<u32>> {
        let t = &self.inner;
        crate::detach(py, || t.encode(text))
    }

    fn count_tokens(&self, py: Python<'_>, text: &str) -> PyResult<usize> {
        let t = &self.inner;
        crate::detach(py, || Ok(t.count(text)))
    }

    fn count_tokens_batch(&self, py: Python<'_>, texts: Vec<PyBackedStr>) -> PyResult<Vec<usize>> {
        count_batch(py, &self.inner, &texts)
    }

    fn __repr__(&self) -> String {
        format!(
            "Tokenizer(name={:?}, kind={:?}, vocab_size={})",
            self.inner.name(),
            self.inner.kind(),
            self.inner.vocab_size()
        )
    }
}

/// The tokenizer to count with: the given one, else the shared calibrated estimator.
pub(crate) fn counter_of(tokenizer: Option<&PyTokenizer>) -> Arc<Tokenizer> {
    tokenizer.map_or_else(estimator, |t| t.inner.clone())
}

#[pyfunction]
#[pyo3(signature = (text, tokenizer=None))]
fn count_tokens(
    py: Python<'_>,
    text: &str,
    tokenizer: Option<PyRef<'_, PyTokenizer>>,
) -> PyResult<usize> {
    let t = counter_of(tokenizer.as_deref());
    crate::detach(py, || Ok(t.count(text)))
}

#[pyfunction]
#[pyo3(signature = (texts, tokenizer=None))]
fn count_tokens_batch(
    py: Python<'_>,
    texts: Vec<PyBackedStr>,
    tokenizer: Option<PyRef<'_, PyTokenizer>>,
) -> PyResult<Vec<usize>> {
    let t = counter_of(tokenizer.as_deref());
    count_batch(py, &t, &texts)
}

#[pyfunction]
fn estimate_tokens(py: Python<'_>, text: &str) -> PyResult<usize> {
    let t = estimator();
    crate::detach(py, || Ok(t.count(text)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTokenizer>()?;
    m.add_function(wrap_pyfunction!(count_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(count_tokens_batch, m)?)?;
    m.add_function(wrap_pyfunction!(estimate_tokens, m)?)?;
    Ok(())
}
