//! An incremental inverted index of text chunks, ranked with BM25 (the Lucene variant).
//!
//! Chunks get internal doc numbers in insertion order, so every posting list is sorted by
//! construction and appending never reorders anything. Removal tombstones a doc number and
//! fixes N, the total length and each of its terms' df at once (through a forward index of
//! the chunk's terms), so scores stay exactly right; dead postings are dropped by a
//! compaction once they exceed a quarter of all postings.
//!
//! Adding a batch: each worker (rayon, one per core) tokenizes a contiguous slice of the
//! chunks and maps every word to a local term through a cache keyed by the word packed into a
//! u128 (no string hashing or allocation per token), stemming each distinct word once; words
//! the index has seen before skip stemming through the index's own word cache. One
//! sequential pass then gives new terms their ids (in order of first occurrence, so the
//! result does not depend on the number of threads), and the new postings are bucketed by
//! term and appended to their lists in parallel.
//!
//! Submodules: [`analyzer`] (text → terms), `postings` (block posting lists), `search`
//! (MaxScore top-k with block bounds, and the exhaustive oracle) and `serialize`.

pub mod analyzer;
mod postings;
mod search;
mod serialize;
mod stopwords;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::{Error, Result};
pub use analyzer::Analyzer;
use postings::Postings;

/// Dead postings may reach this fraction of all postings before a removal compacts.
const COMPACT_FRACTION: f64 = 0.25;
/// Doc numbers are u32 and `u32::MAX` marks an exhausted cursor.
const MAX_DOCS: usize = (u32::MAX - 1) as usize;
/// Most surface words the index remembers the terms of (about 32 bytes each).
const SURFACE_CAP: usize = 1 << 21;

/// A BM25 index over chunks of text, each chunk belonging to one document.
#[derive(Clone, Debug)]
pub struct Bm25Index {
    k1: f64,
    b: f64,
    analyzer: Analyzer,
    /// Term text → term id (the index of its posting list).
    term_ids: FxHashMap<Box<str>, u32>,
    /// Packed surface word (see [`short_key`]) → term id or [`STOP`]: later batches skip
    /// stemming the words seen before. A cache: not saved, bounded by [`SURFACE_CAP`].
    surface: FxHashMap<u128, u32>,
    postings: Vec<Postings>,
    // Per doc number (dead ones included until compaction).
    chunk_ids: Vec<u64>,
    doc_ids: Vec<u64>,
    doc_lens: Vec<u32>,
    live: Vec<u64>,
    /// The term ids of each doc number, for removals: built by inverting the postings on the
    /// first removal (an index that is only added to, or just loaded, does without its
    /// memory) and kept up to date from then on.
    fwd: Option<Forward>,
    /// Postings stored, dead ones included.
    total_postings: u64,
    // Live chunks only.
    chunk_map: FxHashMap<u64, u32>,
    doc_map: FxHashMap<u64, Vec<u32>>,
    total_len: u64,
    dead_postings: u64,
}

/// Forward index: the term ids of doc number `d` are `terms[off[d]..off[d + 1]]`.
#[derive(Clone, Debug)]
struct Forward {
    off: Vec<u64>,
    terms: Vec<u32>,
}

impl Forward {
    fn range(&self, d: u32) -> &[u32] {
        let lo = self.off.get(d as usize).copied().unwrap_or(0) as usize;
        let hi = self.off.get(d as usize + 1).copied().unwrap_or(0) as usize;
        self.terms.get(lo..hi.max(lo)).unwrap_or(&[])
    }

    /// Inverts the posting lists (a counting sort by doc number).
    fn from_postings(postings: &[Postings], n_docs: usize) -> Self {
        let mut count = vec![0u64; n_docs + 1];
        for p in postings {
            for &d in &p.docs {
                if let Some(c) = count.get_mut(d as usize + 1) {
                    *c += 1;
                }
            }
        }
        for i in 1..count.len() {
            count[i] += count[i - 1];
        }
        let mut fill = count.clone();
        let mut terms = vec![0u32; count.last().copied().unwrap_or(0) as usize];
        for (t, p) in postings.iter().enumerate() {
            for &d in &p.docs {
                if let Some(f) = fill.get_mut(d as usize) {
                    if let Some(slot) = terms.get_mut(*f as usize) {
                        *slot = t as u32;
                    }
                    *f += 1;
                }
            }
        }
        Forward { off: count, terms }
    }
}

