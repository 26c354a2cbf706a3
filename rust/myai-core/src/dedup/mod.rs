//! Exact and near-duplicate detection.
//!
//! Exact duplicates share [`hash64`], the xxh3-64 of the UTF-8 bytes (normalise first).
//! Near-duplicates are texts whose word-3-gram shingle sets (see [`SHINGLE_WORDS`]) have a
//! Jaccard similarity of at least a threshold, found with MinHash signatures (one hash per
//! shingle, see `minhash`) and LSH banding, every candidate verified on its full signature.
//! [`find_duplicates`] groups a batch; [`NearDupIndex`] keeps texts for incremental queries.

mod index;
mod lsh;
mod minhash;
mod shingle;

use rayon::prelude::*;

pub use index::NearDupIndex;
pub use shingle::{hash64, hash64_bytes, jaccard, SHINGLE_WORDS};

use crate::{Error, Result};
use lsh::{band_key, bands_for};
use minhash::{agreements, MinHasher, Scratch};

/// Smallest and largest accepted signature lengths.
pub const MIN_PERM: usize = 8;
/// See [`MIN_PERM`]; beyond 1024 values the estimate gains little and memory grows.
pub const MAX_PERM: usize = 1024;

fn check_params(threshold: f64, num_perm: usize) -> Result<()> {
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(Error::invalid(format!(
            "threshold must be in (0, 1], got {threshold}"
        )));
    }
    if !(MIN_PERM..=MAX_PERM).contains(&num_perm) {
        return Err(Error::invalid(format!(
            "num_perm must be between {MIN_PERM} and {MAX_PERM}, got {num_perm}"
        )));
    }
    Ok(())
}

/// Agreeing bins needed for an estimate >= threshold, in integers so that float rounding in
/// `equal / num_perm` can never flip a decision.
fn min_equal(threshold: f64, num_perm: usize) -> usize {
    ((threshold * num_perm as f64) - 1e-9).ceil().max(1.0) as usize
}

/// Union-find with path halving and union by size.
struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while let Some(&p) = self.parent.get(x) {
            if p == x {
                break;
            }
            let gp = self.parent.get(p).copied().unwrap_or(p);
            if let Some(slot) = self.parent.get_mut(x) {
                *slot = gp;
            }
            x = gp;
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        let size = |uf: &Self, i: usize| uf.size.get(i).copied().unwrap_or(1);
        if size(self, a) < size(self, b) {
            std::mem::swap(&mut a, &mut b);
        }
        let sb = size(self, b);
        if let Some(p) = self.parent.get_mut(b) {
            *p = a;
        }
        if let Some(s) = self.size.get_mut(a) {
            *s += sb;
        }
    }
}

