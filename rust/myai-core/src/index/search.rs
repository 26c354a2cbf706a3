//! Top-k retrieval: MaxScore over block posting lists, and the exhaustive scorer it must equal.
//!
//! Both paths score a chunk with the same expression summed in the same (query) order, so
//! their scores are bit-identical; pruning decisions use upper bounds inflated by [`SLACK`]
//! so that rounding can never prune a chunk whose exact score would have entered the top-k.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::postings::{Postings, BLOCK};
use super::Bm25Index;
use crate::{Error, Result};

/// Relative inflation of every score bound before it is compared with the threshold.
const SLACK: f32 = 1.0 + 1e-4;
/// Exhausted cursor.
const END: u32 = u32::MAX;

/// One query term with its weight (query frequency × idf).
struct QueryTerm<'a> {
    postings: &'a Postings,
    weight: f32,
}

/// BM25's per-query constants: `K(dl) = alpha + beta * dl`.
#[derive(Clone, Copy)]
struct Norm {
    alpha: f32,
    beta: f32,
}

impl Norm {
    #[inline(always)]
    fn score(self, weight: f32, tf: u32, dl: u32) -> f32 {
        let tf = tf as f32;
        weight * tf / (tf + (self.alpha + self.beta * dl as f32))
    }
}

/// A top-k candidate; "greater" means worse, so the heap's top is the one to evict.
#[derive(Clone, Copy, PartialEq)]
struct Hit {
    score: f32,
    chunk_id: u64,
}

impl Eq for Hit {}

impl Ord for Hit {
    fn cmp(&self, o: &Self) -> Ordering {
        o.score
            .total_cmp(&self.score)
            .then(self.chunk_id.cmp(&o.chunk_id))
    }
}

impl PartialOrd for Hit {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

struct TopK {
    k: usize,
    heap: BinaryHeap<Hit>,
}

impl TopK {
    /// `n` bounds the number of candidates, so a huge `k` does not allocate a huge heap.
    fn new(k: usize, n: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(n).saturating_add(1)),
        }
    }

    /// Scores below this cannot enter (scores equal to it may, with a smaller chunk id).
    #[inline]
    fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::NEG_INFINITY, |h| h.score)
        }
    }

    #[inline]
    fn offer(&mut self, hit: Hit) {
        if self.heap.len() < self.k {
            self.heap.push(hit);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if hit < *top {
                *top = hit;
            }
        }
    }

    fn into_sorted(self) -> Vec<(u64, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|h| (h.chunk_id, h.score))
            .collect()
    }
}

/// The doc numbers a search may return: the live ones, or those of the filter's documents.
struct Allowed<'a> {
    bits: std::borrow::Cow<'a, [u64]>,
    /// Sorted doc numbers, when a filter selected them (for the direct path).
    list: Option<Vec<u32>>,
}

impl Allowed<'_> {
    #[inline(always)]
    fn contains(&self, d: u32) -> bool {
        self.bits
            .get(d as usize / 64)
            .is_some_and(|w| w & (1 << (d % 64)) != 0)
    }
}

/// A position in one term's posting list.
struct Cursor<'a> {
    docs: &'a [u32],
    tfs: &'a [u32],
    postings: &'a Postings,
    pos: usize,
    weight: f32,
    /// Upper bound of this term's contribution to any chunk, inflated.
    ub: f32,
    /// Index of the term in the query (the order scores are summed in).
    slot: usize,
}

impl Cursor<'_> {
    #[inline(always)]
    fn doc(&self) -> u32 {
        self.docs.get(self.pos).copied().unwrap_or(END)
    }

    #[inline(always)]
    fn tf(&self) -> u32 {
        self.tfs.get(self.pos).copied().unwrap_or(0)
    }

    /// Moves to the first posting with doc number >= `target`, skipping whole blocks.
    #[inline]
    fn seek(&mut self, target: u32) {
        if self.doc() >= target {
            return;
        }
        let blocks = &self.postings.blocks;
        let mut b = self.pos / BLOCK;
        if blocks.get(b).is_some_and(|m| m.last_doc < target) {
            let rest = blocks.get(b + 1..).unwrap_or(&[]);
            b = b + 1 + rest.partition_point(|m| m.last_doc < target);
            if b >= blocks.len() {
                self.pos = self.docs.len();
                return;
            }
            self.pos = self.pos.max(b * BLOCK);
        }
        let end = ((b + 1) * BLOCK).min(self.docs.len());
        let within = self.docs.get(self.pos..end).unwrap_or(&[]);
        self.pos += within.partition_point(|&d| d < target);
    }
}