/// Summary numbers of an index, for statistics pages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IndexStats {
    /// Live chunks.
    pub chunks: usize,
    /// Documents with at least one live chunk.
    pub documents: usize,
    /// Distinct terms with at least one live posting.
    pub terms: usize,
    /// Postings, dead ones included.
    pub postings: usize,
    /// Postings of removed chunks not yet compacted away.
    pub dead_postings: usize,
    /// Sum of live chunk lengths in terms.
    pub total_terms: u64,
    /// Mean live chunk length in terms.
    pub avgdl: f64,
}

/// One chunk's terms after analysis: distinct local term ids with their frequencies.
struct Analyzed {
    len: u32,
    entries: std::ops::Range<usize>,
}

/// The analysis of a contiguous slice of a batch, made by one worker with its own term table.
struct SliceResult {
    /// The text of local term `i` is `arena[spans[i].0..spans[i].1]`.
    arena: String,
    spans: Vec<(u32, u32)>,
    /// The index's term id of each local term, or `u32::MAX` for a term new to the index.
    global: Vec<u32>,
    /// Words this slice stemmed, with their local term id (or [`STOP`]), for the index's cache.
    learned: Vec<(u128, u32)>,
    entries: Vec<(u32, u32)>,
    docs: Vec<Analyzed>,
}

const STOP: u32 = u32::MAX;

/// A word of up to 16 bytes packed into an integer: hashing and comparing it is a couple of
/// instructions instead of a memcmp (words never contain NUL, so zero padding is unambiguous).
#[inline(always)]
fn short_key(word: &str) -> Option<u128> {
    // Two overlapping loads instead of a copy into a zeroed buffer: the copy's variable-length
    // memcpy stalls the following 16-byte load on store forwarding.
    let b = word.as_bytes();
    let n = b.len();
    let le64 = |s: &[u8]| s.try_into().map(u64::from_le_bytes).unwrap_or(0);
    let le32 = |s: &[u8]| s.try_into().map(u32::from_le_bytes).unwrap_or(0) as u64;
    let (lo, hi) = match n {
        0 => (0, 0),
        1..=3 => (b.iter().rev().fold(0u64, |a, &c| a << 8 | c as u64), 0),
        4..=7 => (
            le32(b.get(..4)?) | (le32(b.get(n - 4..)?) >> (8 * (8 - n))) << 32,
            0,
        ),
        8 => (le64(b.get(..8)?), 0),
        9..=16 => (le64(b.get(..8)?), le64(b.get(n - 8..)?) >> (8 * (16 - n))),
        _ => return None,
    };
    Some(lo as u128 | (hi as u128) << 64)
}

/// Entries of the direct-mapped front of [`SurfaceCache`]: small enough for L1, which the
/// frequent words of a Zipf distribution then almost never leave.
const FRONT_BITS: u32 = 11;
const FRONT: usize = 1 << FRONT_BITS;

/// Surface form → local term id (or [`STOP`]), so each distinct word is stemmed once.
struct SurfaceCache {
    front_keys: Vec<u128>,
    front_ids: Vec<u32>,
    short: FxHashMap<u128, u32>,
    long: FxHashMap<Box<str>, u32>,
}

#[inline(always)]
fn front_slot(k: u128) -> usize {
    let x = (k as u64) ^ ((k >> 64) as u64).rotate_left(29);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FRONT_BITS)) as usize
}

impl SurfaceCache {
    /// `bytes` of text will be looked up: sizes the map so that big batches do not rehash
    /// and single chunks do not pay for a big table.
    fn new(bytes: usize) -> Self {
        let mut short = FxHashMap::default();
        short.reserve((bytes / 16).clamp(64, 16384));
        SurfaceCache {
            // Key 0 is the empty word, which the tokenizer never emits.
            front_keys: vec![0; FRONT],
            front_ids: vec![0; FRONT],
            short,
            long: FxHashMap::default(),
        }
    }

    #[inline(always)]
    fn get(&mut self, word: &str) -> Option<u32> {
        match short_key(word) {
            Some(k) => {
                let slot = front_slot(k);
                if self.front_keys.get(slot) == Some(&k) {
                    return self.front_ids.get(slot).copied();
                }
                let id = *self.short.get(&k)?;
                if let (Some(fk), Some(fi)) =
                    (self.front_keys.get_mut(slot), self.front_ids.get_mut(slot))
                {
                    *fk = k;
                    *fi = id;
                }
                Some(id)
            }
            None => self.long.get(word).copied(),
        }
    }

