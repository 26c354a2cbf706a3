//! Banding of signatures for locality-sensitive hashing.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::shingle::mix64;

/// Weights of the false-positive and false-negative areas when choosing the banding. Every
/// candidate is verified against the full signature, so a false positive costs only one
/// comparison while a false negative is a duplicate lost for good: recall weighs 49 times
/// more than precision (datasketch weighs them equally because it does not verify).
pub(crate) const FP_WEIGHT: f64 = 0.02;
pub(crate) const FN_WEIGHT: f64 = 0.98;

/// Simpson's rule on [a, b] with 64 intervals: the integrands are smooth polynomials, and
/// the optimum only needs to rank banding choices.
fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    const N: usize = 64;
    let h = (b - a) / N as f64;
    let mut sum = f(a) + f(b);
    for i in 1..N {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        sum += w * f(a + h * i as f64);
    }
    sum * h / 3.0
}

/// The `(bands, rows)` with `bands * rows <= num_perm` minimising
/// `fp_weight · P(candidate | s < t) + fn_weight · P(miss | s >= t)`, each probability
/// integrated over a uniform similarity s, where a pair is a candidate when all `rows` values
/// of at least one band agree: `1 - (1 - s^rows)^bands`.
pub(crate) fn optimal_bands(
    threshold: f64,
    num_perm: usize,
    fp_weight: f64,
    fn_weight: f64,
) -> (usize, usize) {
    let mut best = (1, 1);
    let mut best_err = f64::INFINITY;
    for bands in 1..=num_perm {
        for rows in 1..=num_perm / bands {
            let (b, r) = (bands as i32, rows as i32);
            let fp = integrate(|s| 1.0 - (1.0 - s.powi(r)).powi(b), 0.0, threshold);
            let fneg = integrate(|s| (1.0 - s.powi(r)).powi(b), threshold, 1.0);
            let err = fp_weight * fp + fn_weight * fneg;
            if err < best_err {
                best_err = err;
                best = (bands, rows);
            }
        }
    }
    best
}

type BandCache = Mutex<HashMap<(u64, usize), (usize, usize)>>;

/// [`optimal_bands`] with this module's weights, memoised: a search over every banding of
/// 1024 permutations takes milliseconds, and indexes are made with few distinct settings.
pub(crate) fn bands_for(threshold: f64, num_perm: usize) -> (usize, usize) {
    static CACHE: OnceLock<BandCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (threshold.to_bits(), num_perm);
    if let Some(v) = cache.lock().ok().and_then(|c| c.get(&key).copied()) {
        return v;
    }
    let v = optimal_bands(threshold, num_perm, FP_WEIGHT, FN_WEIGHT);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, v);
    }
    v
}

/// The bucket key of one band: a hash of its rows, salted with the band number so that equal
/// rows in different bands never share a key. The rows are already random values, so one
/// multiply per row and a single final mix suffice.
#[inline]
pub(crate) fn band_key(band: usize, rows: &[u32]) -> u64 {
    let mut h = (band as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &v in rows {
        h = (h ^ u64::from(v))
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .rotate_left(31);
    }
    mix64(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_reproduce_datasketch() {
        // Values printed by datasketch.lsh._optimal_param (scipy quad integration).
        for (t, k, want) in [
            (0.85, 128, (8, 16)),
            (0.5, 128, (25, 5)),
            (0.9, 256, (9, 28)),
            (0.7, 64, (8, 8)),
            (0.3, 16, (8, 2)),
        ] {
            assert_eq!(optimal_bands(t, k, 0.5, 0.5), want, "t={t} k={k}");
        }
    }

    #[test]
    fn recall_weights() {
        assert_eq!(bands_for(0.85, 128), (14, 9));
        assert_eq!(bands_for(0.5, 128), (34, 3));
        assert_eq!(bands_for(0.9, 256), (16, 16));
    }
}
