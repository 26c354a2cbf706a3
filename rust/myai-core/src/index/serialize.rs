//! The index's byte format: fixed header, flat little-endian arrays, xxh3-64 checksum.
//!
//! ```text
//! "MYAIBM25" | version u32 | flags u32 (1: stem, 2: stopwords) | k1 f64 | b f64
//! n_docs u32 | n_terms u32 | n_postings u64 | term_bytes u64
//! chunk_ids [u64; n_docs] | doc_ids [u64; n_docs] | doc_lens [u32; n_docs]
//! term_lens [u32; n_terms] | term text [u8; term_bytes]
//! posting_lens [u32; n_terms] | docs [u32; n_postings] | tfs [u32; n_postings]
//! xxh3-64 of everything before it, u64
//! ```
//!
//! Only live chunks and terms are written, renumbered densely, so a saved index is always
//! compact. Derived data (df, block metadata, the forward index, the maps) is rebuilt on
//! load rather than trusted, and every count is checked against the input's length before
//! anything is allocated, so corrupt input is an error, never a panic or a huge allocation.

use xxhash_rust::xxh3::xxh3_64;

use super::postings::Postings;
use super::Bm25Index;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"MYAIBM25";
/// Bumped whenever the layout changes; older readers refuse newer data by name.
pub(crate) const FORMAT_VERSION: u32 = 1;
const HEADER: usize = 56;
const WHAT: &str = "index data";

fn corrupt(reason: impl Into<String>) -> Error {
    Error::corrupt(WHAT, reason)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| corrupt("length: overflow"))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| corrupt("length: truncated"))?;
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn u32s(&mut self, n: usize) -> Result<Vec<u32>> {
        let bytes = self.take(
            n.checked_mul(4)
                .ok_or_else(|| corrupt("length: overflow"))?,
        )?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn u64s(&mut self, n: usize) -> Result<Vec<u64>> {
        let bytes = self.take(
            n.checked_mul(8)
                .ok_or_else(|| corrupt("length: overflow"))?,
        )?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }
}

