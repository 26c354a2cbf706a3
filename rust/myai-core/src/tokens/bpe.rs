//! Byte-level BPE (GPT-2 family): merges applied lowest rank first, leftmost on ties, as
//! HuggingFace's `BPE` model does; piece counts cached per thread.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;
use thread_local::ThreadLocal;

use super::added::AddedTokens;
use super::pretok::Splitter;
use crate::{Error, Result};

const NONE: u32 = u32::MAX;
/// Pieces up to this many bytes are cached (longer ones are rare and rarely repeat).
const CACHE_MAX_PIECE: usize = 64;
/// Entries per thread before the cache is cleared (bounds memory on adversarial input).
const CACHE_CAP: usize = 1 << 18;
/// Pieces with more symbols than this use the O(n log n) heap merge; shorter ones a plain scan.
const SMALL: usize = 48;

/// GPT-2's reversible map from bytes to printable characters, which byte-level vocabularies use.
pub(crate) fn byte_to_char() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut extra = 0u32;
    for (b, slot) in out.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff);
        let cp = if printable {
            b as u32
        } else {
            extra += 1;
            255 + extra
        };
        *slot = char::from_u32(cp).unwrap_or('\0');
    }
    out
}

/// A symbol during merging: its token id and the byte offset where it starts in the piece.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sym {
    pub id: u32,
    pub start: u32,
}

/// Per-thread scratch space and piece cache.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Pieces of 2..=7 bytes (most English words), count included in the slot.
    tiny: Tiny,
    /// Pieces up to 15 bytes, packed with their length into one key (no memcmp, one hash step).
    small: FxHashMap<u128, u32>,
    cache: FxHashMap<Box<[u8]>, u32>,
    pub(crate) syms: Vec<Sym>,
    ranks: Vec<u64>,
}

/// An open-addressing table of u64 slots: 7 key bytes, the length (3 bits) and the count
/// (5 bits) in one word, so a lookup is one multiply and usually one cache line. 0 is empty.
#[derive(Default)]
struct Tiny {
    slots: Vec<u64>,
    len: usize,
}

const TINY_KEY: u64 = (1 << 59) - 1;
const TINY_MAX_SLOTS: usize = 1 << 20;

impl Tiny {
    #[inline]
    fn key(piece: &[u8]) -> u64 {
        let mut k = [0u8; 8];
        if let Some(dst) = k.get_mut(..piece.len()) {
            dst.copy_from_slice(piece);
        }
        u64::from_le_bytes(k) | (piece.len() as u64) << 56
    }

    #[inline]
    fn slot(&self, key: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(key);
        loop {
            let s = *self.slots.get(i)?;
            if s == 0 {
                return None;
            }
            if s & TINY_KEY == key {
                return Some((s >> 59) as u32);
            }
            i = (i + 1) & mask;
        }
    }

    fn insert(&mut self, key: u64, count: u32) {
        if count >= 32 {
            return;
        }
        if (self.len + 1) * 2 > self.slots.len() {
            let cap = (self.slots.len() * 2).max(1 << 12);
            let old = std::mem::take(&mut self.slots);
            self.len = 0;
            if cap > TINY_MAX_SLOTS {
                self.slots = vec![0; TINY_MAX_SLOTS]; // full: start over rather than grow
            } else {
                self.slots = vec![0; cap];
                for s in old.into_iter().filter(|&s| s != 0) {
                    self.put(s);
                }
            }
        }
        self.put(key | (count as u64) << 59);
    }