    fn insert(&mut self, word: &str, id: u32) {
        match short_key(word) {
            Some(k) => self.short.insert(k, id),
            None => self.long.insert(word.into(), id),
        };
    }
}

/// What a worker may read of the index while it analyses: known words and terms.
struct Known<'a> {
    surface: &'a FxHashMap<u128, u32>,
    term_ids: &'a FxHashMap<Box<str>, u32>,
}

fn analyze_slice<S: AsRef<str>>(
    analyzer: &Analyzer,
    known: &Known<'_>,
    texts: &[S],
) -> SliceResult {
    let bytes: usize = texts.iter().map(|t| t.as_ref().len()).sum();
    let mut surface = SurfaceCache::new(bytes);
    // New stems → local term id; their text goes to one arena, not one String each.
    let mut stems: FxHashMap<u128, u32> = FxHashMap::default();
    let mut long_stems: FxHashMap<Box<str>, u32> = FxHashMap::default();
    // Index term id → local term id, so that one term has one local id whatever its words.
    let mut g2l: FxHashMap<u32, u32> = FxHashMap::default();
    let mut arena = String::new();
    let mut spans: Vec<(u32, u32)> = Vec::new();
    let mut global: Vec<u32> = Vec::new();
    let mut learned: Vec<(u128, u32)> = Vec::new();
    let mut entries: Vec<(u32, u32)> = Vec::with_capacity(bytes / 10);
    let mut docs = Vec::with_capacity(texts.len());
    // Per local term: the doc (index + 1) it was last seen in and its slot in `entries`.
    let mut seen: Vec<(u32, u32)> = Vec::new();
    let mut buf = String::new();
    for (di, text) in texts.iter().enumerate() {
        let start = entries.len();
        let mark = di as u32 + 1;
        let mut len = 0u32;
        analyzer::tokenize(text.as_ref(), &mut buf, |word| {
            let id = match surface.get(word) {
                Some(id) => id,
                None => {
                    let key = short_key(word);
                    let mut local_of = |g: u32| {
                        *g2l.entry(g).or_insert_with(|| {
                            spans.push((0, 0));
                            global.push(g);
                            seen.push((0, 0));
                            spans.len() as u32 - 1
                        })
                    };
                    let id = match key.and_then(|k| known.surface.get(&k)) {
                        Some(&STOP) => STOP,
                        Some(&g) => local_of(g),
                        None => {
                            let id = match analyzer.term(word) {
                                None => STOP,
                                Some(t) => match known.term_ids.get(t.as_ref()) {
                                    Some(&g) => local_of(g),
                                    None => {
                                        let tkey = short_key(&t);
                                        let found = match tkey {
                                            Some(k) => stems.get(&k),
                                            None => long_stems.get(t.as_ref()),
                                        };
                                        match found {
                                            Some(&id) => id,
                                            None => {
                                                let id = spans.len() as u32;
                                                match tkey {
                                                    Some(k) => stems.insert(k, id),
                                                    None => {
                                                        long_stems.insert(t.as_ref().into(), id)
                                                    }
                                                };
                                                let at = arena.len() as u32;
                                                arena.push_str(&t);
                                                spans.push((at, arena.len() as u32));
                                                global.push(u32::MAX);
                                                seen.push((0, 0));
                                                id
                                            }
                                        }
                                    }
                                },
                            };
                            if let Some(k) = key {
                                learned.push((k, id));
                            }
                            id
                        }
                    };
                    surface.insert(word, id);
                    id
                }
            };
            if id == STOP {
                return;
            }
            len = len.saturating_add(1);
            if let Some(s) = seen.get_mut(id as usize) {
                if s.0 == mark {
                    if let Some(e) = entries.get_mut(s.1 as usize) {
                        e.1 = e.1.saturating_add(1);
                    }
                } else {
                    *s = (mark, entries.len() as u32);
                    entries.push((id, 1));
                }
            }
        });
        docs.push(Analyzed {
            len,
            entries: start..entries.len(),
        });
    }
    SliceResult {
        arena,
        spans,
        global,
        learned,
        entries,
        docs,
    }
}