/// Groups of duplicate texts: exact duplicates (equal bytes) and near-duplicates (estimated
/// Jaccard of their shingle sets >= `threshold` on `num_perm`-value signatures), joined
/// transitively. Each group lists at least two indices into `texts`, increasing; groups are
/// ordered by their first index. The result is deterministic (seed 0).
pub fn find_duplicates<S: AsRef<str> + Sync>(
    texts: &[S],
    threshold: f64,
    num_perm: usize,
) -> Result<Vec<Vec<usize>>> {
    check_params(threshold, num_perm)?;
    let n = texts.len();
    if u32::try_from(n).is_err() {
        return Err(Error::invalid(format!(
            "too many texts ({n}); at most {}",
            u32::MAX
        )));
    }
    let mut uf = UnionFind::new(n);

    // Exact duplicates first: only one text of each byte-identical group needs a signature.
    let hashes: Vec<u64> = texts.par_iter().map(|t| hash64(t.as_ref())).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by_key(|&i| (hashes.get(i).copied().unwrap_or(0), i));
    let mut reps = Vec::new();
    let mut run_start = 0;
    for pos in 0..order.len() {
        let i = order.get(pos).copied().unwrap_or(0);
        let h = hashes.get(i);
        let first = order.get(run_start).copied().unwrap_or(0);
        if pos == 0 || hashes.get(first) != h {
            run_start = pos;
            reps.push(i);
            continue;
        }
        // Equal hashes: join the first earlier text of the run with equal bytes (a 64-bit
        // collision between different texts is possible in principle, so compare).
        let text = texts.get(i).map(|t| t.as_ref());
        let same = order
            .get(run_start..pos)
            .into_iter()
            .flatten()
            .find(|&&j| texts.get(j).map(|t| t.as_ref()) == text);
        match same {
            Some(&j) => uf.union(j, i),
            None => reps.push(i),
        }
    }
    reps.sort_unstable();
    if reps.len() < 2 {
        return Ok(groups(&mut uf, n));
    }

    let hasher = MinHasher::new(num_perm, 0);
    let k = num_perm;
    let mut sigs = vec![0u32; reps.len() * k];
    sigs.par_chunks_mut(k)
        .zip(reps.par_iter())
        .with_min_len(8)
        .for_each_init(Scratch::default, |scratch, (sig, &i)| {
            if let Some(t) = texts.get(i) {
                hasher.sketch_into(t.as_ref(), scratch, sig);
            }
        });
    let sig = |r: usize| sigs.get(r * k..(r + 1) * k).unwrap_or(&[]);
    let need = min_equal(threshold, k);
    let (bands, rows) = bands_for(threshold, k);

    // Texts with equal signatures (say, differing only in case or punctuation, or without
    // any word) match each other and everything the first of them matches: keep one, so that
    // a crowd of them cannot make a band bucket quadratic.
    let mut by_sig: Vec<(u64, u32)> = (0..reps.len())
        .map(|r| (band_key(usize::MAX, sig(r)), r as u32))
        .collect();
    by_sig.sort_unstable();
    let mut active: Vec<u32> = Vec::with_capacity(reps.len());
    for run in by_sig.chunk_by(|x, y| x.0 == y.0) {
        let start = active.len();
        for &(_, r) in run {
            let twin = active
                .get(start..)
                .into_iter()
                .flatten()
                .copied()
                .find(|&q| sig(q as usize) == sig(r as usize));
            match twin {
                Some(q) => {
                    let (a, b) = (reps.get(q as usize), reps.get(r as usize));
                    if let (Some(&a), Some(&b)) = (a, b) {
                        uf.union(a, b);
                    }
                }
                None => active.push(r),
            }
        }
    }
    active.sort_unstable();

    // Bands are keyed and sorted in parallel a few at a time (bounding memory), then their
    // candidate runs are verified in band order.
    let per_round = rayon::current_num_threads().max(1);
    let band_ids: Vec<usize> = (0..bands).collect();
    for group in band_ids.chunks(per_round) {
        // A band entry is one u64, the high half of the bucket key over the text's
        // position: it sorts fast, and a rare 32-bit key collision only adds a candidate
        // that verification rejects.
        let keyed: Vec<Vec<u64>> = group
            .par_iter()
            .map(|&b| {
                let mut keys: Vec<u64> = active
                    .iter()
                    .map(|&r| {
                        let s = sig(r as usize).get(b * rows..(b + 1) * rows).unwrap_or(&[]);
                        (band_key(b, s) & !u64::from(u32::MAX)) | u64::from(r)
                    })
                    .collect();
                keys.sort_unstable();
                keys
            })
            .collect();
        for keys in &keyed {
            for run in keys
                .chunk_by(|x, y| x >> 32 == y >> 32)
                .filter(|r| r.len() > 1)
            {
                for (pos, &ka) in run.iter().enumerate() {
                    let ra = (ka & u64::from(u32::MAX)) as usize;
                    let a = reps.get(ra).copied().unwrap_or(0);
                    for &kb in run.get(pos + 1..).unwrap_or(&[]) {
                        let rb = (kb & u64::from(u32::MAX)) as usize;
                        let b = reps.get(rb).copied().unwrap_or(0);
                        if uf.find(a) == uf.find(b) {
                            continue;
                        }
                        if agreements(sig(ra), sig(rb)) >= need {
                            uf.union(a, b);
                        }
                    }
                }
            }
        }
    }
    Ok(groups(&mut uf, n))
}

/// The union-find's components of two or more members, each sorted, ordered by first member.
fn groups(uf: &mut UnionFind, n: usize) -> Vec<Vec<usize>> {
    let mut by_root: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        let r = uf.find(i);
        if let Some(g) = by_root.get_mut(r) {
            g.push(i);
        }
    }
    let mut out: Vec<Vec<usize>> = by_root.into_iter().filter(|g| g.len() > 1).collect();
    out.sort_unstable_by_key(|g| g.first().copied().unwrap_or(0));
    out
}

#[cfg(test)]
mod tests;
