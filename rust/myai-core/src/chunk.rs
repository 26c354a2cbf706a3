//! Token-aware chunking: splits a text into chunks of at most `chunk_size` tokens, with
//! `chunk_overlap` tokens shared by neighbours, cutting where a reader would.
//!
//! The text is cut into the tokenizer's pre-tokenization pieces once (in parallel on long
//! texts); a chunk is a run of whole pieces, so its token count is the sum of its pieces'
//! counts — exact for BPE and WordPiece, whose merges never cross pieces. Cut points are
//! preferred in this order: a blank line or a markdown heading, a sentence end or line break,
//! whitespace, anywhere (a piece longer than a chunk is cut between its own tokens, and
//! never inside a UTF-8 character: so a chunk exceeds `chunk_size` only when one character
//! alone has more tokens than that). Output is deterministic.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::tokens::TokenCounter;

/// One chunk: byte offsets `[start, end)` into the text and its token count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSpan {
    pub start: usize,
    pub end: usize,
    pub tokens: usize,
}

/// A pre-tokenization piece in 8 bytes (a 1M-token text has about a million of them): its
/// start (it ends where the next one starts), its tokens (low 24 bits) and its class (high 8
/// bits: preference for cutting just before it, 3 paragraph/heading, 2 sentence or line,
/// 1 whitespace, 0 none, plus the SPLIT and WS_END markers).
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: u32,
    packed: u32,
}

impl Piece {
    fn new(start: usize, tokens: u32, class: u8) -> Piece {
        Piece {
            start: start as u32,
            packed: tokens.min(MAX_PIECE_TOKENS) | (class as u32) << 24,
        }
    }
    fn tokens(self) -> u32 {
        self.packed & MAX_PIECE_TOKENS
    }
    fn class(self) -> u8 {
        (self.packed >> 24) as u8
    }
    fn mark(&mut self, class: u8) {
        self.packed |= (class as u32) << 24;
    }
}

/// Where piece `i` ends: where the next one starts, or at the end of the text.
fn piece_end(pieces: &[Piece], i: usize, text_len: usize) -> usize {
    pieces.get(i + 1).map_or(text_len, |p| p.start as usize)
}

/// Largest token count of a piece (and so of a chunk_size): 24 bits.
const MAX_PIECE_TOKENS: u32 = (1 << 24) - 1;

/// Blocks of about this many bytes are pre-tokenized in parallel.
const PAR_BLOCK: usize = 256 * 1024;

/// Checks the sizes: a chunk must hold at least one token and more than its overlap.
pub fn validate(chunk_size: i64, chunk_overlap: i64) -> Result<(usize, usize)> {
    if chunk_size < 1 {
        return Err(Error::invalid(format!(
            "chunk_size must be at least 1, got {chunk_size}"
        )));
    }
    if chunk_overlap < 0 {
        return Err(Error::invalid(format!(
            "chunk_overlap must not be negative, got {chunk_overlap}"
        )));
    }
    if chunk_size > MAX_PIECE_TOKENS as i64 {
        return Err(Error::invalid(format!(
            "chunk_size must be at most {MAX_PIECE_TOKENS}, got {chunk_size}"
        )));
    }
    if chunk_overlap >= chunk_size {
        return Err(Error::invalid(format!(
            "chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})"
        )));
    }
    Ok((chunk_size as usize, chunk_overlap as usize))
}

/// Splits `text` into chunks; see the module documentation.
pub fn chunk(
    text: &str,
    chunk_size: usize,
    chunk_overlap: usize,
    counter: &dyn TokenCounter,
) -> Result<Vec<ChunkSpan>> {
    validate(chunk_size as i64, chunk_overlap as i64)?;
    if text.len() >= u32::MAX as usize {
        return Err(Error::invalid(format!(
            "text of {} bytes is over the 4 GiB a chunked text may have",
            text.len()
        )));
    }
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let pieces = pieces(text, chunk_size, counter);
    // A chunk holding part of a cut piece may tokenize differently on its own: count it exactly
    // (memoised: a long run without whitespace is often one pattern repeated).
    let memo = std::cell::RefCell::new(FxHashMap::<&str, usize>::default());
    let exact = |a: usize, b: usize| {
        let t = &text[pieces[a].start as usize..piece_end(&pieces, b, text.len())];
        *memo
            .borrow_mut()
            .entry(t)
            .or_insert_with(|| counter.count(t))
    };
    Ok(pack(&pieces, chunk_size, chunk_overlap, text.len(), &exact))
}