impl Bm25Index {
    /// An empty index. `k1 >= 0` and `0 <= b <= 1`, else [`Error::InvalidArgument`].
    pub fn new(k1: f64, b: f64, stem: bool, stopwords: bool) -> Result<Self> {
        if !(k1.is_finite() && k1 >= 0.0) {
            return Err(Error::invalid(format!(
                "k1 must be a finite number >= 0, got {k1}"
            )));
        }
        if !(0.0..=1.0).contains(&b) {
            return Err(Error::invalid(format!(
                "b must be between 0 and 1, got {b}"
            )));
        }
        Ok(Bm25Index {
            k1,
            b,
            analyzer: Analyzer::new(stem, stopwords),
            term_ids: FxHashMap::default(),
            surface: FxHashMap::default(),
            postings: Vec::new(),
            chunk_ids: Vec::new(),
            doc_ids: Vec::new(),
            doc_lens: Vec::new(),
            live: Vec::new(),
            fwd: None,
            total_postings: 0,
            chunk_map: FxHashMap::default(),
            doc_map: FxHashMap::default(),
            total_len: 0,
            dead_postings: 0,
        })
    }

    /// BM25's term-frequency saturation parameter.
    pub fn k1(&self) -> f64 {
        self.k1
    }

    /// BM25's length-normalisation parameter.
    pub fn b(&self) -> f64 {
        self.b
    }

    /// The analyzer that turns chunk and query text into terms.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// The terms of `text` as this index sees them (for reference implementations and tests).
    pub fn analyze(&self, text: &str) -> Vec<String> {
        self.analyzer.analyze(text)
    }

    /// Live chunks.
    pub fn len(&self) -> usize {
        self.chunk_map.len()
    }

    /// Whether no live chunk is indexed.
    pub fn is_empty(&self) -> bool {
        self.chunk_map.is_empty()
    }

    /// Whether the chunk is indexed (and not removed).
    pub fn contains(&self, chunk_id: u64) -> bool {
        self.chunk_map.contains_key(&chunk_id)
    }

    /// Distinct terms with at least one live posting.
    pub fn num_terms(&self) -> usize {
        self.postings.iter().filter(|p| p.df > 0).count()
    }

    /// Summary numbers.
    pub fn stats(&self) -> IndexStats {
        let postings = self.postings.iter().map(|p| p.docs.len()).sum();
        IndexStats {
            chunks: self.len(),
            documents: self.doc_map.len(),
            terms: self.num_terms(),
            postings,
            dead_postings: self.dead_postings as usize,
            total_terms: self.total_len,
            avgdl: if self.is_empty() {
                0.0
            } else {
                self.total_len as f64 / self.len() as f64
            },
        }
    }

    /// Adds one chunk. A chunk id already present is an [`Error::InvalidArgument`].
    pub fn add(&mut self, chunk_id: u64, doc_id: u64, text: &str) -> Result<()> {
        self.add_batch(&[chunk_id], &[doc_id], &[text])
    }

    /// Adds chunks: analysis runs in parallel, then one pass merges the postings. The batch
    /// is checked first (lengths, duplicate ids), so on error nothing was added.
    pub fn add_batch<S: AsRef<str> + Sync>(
        &mut self,
        chunk_ids: &[u64],
        doc_ids: &[u64],
        texts: &[S],
    ) -> Result<()> {
        if chunk_ids.len() != doc_ids.len() || chunk_ids.len() != texts.len() {
            return Err(Error::invalid(format!(
                "chunk_ids, doc_ids and texts must have the same length, got {}, {} and {}",
                chunk_ids.len(),
                doc_ids.len(),
                texts.len()
            )));
        }
        if self.chunk_ids.len() + chunk_ids.len() > MAX_DOCS {
            return Err(Error::invalid("the index is full (2^32 - 2 chunks)"));
        }
        let mut fresh = rustc_hash::FxHashSet::default();
        fresh.reserve(chunk_ids.len());
        for &c in chunk_ids {
            if self.chunk_map.contains_key(&c) || !fresh.insert(c) {
                return Err(Error::invalid(format!("duplicate chunk_id {c}")));
            }
        }
        if texts.is_empty() {
            return Ok(());
        }
        let slices = split_by_bytes(texts, rayon::current_num_threads());
        let analyzer = &self.analyzer;
        let known = Known {
            surface: &self.surface,
            term_ids: &self.term_ids,
        };
        let results: Vec<SliceResult> = slices
            .par_iter()
            .map(|r| analyze_slice(analyzer, &known, texts.get(r.clone()).unwrap_or(&[])))
            .collect();
        self.merge(chunk_ids, doc_ids, results);
        Ok(())
    }

