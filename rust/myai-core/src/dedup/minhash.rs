//! MinHash signatures by one-permutation hashing with re-hashing densification.
//!
//! Classic MinHash hashes every shingle `num_perm` times. One-permutation hashing hashes each
//! shingle once: the hash picks a bin and the bin keeps its smallest value, so a signature
//! costs one hash per shingle. Bins that no shingle reached are then filled by further
//! rounds in which every shingle is placed again under a new key and may land only in bins
//! that are still empty (the densification of Mai et al., "On densification for minwise
//! hashing", UAI 2020). For each bin, the first round that reaches it from A ∪ B and the
//! smallest value in that round are a uniformly random shingle of A ∪ B (every shingle goes
//! through the same function of its own hash), so two signatures agree in a bin with
//! probability |A ∩ B| / |A ∪ B|: the plain MinHash estimator stays unbiased. Rounds stop
//! when every bin is full, after about num_perm·ln(num_perm) placements in all, so a text
//! with m shingles costs about max(m, num_perm·ln(num_perm)) cheap placements instead of
//! m·num_perm hashes; unlike borrowing from a neighbouring bin, no bin copies another, so
//! the variance stays that of independent bins even for short texts.

use super::shingle::{mix64, shingle_hashes};

/// Reusable per-thread buffers, so that sketching a text allocates nothing.
#[derive(Default)]
pub(crate) struct Scratch {
    shingles: Vec<u64>,
    open: Vec<bool>,
    filled: Vec<usize>,
}

/// Computes signatures of `num_perm` 32-bit values under one seed. Two signatures are
/// comparable only when made by hashers of equal `num_perm` and seed.
#[derive(Clone, Debug)]
pub(crate) struct MinHasher {
    num_perm: usize,
    seed_key: u64,
}

/// The empty-bin marker: bin values are clamped below it.
const EMPTY: u32 = u32::MAX;

impl MinHasher {
    pub(crate) fn new(num_perm: usize, seed: u64) -> Self {
        MinHasher {
            num_perm,
            seed_key: mix64(seed ^ 0x6d79_6169_6464_7570),
        }
    }

    pub(crate) fn num_perm(&self) -> usize {
        self.num_perm
    }

    fn round_key(&self, round: u64) -> u64 {
        mix64(
            self.seed_key
                .wrapping_add(round.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        )
    }

    /// Writes the signature of `text` into `sig` (whose length must be `num_perm`). A text
    /// without shingles gets the all-`u32::MAX` signature, equal to every other such text's.
    pub(crate) fn sketch_into(&self, text: &str, scratch: &mut Scratch, sig: &mut [u32]) {
        scratch.shingles.clear();
        shingle_hashes(text, &mut scratch.shingles);
        self.sketch_shingles(scratch, sig);
    }

    fn sketch_shingles(&self, scratch: &mut Scratch, sig: &mut [u32]) {
        let Scratch {
            shingles,
            open,
            filled,
        } = scratch;
        let k = sig.len() as u64;
        sig.fill(EMPTY);
        if shingles.is_empty() || k == 0 {
            return;
        }
        // Fast range reduction of the high half picks the bin; the low half is the value,
        // clamped below EMPTY (a 2^-32 nudge that no estimate can see).
        let split = |h: u64| ((((h >> 32) * k) >> 32) as usize, (h as u32).min(EMPTY - 1));

        // Round 0, every bin open: plain one-permutation hashing. Each shingle's round-0
        // hash stays in `shingles` as the seed of its later rounds.
        let key = self.round_key(0);
        for s in shingles.iter_mut() {
            *s = mix64(*s ^ key);
            let (bin, v) = split(*s);
            if let Some(slot) = sig.get_mut(bin) {
                *slot = (*slot).min(v);
            }
        }
        if !sig.contains(&EMPTY) {
            return;
        }
        open.clear();
        open.resize(sig.len(), false);
        let mut remaining = 0usize;
        for (o, &v) in open.iter_mut().zip(sig.iter()) {
            if v == EMPTY {
                *o = true;
                remaining += 1;
            }
        }
        // A cap that no real text reaches (the expectation is num_perm·H(num_perm) rounds for
        // a one-shingle text): bins still empty after it keep EMPTY, deterministically.
        let max_rounds = 64 * k + 64;
        for round in 1..max_rounds {
            let key = self.round_key(round);
            filled.clear();
            for &h in shingles.iter() {
                // Most shingles land in a full bin: a multiply places them, and only those
                // landing in an open bin pay for a full mix to draw their value. Every
                // shingle goes through the same function of its own hash, which is all
                // that the unbiasedness argument needs.
                let x = (h ^ key).wrapping_mul(0xd6e8_feb8_6659_fd93);
                let bin = (((x >> 32) * k) >> 32) as usize;
                if open.get(bin) == Some(&true) {
                    if let Some(slot) = sig.get_mut(bin) {
                        if *slot == EMPTY {
                            filled.push(bin);
                        }
                        *slot = (*slot).min(split(mix64(x)).1);
                    }
                }
            }
            // Bins reached in this round close only now, so that the round's minimum wins.
            for &b in filled.iter() {
                if let Some(o) = open.get_mut(b) {
                    *o = false;
                }
            }
            remaining = remaining.saturating_sub(filled.len());
            if remaining == 0 {
                break;
            }
        }
    }
}

/// Bins in which two signatures agree; divided by their length, the estimated Jaccard.
#[inline]
pub(crate) fn agreements(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x == y).count()
}

/// Estimated Jaccard similarity: the fraction of bins in which the signatures agree.
#[cfg(test)]
pub(crate) fn estimate(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    agreements(a, b) as f64 / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(h: &MinHasher, text: &str) -> Vec<u32> {
        let mut s = vec![0; h.num_perm()];
        h.sketch_into(text, &mut Scratch::default(), &mut s);
        s
    }

    #[test]
    fn every_bin_is_filled_even_for_one_shingle() {
        for k in [8, 63, 64, 65, 128, 1024] {
            let h = MinHasher::new(k, 3);
            let s = sig(&h, "lonely");
            assert!(
                s.iter().all(|&v| v != u32::MAX),
                "one shingle fills every bin"
            );
            let s = sig(
                &h,
                "the quick brown fox jumps over the lazy dog again and again",
            );
            assert_eq!(s.len(), k);
            assert!(s.iter().all(|&v| v != u32::MAX));
        }
    }

    #[test]
    fn seeds_give_different_signatures() {
        let t = "alpha beta gamma delta epsilon zeta eta theta";
        assert_ne!(
            sig(&MinHasher::new(64, 0), t),
            sig(&MinHasher::new(64, 1), t)
        );
        assert_eq!(
            sig(&MinHasher::new(64, 7), t),
            sig(&MinHasher::new(64, 7), t)
        );
    }

    #[test]
    fn empty_text_signature() {
        let h = MinHasher::new(32, 0);
        assert!(sig(&h, "").iter().all(|&v| v == u32::MAX));
        assert_eq!(estimate(&sig(&h, ""), &sig(&h, "!!")), 1.0);
        assert_eq!(estimate(&sig(&h, ""), &sig(&h, "a b c")), 0.0);
    }
}