/// Pre-tokenizes, in parallel blocks cut where the TokenCounter contract allows.
fn pieces(text: &str, chunk_size: usize, counter: &dyn TokenCounter) -> Vec<Piece> {
    let bounds = if counter.splittable() {
        block_bounds(text, counter)
    } else {
        vec![0, text.len()]
    };
    let blocks: Vec<Vec<Piece>> = bounds
        .par_windows(2)
        .map(|w| {
            let (lo, hi) = (w[0], w[1]);
            let block = &text[lo..hi];
            let mut out = Vec::with_capacity(block.len() / 4 + 1);
            counter.for_each_piece(block, &mut |s, e, t| {
                let (s, e) = (lo + s, lo + e);
                if t as usize > chunk_size {
                    split_long_piece(text, s, e, chunk_size, counter, &mut out);
                } else {
                    out.push(Piece::new(s, t, 0));
                }
            });
            let b = text.as_bytes();
            for p in out.iter_mut() {
                let pos = p.start as usize;
                p.mark(cut_class(b, pos));
                if pos > 0 && b[pos - 1].is_ascii_whitespace() {
                    p.mark(WS_END);
                }
            }
            out
        })
        .collect();
    let mut all = Vec::with_capacity(blocks.iter().map(Vec::len).sum());
    for b in blocks {
        all.extend(b); // each block freed as it is copied
    }
    all
}

/// Block boundaries: roughly every PAR_BLOCK bytes, where the tokenizer allows a cut.
fn block_bounds(text: &str, counter: &dyn TokenCounter) -> Vec<usize> {
    let b = text.as_bytes();
    let mut bounds = vec![0];
    let mut next = PAR_BLOCK;
    while next < b.len() {
        let found = memchr::memchr_iter(b'\n', &b[next..])
            .map(|i| next + i)
            .find(|&p| counter.is_cut(text, p));
        match found {
            Some(p) => {
                bounds.push(p);
                next = p + PAR_BLOCK;
            }
            None => break,
        }
    }
    bounds.push(b.len());
    bounds
}

/// Cuts a piece of more tokens than a chunk holds into sub-pieces of at most `chunk_size`
/// bytes (a token is at least one byte, so each fits in a chunk), on character boundaries.
/// Each sub-piece is counted on its own (memoised: long runs are often repetitive); chunks
/// holding them are recounted exactly when packed.
fn split_long_piece(
    text: &str,
    s: usize,
    e: usize,
    chunk_size: usize,
    counter: &dyn TokenCounter,
    out: &mut Vec<Piece>,
) {
    let step = chunk_size.clamp(1, 4096);
    let mut memo: FxHashMap<&str, u32> = FxHashMap::default();
    let mut lo = s;
    let mut first = true;
    while lo < e {
        // At most `step` bytes, on a character boundary (a whole character when one is longer).
        let mut hi = (lo + step).min(e);
        while hi > lo && !text.is_char_boundary(hi) {
            hi -= 1;
        }
        if hi == lo {
            hi = (lo + step).min(e);
            while !text.is_char_boundary(hi) {
                hi += 1;
            }
        }
        let sub = &text[lo..hi];
        let t = *memo
            .entry(sub)
            .or_insert_with(|| counter.count(sub).max(1) as u32);
        out.push(Piece::new(lo, t, if first { 0 } else { SPLIT }));
        first = false;
        lo = hi;
    }
}

/// Class marker of a sub-piece of a split piece (lowest preference; triggers a recount).
const SPLIT: u8 = 0x80;
/// Marker of a cut just after whitespace: a BPE pre-tokenizer merges whitespace at the end of
/// a text (`\s+(?!\S)`), so a chunk ending there may count differently on its own. Such cuts
/// are avoided, and recounted exactly when unavoidable.
const WS_END: u8 = 0x40;
const CLASS: u8 = 0x3f;

fn cut_class(b: &[u8], pos: usize) -> u8 {
    if pos == 0 || pos >= b.len() {
        return 3;
    }
    // The whitespace gap around the cut point.
    let mut lo = pos;
    while lo > 0 && b[lo - 1].is_ascii_whitespace() {
        lo -= 1;
    }
    let mut hi = pos;
    while hi < b.len() && b[hi].is_ascii_whitespace() && hi - pos < 64 {
        hi += 1;
    }
    let newlines = b[lo..hi].iter().filter(|&&c| c == b'\n').count();
    if newlines > 0 && after_heading(b, lo) {
        // Keep a heading with the text under it.
        return 1;
    }
    if newlines >= 2 || (newlines == 1 && b.get(hi) == Some(&b'#')) {
        return 3;
    }
    if lo == hi {
        return 0;
    }
    if newlines == 1 {
        return 2;
    }
    // Sentence end: terminal punctuation, possibly followed by closing quotes or brackets.
    let mut k = lo;
    while k > 0 && matches!(b[k - 1], b'"' | b'\'' | b')' | b']') {
        k -= 1;
    }
    if k > 0 && matches!(b[k - 1], b'.' | b'!' | b'?' | b':' | b';') {
        return 2;
    }
    1
}