    fn merge(&mut self, chunk_ids: &[u64], doc_ids: &[u64], results: Vec<SliceResult>) {
        let first_doc = self.chunk_ids.len() as u32;
        let n_new: usize = results.iter().map(|r| r.entries.len()).sum();
        // The new docs' term ids in doc order, and where each doc's run ends.
        let mut new_terms: Vec<u32> = Vec::with_capacity(n_new);
        let mut new_end: Vec<usize> = Vec::with_capacity(chunk_ids.len());
        let mut i = 0usize;
        // Pass 1: global term ids and doc numbers. Global ids are given in order of first
        // occurrence over the batch, whatever the slicing, so the index is the same on any
        // number of threads.
        for r in &results {
            let mut global = r.global.clone();
            for a in &r.docs {
                let (Some(&chunk_id), Some(&doc_id)) = (chunk_ids.get(i), doc_ids.get(i)) else {
                    break;
                };
                i += 1;
                let d = self.chunk_ids.len() as u32;
                for &(lid, _) in r.entries.get(a.entries.clone()).unwrap_or(&[]) {
                    let Some(g) = global.get_mut(lid as usize) else {
                        continue;
                    };
                    if *g == u32::MAX {
                        let (a, b) = r.spans.get(lid as usize).copied().unwrap_or((0, 0));
                        let text = r.arena.get(a as usize..b as usize).unwrap_or("");
                        *g = self.term_id_or_insert(text);
                    }
                    new_terms.push(*g);
                }
                new_end.push(new_terms.len());
                self.chunk_ids.push(chunk_id);
                self.doc_ids.push(doc_id);
                self.doc_lens.push(a.len);
                if d as usize % 64 == 0 {
                    self.live.push(0);
                }
                if let Some(w) = self.live.get_mut(d as usize / 64) {
                    *w |= 1 << (d % 64);
                }
                self.chunk_map.insert(chunk_id, d);
                self.doc_map.entry(doc_id).or_default().push(d);
                self.total_len += a.len as u64;
            }
            for &(k, l) in &r.learned {
                if self.surface.len() >= SURFACE_CAP {
                    break;
                }
                let g = if l == STOP {
                    STOP
                } else {
                    match global.get(l as usize) {
                        Some(&g) if g != u32::MAX => g,
                        _ => continue,
                    }
                };
                self.surface.insert(k, g);
            }
        }
        self.total_postings += new_terms.len() as u64;
        // Pass 2: the new postings, as (term, doc, tf) in doc order.
        let tfs = results.iter().flat_map(|r| r.entries.iter().map(|e| e.1));
        let mut doc_of = new_end.iter().enumerate().flat_map(|(k, &end)| {
            let start = if k == 0 {
                0
            } else {
                new_end.get(k - 1).copied().unwrap_or(0)
            };
            std::iter::repeat_n(first_doc + k as u32, end - start)
        });
        let n_terms = self.postings.len();
        if new_terms.len() < n_terms / 4 + 1024 {
            // Small batch: append in place.
            for (&g, tf) in new_terms.iter().zip(tfs) {
                let d = doc_of.next().unwrap_or(first_doc);
                let dl = self.doc_lens.get(d as usize).copied().unwrap_or(0);
                if let Some(p) = self.postings.get_mut(g as usize) {
                    p.push(d, tf, dl);
                }
            }
        } else {
            // Large batch: counting sort of the new postings by term, then each term's run
            // is appended at once, terms in parallel.
            let mut start = vec![0u32; n_terms + 1];
            for &g in &new_terms {
                if let Some(c) = start.get_mut(g as usize + 1) {
                    *c += 1;
                }
            }
            for t in 0..n_terms {
                start[t + 1] += start[t];
            }
            let mut fill = start.clone();
            let mut docs = vec![0u32; new_terms.len()];
            let mut tfv = vec![0u32; new_terms.len()];
            for (&g, tf) in new_terms.iter().zip(tfs) {
                let d = doc_of.next().unwrap_or(first_doc);
                if let Some(f) = fill.get_mut(g as usize) {
                    let at = *f as usize;
                    *f += 1;
                    if let (Some(x), Some(y)) = (docs.get_mut(at), tfv.get_mut(at)) {
                        *x = d;
                        *y = tf;
                    }
                }
            }
            let doc_lens = &self.doc_lens;
            self.postings
                .par_iter_mut()
                .with_min_len(256)
                .enumerate()
                .for_each(|(t, p)| {
                    let lo = start.get(t).copied().unwrap_or(0) as usize;
                    let hi = start.get(t + 1).copied().unwrap_or(0) as usize;
                    if lo < hi {
                        let ds = docs.get(lo..hi).unwrap_or(&[]);
                        let ts = tfv.get(lo..hi).unwrap_or(&[]);
                        p.docs.reserve(ds.len());
                        p.tfs.reserve(ds.len());
                        for (&d, &tf) in ds.iter().zip(ts) {
                            p.push(d, tf, doc_lens.get(d as usize).copied().unwrap_or(0));
                        }
                    }
                });
        }
        if let Some(f) = &mut self.fwd {
            let base = f.terms.len() as u64;
            f.terms.extend_from_slice(&new_terms);
            f.off.extend(new_end.iter().map(|&e| base + e as u64));
        }
    }

