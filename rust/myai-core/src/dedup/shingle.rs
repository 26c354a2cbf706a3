//! Words and word shingles: the units whose sets MinHash compares.
//!
//! A word is a maximal run of alphanumeric characters (Unicode `Alphabetic` or `Numeric`),
//! lowercased; every CJK ideograph, hiragana or katakana character is a word of its own,
//! because those scripts do not separate words by spaces. A shingle is a run of
//! [`SHINGLE_WORDS`] consecutive words; a text with fewer words has one shingle, its whole
//! word sequence, and a text without words has none.

use rustc_hash::FxHashSet;
use xxhash_rust::xxh3::xxh3_64;

/// Words per shingle. Three is the shortest n the design allows: every changed word breaks
/// n shingles, so a small n keeps lightly edited copies above a high threshold while word
/// triples are still rare enough that unrelated prose shares almost none.
pub const SHINGLE_WORDS: usize = 3;

/// The splitmix64 / murmur3 finaliser: a bijection that spreads every input bit over the
/// whole output, so combined word hashes behave as independent random 64-bit values.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z ^= z >> 30;
    z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z ^= z >> 27;
    z = z.wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Scripts written without spaces: each of their characters counts as a word.
fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FA      // hiragana, katakana (not U+30FB, the middle dot)
        | 0x30FC..=0x30FF
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x3FFFF) // CJK extensions B and later
}

/// Receives the lowercased UTF-8 bytes of each word, then the end of the word.
trait WordSink {
    fn byte(&mut self, b: u8);
    /// A whole word of ASCII letters and digits, `text[start..end]`, not yet lowercased (the
    /// fast path). The sink may read `text` past `end`.
    fn ascii_word(&mut self, text: &[u8], start: usize, end: usize) {
        let word = text.get(start..end).unwrap_or(&[]);
        word.iter().for_each(|&b| self.byte(b | 0x20));
        self.end();
    }
    /// Ends the current word; a no-op when no byte came since the last end.
    fn end(&mut self);
}

/// Whether a non-ASCII character belongs to words. The General Punctuation block (curly
/// quotes, dashes, ellipses: the non-ASCII characters of most English text) holds no letter
/// or digit, so it skips the Unicode table search.
#[inline]
fn is_word_char(c: char) -> bool {
    !('\u{2000}'..='\u{206F}').contains(&c) && c.is_alphanumeric()
}

/// Bitmaps of a 64-byte block (bit j for byte j): bytes that can be part of a word (ASCII
/// letters and digits, and every non-ASCII byte, decided later), and the non-ASCII bytes.
/// Eight bytes at a time in a u64 (SWAR): no branch and no table, ~3 operations a byte.
#[inline]
fn classify(block: &[u8; 64]) -> (u64, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Gathers bit 7 of each byte into the top byte, byte i landing on bit 56 + i.
    const GATHER: u64 = 0x0102_0408_1020_4080;
    // Per byte, bit 7 of (t + (0x80 - lo)) is set iff t >= lo, for 7-bit t without carries.
    let at_least = |t: u64, lo: u8| t.wrapping_add(ONES * u64::from(0x80 - lo)) & HIGH;
    let mut wordish = 0u64;
    let mut high = 0u64;
    for (i, chunk) in block.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let x = u64::from_le_bytes(b);
        let t = x & !HIGH;
        let digit = at_least(t, b'0') & !at_least(t, b'9' + 1);
        let lower = t | (ONES * 0x20);
        let letter = at_least(lower, b'a') & !at_least(lower, b'z' + 1);
        let non_ascii = x & HIGH;
        let w = ((digit | letter) & !non_ascii) | non_ascii;
        wordish |= (((w >> 7).wrapping_mul(GATHER)) >> 56) << (8 * i);
        high |= (((non_ascii >> 7).wrapping_mul(GATHER)) >> 56) << (8 * i);
    }
    (wordish, high)
}

/// Bits j..64 of a word (none when j is 64).
#[inline]
fn from_bit(j: u32) -> u64 {
    u64::MAX.checked_shl(j).unwrap_or(0)
}