    fn put(&mut self, entry: u64) {
        let mask = self.slots.len() - 1;
        let mut i = self.slot(entry & TINY_KEY);
        while let Some(s) = self.slots.get_mut(i) {
            if *s == 0 {
                *s = entry;
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }
}

/// A byte-level BPE vocabulary with its pre-tokenizer and added tokens.
pub struct Bpe {
    byte_id: [u32; 256],
    unk: Option<u32>,
    /// (left << 32 | right) → (rank << 32 | merged id).
    merges: FxHashMap<u64, u64>,
    /// With `ignore_merges`: raw bytes of every vocabulary token → id.
    whole: Option<FxHashMap<Box<[u8]>, u32>>,
    pub(crate) splitter: Splitter,
    pub(crate) add_prefix_space: bool,
    pub(crate) added: AddedTokens,
    pub(crate) vocab_size: usize,
    scratch: ThreadLocal<RefCell<Scratch>>,
}

/// What a BPE is built from (token strings are in GPT-2's byte-to-char form).
pub(crate) struct BpeSpec {
    pub vocab: FxHashMap<String, u32>,
    pub merges: Vec<(String, String)>,
    pub unk: Option<String>,
    pub ignore_merges: bool,
    pub splitter: Splitter,
    pub add_prefix_space: bool,
    pub added: AddedTokens,
}

fn decode_byte_level(s: &str, char_to_byte: &FxHashMap<char, u8>) -> Option<Vec<u8>> {
    s.chars().map(|c| char_to_byte.get(&c).copied()).collect()
}

impl Bpe {
    pub(crate) fn new(spec: BpeSpec) -> Result<Bpe> {
        let b2c = byte_to_char();
        let mut byte_id = [NONE; 256];
        let mut buf = [0u8; 4];
        for (b, c) in b2c.iter().enumerate() {
            if let Some(&id) = spec.vocab.get(&*c.encode_utf8(&mut buf)) {
                if let Some(slot) = byte_id.get_mut(b) {
                    *slot = id;
                }
            }
        }
        let mut merges = FxHashMap::default();
        merges.reserve(spec.merges.len());
        for (rank, (a, b)) in spec.merges.iter().enumerate() {
            let get = |t: &str| {
                spec.vocab.get(t).copied().ok_or_else(|| {
                    Error::Tokenizer(format!(
                        "merge {a:?} {b:?}: token {t:?} is not in the vocabulary"
                    ))
                })
            };
            let (ia, ib) = (get(a)?, get(b)?);
            let im = get(&format!("{a}{b}"))?;
            merges.insert(
                ((ia as u64) << 32) | ib as u64,
                ((rank as u64) << 32) | im as u64,
            );
        }
        let unk = match &spec.unk {
            Some(u) => Some(spec.vocab.get(u).copied().ok_or_else(|| {
                Error::Tokenizer(format!("unk_token {u:?} is not in the vocabulary"))
            })?),
            None => None,
        };
        let whole = if spec.ignore_merges {
            let c2b: FxHashMap<char, u8> =
                b2c.iter().enumerate().map(|(b, &c)| (c, b as u8)).collect();
            Some(
                spec.vocab
                    .iter()
                    .filter_map(|(t, &id)| {
                        decode_byte_level(t, &c2b).map(|b| (b.into_boxed_slice(), id))
                    })
                    .collect(),
            )
        } else {
            None
        };
        let max_id = spec
            .vocab
            .values()
            .copied()
            .chain(spec.added.ids())
            .max()
            .map_or(0, |m| m as usize + 1);
        let vocab_size = max_id.max(spec.vocab.len());
        Ok(Bpe {
            byte_id,
            unk,
            merges,
            whole,
            splitter: spec.splitter,
            add_prefix_space: spec.add_prefix_space,
            added: spec.added,
            vocab_size,
            scratch: ThreadLocal::new(),
        })
    }

    #[inline]
    fn rank(&self, a: u32, b: u32) -> u64 {
        self.merges
            .get(&(((a as u64) << 32) | b as u64))
            .copied()
            .unwrap_or(u64::MAX)
    }

    /// Runs `f` with this thread's scratch space.
    #[inline]
    pub(crate) fn with_scratch<R>(&self, f: impl FnOnce(&mut Scratch) -> R) -> R {
        let cell = self.scratch.get_or_default();
        match cell.try_borrow_mut() {
            Ok(mut s) => f(&mut s),
            // Re-entered on the same thread (cannot happen today): use a fresh scratch.
            Err(_) => f(&mut Scratch::default()),
        }
    }

    /// The tokens of one piece (raw bytes), left in `sc.syms`.
    pub(crate) fn merge_piece(&self, piece: &[u8], sc: &mut Scratch) {
        let syms = &mut sc.syms;
        syms.clear();
        if let Some(whole) = &self.whole {
            if let Some(&id) = whole.get(piece) {
                syms.push(Sym { id, start: 0 });
                return;
            }
        }
        for (k, &b) in piece.iter().enumerate() {
            let id = self.byte_id.get(b as usize).copied().unwrap_or(NONE);
            if id != NONE {
                syms.push(Sym {
                    id,
                    start: k as u32,
                });
            } else if let Some(u) = self.unk {
                syms.push(Sym {
                    id: u,
                    start: k as u32,
                });
            }
        }
        if syms.len() <= SMALL {
            self.merge_small(&mut sc.syms, &mut sc.ranks);
        } else {
            self.merge_heap(&mut sc.syms);
        }
    }

    /// Quadratic scan for short pieces: repeatedly merge the lowest-ranked adjacent pair.
    fn merge_small(&self, syms: &mut Vec<Sym>, ranks: &mut Vec<u64>) {
        if syms.len() < 2 {
            return;
        }
        ranks.clear();
        ranks.extend(syms.windows(2).map(|w| self.rank(w[0].id, w[1].id)));
        loop {
            let mut best = u64::MAX;
            let mut k = usize::MAX;
            for (i, &r) in ranks.iter().enumerate() {
                if r < best {
                    best = r;
                    k = i;
                }
            }
            if best == u64::MAX || k + 1 >= syms.len() {
                return;
            }
            syms[k].id = best as u32;
            syms.remove(k + 1);
            ranks.remove(k);
            if k > 0 {
                ranks[k - 1] = self.rank(syms[k - 1].id, syms[k].id);
            }
            if k + 1 < syms.len() {
                ranks[k] = self.rank(syms[k].id, syms[k + 1].id);
            }
        }
    }

    /// O(n log n) merge over a linked list with a heap of (rank, position), for long pieces.
    fn merge_heap(&self, syms: &mut Vec<Sym>) {
        let n = syms.len();
        let mut next: Vec<u32> = (1..=n as u32).collect();
        if let Some(last) = next.last_mut() {
            *last = NONE;
        }
        let mut prev: Vec<u32> = (0..n as u32).map(|i| i.wrapping_sub(1)).collect();
        if let Some(first) = prev.first_mut() {
            *first = NONE;
        }
        let mut alive = vec![true; n];
        let mut heap: BinaryHeap<Reverse<u64>> = BinaryHeap::with_capacity(n);
        let push = |heap: &mut BinaryHeap<Reverse<u64>>, syms: &[Sym], a: u32, b: u32| {
            if let (Some(x), Some(y)) = (syms.get(a as usize), syms.get(b as usize)) {
                let r = self.rank(x.id, y.id);
                if r != u64::MAX {
                    heap.push(Reverse(((r >> 32) << 32) | a as u64));
                }
            }
        };
        for i in 0..n.saturating_sub(1) {
            push(&mut heap, syms, i as u32, i as u32 + 1);
        }
        while let Some(Reverse(key)) = heap.pop() {
            let pos = (key & 0xffff_ffff) as usize;
            let rank = key >> 32;
            if !alive.get(pos).copied().unwrap_or(false) {
                continue;
            }
            let nx = next.get(pos).copied().unwrap_or(NONE);
            if nx == NONE {
                continue;
            }
            let (Some(l), Some(r)) = (syms.get(pos), syms.get(nx as usize)) else {
                continue;
            };
            let m = self.rank(l.id, r.id);
            if m == u64::MAX || m >> 32 != rank {
                continue; // stale: the pair at pos changed since this entry was pushed
            }
            syms[pos].id = m as u32;
            alive[nx as usize] = false;
            let nn = next.get(nx as usize).copied().unwrap_or(NONE);
            next[pos] = nn;
            if nn != NONE {
                prev[nn as usize] = pos as u32;
            }
            let pv = prev.get(pos).copied().unwrap_or(NONE);
            if pv != NONE {
                push(&mut heap, syms, pv, pos as u32);
            }
            if nn != NONE {
                push(&mut heap, syms, pos as u32, nn);
            }
        }
        let mut w = 0;
        for i in 0..n {
            if alive[i] {
                syms[w] = syms[i];
                w += 1;
            }
        }
        syms.truncate(w);
    }

    /// Token count of one piece, through this thread's cache.
    #[inline]
    pub(crate) fn piece_count(&self, piece: &[u8], sc: &mut Scratch) -> u32 {
        if let [b] = piece {
            let has = self.byte_id.get(*b as usize).copied().unwrap_or(NONE) != NONE
                || self.unk.is_some();
            return has as u32;
        }
        if piece.len() < 8 {
            let key = Tiny::key(piece);
            if let Some(c) = sc.tiny.get(key) {
                return c;
            }
            self.merge_piece(piece, sc);
            let c = sc.syms.len() as u32;
            sc.tiny.insert(key, c);
            return c;
        }
        if piece.len() < 16 {
            let mut k = [0u8; 16];
            if let Some(dst) = k.get_mut(..piece.len()) {
                dst.copy_from_slice(piece);
            }
            k[15] = piece.len() as u8;
            let key = u128::from_le_bytes(k);
            if let Some(&c) = sc.small.get(&key) {
                return c;
            }
            self.merge_piece(piece, sc);
            let c = sc.syms.len() as u32;
            if sc.small.len() >= CACHE_CAP {
                sc.small.clear();
            }
            sc.small.insert(key, c);
            return c;
        }
        if piece.len() <= CACHE_MAX_PIECE {
            if let Some(&c) = sc.cache.get(piece) {
                return c;
            }
        }
        self.merge_piece(piece, sc);
        let c = sc.syms.len() as u32;
        if piece.len() <= CACHE_MAX_PIECE {
            if sc.cache.len() >= CACHE_CAP {
                sc.cache.clear();
            }
            sc.cache.insert(piece.into(), c);
        }
        c
    }

    /// Calls `f(start, end, piece)` for each piece: the bytes the model sees (with the prefix
    /// space when `add_prefix_space`), or an added token.
    #[inline]
    pub(crate) fn walk<F: FnMut(usize, usize, Piece<'_>)>(&self, text: &str, f: &mut F) {
        let b = text.as_bytes();
        self.added.segments(text, &mut |x| match x {
            // HF adds the prefix space to each piece the earlier steps made; with no splitter
            // before ByteLevel (enforced at load) those are the stretches between added tokens.
            Ok((s, e)) if self.add_prefix_space && b.get(s) != Some(&b' ') => {
                self.walk_prefixed(text, s, e, f)
            }
            Ok((s, e)) => self.splitter.split(text, s, e, &mut |x, y| {
                f(x, y, Piece::Bytes(b.get(x..y).unwrap_or(&[])))
            }),
            Err(m) => f(m.start, m.end, Piece::Added(m.id)),
        });
    }

    /// Pieces of `text[s..e]` as the model sees `" " + text[s..e]`; the added space is counted
    /// with the first piece (merged into the next one if the space alone formed a piece).
    fn walk_prefixed<F: FnMut(usize, usize, Piece<'_>)>(
        &self,
        text: &str,
        s: usize,
        e: usize,
        f: &mut F,
    ) {
        let mut owned = String::with_capacity(e - s + 1);
        owned.push(' ');
        owned.push_str(text.get(s..e).unwrap_or(""));
        let mut pending = false;
        let ob = owned.as_bytes();
        self.splitter.split(&owned, 0, owned.len(), &mut |x, y| {
            if y <= 1 {
                pending = true;
                return;
            }
            let bytes = ob.get(x..y).unwrap_or(&[]);
            let start = s + x.saturating_sub(1);
            if std::mem::take(&mut pending) {
                f(start, s + y - 1, Piece::Two(b" ", bytes));
            } else {
                f(start, s + y - 1, Piece::Bytes(bytes));
            }
        });
    }
}

/// What a piece is: bytes the model tokenizes, or an added token.
pub(crate) enum Piece<'a> {
    Bytes(&'a [u8]),
    /// Two pieces reported as one (a prefix space that formed a piece of its own, then the next).
    Two(&'a [u8], &'a [u8]),
    Added(u32),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::pretok::Digits;

    fn toy(merges: &[(&str, &str)]) -> Bpe {
        let b2c = byte_to_char();
        let mut vocab: FxHashMap<String, u32> = FxHashMap::default();
        for c in b2c {
            let n = vocab.len() as u32;
            vocab.insert(c.to_string(), n);
        }
        for (a, b) in merges {
            let n = vocab.len() as u32;
            vocab.entry(format!("{a}{b}")).or_insert(n);
        }
        Bpe::new(BpeSpec {
            vocab,
            merges: merges
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            unk: None,
            ignore_merges: false,
            splitter: Splitter {
                digits: Digits::Off,
                regex: true,
            },
            add_prefix_space: false,
            added: AddedTokens::default(),
        })
        .unwrap()
    }

    #[test]
    fn small_and_heap_merges_agree() {
        let bpe = toy(&[
            ("a", "a"),
            ("b", "a"),
            ("aa", "a"),
            ("ba", "aa"),
            ("aa", "aa"),
        ]);
        let mut sc = Scratch::default();
        for n in [1usize, 2, 3, 5, 8, 13, 40, 47, 48, 49, 100, 333] {
            for pat in ["a", "ab", "aab", "baa"] {
                let s: Vec<u8> = pat.bytes().cycle().take(n).collect();
                sc.syms.clear();
                sc.syms.extend(s.iter().enumerate().map(|(k, &b)| Sym {
                    id: bpe.byte_id[b as usize],
                    start: k as u32,
                }));
                let mut a = sc.syms.clone();
                let mut r = vec![];
                bpe.merge_small(&mut a, &mut r);
                let mut h = sc.syms.clone();
                bpe.merge_heap(&mut h);
                let ids = |v: &[Sym]| v.iter().map(|s| (s.id, s.start)).collect::<Vec<_>>();
                assert_eq!(ids(&a), ids(&h), "n={n} pat={pat}");
            }
        }
    }

    #[test]
    fn leftmost_on_ties() {
        let bpe = toy(&[("a", "a")]);
        let mut sc = Scratch::default();
        bpe.merge_piece(b"aaa", &mut sc);
        assert_eq!(sc.syms.len(), 2);
        assert_eq!(sc.syms[1].start, 2);
    }

    #[test]
    fn missing_merge_token_is_an_error() {
        let mut vocab = FxHashMap::default();
        vocab.insert("a".to_string(), 0);
        let r = Bpe::new(BpeSpec {
            vocab,
            merges: vec![("a".into(), "b".into())],
            unk: None,
            ignore_merges: false,
            splitter: Splitter::SMOLLM,
            add_prefix_space: false,
            added: AddedTokens::default(),
        });
        assert!(matches!(r, Err(Error::Tokenizer(_))));
    }
}
