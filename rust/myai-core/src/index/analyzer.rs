//! Text → terms: Unicode word runs, full lowercase, optional stopwords and Snowball stemming.
//!
//! A word is a maximal run of letters, combining marks and numbers (by Unicode general
//! category). Han, Hiragana and Katakana characters are not split into words by spaces, so
//! each such character is a term of its own (unigrams: no dictionary needed, and a query of
//! two characters still matches both). ASCII text takes a byte-level fast path and is only
//! copied when it has uppercase letters.

use rust_stemmers::{Algorithm, Stemmer};
use unicode_general_category::{get_general_category, GeneralCategory as G};

use super::stopwords::is_stopword;

/// What a non-ASCII character is to the tokenizer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Word,
    Ideograph,
    Separator,
}

fn is_ideograph(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x31F0..=0x31FF    // Katakana phonetic extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFF9F    // halfwidth Katakana
        | 0x20000..=0x323AF) // CJK extensions B..H
}

fn classify(c: char) -> Class {
    if is_ideograph(c) {
        return Class::Ideograph;
    }
    match get_general_category(c) {
        G::UppercaseLetter
        | G::LowercaseLetter
        | G::TitlecaseLetter
        | G::ModifierLetter
        | G::OtherLetter
        | G::NonspacingMark
        | G::SpacingMark
        | G::EnclosingMark
        | G::DecimalNumber
        | G::LetterNumber
        | G::OtherNumber => Class::Word,
        _ => Class::Separator,
    }
}

/// Byte classes of the ASCII fast path: 0 separator, 1 lowercase letter or digit, 2 uppercase
/// letter, 4 the first byte of a non-ASCII character (left to the Unicode path).
static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b >= 0x80 {
            4
        } else if b.is_ascii_uppercase() {
            2
        } else if b.is_ascii_alphanumeric() {
            1
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Calls `emit` with each lowercased word of `text`, in order. `buf` is scratch space reused
/// across calls so that the hot loop does not allocate.
pub(crate) fn tokenize(text: &str, buf: &mut String, mut emit: impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let n = bytes.len();
    // Start of the current word run, and whether it needs lowercasing (uppercase or non-ASCII).
    let mut start = usize::MAX;
    let mut dirty = false;
    let mut i = 0;
    let mut flush = |start: &mut usize, dirty: &mut bool, end: usize, buf: &mut String| {
        if *start == usize::MAX {
            return;
        }
        let word = text.get(*start..end).unwrap_or("");
        if *dirty {
            buf.clear();
            for c in word.chars() {
                if c.is_ascii() {
                    buf.push(c.to_ascii_lowercase());
                } else {
                    buf.extend(c.to_lowercase());
                }
            }
            emit(buf);
        } else {
            emit(word);
        }
        *start = usize::MAX;
        *dirty = false;
    };
    while i < n {
        let class = bytes.get(i).map_or(0, |&b| BYTE_CLASS[b as usize]);
        if class & 3 != 0 {
            if start == usize::MAX {
                start = i;
            }
            // The rest of an ASCII run in a tight loop.
            let mut seen = class;
            i += 1;
            while let Some(&b) = bytes.get(i) {
                let c = BYTE_CLASS[b as usize];
                if c & 3 == 0 {
                    break;
                }
                seen |= c;
                i += 1;
            }
            dirty |= seen & 2 != 0;
            continue;
        }
        if class == 0 {
            flush(&mut start, &mut dirty, i, buf);
            i += 1;
            continue;
        }
        // `i` always sits on a char boundary: it only advances by whole characters.
        let Some(c) = text.get(i..).and_then(|s| s.chars().next()) else {
            break;
        };
        let len = c.len_utf8();
        match classify(c) {
            Class::Word => {
                if start == usize::MAX {
                    start = i;
                }
                dirty = true;
            }
            Class::Ideograph => {
                flush(&mut start, &mut dirty, i, buf);
                // Ideographs have no case; the character itself is the term.
                start = i;
                flush(&mut start, &mut dirty, i + len, buf);
            }
            Class::Separator => flush(&mut start, &mut dirty, i, buf),
        }
        i += len;
    }
    flush(&mut start, &mut dirty, n, buf);
}

/// The analysis chain of one index: tokenizer, then stopwords, then the stemmer.
pub struct Analyzer {
    stemmer: Option<Stemmer>,
    stopwords: bool,
}

impl Clone for Analyzer {
    fn clone(&self) -> Self {
        Analyzer::new(self.stemmer.is_some(), self.stopwords)
    }
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("stem", &self.stemmer.is_some())
            .field("stopwords", &self.stopwords)
            .finish()
    }
}

impl Analyzer {
    /// An analyzer with English Snowball stemming and/or English stopwords.
    pub fn new(stem: bool, stopwords: bool) -> Self {
        Analyzer {
            stemmer: stem.then(|| Stemmer::create(Algorithm::English)),
            stopwords,
        }
    }

    /// Whether terms are stemmed.
    pub fn stems(&self) -> bool {
        self.stemmer.is_some()
    }

    /// Whether stopwords are dropped.
    pub fn drops_stopwords(&self) -> bool {
        self.stopwords
    }

    /// The term of one lowercased word, or `None` when it is a stopword.
    pub fn term<'a>(&self, word: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        if self.stopwords && is_stopword(word) {
            return None;
        }
        match &self.stemmer {
            // Words without ASCII letters (numbers, other scripts) pass the English stemmer
            // unchanged anyway; skipping it saves time on numbers.
            Some(s) if word.bytes().any(|b| b.is_ascii_alphabetic()) => Some(s.stem(word)),
            _ => Some(std::borrow::Cow::Borrowed(word)),
        }
    }

    /// The terms of `text`, in order, as the index sees them.
    pub fn analyze(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = String::new();
        tokenize(text, &mut buf, |w| {
            if let Some(t) = self.term(w) {
                out.push(t.into_owned());
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut v = Vec::new();
        tokenize(text, &mut String::new(), |w| v.push(w.to_string()));
        v
    }

    #[test]
    fn ascii_and_unicode_words() {
        assert_eq!(
            words("Hello, World! it's 2024_x"),
            ["hello", "world", "it", "s", "2024", "x"]
        );
        assert_eq!(
            words("ÉCOLE naïve Straße ΣΟΦΙΑ"),
            ["école", "naïve", "straße", "σοφια"]
        );
        assert_eq!(words("مرحبا بالعالم"), ["مرحبا", "بالعالم"]);
        assert_eq!(
            words("東京タワーへ行く"),
            ["東", "京", "タ", "ワ", "ー", "へ", "行", "く"]
        );
        assert_eq!(words("abc東def"), ["abc", "東", "def"]);
        assert_eq!(words("🙂 emoji🙂ok"), ["emoji", "ok"]);
        assert!(words("").is_empty() && words(" ,.;").is_empty());
    }

    #[test]
    fn stem_and_stopwords() {
        let a = Analyzer::new(true, true);
        assert_eq!(
            a.analyze("The running whales were swimming"),
            ["run", "whale", "swim"]
        );
        let plain = Analyzer::new(false, false);
        assert_eq!(plain.analyze("The Whales"), ["the", "whales"]);
    }
}