/// Feeds every word of `text` to `sink`, in order. Runs of word-ish bytes are found 64 bytes
/// at a time on bitmaps; a run of ASCII letters and digits is a word and goes to the sink
/// whole, and a run with non-ASCII bytes goes through [`scan_unicode`].
fn scan_words(text: &str, sink: &mut impl WordSink) {
    let bytes = text.as_bytes();
    let mut in_run = false;
    let mut run_start = 0usize;
    let mut run_non_ascii = false;
    let mut base = 0usize;
    let mut chunks = bytes.chunks_exact(64);
    let tail = chunks.remainder();
    let mut padded = [b' '; 64];
    if let Some(dst) = padded.get_mut(..tail.len()) {
        dst.copy_from_slice(tail);
    }
    let blocks = chunks
        .by_ref()
        .filter_map(|c| <&[u8; 64]>::try_from(c).ok());
    for block in blocks.chain((!tail.is_empty()).then_some(&padded)) {
        let (wordish, high) = classify(block);
        let mut j = 0u32;
        loop {
            if !in_run {
                let starts = wordish & from_bit(j);
                if starts == 0 {
                    break;
                }
                j = starts.trailing_zeros();
                in_run = true;
                run_start = base + j as usize;
                run_non_ascii = false;
            }
            let ends = !wordish & from_bit(j);
            if ends == 0 {
                run_non_ascii |= high != 0 && high & from_bit(j) != 0;
                break;
            }
            let e = ends.trailing_zeros();
            run_non_ascii |= high != 0 && high & from_bit(j) & !from_bit(e) != 0;
            emit_run(text, run_start, base + e as usize, run_non_ascii, sink);
            in_run = false;
            j = e;
        }
        base += 64;
    }
    if in_run {
        emit_run(text, run_start, bytes.len(), run_non_ascii, sink);
    }
}

#[inline(always)]
fn emit_run(text: &str, start: usize, end: usize, non_ascii: bool, sink: &mut impl WordSink) {
    if non_ascii {
        // Runs start after and end before an ASCII byte, so they are char boundaries.
        scan_unicode(text.get(start..end).unwrap_or(""), sink);
    } else {
        sink.ascii_word(text.as_bytes(), start, end);
    }
}

/// The words of a run of ASCII letters, digits and non-ASCII characters (whole characters):
/// non-ASCII letters and digits join words, other non-ASCII characters separate them, and
/// each character of a script written without spaces is a word of its own.
fn scan_unicode(run: &str, sink: &mut impl WordSink) {
    let mut tmp = [0u8; 4];
    for c in run.chars() {
        if c.is_ascii() {
            sink.byte(c as u8 | 0x20);
        } else if is_unspaced_script(c) {
            sink.end();
            c.encode_utf8(&mut tmp).bytes().for_each(|b| sink.byte(b));
            sink.end();
        } else if is_word_char(c) {
            for l in c.to_lowercase() {
                l.encode_utf8(&mut tmp).bytes().for_each(|b| sink.byte(b));
            }
        } else {
            sink.end();
        }
    }
    sink.end();
}

/// Collects words as byte strings (for the exact Jaccard and tests).
#[derive(Default)]
struct WordList {
    current: Vec<u8>,
    words: Vec<Vec<u8>>,
}

impl WordSink for WordList {
    fn byte(&mut self, b: u8) {
        self.current.push(b);
    }
    fn end(&mut self) {
        if !self.current.is_empty() {
            self.words.push(std::mem::take(&mut self.current));
        }
    }
}

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// Hashes each word while it is scanned (8 bytes per multiply, no buffer) and turns the
/// word hashes into shingle hashes.
struct ShingleHasher<'a> {
    acc: u64,
    acc_len: u32,
    state: u64,
    word_len: u64,
    window: [u64; SHINGLE_WORDS],
    seen: usize,
    out: &'a mut Vec<u64>,
}

impl<'a> ShingleHasher<'a> {
    fn new(out: &'a mut Vec<u64>) -> Self {
        ShingleHasher {
            acc: 0,
            acc_len: 0,
            state: 0,
            word_len: 0,
            window: [0; SHINGLE_WORDS],
            seen: 0,
            out,
        }
    }
}

impl WordSink for ShingleHasher<'_> {
    #[inline]
    fn byte(&mut self, b: u8) {
        self.acc |= u64::from(b) << (8 * self.acc_len);
        self.acc_len += 1;
        if self.acc_len == 8 {
            self.state = (self.state ^ self.acc).wrapping_mul(K1).rotate_left(29);
            self.acc = 0;
            self.acc_len = 0;
            self.word_len += 8;
        }
    }

    #[inline]
    fn ascii_word(&mut self, text: &[u8], start: usize, end: usize) {
        // The blocks that `byte` would build, eight bytes a load; the last, partial block is
        // loaded whole when the text goes on far enough, and masked.
        const LOWER: u64 = 0x2020_2020_2020_2020;
        let load = |p: usize| {
            text.get(p..p + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
        };
        let mut state = 0u64;
        let mut p = start;
        while p + 8 <= end {
            let block = load(p).unwrap_or(0) | LOWER;
            state = (state ^ block).wrapping_mul(K1).rotate_left(29);
            p += 8;
        }
        let rest = end - p;
        let acc = if rest == 0 {
            0
        } else if let Some(block) = load(p) {
            (block | LOWER) & (u64::MAX >> (64 - 8 * rest))
        } else {
            let tail = text.get(p..end).unwrap_or(&[]);
            tail.iter()
                .enumerate()
                .fold(0, |a, (j, &c)| a | u64::from(c | 0x20) << (8 * j))
        };
        self.push_word(finish_word(
            state ^ acc ^ ((end - start) as u64).wrapping_mul(K2),
        ));
    }

    #[inline]
    fn end(&mut self) {
        let len = self.word_len + u64::from(self.acc_len);
        if len == 0 {
            return;
        }
        let word = finish_word(self.state ^ self.acc ^ len.wrapping_mul(K2));
        (self.acc, self.acc_len, self.state, self.word_len) = (0, 0, 0, 0);
        self.push_word(word);
    }
}

