//! [`NearDupIndex`]: an incremental MinHash-LSH index with a versioned, checksummed encoding.

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use xxhash_rust::xxh3::xxh3_64;

use super::lsh::{band_key, bands_for};
use super::minhash::{agreements, MinHasher, Scratch};
use super::shingle::SHINGLE_WORDS;
use super::{check_params, min_equal};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"MYAIDDUP";
const VERSION: u32 = 1;
// magic, version, num_perm, shingle words, reserved, threshold, seed, count
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 4 + 8 + 8 + 8;
const CHECKSUM_LEN: usize = 8;
const WHAT: &str = "dedup index";

/// An incremental near-duplicate index: texts are kept as MinHash signatures under caller
/// ids, bucketed by LSH bands, so a query costs one signature plus a few comparisons however
/// many texts are stored. Results never depend on insertion order.
#[derive(Clone, Debug)]
pub struct NearDupIndex {
    threshold: f64,
    seed: u64,
    hasher: MinHasher,
    bands: usize,
    rows: usize,
    min_equal: usize,
    sigs: FxHashMap<u64, Box<[u32]>>,
    buckets: Vec<FxHashMap<u64, Vec<u64>>>,
}

impl NearDupIndex {
    /// An empty index matching texts whose estimated Jaccard similarity is at least
    /// `threshold` (in (0, 1]), with signatures of `num_perm` values (8 to 1024) under `seed`.
    pub fn new(threshold: f64, num_perm: usize, seed: u64) -> Result<Self> {
        check_params(threshold, num_perm)?;
        let (bands, rows) = bands_for(threshold, num_perm);
        Ok(NearDupIndex {
            threshold,
            seed,
            hasher: MinHasher::new(num_perm, seed),
            bands,
            rows,
            min_equal: min_equal(threshold, num_perm),
            sigs: FxHashMap::default(),
            buckets: vec![FxHashMap::default(); bands],
        })
    }

    /// The similarity threshold of matches.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Values per signature.
    pub fn num_perm(&self) -> usize {
        self.hasher.num_perm()
    }

    /// The seed of the shingle hashes.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The LSH banding `(bands, rows)` derived from the threshold and `num_perm`.
    pub fn banding(&self) -> (usize, usize) {
        (self.bands, self.rows)
    }

    /// Number of stored texts.
    pub fn len(&self) -> usize {
        self.sigs.len()
    }

    /// Whether no text is stored.
    pub fn is_empty(&self) -> bool {
        self.sigs.is_empty()
    }

    /// Whether `id` is stored.
    pub fn contains(&self, id: u64) -> bool {
        self.sigs.contains_key(&id)
    }

    fn signature(&self, text: &str) -> Box<[u32]> {
        let mut sig = vec![0u32; self.num_perm()].into_boxed_slice();
        self.hasher
            .sketch_into(text, &mut Scratch::default(), &mut sig);
        sig
    }

    /// The bucket key of each band of `sig`, in band order.
    fn band_keys(&self, sig: &[u32]) -> Vec<u64> {
        sig.chunks_exact(self.rows.max(1))
            .take(self.bands)
            .enumerate()
            .map(|(b, rows)| band_key(b, rows))
            .collect()
    }

    fn insert_sig(&mut self, id: u64, sig: Box<[u32]>, keys: &[u64]) {
        for (bucket, &key) in self.buckets.iter_mut().zip(keys) {
            bucket.entry(key).or_default().push(id);
        }
        self.sigs.insert(id, sig);
    }

    /// Stored ids whose estimated similarity to `sig` (whose band keys are `keys`) reaches
    /// the threshold, with that estimate, best first (ties by increasing id).
    fn query_sig(&self, sig: &[u32], keys: &[u64]) -> Vec<(u64, f64)> {
        let mut seen = FxHashSet::default();
        let mut hits = Vec::new();
        for (bucket, key) in self.buckets.iter().zip(keys) {
            let Some(ids) = bucket.get(key) else { continue };
            for &id in ids {
                if !seen.insert(id) {
                    continue;
                }
                if let Some(stored) = self.sigs.get(&id) {
                    let equal = agreements(stored, sig);
                    if equal >= self.min_equal {
                        hits.push((id, equal as f64 / sig.len() as f64));
                    }
                }
            }
        }
        hits.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits
    }

    /// Stores `text` under `id`; an id already stored is an error (remove it first).
    pub fn add(&mut self, id: u64, text: &str) -> Result<()> {
        if self.contains(id) {
            return Err(Error::invalid(format!("id {id} is already in the index")));
        }
        let sig = self.signature(text);
        let keys = self.band_keys(&sig);
        self.insert_sig(id, sig, &keys);
        Ok(())
    }

    /// Stored ids whose estimated Jaccard similarity to `text` is at least the threshold,
    /// with the estimate, best first (ties by increasing id).
    pub fn query(&self, text: &str) -> Vec<(u64, f64)> {
        let sig = self.signature(text);
        self.query_sig(&sig, &self.band_keys(&sig))
    }