impl Bm25Index {
    /// The query's terms present in the index, in order of first occurrence, each weighted
    /// by idf × its number of occurrences in the query (a repeated word counts each time).
    fn query_terms(&self, query: &str) -> Vec<QueryTerm<'_>> {
        let n = self.len() as f64;
        let mut out: Vec<(u32, u32)> = Vec::new();
        let mut slot: rustc_hash::FxHashMap<u32, usize> = rustc_hash::FxHashMap::default();
        for t in self.analyzer.analyze(query) {
            let Some(&id) = self.term_ids.get(t.as_str()) else {
                continue;
            };
            match slot.get(&id).and_then(|&i| out.get_mut(i)) {
                Some((_, c)) => *c += 1,
                None => {
                    slot.insert(id, out.len());
                    out.push((id, 1));
                }
            }
        }
        out.into_iter()
            .filter_map(|(id, qtf)| {
                let p = self.postings.get(id as usize)?;
                if p.df == 0 {
                    return None;
                }
                let df = p.df as f64;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln() as f32;
                Some(QueryTerm {
                    postings: p,
                    weight: qtf as f32 * idf,
                })
            })
            .collect()
    }

    fn norm(&self) -> Norm {
        let avgdl = if self.is_empty() {
            1.0
        } else {
            self.total_len as f64 / self.len() as f64
        };
        let avgdl = if avgdl > 0.0 { avgdl } else { 1.0 };
        Norm {
            alpha: (self.k1 * (1.0 - self.b)) as f32,
            beta: (self.k1 * self.b / avgdl) as f32,
        }
    }

    fn allowed(&self, filter: Option<&[u64]>) -> Allowed<'_> {
        match filter {
            None => Allowed {
                bits: std::borrow::Cow::Borrowed(&self.live),
                list: None,
            },
            Some(doc_ids) => {
                let mut bits = vec![0u64; self.live.len()];
                let mut list = Vec::new();
                for id in doc_ids {
                    for &d in self.doc_map.get(id).map(Vec::as_slice).unwrap_or(&[]) {
                        if let Some(w) = bits.get_mut(d as usize / 64) {
                            if *w & (1 << (d % 64)) == 0 {
                                *w |= 1 << (d % 64);
                                list.push(d);
                            }
                        }
                    }
                }
                list.sort_unstable();
                Allowed {
                    bits: std::borrow::Cow::Owned(bits),
                    list: Some(list),
                }
            }
        }
    }

    /// The `top_k` best chunks for `query` as `(chunk_id, score)`, best first, ties broken
    /// by the smaller chunk id. With `filter`, only chunks of those documents are ranked.
    pub fn search(
        &self,
        query: &str,
        top_k: usize,
        filter: Option<&[u64]>,
    ) -> Result<Vec<(u64, f32)>> {
        let terms = self.query_terms(query);
        if terms.is_empty() || top_k == 0 {
            return Ok(Vec::new());
        }
        let allowed = self.allowed(filter);
        let norm = self.norm();
        let mut top = TopK::new(top_k, self.len());
        let postings_len: usize = terms.iter().map(|t| t.postings.docs.len()).sum();
        match &allowed.list {
            // A selective filter: visit its chunks directly rather than the posting lists.
            Some(list) if list.len().saturating_mul(terms.len()) * 8 < postings_len => {
                self.score_listed(&terms, norm, list, &mut top)
            }
            _ => self.max_score(&terms, norm, &allowed, &mut top),
        }
        Ok(top.into_sorted())
    }

    fn score_listed(&self, terms: &[QueryTerm<'_>], norm: Norm, list: &[u32], top: &mut TopK) {
        let mut cursors = self.cursors(terms, norm);
        for &d in list {
            let dl = self.doc_lens.get(d as usize).copied().unwrap_or(0);
            let mut score = 0.0f32;
            let mut hit = false;
            // Cursors are in query order here, which is the summation order.
            for c in cursors.iter_mut() {
                c.seek(d);
                if c.doc() == d {
                    score += norm.score(c.weight, c.tf(), dl);
                    hit = true;
                }
            }
            if hit {
                let chunk_id = self.chunk_ids.get(d as usize).copied().unwrap_or(0);
                top.offer(Hit { score, chunk_id });
            }
        }
    }

    fn cursors<'a>(&self, terms: &[QueryTerm<'a>], norm: Norm) -> Vec<Cursor<'a>> {
        terms
            .iter()
            .enumerate()
            .map(|(slot, t)| Cursor {
                docs: &t.postings.docs,
                tfs: &t.postings.tfs,
                postings: t.postings,
                pos: 0,
                weight: t.weight,
                ub: t.weight * t.postings.bound(norm.alpha, norm.beta) * SLACK,
                slot,
            })
            .collect()
    }

    /// MaxScore: terms sorted by bound; the low-bound prefix whose bounds sum below the
    /// threshold is "non-essential" and only probed for chunks found through the others.
    fn max_score(
        &self,
        terms: &[QueryTerm<'_>],
        norm: Norm,
        allowed: &Allowed<'_>,
        top: &mut TopK,
    ) {
        let mut cursors = self.cursors(terms, norm);
        cursors.sort_by(|a, b| a.ub.total_cmp(&b.ub).then(a.slot.cmp(&b.slot)));
        let n = cursors.len();
        // prefix[i] = sum of bounds of cursors[0..=i].
        let mut prefix = Vec::with_capacity(n);
        let mut acc = 0.0f32;
        for c in &cursors {
            acc += c.ub;
            prefix.push(acc * SLACK);
        }
        let mut contrib = vec![0.0f32; n];
        let mut first_essential = 0usize;
        let mut theta = top.threshold();
        loop {
            while first_essential < n && prefix.get(first_essential).is_some_and(|&p| p < theta) {
                first_essential += 1;
            }
            let Some(essential) = cursors.get_mut(first_essential..) else {
                break;
            };
            let d = essential.iter().map(Cursor::doc).min().unwrap_or(END);
            if d == END {
                break;
            }
            if !allowed.contains(d) {
                for c in essential.iter_mut() {
                    if c.doc() == d {
                        c.pos += 1;
                    }
                }
                continue;
            }
            let dl = self.doc_lens.get(d as usize).copied().unwrap_or(0);
            contrib.iter_mut().for_each(|x| *x = 0.0);
            let mut partial = 0.0f32;
            for c in essential.iter_mut() {
                if c.doc() == d {
                    let s = norm.score(c.weight, c.tf(), dl);
                    if let Some(x) = contrib.get_mut(c.slot) {
                        *x = s;
                    }
                    partial += s;
                    c.pos += 1;
                }
            }
            let mut pruned = false;
            for i in (0..first_essential).rev() {
                let rest = prefix.get(i).copied().unwrap_or(0.0);
                if (partial + rest) * SLACK < theta {
                    pruned = true;
                    break;
                }
                let Some(c) = cursors.get_mut(i) else {
                    continue;
                };
                c.seek(d);
                if c.doc() == d {
                    let s = norm.score(c.weight, c.tf(), dl);
                    if let Some(x) = contrib.get_mut(c.slot) {
                        *x = s;
                    }
                    partial += s;
                }
            }
            if pruned {
                continue;
            }
            let score = contrib.iter().fold(0.0f32, |a, &s| a + s);
            let chunk_id = self.chunk_ids.get(d as usize).copied().unwrap_or(0);
            top.offer(Hit { score, chunk_id });
            theta = top.threshold();
        }
    }

    /// The same ranking as [`Bm25Index::search`] by scoring every posting of every query
    /// term (no pruning): the oracle that tests compare the pruned search against.
    pub fn search_exhaustive(
        &self,
        query: &str,
        top_k: usize,
        filter: Option<&[u64]>,
    ) -> Result<Vec<(u64, f32)>> {
        let terms = self.query_terms(query);
        if terms.is_empty() || top_k == 0 {
            return Ok(Vec::new());
        }
        let allowed = self.allowed(filter);
        let norm = self.norm();
        let mut acc = vec![0.0f32; self.chunk_ids.len()];
        for t in &terms {
            for (&d, &tf) in t.postings.docs.iter().zip(&t.postings.tfs) {
                let dl = self.doc_lens.get(d as usize).copied().unwrap_or(0);
                if let Some(a) = acc.get_mut(d as usize) {
                    *a += norm.score(t.weight, tf, dl);
                }
            }
        }
        let mut top = TopK::new(top_k, self.len());
        for (d, &score) in acc.iter().enumerate() {
            if score > 0.0 && allowed.contains(d as u32) {
                let chunk_id = self
                    .chunk_ids
                    .get(d)
                    .copied()
                    .ok_or_else(|| Error::invalid("internal: doc number without a chunk id"))?;
                top.offer(Hit { score, chunk_id });
            }
        }
        Ok(top.into_sorted())
    }
}