    fn term_id_or_insert(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.term_ids.get(text) {
            return id;
        }
        let id = self.postings.len() as u32;
        self.term_ids.insert(text.into(), id);
        self.postings.push(Postings::default());
        id
    }

    fn is_live(&self, d: u32) -> bool {
        self.live
            .get(d as usize / 64)
            .is_some_and(|w| w & (1 << (d % 64)) != 0)
    }

    /// Removes one chunk; returns whether it was present.
    pub fn remove(&mut self, chunk_id: u64) -> bool {
        let Some(d) = self.chunk_map.remove(&chunk_id) else {
            return false;
        };
        let doc_id = self.doc_ids.get(d as usize).copied().unwrap_or(0);
        if let Some(v) = self.doc_map.get_mut(&doc_id) {
            v.retain(|&x| x != d);
            if v.is_empty() {
                self.doc_map.remove(&doc_id);
            }
        }
        self.kill(d);
        self.maybe_compact();
        true
    }

    /// Removes every chunk of a document; returns how many were removed.
    pub fn remove_document(&mut self, doc_id: u64) -> usize {
        let Some(ds) = self.doc_map.remove(&doc_id) else {
            return 0;
        };
        for &d in &ds {
            if let Some(&c) = self.chunk_ids.get(d as usize) {
                self.chunk_map.remove(&c);
            }
            self.kill(d);
        }
        self.maybe_compact();
        ds.len()
    }

    /// Tombstones doc number `d` and takes it out of N, the total length and its terms' df.
    fn kill(&mut self, d: u32) {
        if let Some(w) = self.live.get_mut(d as usize / 64) {
            *w &= !(1 << (d % 64));
        }
        let dl = self.doc_lens.get(d as usize).copied().unwrap_or(0) as u64;
        self.total_len = self.total_len.saturating_sub(dl);
        let fwd = self
            .fwd
            .get_or_insert_with(|| Forward::from_postings(&self.postings, self.chunk_ids.len()));
        let terms = fwd.range(d);
        for &t in terms {
            if let Some(p) = self.postings.get_mut(t as usize) {
                p.df = p.df.saturating_sub(1);
            }
        }
        self.dead_postings += terms.len() as u64;
    }

    fn maybe_compact(&mut self) {
        let total = self.total_postings as f64;
        if self.dead_postings > 0 && self.dead_postings as f64 > total * COMPACT_FRACTION {
            self.compact();
        }
    }