impl ShingleHasher<'_> {
    #[inline]
    fn push_word(&mut self, word: u64) {
        self.window.rotate_left(1);
        if let Some(last) = self.window.last_mut() {
            *last = word;
        }
        self.seen += 1;
        if self.seen >= SHINGLE_WORDS {
            self.out.push(combine(&self.window));
        }
    }
}

/// A word's hash from its absorbed blocks: a multiply and a shift spread the bytes over all
/// 64 bits (a bijection, so distinct short words never collide); the full mix comes once per
/// shingle, in the sketch.
#[inline]
fn finish_word(x: u64) -> u64 {
    let w = x.wrapping_mul(0xa076_1d64_78bd_642f);
    w ^ (w >> 29)
}

/// Order-sensitive combination of a window of word hashes, tagged with its length so that a
/// short text's whole-sequence shingle never equals a full-length shingle. Not mixed: the
/// sketch mixes it with its seed, a bijection, so distinct shingles stay distinct.
#[inline]
fn combine(words: &[u64]) -> u64 {
    let mut s = (words.len() as u64).wrapping_mul(K1);
    for (i, &w) in words.iter().enumerate() {
        s ^= w.rotate_left((i as u32 * 23) % 64);
    }
    s
}

/// Appends the 64-bit identity of every shingle of `text` to `out` (duplicates included; the
/// sketches take minima, so repeats cost nothing).
pub(crate) fn shingle_hashes(text: &str, out: &mut Vec<u64>) {
    let mut h = ShingleHasher::new(out);
    scan_words(text, &mut h);
    let seen = h.seen;
    if (1..SHINGLE_WORDS).contains(&seen) {
        let short = combine(h.window.get(SHINGLE_WORDS - seen..).unwrap_or(&[]));
        h.out.push(short);
    }
}

/// The set of shingles of `text`, as word sequences (for the exact Jaccard).
fn shingle_set(words: &[Vec<u8>]) -> FxHashSet<&[Vec<u8>]> {
    if words.is_empty() {
        return FxHashSet::default();
    }
    if words.len() < SHINGLE_WORDS {
        return std::iter::once(words).collect();
    }
    words.windows(SHINGLE_WORDS).collect()
}

fn words_of(text: &str) -> Vec<Vec<u8>> {
    let mut list = WordList::default();
    scan_words(text, &mut list);
    list.words
}

/// Exact Jaccard similarity of the shingle sets of `a` and `b`, compared as word sequences
/// (no hashing). Two texts without words have equal (empty) sets, hence similarity 1.
pub fn jaccard(a: &str, b: &str) -> f64 {
    let (wa, wb) = (words_of(a), words_of(b));
    let (sa, sb) = (shingle_set(&wa), shingle_set(&wb));
    if sa.is_empty() && sb.is_empty() {
        return 1.0;
    }
    let (small, large) = if sa.len() <= sb.len() {
        (&sa, &sb)
    } else {
        (&sb, &sa)
    };
    let inter = small.iter().filter(|s| large.contains(*s)).count();
    let union = sa.len() + sb.len() - inter;
    inter as f64 / union as f64
}

/// xxh3-64 of the text's UTF-8 bytes: the exact-duplicate key. It hashes the bytes as given,
/// so callers normalise first (Unicode form, whitespace) when equivalent spellings should match.
pub fn hash64(text: &str) -> u64 {
    hash64_bytes(text.as_bytes())
}