    /// Removes `id`; returns whether it was stored.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(sig) = self.sigs.remove(&id) else {
            return false;
        };
        let keys = self.band_keys(&sig);
        for (bucket, key) in self.buckets.iter_mut().zip(keys) {
            if let Some(ids) = bucket.get_mut(&key) {
                if let Some(pos) = ids.iter().position(|&x| x == id) {
                    ids.swap_remove(pos);
                }
                if ids.is_empty() {
                    bucket.remove(&key);
                }
            }
        }
        true
    }

    /// Adds many texts: signatures are computed in parallel, then each text in order is
    /// matched against the index (stored texts and the batch's earlier texts) and inserted.
    /// Returns, per text, the best-matching stored id or `None`. With `skip_duplicates`, a
    /// text that has a match is not stored. Ids are checked before anything is stored, so
    /// a bad batch leaves the index unchanged.
    pub fn add_batch<S: AsRef<str> + Sync>(
        &mut self,
        ids: &[u64],
        texts: &[S],
        skip_duplicates: bool,
    ) -> Result<Vec<Option<u64>>> {
        if ids.len() != texts.len() {
            return Err(Error::invalid(format!(
                "ids and texts differ in length ({} and {})",
                ids.len(),
                texts.len()
            )));
        }
        let mut batch_ids = FxHashSet::default();
        for &id in ids {
            if self.contains(id) {
                return Err(Error::invalid(format!("id {id} is already in the index")));
            }
            if !batch_ids.insert(id) {
                return Err(Error::invalid(format!("id {id} appears twice in ids")));
            }
        }
        let k = self.num_perm();
        let mut flat = vec![0u32; k * texts.len()];
        let hasher = &self.hasher;
        flat.par_chunks_mut(k.max(1))
            .zip(texts.par_iter())
            .with_min_len(8)
            .for_each_init(Scratch::default, |scratch, (sig, text)| {
                hasher.sketch_into(text.as_ref(), scratch, sig)
            });
        for bucket in &mut self.buckets {
            bucket.reserve(texts.len());
        }
        self.sigs.reserve(texts.len());
        let mut out = Vec::with_capacity(ids.len());
        for (&id, sig) in ids.iter().zip(flat.chunks_exact(k.max(1))) {
            let keys = self.band_keys(sig);
            let best = self.query_sig(sig, &keys).first().map(|&(m, _)| m);
            out.push(best);
            if !(skip_duplicates && best.is_some()) {
                self.insert_sig(id, sig.into(), &keys);
            }
        }
        Ok(out)
    }

    /// The index as bytes: header, entries sorted by id, and an xxh3-64 checksum, so equal
    /// indexes encode identically. The buckets are rebuilt on load, not stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        let k = self.num_perm();
        let mut out = Vec::with_capacity(HEADER_LEN + self.len() * (8 + 4 * k) + CHECKSUM_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(k as u32).to_le_bytes());
        out.extend_from_slice(&(SHINGLE_WORDS as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.threshold.to_le_bytes());
        out.extend_from_slice(&self.seed.to_le_bytes());
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        let mut ids: Vec<u64> = self.sigs.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            out.extend_from_slice(&id.to_le_bytes());
            for v in self.sigs.get(&id).into_iter().flat_map(|s| s.iter()) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        let sum = xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Decodes [`NearDupIndex::to_bytes`] output. Any damage (wrong magic, version, lengths,
    /// checksum, parameters, repeated ids) is an [`Error::Corrupt`]; nothing is allocated
    /// beyond what the input's own length justifies.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let corrupt = |reason: String| Error::corrupt(WHAT, reason);
        if data.len() < HEADER_LEN + CHECKSUM_LEN {
            return Err(corrupt(format!("truncated: {} bytes", data.len())));
        }
        if data.get(..8) != Some(MAGIC.as_slice()) {
            return Err(corrupt("bad magic (not a myai dedup index)".into()));
        }
        let (body, sum) = data.split_at(data.len() - CHECKSUM_LEN);
        let mut r = Reader { data: body };
        let _magic = r.take(8)?;
        let version = r.u32()?;
        if version != VERSION {
            return Err(corrupt(format!(
                "unsupported version {version} (expected {VERSION})"
            )));
        }
        if xxh3_64(body).to_le_bytes() != sum {
            return Err(corrupt("checksum mismatch".into()));
        }
        let num_perm = r.u32()? as usize;
        let words = r.u32()?;
        let reserved = r.u32()?;
        let threshold = f64::from_le_bytes(r.array()?);
        let seed = u64::from_le_bytes(r.array()?);
        let count = u64::from_le_bytes(r.array()?);
        if words as usize != SHINGLE_WORDS || reserved != 0 {
            return Err(corrupt(format!("unsupported shingle length {words}")));
        }
        let mut index = NearDupIndex::new(threshold, num_perm, seed)
            .map_err(|e| corrupt(format!("bad parameters: {e}")))?;
        let entry = 8 + 4 * num_perm;
        let fits = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(entry));
        if fits != Some(r.data.len()) {
            return Err(corrupt(format!(
                "{count} entries do not fit in {} bytes",
                r.data.len()
            )));
        }
        for chunk in r.data.chunks_exact(entry) {
            let (id, values) = chunk.split_at(8);
            let id = u64::from_le_bytes(id.try_into().map_err(|_| corrupt("entry".into()))?);
            let sig: Box<[u32]> = values
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if index.contains(id) {
                return Err(corrupt(format!("id {id} stored twice")));
            }
            let keys = index.band_keys(&sig);
            index.insert_sig(id, sig, &keys);
        }
        Ok(index)
    }
}

/// A bounds-checked little-endian reader over a byte slice.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.data.len() < n {
            return Err(Error::corrupt(WHAT, "truncated header"));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
impl NearDupIndex {
    /// Total bucket entries, for tests that check removal leaves nothing behind.
    pub(crate) fn buckets_len(&self) -> usize {
        self.buckets
            .iter()
            .flat_map(|m| m.values())
            .map(Vec::len)
            .sum()
    }
}