/// True when the line ending at `end` is a markdown heading (`#`-prefixed).
fn after_heading(b: &[u8], end: usize) -> bool {
    let floor = end.saturating_sub(256);
    let start = b[floor..end]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(floor, |i| floor + i + 1);
    if start == floor && floor > 0 {
        return false;
    }
    let line = &b[start..end];
    let hashes = line.iter().take_while(|&&c| c == b'#').count();
    (1..=6).contains(&hashes) && line.get(hashes) == Some(&b' ')
}

/// Greedy packing with preferred cut points and token overlap.
fn pack(
    pieces: &[Piece],
    chunk_size: usize,
    overlap: usize,
    text_len: usize,
    exact: &dyn Fn(usize, usize) -> usize,
) -> Vec<ChunkSpan> {
    let n = pieces.len();
    // prefix[i] = tokens of pieces[..i]
    // Token offsets fit in u32: a chunked text has fewer than 4 GiB bytes.
    let mut prefix: Vec<u32> = Vec::with_capacity(n + 1);
    prefix.push(0);
    for p in pieces {
        prefix.push(prefix.last().copied().unwrap_or(0) + p.tokens());
    }
    let tokens = |a: usize, b: usize| (prefix[b] - prefix[a]) as usize;
    let class = |i: usize| if i >= n { 3 } else { pieces[i].class() & CLASS };
    let safe_end = |i: usize| i >= n || pieces[i].class() & WS_END == 0;
    let mut out: Vec<ChunkSpan> = Vec::new();
    let mut i = 0usize;
    // Each chunk must end past the previous one.
    let mut min_cut = 1usize;
    while i < n {
        // Furthest end that fits (at least one piece: a piece never exceeds chunk_size).
        let mut end_max = i + 1;
        while end_max < n && tokens(i, end_max + 1) <= chunk_size {
            end_max += 1;
        }
        let cut = if end_max >= n {
            n
        } else {
            let half = chunk_size / 2;
            let mut chosen = end_max;
            'search: for (want, min_fill) in [(3u8, half), (2, half), (1, 0), (0, 0)] {
                let mut c = end_max;
                while c > i && c >= min_cut {
                    if tokens(i, c) < min_fill {
                        break;
                    }
                    if class(c) >= want && safe_end(c) {
                        chosen = c;
                        break 'search;
                    }
                    c -= 1;
                }
            }
            chosen
        };
        let mut cut = cut;
        let mut count = tokens(i, cut);
        if !safe_end(cut) || pieces[i..cut].iter().any(|p| p.class() & SPLIT != 0) {
            count = exact(i, cut - 1);
            while count > chunk_size && cut > i + 1 && cut > min_cut {
                // Shrink in proportion first, then piece by piece.
                let guess = i + (cut - i) * chunk_size / count;
                cut = if guess > i && guess < cut - 1 {
                    guess.max(min_cut)
                } else {
                    cut - 1
                };
                count = exact(i, cut - 1);
            }
        }
        out.push(ChunkSpan {
            start: pieces[i].start as usize,
            end: piece_end(pieces, cut - 1, text_len),
            tokens: count,
        });
        min_cut = cut + 1;
        if cut >= n {
            break;
        }
        i = next_start(pieces, &prefix, i, cut, chunk_size, overlap);
    }
    out
}