/// [`hash64`] of bytes (the UTF-8 of a text).
pub fn hash64_bytes(data: &[u8]) -> u64 {
    xxh3_64(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(t: &str) -> Vec<String> {
        words_of(t)
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    #[test]
    fn splits_lowercases_and_handles_scripts() {
        assert_eq!(
            words("Hello, World! it's 42"),
            ["hello", "world", "it", "s", "42"]
        );
        assert_eq!(words("ÉCOLE Straße"), ["école", "straße"]);
        assert_eq!(words("東京は晴れ"), ["東", "京", "は", "晴", "れ"]);
        assert_eq!(words("a 😀 b"), ["a", "b"]);
        assert!(words("  ... ").is_empty());
        assert_eq!(words("x東y"), ["x", "東", "y"]);
        assert_eq!(words("カ・ナ。"), ["カ", "ナ"]);
    }

    #[test]
    fn fast_and_byte_paths_hash_alike() {
        for w in [
            "a",
            "Ab",
            "abcdefg",
            "ABCDEFGH",
            "abcdefghi",
            "x1y2z3w4v5u6t7s8r9q",
        ] {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            let mut h = ShingleHasher::new(&mut fast);
            h.ascii_word(b"pad", 0, 3);
            h.ascii_word(b"pad", 0, 3);
            h.ascii_word(w.as_bytes(), 0, w.len());
            let mut h = ShingleHasher::new(&mut slow);
            h.ascii_word(b"pad", 0, 3);
            h.ascii_word(b"pad", 0, 3);
            w.bytes().for_each(|b| h.byte(b | 0x20));
            h.end();
            assert_eq!(fast, slow, "{w}");
            assert_eq!(fast.len(), 1);
        }
        assert_eq!(words("éabc déf x"), ["éabc", "déf", "x"]);
        assert_eq!(words("abcé DEF"), ["abcé", "def"]);
    }

    /// The word rule, one character at a time.
    fn reference_words(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        for c in text.chars() {
            if is_unspaced_script(c) {
                out.extend((!cur.is_empty()).then(|| std::mem::take(&mut cur)));
                out.push(c.to_string());
            } else if c.is_alphanumeric() {
                cur.extend(c.to_lowercase());
            } else {
                out.extend((!cur.is_empty()).then(|| std::mem::take(&mut cur)));
            }
        }
        out.extend((!cur.is_empty()).then_some(cur));
        out
    }

    proptest::proptest! {
        #[test]
        fn scanner_matches_reference(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    "[a-zA-Z0-9]{1,20}",
                    "[ .,;'\n-]{1,3}",
                    "[éÉßœ東京はカ😀“”—\u{301}]{1,3}",
                    "\\PC{0,5}",
                ],
                0..40,
            )
        ) {
            let text: String = parts.concat();
            proptest::prop_assert_eq!(words(&text), reference_words(&text));
            // The fast path hashes like the byte path.
            let mut fast = Vec::new();
            shingle_hashes(&text, &mut fast);
            let mut slow = Vec::new();
            let mut h = ShingleHasher::new(&mut slow);
            for w in reference_words(&text) {
                w.bytes().for_each(|b| h.byte(b));
                h.end();
            }
            let seen = h.seen;
            if (1..SHINGLE_WORDS).contains(&seen) {
                let short = combine(h.window.get(SHINGLE_WORDS - seen..).unwrap_or(&[]));
                h.out.push(short);
            }
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn word_hashes_distinguish_lengths_and_blocks() {
        let mut seen = std::collections::HashSet::new();
        let words = [
            "a",
            "aa",
            "aaaaaaaa",
            "aaaaaaaaa",
            "abcdefgh",
            "abcdefghi",
            "ab",
            "ba",
        ];
        for w in words {
            let mut out = Vec::new();
            shingle_hashes(w, &mut out);
            assert!(seen.insert(out), "{w}");
        }
    }

    #[test]
    fn short_texts_have_one_shingle() {
        let mut out = Vec::new();
        shingle_hashes("two words", &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        shingle_hashes("", &mut out);
        assert!(out.is_empty());
        shingle_hashes("one two three four", &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn shingles_are_order_sensitive() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        shingle_hashes("a b c", &mut a);
        shingle_hashes("c b a", &mut b);
        assert_ne!(a, b);
        b.clear();
        shingle_hashes("A, b; C", &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn exact_jaccard() {
        assert_eq!(jaccard("a b c d", "a b c d"), 1.0);
        // {abc, bcd} vs {abc, bce}: 1 shared of 3
        assert!((jaccard("a b c d", "a b c e") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(jaccard("", "  "), 1.0);
        assert_eq!(jaccard("", "x"), 0.0);
        assert_eq!(jaccard("x y", "x y"), 1.0);
        assert_eq!(jaccard("x y", "y x"), 0.0);
    }

    #[test]
    fn hash64_is_xxh3_of_bytes() {
        assert_eq!(hash64(""), 0x2d06_8005_38d3_94c2);
        assert_eq!(hash64("abc"), xxh3_64(b"abc"));
    }
}