    /// Drops dead doc numbers and their postings, renumbering the live ones in order.
    pub fn compact(&mut self) {
        if self.dead_postings == 0 && self.chunk_map.len() == self.chunk_ids.len() {
            return;
        }
        let n = self.chunk_ids.len();
        let mut remap = vec![u32::MAX; n];
        let mut next = 0u32;
        for (d, r) in remap.iter_mut().enumerate() {
            if self.is_live(d as u32) {
                *r = next;
                next += 1;
            }
        }
        let keep = |v: &mut Vec<u64>| {
            let mut j = 0;
            for d in 0..n {
                if remap.get(d).is_some_and(|&r| r != u32::MAX) {
                    v.swap(j, d);
                    j += 1;
                }
            }
            v.truncate(j);
        };
        keep(&mut self.chunk_ids);
        keep(&mut self.doc_ids);
        let mut lens = Vec::with_capacity(next as usize);
        for d in 0..n {
            if remap.get(d).is_some_and(|&r| r != u32::MAX) {
                lens.push(self.doc_lens.get(d).copied().unwrap_or(0));
            }
        }
        if let Some(old) = self.fwd.take() {
            let mut f = Forward {
                off: Vec::with_capacity(next as usize + 1),
                terms: Vec::new(),
            };
            f.terms
                .reserve(old.terms.len().saturating_sub(self.dead_postings as usize));
            f.off.push(0);
            for d in 0..n {
                if remap.get(d).is_some_and(|&r| r != u32::MAX) {
                    f.terms.extend_from_slice(old.range(d as u32));
                    f.off.push(f.terms.len() as u64);
                }
            }
            self.fwd = Some(f);
        }
        self.doc_lens = lens;
        let doc_lens = &self.doc_lens;
        self.postings.par_iter_mut().for_each(|p| {
            let mut j = 0;
            for i in 0..p.docs.len() {
                let (d, tf) = (p.docs[i], p.tfs[i]);
                if let Some(&r) = remap.get(d as usize) {
                    if r != u32::MAX {
                        p.docs[j] = r;
                        p.tfs[j] = tf;
                        j += 1;
                    }
                }
            }
            p.docs.truncate(j);
            p.tfs.truncate(j);
            p.docs.shrink_to_fit();
            p.tfs.shrink_to_fit();
            p.rebuild_blocks(doc_lens);
        });
        self.live = vec![0; (next as usize).div_ceil(64)];
        for d in 0..next {
            if let Some(w) = self.live.get_mut(d as usize / 64) {
                *w |= 1 << (d % 64);
            }
        }
        for v in self.chunk_map.values_mut() {
            *v = remap.get(*v as usize).copied().unwrap_or(u32::MAX);
        }
        for v in self.doc_map.values_mut() {
            for x in v.iter_mut() {
                *x = remap.get(*x as usize).copied().unwrap_or(u32::MAX);
            }
        }
        self.total_postings -= self.dead_postings;
        self.dead_postings = 0;
    }

    /// Approximate heap bytes held by the index (vectors by capacity, maps by bucket).
    pub fn memory_bytes(&self) -> usize {
        fn map_bytes<K, V>(m: &FxHashMap<K, V>) -> usize {
            m.capacity() * (std::mem::size_of::<K>() + std::mem::size_of::<V>() + 1)
        }
        let terms: usize = self.term_ids.keys().map(|t| t.len()).sum();
        let doc_map: usize = self.doc_map.values().map(|v| v.capacity() * 4).sum();
        std::mem::size_of::<Self>()
            + terms
            + map_bytes(&self.term_ids)
            + map_bytes(&self.surface)
            + self.postings.capacity() * std::mem::size_of::<Postings>()
            + self
                .postings
                .iter()
                .map(Postings::heap_bytes)
                .sum::<usize>()
            + self.chunk_ids.capacity() * 8
            + self.doc_ids.capacity() * 8
            + self.doc_lens.capacity() * 4
            + self.live.capacity() * 8
            + self
                .fwd
                .as_ref()
                .map_or(0, |f| f.off.capacity() * 8 + f.terms.capacity() * 4)
            + map_bytes(&self.chunk_map)
            + map_bytes(&self.doc_map)
            + doc_map
    }
}

/// Splits `texts` into `parts` contiguous ranges of similar byte size (one per worker, so
/// each distinct word is stemmed once per worker).
fn split_by_bytes<S: AsRef<str>>(texts: &[S], parts: usize) -> Vec<std::ops::Range<usize>> {
    let total: usize = texts.iter().map(|t| t.as_ref().len()).sum();
    // Small batches are not worth a thread each.
    let parts = if total < 64 * 1024 { 1 } else { parts.max(1) };
    let target = total.div_ceil(parts).max(1);
    let mut out = Vec::with_capacity(parts);
    let (mut start, mut acc) = (0, 0);
    for (i, t) in texts.iter().enumerate() {
        acc += t.as_ref().len();
        if acc >= target {
            out.push(start..i + 1);
            start = i + 1;
            acc = 0;
        }
    }
    if start < texts.len() {
        out.push(start..texts.len());
    }
    out
}

#[cfg(test)]
mod tests;
