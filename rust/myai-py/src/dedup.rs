//! Bindings of `myai_core::dedup`: exact hashes, exact Jaccard, batch grouping and the
//! incremental `NearDupIndex`.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use myai_core::dedup as core;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyBytes;

use crate::detach;

/// Texts shorter than this are hashed without releasing the GIL: the round trip would cost
/// more than the hash.
const DETACH_BYTES: usize = 64 * 1024;

fn check_num_perm(num_perm: i64) -> PyResult<usize> {
    usize::try_from(num_perm)
        .ok()
        .filter(|k| (core::MIN_PERM..=core::MAX_PERM).contains(k))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "num_perm must be between {} and {}, got {num_perm}",
                core::MIN_PERM,
                core::MAX_PERM
            ))
        })
}

fn check_id(id: i128, arg: &str) -> PyResult<u64> {
    u64::try_from(id).map_err(|_| {
        PyValueError::new_err(format!("{arg} must be an integer in [0, 2**64), got {id}"))
    })
}

#[pyfunction]
fn hash64(py: Python<'_>, text: &str) -> PyResult<u64> {
    if text.len() < DETACH_BYTES {
        return Ok(core::hash64(text));
    }
    detach(py, || Ok(core::hash64(text)))
}

#[pyfunction]
fn jaccard(py: Python<'_>, a: &str, b: &str) -> PyResult<f64> {
    detach(py, || Ok(core::jaccard(a, b)))
}

#[pyfunction]
#[pyo3(signature = (texts, threshold = 0.85, num_perm = 128))]
fn find_duplicates(
    py: Python<'_>,
    texts: Vec<PyBackedStr>,
    threshold: f64,
    num_perm: i64,
) -> PyResult<Vec<Vec<usize>>> {
    let k = check_num_perm(num_perm)?;
    detach(py, || core::find_duplicates(&texts, threshold, k))
}

/// The Python face of `myai_core::dedup::NearDupIndex`, shared between threads behind a
/// read-write lock that is always taken with the GIL released.
#[pyclass(frozen, module = "myai._core", name = "NearDupIndex")]
struct NearDupIndex {
    inner: RwLock<core::NearDupIndex>,
    // Fixed at construction; kept outside the lock so that reading them never waits.
    threshold: f64,
    num_perm: usize,
}

impl NearDupIndex {
    fn wrap(inner: core::NearDupIndex) -> Self {
        NearDupIndex {
            threshold: inner.threshold(),
            num_perm: inner.num_perm(),
            inner: RwLock::new(inner),
        }
    }

    // Nothing panics while holding the lock, so a poisoned lock still guards a valid index.
    fn read(&self) -> RwLockReadGuard<'_, core::NearDupIndex> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, core::NearDupIndex> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl NearDupIndex {
    #[new]
    #[pyo3(signature = (threshold = 0.85, num_perm = 128, seed = 0))]
    fn new(py: Python<'_>, threshold: f64, num_perm: i64, seed: u64) -> PyResult<Self> {
        let k = check_num_perm(num_perm)?;
        let inner = detach(py, || core::NearDupIndex::new(threshold, k, seed))?;
        Ok(Self::wrap(inner))
    }

    fn add(&self, py: Python<'_>, id: i128, text: &str) -> PyResult<()> {
        let id = check_id(id, "id")?;
        detach(py, || self.write().add(id, text))
    }

    fn query(&self, py: Python<'_>, text: &str) -> PyResult<Vec<u64>> {
        detach(py, || {
            Ok(self
                .read()
                .query(text)
                .into_iter()
                .map(|(id, _)| id)
                .collect())
        })
    }

    #[pyo3(signature = (ids, texts, skip_duplicates = false))]
    fn add_batch(
        &self,
        py: Python<'_>,
        ids: Vec<i128>,
        texts: Vec<PyBackedStr>,
        skip_duplicates: bool,
    ) -> PyResult<Vec<Option<u64>>> {
        let ids = ids
            .into_iter()
            .map(|id| check_id(id, "ids"))
            .collect::<PyResult<Vec<_>>>()?;
        detach(py, || self.write().add_batch(&ids, &texts, skip_duplicates))
    }

    fn remove(&self, py: Python<'_>, id: i128) -> PyResult<bool> {
        let id = check_id(id, "id")?;
        detach(py, || Ok(self.write().remove(id)))
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        detach(py, || Ok(self.read().len()))
    }

    fn __contains__(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<bool> {
        // Anything that is not a valid id (a negative int, a string) is simply not stored.
        let Some(id) = id
            .extract::<i128>()
            .ok()
            .and_then(|i| u64::try_from(i).ok())
        else {
            return Ok(false);
        };
        detach(py, || Ok(self.read().contains(id)))
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = detach(py, || Ok(self.read().to_bytes()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let inner = detach(py, || core::NearDupIndex::from_bytes(data))?;
        Ok(Self::wrap(inner))
    }

    #[getter]
    fn threshold(&self) -> f64 {
        self.threshold
    }

    #[getter]
    fn num_perm(&self) -> usize {
        self.num_perm
    }
}

/// hash64 of many texts (str, or bytes holding UTF-8), in one call with the GIL released.
#[pyfunction]
fn hash64_batch(py: Python<'_>, texts: Vec<Bound<'_, PyAny>>) -> PyResult<Vec<u64>> {
    let mut slices: Vec<&[u8]> = Vec::with_capacity(texts.len());
    for t in &texts {
        if let Ok(b) = t.cast::<PyBytes>() {
            slices.push(b.as_bytes());
        } else {
            let s = t.cast::<pyo3::types::PyString>().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "hash64_batch expects str or bytes items, got {}",
                    t.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            slices.push(s.to_str()?.as_bytes());
        }
    }
    detach(py, || {
        Ok(slices.iter().map(|b| core::hash64_bytes(b)).collect())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hash64, m)?)?;
    m.add_function(wrap_pyfunction!(hash64_batch, m)?)?;
    m.add_function(wrap_pyfunction!(jaccard, m)?)?;
    m.add_function(wrap_pyfunction!(find_duplicates, m)?)?;
    m.add_class::<NearDupIndex>()?;
    Ok(())
}
