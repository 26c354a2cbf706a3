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

// Class of each ASCII byte: 0 separates words, any other value is the lowercased byte.
const ASCII_WORD: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() {
            t[i] = b.to_ascii_lowercase();
        }
        i += 1;
    }
    t
};

/// Scripts written without spaces: each of their characters counts as a word.
fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // hiragana, katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x3FFFF) // CJK extensions B and later
}

/// Calls `f` with each lowercased word of `text`, as UTF-8 bytes, in order. `buf` is scratch
/// space that callers reuse across texts to avoid an allocation per text.
pub(crate) fn for_each_word(text: &str, buf: &mut Vec<u8>, mut f: impl FnMut(&[u8])) {
    buf.clear();
    let mut rest = text;
    while let Some(&b) = rest.as_bytes().first() {
        if b < 0x80 {
            // Most prose is ASCII: one table lookup per byte, no UTF-8 decoding.
            let lower = ASCII_WORD[usize::from(b)];
            if lower != 0 {
                buf.push(lower);
            } else if !buf.is_empty() {
                f(buf);
                buf.clear();
            }
            rest = rest.get(1..).unwrap_or("");
            continue;
        }
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        rest = chars.as_str();
        if is_unspaced_script(c) {
            if !buf.is_empty() {
                f(buf);
                buf.clear();
            }
            let mut tmp = [0u8; 4];
            f(c.encode_utf8(&mut tmp).as_bytes());
        } else if c.is_alphanumeric() {
            let mut tmp = [0u8; 4];
            for l in c.to_lowercase() {
                buf.extend_from_slice(l.encode_utf8(&mut tmp).as_bytes());
            }
        } else if !buf.is_empty() {
            f(buf);
            buf.clear();
        }
    }
    if !buf.is_empty() {
        f(buf);
        buf.clear();
    }
}

/// Order-sensitive combination of a window of word hashes, tagged with its length so that a
/// short text's whole-sequence shingle never equals a full-length shingle.
#[inline]
fn combine(words: &[u64]) -> u64 {
    let mut s = (words.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for (i, &w) in words.iter().enumerate() {
        s ^= w.rotate_left((i as u32 * 23) % 64);
    }
    mix64(s)
}

/// Appends the 64-bit identity of every shingle of `text` to `out` (duplicates included; the
/// sketches take minima, so repeats cost nothing). `buf` is reusable scratch space.
pub(crate) fn shingle_hashes(text: &str, buf: &mut Vec<u8>, out: &mut Vec<u64>) {
    let mut window = [0u64; SHINGLE_WORDS];
    let mut seen = 0usize;
    for_each_word(text, buf, |w| {
        let h = xxh3_64(w);
        window.rotate_left(1);
        window[SHINGLE_WORDS - 1] = h;
        seen += 1;
        if seen >= SHINGLE_WORDS {
            out.push(combine(&window));
        }
    });
    if (1..SHINGLE_WORDS).contains(&seen) {
        out.push(combine(&window[SHINGLE_WORDS - seen..]));
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
    let mut buf = Vec::new();
    let mut words = Vec::new();
    for_each_word(text, &mut buf, |w| words.push(w.to_vec()));
    words
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
    xxh3_64(text.as_bytes())
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
    }

    #[test]
    fn short_texts_have_one_shingle() {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        shingle_hashes("two words", &mut buf, &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        shingle_hashes("", &mut buf, &mut out);
        assert!(out.is_empty());
        shingle_hashes("one two three four", &mut buf, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn shingles_are_order_sensitive() {
        let mut buf = Vec::new();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        shingle_hashes("a b c", &mut buf, &mut a);
        shingle_hashes("c b a", &mut buf, &mut b);
        assert_ne!(a, b);
        b.clear();
        shingle_hashes("A, b; C", &mut buf, &mut b);
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