fn put_u32s(out: &mut Vec<u8>, it: impl IntoIterator<Item = u32>) {
    for x in it {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Appends a whole slice in one resize, which compiles to a copy on little-endian machines.
fn put_u32_slice(out: &mut Vec<u8>, s: &[u32]) {
    let start = out.len();
    out.resize(start + 4 * s.len(), 0);
    if let Some(dst) = out.get_mut(start..) {
        for (c, x) in dst.chunks_exact_mut(4).zip(s) {
            c.copy_from_slice(&x.to_le_bytes());
        }
    }
}

fn put_u64s(out: &mut Vec<u8>, it: impl IntoIterator<Item = u64>) {
    for x in it {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

impl Bm25Index {
    /// The index as bytes (see the module documentation for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.chunk_ids.len();
        let live: Vec<u32> = (0..n as u32).filter(|&d| self.is_live(d)).collect();
        let mut remap = vec![u32::MAX; n];
        for (new, &old) in live.iter().enumerate() {
            if let Some(r) = remap.get_mut(old as usize) {
                *r = new as u32;
            }
        }
        let mut names: Vec<&str> = vec![""; self.postings.len()];
        for (t, &id) in &self.term_ids {
            if let Some(n) = names.get_mut(id as usize) {
                *n = t;
            }
        }
        let terms: Vec<usize> = (0..self.postings.len())
            .filter(|&t| self.postings.get(t).is_some_and(|p| p.df > 0))
            .collect();
        let n_postings: usize = terms
            .iter()
            .filter_map(|&t| self.postings.get(t))
            .map(|p| p.df as usize)
            .sum();
        let term_bytes: usize = terms
            .iter()
            .filter_map(|&t| names.get(t))
            .map(|s| s.len())
            .sum();
        let size = HEADER + live.len() * 20 + terms.len() * 8 + term_bytes + n_postings * 8 + 8;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(MAGIC);
        let flags =
            u32::from(self.analyzer.stems()) | u32::from(self.analyzer.drops_stopwords()) << 1;
        put_u32s(&mut out, [FORMAT_VERSION, flags]);
        put_u64s(&mut out, [self.k1.to_bits(), self.b.to_bits()]);
        put_u32s(&mut out, [live.len() as u32, terms.len() as u32]);
        put_u64s(&mut out, [n_postings as u64, term_bytes as u64]);
        let at = |v: &[u64], d: u32| v.get(d as usize).copied().unwrap_or(0);
        put_u64s(&mut out, live.iter().map(|&d| at(&self.chunk_ids, d)));
        put_u64s(&mut out, live.iter().map(|&d| at(&self.doc_ids, d)));
        put_u32s(
            &mut out,
            live.iter()
                .map(|&d| self.doc_lens.get(d as usize).copied().unwrap_or(0)),
        );
        let texts: Vec<&str> = terms
            .iter()
            .filter_map(|&t| names.get(t).copied())
            .collect();
        put_u32s(&mut out, texts.iter().map(|s| s.len() as u32));
        for s in &texts {
            out.extend_from_slice(s.as_bytes());
        }
        let lists: Vec<&Postings> = terms.iter().filter_map(|&t| self.postings.get(t)).collect();
        put_u32s(&mut out, lists.iter().map(|p| p.df));
        let all_live = live.len() == n;
        for p in &lists {
            if all_live {
                put_u32_slice(&mut out, &p.docs);
            } else {
                let docs = p
                    .docs
                    .iter()
                    .filter_map(|&d| remap.get(d as usize).copied());
                put_u32s(&mut out, docs.filter(|&r| r != u32::MAX));
            }
        }
        for p in &lists {
            if all_live {
                put_u32_slice(&mut out, &p.tfs);
            } else {
                let live_tf = p.docs.iter().zip(&p.tfs);
                put_u32s(
                    &mut out,
                    live_tf
                        .filter(|(&d, _)| remap.get(d as usize).is_some_and(|&r| r != u32::MAX))
                        .map(|(_, &tf)| tf),
                );
            }
        }
        let sum = xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// An index from [`Bm25Index::to_bytes`] output; anything else is [`Error::Corrupt`]
    /// naming what failed (magic, version, length, checksum or payload).
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        if data.len() < MAGIC.len() {
            return Err(corrupt(format!(
                "length: {} bytes is too short for the header",
                data.len()
            )));
        }
        if data.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(corrupt("magic: not a myai BM25 index"));
        }
        if data.len() < HEADER + 8 {
            return Err(corrupt(format!(
                "length: {} bytes is too short for the header",
                data.len()
            )));
        }
        let mut r = Reader {
            data,
            pos: MAGIC.len(),
        };
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "version: format {version} is not supported (this build reads {FORMAT_VERSION})"
            )));
        }
        let flags = r.u32()?;
        let k1 = f64::from_bits(r.u64()?);
        let b = f64::from_bits(r.u64()?);
        let n_docs = r.u32()? as u64;
        let n_terms = r.u32()? as u64;
        let n_postings = r.u64()?;
        let term_bytes = r.u64()?;
        let expected = [
            n_docs.checked_mul(20),
            n_terms.checked_mul(8),
            Some(term_bytes),
            n_postings.checked_mul(8),
        ]
        .into_iter()
        .try_fold((HEADER + 8) as u64, |acc, x| acc.checked_add(x?));
        if expected != Some(data.len() as u64) {
            return Err(corrupt(format!(
                "length: the header announces {} bytes, got {}",
                expected.map_or_else(|| "an impossible number of".to_string(), |e| e.to_string()),
                data.len()
            )));
        }
        let (body, tail) = data.split_at(data.len() - 8);
        let mut sum = [0u8; 8];
        sum.copy_from_slice(tail);
        if xxh3_64(body) != u64::from_le_bytes(sum) {
            return Err(corrupt(
                "checksum: the data does not match its xxh3-64 checksum",
            ));
        }
        // From here the sizes are known to fit in `data`; the values still get checked, since
        // a checksum only catches accidents.
        let (n_docs, n_terms, n_postings) =
            (n_docs as usize, n_terms as usize, n_postings as usize);
        if flags & !3 != 0 {
            return Err(corrupt(format!("payload: unknown flags {flags:#x}")));
        }
        let mut index = Bm25Index::new(k1, b, flags & 1 != 0, flags & 2 != 0)
            .map_err(|e| corrupt(format!("payload: {e}")))?;
        let chunk_ids = r.u64s(n_docs)?;
        let doc_ids = r.u64s(n_docs)?;
        let doc_lens = r.u32s(n_docs)?;
        let term_lens = r.u32s(n_terms)?;
        let text = r.take(term_bytes as usize)?;
        let text =
            std::str::from_utf8(text).map_err(|_| corrupt("payload: a term is not UTF-8"))?;
        let mut at = 0usize;
        index.term_ids.reserve(n_terms);
        for &len in &term_lens {
            let end = at
                .checked_add(len as usize)
                .ok_or_else(|| corrupt("payload: term lengths"))?;
            let t = text
                .get(at..end)
                .ok_or_else(|| corrupt("payload: term lengths"))?;
            at = end;
            let id = index.term_ids.len() as u32;
            if index.term_ids.insert(t.into(), id).is_some() {
                return Err(corrupt(format!("payload: duplicate term {t:?}")));
            }
        }
        if at != text.len() {
            return Err(corrupt("payload: term lengths do not add up"));
        }
        let post_lens = r.u32s(n_terms)?;
        let docs = r.u32s(n_postings)?;
        let tfs = r.u32s(n_postings)?;
        // Per doc: the sum of its tfs, which must equal its length.
        let mut tf_sum = vec![0u64; n_docs];
        let mut at = 0usize;
        index.postings.reserve(n_terms);
        for &len in &post_lens {
            let end = at
                .checked_add(len as usize)
                .ok_or_else(|| corrupt("payload: posting lengths"))?;
            let (Some(ds), Some(ts)) = (docs.get(at..end), tfs.get(at..end)) else {
                return Err(corrupt("payload: posting lengths exceed the postings"));
            };
            at = end;
            if len == 0 {
                return Err(corrupt("payload: a term without postings"));
            }
            let mut prev: Option<u32> = None;
            for (&d, &tf) in ds.iter().zip(ts) {
                if prev.is_some_and(|p| d <= p) || d as usize >= n_docs || tf == 0 {
                    return Err(corrupt(
                        "payload: a posting list is not sorted, in range and positive",
                    ));
                }
                prev = Some(d);
                if let Some(s) = tf_sum.get_mut(d as usize) {
                    *s += tf as u64;
                }
            }
            let mut p = Postings {
                docs: ds.to_vec(),
                tfs: ts.to_vec(),
                blocks: Vec::new(),
                df: len,
            };
            p.rebuild_blocks(&doc_lens);
            index.postings.push(p);
        }
        if at != n_postings {
            return Err(corrupt("payload: posting lengths do not add up"));
        }
        if doc_lens.iter().zip(&tf_sum).any(|(&l, &s)| l as u64 != s) {
            return Err(corrupt(
                "payload: a chunk length differs from its term frequencies",
            ));
        }
        // The forward index is rebuilt on the first removal, if any.
        index.fwd = None;
        index.total_postings = n_postings as u64;
        index.chunk_map.reserve(n_docs);
        for (d, (&c, &doc)) in chunk_ids.iter().zip(&doc_ids).enumerate() {
            if index.chunk_map.insert(c, d as u32).is_some() {
                return Err(corrupt(format!("payload: duplicate chunk_id {c}")));
            }
            index.doc_map.entry(doc).or_default().push(d as u32);
        }
        index.total_len = doc_lens.iter().map(|&l| l as u64).sum();
        index.live = vec![u64::MAX; n_docs / 64];
        if n_docs % 64 != 0 {
            index.live.push((1u64 << (n_docs % 64)) - 1);
        }
        index.chunk_ids = chunk_ids;
        index.doc_ids = doc_ids;
        index.doc_lens = doc_lens;
        Ok(index)
    }
}
