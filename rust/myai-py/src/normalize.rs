//! Bindings of `myai_core::normalize`.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString};

use myai_core::normalize::{normalize_bytes, normalize_str, NormalizeStats};

/// Runs the normaliser on str (lone surrogates replaced and counted) or bytes (invalid UTF-8
/// replaced and counted).
/// The normalised text (None when a str needs no change: the caller returns it as it is).
fn run(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<(Option<String>, NormalizeStats)> {
    if let Ok(s) = data.cast::<PyString>() {
        return match s.to_str() {
            Ok(text) => crate::detach(py, move || {
                let (t, st) = normalize_str(text);
                Ok((
                    match t {
                        std::borrow::Cow::Borrowed(_) => None,
                        std::borrow::Cow::Owned(o) => Some(o),
                    },
                    st,
                ))
            }),
            Err(_) => {
                // Lone surrogates cannot be UTF-8: decode the UTF-16 code units, each lone
                // surrogate becoming one U+FFFD, and count them.
                let raw = s.call_method1("encode", ("utf-16-le", "surrogatepass"))?;
                let units: Vec<u16> = raw
                    .cast::<PyBytes>()?
                    .as_bytes()
                    .chunks_exact(2)
                    .map(|p| u16::from_le_bytes([p[0], p[1]]))
                    .collect();
                crate::detach(py, move || {
                    let mut lone = 0usize;
                    let text: String = char::decode_utf16(units)
                        .map(|r| {
                            r.unwrap_or_else(|_| {
                                lone += 1;
                                '\u{fffd}'
                            })
                        })
                        .collect();
                    let (t, mut st) = normalize_str(&text);
                    st.invalid_sequences += lone;
                    Ok((Some(t.into_owned()), st))
                })
            }
        };
    }
    let bytes: Vec<u8> = if let Ok(b) = data.cast::<PyBytes>() {
        b.as_bytes().to_vec()
    } else if let Ok(b) = data.cast::<PyByteArray>() {
        b.to_vec()
    } else {
        return Err(PyTypeError::new_err(format!(
            "normalize expects str or bytes, got {}",
            data.get_type().name()?
        )));
    };
    crate::detach(py, move || {
        let (t, st) = normalize_bytes(&bytes);
        Ok((Some(t), st))
    })
}

#[pyfunction]
fn normalize<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match run(py, data)?.0 {
        Some(t) => PyString::new(py, &t).into_any(),
        None => data.clone(),
    })
}

#[pyfunction]
fn normalize_with_stats<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
    let (text, st) = run(py, data)?;
    let text = match text {
        Some(t) => PyString::new(py, &t).into_any(),
        None => data.clone(),
    };
    let d = PyDict::new(py);
    d.set_item("invalid_sequences", st.invalid_sequences)?;
    d.set_item("bom_removed", st.bom_removed)?;
    d.set_item("newlines_converted", st.newlines_converted)?;
    d.set_item("controls_removed", st.controls_removed)?;
    d.set_item("nfc_applied", st.nfc_applied)?;
    Ok((text, d))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(normalize_with_stats, m)?)?;
    Ok(())
}