/// Start of the chunk after one that ends at `cut`: as far back as the overlap allows,
/// preferring a sentence or paragraph start, always making progress.
fn next_start(
    pieces: &[Piece],
    prefix: &[u32],
    start: usize,
    cut: usize,
    chunk_size: usize,
    overlap: usize,
) -> usize {
    if overlap == 0 {
        return cut;
    }
    let tokens = |a: usize, b: usize| (prefix[b] - prefix[a]) as usize;
    // Earliest candidate whose overlap fits.
    let mut lo = cut;
    while lo > start + 1 && tokens(lo - 1, cut) <= overlap {
        lo -= 1;
    }
    // The next chunk must reach past `cut` by at least one piece.
    let next_piece = tokens(cut, cut + 1);
    let fits = |s: usize| tokens(s, cut) + next_piece <= chunk_size;
    for want in [2u8, 1, 0] {
        if let Some(s) = (lo..cut).find(|&s| (pieces[s].class() & CLASS) >= want && fits(s)) {
            return s;
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test counter: pieces are words with their leading whitespace; one token per 4 characters.
    struct Words;
    impl TokenCounter for Words {
        fn for_each_piece(&self, text: &str, f: &mut dyn FnMut(usize, usize, u32)) {
            let b = text.as_bytes();
            let mut s = 0;
            while s < b.len() {
                let mut e = s;
                while e < b.len() && b[e].is_ascii_whitespace() {
                    e += 1;
                }
                while e < b.len() && !b[e].is_ascii_whitespace() {
                    e += 1;
                }
                while !text.is_char_boundary(e) {
                    e += 1;
                }
                f(s, e, (text[s..e].chars().count() as u32).div_ceil(4));
                s = e;
            }
        }
        fn count(&self, text: &str) -> usize {
            let mut n = 0;
            self.for_each_piece(text, &mut |_, _, t| n += t as usize);
            n
        }
        fn token_ends(&self, piece: &str) -> Vec<usize> {
            // A token is up to 4 characters.
            let mut v: Vec<usize> = piece
                .char_indices()
                .map(|(i, _)| i)
                .skip(4)
                .step_by(4)
                .collect();
            v.push(piece.len());
            v
        }
    }

    fn check(text: &str, size: usize, overlap: usize) -> Vec<ChunkSpan> {
        let spans = chunk(text, size, overlap, &Words).unwrap();
        if text.is_empty() {
            assert!(spans.is_empty());
            return spans;
        }
        assert_eq!(spans[0].start, 0);
        assert_eq!(spans.last().unwrap().end, text.len());
        for w in spans.windows(2) {
            assert!(w[1].start > w[0].start, "starts increase");
            assert!(w[1].start <= w[0].end, "no gap");
            assert!(w[1].end > w[0].end, "progress");
            let shared = &text[w[1].start..w[0].end];
            assert!(
                Words.count(shared) <= overlap,
                "overlap {} > {overlap}",
                Words.count(shared)
            );
        }
        for s in &spans {
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            let exact = Words.count(&text[s.start..s.end]);
            assert_eq!(s.tokens, exact);
            // Only a single character of more tokens than a chunk holds may exceed it.
            let one_char = text[s.start..s.end].chars().count() == 1;
            assert!(
                s.tokens <= size || one_char,
                "chunk of {} tokens > {size}",
                s.tokens
            );
        }
        spans
    }

    #[test]
    fn bad_sizes() {
        assert!(validate(0, 0).is_err());
        assert!(validate(10, 10).is_err());
        assert!(validate(10, -1).is_err());
        assert!(validate(-5, 0).is_err());
        assert!(validate(10, 9).is_ok());
    }

    #[test]
    fn prefers_paragraphs_then_sentences() {
        let para = "Alpha beta gamma delta. Epsilon zeta eta theta.";
        let text = format!("{para}\n\n{para}\n\n{para}");
        let spans = check(&text, 30, 0);
        assert!(spans.len() >= 2);
        assert!(
            text[..spans[0].end].ends_with("theta."),
            "{:?}",
            &text[..spans[0].end]
        );
        let long = "One two three four five. Six seven eight nine ten. ".repeat(20);
        let spans = check(&long, 25, 0);
        for s in &spans[..spans.len() - 1] {
            assert!(
                long[s.start..s.end].trim_end().ends_with('.'),
                "{:?}",
                &long[s.start..s.end]
            );
        }
    }

    #[test]
    fn overlap_and_coverage() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(200);
        for (size, ov) in [(16, 0), (16, 4), (50, 10), (200, 20), (7, 6)] {
            check(&text, size, ov);
        }
    }

    #[test]
    fn huge_piece_is_cut_on_char_boundaries() {
        let text = "é".repeat(10_000) + " tail";
        let spans = check(&text, 64, 8);
        assert!(spans.len() > 10);
    }

    #[test]
    fn empty_and_whitespace() {
        check("", 10, 0);
        let s = check("   \n\n  ", 10, 0);
        assert_eq!(s.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn invariants(text in "\\PC{0,400}", size in 1usize..40, ov_frac in 0.0f64..0.9) {
            let ov = ((size as f64) * ov_frac) as usize;
            let ov = ov.min(size - 1);
            check(&text, size, ov);
        }

        #[test]
        fn any_bytes(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600), size in 1usize..20) {
            let text = String::from_utf8_lossy(&data);
            check(&text, size, size / 3);
        }
    }
}
