//! WordPiece (BERT family) with HuggingFace's BertNormalizer and Bert/Whitespace pre-tokenizers.
//!
//! The text is cut at whitespace that survives normalisation; each stretch between (a "word")
//! is normalised on its own, pre-tokenised and matched greedily longest-first against the
//! vocabulary. None of the supported normalisers creates or removes such whitespace, so this is
//! the same as normalising the whole text; words are cached per thread.

use std::cell::RefCell;

use rustc_hash::FxHashMap;
use thread_local::ThreadLocal;
use unicode_general_category::{get_general_category, GeneralCategory as G};
use unicode_normalization::UnicodeNormalization;

use super::added::{AddedTokens, Match};

const CACHE_MAX_PIECE: usize = 64;
const CACHE_CAP: usize = 1 << 18;

/// One normalisation step.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Norm {
    Bert {
        clean_text: bool,
        chinese: bool,
        strip_accents: bool,
        lowercase: bool,
    },
    Lowercase,
    StripAccents,
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
}

/// The pre-tokenizer run on normalised words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pre {
    /// `BertPreTokenizer`: split on whitespace, each punctuation character alone.
    Bert,
    /// `Whitespace`: `\w+|[^\w\s]+`.
    Whitespace,
    /// `WhitespaceSplit`: split on whitespace.
    WhitespaceSplit,
}

/// HF's "control" test of BertNormalizer, tab/newline/CR excepted: categories Cc, Cf, Co (its
/// category tables leave unassigned code points alone, which the MiniLM oracle confirms).
fn is_control(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    matches!(
        get_general_category(c),
        G::Control | G::Format | G::PrivateUse
    )
}

fn is_chinese(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B920..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            get_general_category(c),
            G::ConnectorPunctuation
                | G::DashPunctuation
                | G::OpenPunctuation
                | G::ClosePunctuation
                | G::InitialPunctuation
                | G::FinalPunctuation
                | G::OtherPunctuation
        )
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
        || c == '_'
        || matches!(
            get_general_category(c),
            G::NonspacingMark | G::SpacingMark | G::EnclosingMark | G::ConnectorPunctuation
        )
}

impl Norm {
    fn apply(&self, s: &str, out: &mut String) {
        out.clear();
        match *self {
            Norm::Bert {
                clean_text,
                chinese,
                strip_accents,
                lowercase,
            } => {
                let mut cur = String::with_capacity(s.len() + 8);
                for c in s.chars() {
                    if clean_text && (c == '\0' || c == '\u{fffd}' || is_control(c)) {
                        continue;
                    }
                    let c = if clean_text && (matches!(c, '\t' | '\n' | '\r') || c.is_whitespace())
                    {
                        ' '
                    } else {
                        c
                    };
                    if chinese && is_chinese(c) {
                        cur.push(' ');
                        cur.push(c);
                        cur.push(' ');
                    } else {
                        cur.push(c);
                    }
                }
                if strip_accents {
                    cur = cur
                        .nfd()
                        .filter(|&c| get_general_category(c) != G::NonspacingMark)
                        .collect();
                }
                if lowercase {
                    out.extend(cur.chars().flat_map(char::to_lowercase));
                } else {
                    *out = cur;
                }
            }
            Norm::Lowercase => out.extend(s.chars().flat_map(char::to_lowercase)),
            Norm::StripAccents => out.extend(
                s.chars()
                    .filter(|&c| get_general_category(c) != G::NonspacingMark),
            ),
            Norm::Nfc => out.extend(s.nfc()),
            Norm::Nfd => out.extend(s.nfd()),
            Norm::Nfkc => out.extend(s.nfkc()),
            Norm::Nfkd => out.extend(s.nfkd()),
        }
    }
}

#[derive(Default)]
struct Scratch {
    cache: FxHashMap<Box<[u8]>, u32>,
    norm: String,
    tmp: String,
    buf: String,
}

/// A WordPiece vocabulary with its normaliser, pre-tokenizer and added tokens.
pub struct WordPiece {
    vocab: FxHashMap<Box<str>, u32>,
    unk: u32,
    prefix: String,
    max_chars: usize,
    norms: Vec<Norm>,
    pre: Pre,
    /// Whether clean_text runs first (then some whitespace is removed rather than splitting).
    clean_text: bool,
    pub(crate) added: AddedTokens,
    pub(crate) vocab_size: usize,
    scratch: ThreadLocal<RefCell<Scratch>>,
}

/// What a WordPiece is built from.
pub(crate) struct WordPieceSpec {
    pub vocab: FxHashMap<String, u32>,
    pub unk: String,
    pub prefix: String,
    pub max_chars: usize,
    pub norms: Vec<Norm>,
    pub pre: Pre,
    pub added: AddedTokens,
}

/// A piece of a WordPiece walk.
pub(crate) enum WPiece<'a> {
    /// Whitespace: no tokens.
    Space,
    /// A word of the original text.
    Word(&'a str),
    Added(u32),
}

impl WordPiece {
    pub(crate) fn new(spec: WordPieceSpec) -> crate::Result<WordPiece> {
        let unk = spec.vocab.get(&spec.unk).copied().ok_or_else(|| {
            crate::Error::Tokenizer(format!(
                "WordPiece unk_token {:?} is not in the vocabulary",
                spec.unk
            ))
        })?;
        let clean_text = matches!(
            spec.norms.first(),
            Some(Norm::Bert {
                clean_text: true,
                ..
            })
        );
        let max_id = spec
            .vocab
            .values()
            .copied()
            .chain(spec.added.ids())
            .max()
            .map_or(0, |m| m as usize + 1);
        Ok(WordPiece {
            vocab_size: max_id.max(spec.vocab.len()),
            vocab: spec
                .vocab
                .into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v))
                .collect(),
            unk,
            prefix: spec.prefix,
            max_chars: spec.max_chars,
            norms: spec.norms,
            pre: spec.pre,
            clean_text,
            added: spec.added,
            scratch: ThreadLocal::new(),
        })
    }

    /// Whitespace that separates words after normalisation (clean_text removes some instead).
    #[inline]
    fn is_sep(&self, c: char) -> bool {
        if self.clean_text {
            matches!(c, '\t' | '\n' | '\r' | ' ') || (c.is_whitespace() && !is_control(c))
        } else {
            c.is_whitespace()
        }
    }

    #[inline]
    fn is_sep_at(&self, text: &str, i: usize) -> (bool, usize) {
        let b = text.as_bytes().get(i).copied().unwrap_or(b'x');
        if b < 0x80 {
            return (self.is_sep(b as char), 1);
        }
        match text.get(i..).and_then(|s| s.chars().next()) {
            Some(c) => (self.is_sep(c), c.len_utf8()),
            None => (false, 1),
        }
    }

    /// Calls `f(start, end, piece)` for each whitespace run, word and added token.
    pub(crate) fn walk<F: FnMut(usize, usize, WPiece<'_>)>(&self, text: &str, f: &mut F) {
        self.added.segments(text, &mut |x| match x {
            Ok((s, e)) => {
                let mut i = s;
                while i < e {
                    let (sep, _) = self.is_sep_at(text, i);
                    let mut j = i;
                    while j < e {
                        let (k, l) = self.is_sep_at(text, j);
                        // Each newline starts its own whitespace piece, so cutting a text at a
                        // newline never changes the pieces.
                        if k != sep || (sep && j > i && text.as_bytes().get(j) == Some(&b'\n')) {
                            break;
                        }
                        j += l;
                    }
                    let j = j.min(e).max(i + 1);
                    if sep {
                        f(i, j, WPiece::Space);
                    } else {
                        f(i, j, WPiece::Word(text.get(i..j).unwrap_or("")));
                    }
                    i = j;
                }
            }
            Err(Match { start, end, id }) => f(start, end, WPiece::Added(id)),
        });
    }

    fn normalize(&self, word: &str, out: &mut String, tmp: &mut String) {
        out.clear();
        out.push_str(word);
        for n in &self.norms {
            n.apply(out, tmp);
            std::mem::swap(out, tmp);
        }
    }

    /// Calls `f(word)` for each pre-token of a normalised string, with its byte range.
    fn pre_split<F: FnMut(usize, usize)>(&self, s: &str, f: &mut F) {
        let mut start: Option<usize> = None;
        let mut kind = 0u8; // Whitespace pre-tokenizer: 1 = word chars, 2 = other
        for (i, c) in s.char_indices() {
            let end = i + c.len_utf8();
            if c.is_whitespace() {
                if let Some(st) = start.take() {
                    f(st, i);
                }
                continue;
            }
            match self.pre {
                Pre::Bert if is_punct(c) => {
                    if let Some(st) = start.take() {
                        f(st, i);
                    }
                    f(i, end);
                }
                Pre::Whitespace => {
                    let k = if is_word(c) { 1 } else { 2 };
                    if start.is_some() && k != kind {
                        if let Some(st) = start.take() {
                            f(st, i);
                        }
                    }
                    kind = k;
                    start.get_or_insert(i);
                }
                _ => {
                    start.get_or_insert(i);
                }
            }
        }
        if let Some(st) = start {
            f(st, s.len());
        }
    }

    /// Greedy longest-match-first; calls `out(id, byte_end)` per sub-token.
    fn wordpiece<F: FnMut(u32, usize)>(&self, w: &str, buf: &mut String, out: &mut F) {
        if w.chars().count() > self.max_chars {
            out(self.unk, w.len());
            return;
        }
        // Collect first so an unmatchable tail turns the whole word into [UNK].
        let mut toks: Vec<(u32, usize)> = Vec::with_capacity(4);
        let mut start = 0;
        while start < w.len() {
            let mut end = w.len();
            let mut found = None;
            while start < end {
                buf.clear();
                if start > 0 {
                    buf.push_str(&self.prefix);
                }
                buf.push_str(w.get(start..end).unwrap_or(""));
                if let Some(&id) = self.vocab.get(buf.as_str()) {
                    found = Some(id);
                    break;
                }
                end -= w
                    .get(..end)
                    .and_then(|s| s.chars().next_back())
                    .map_or(1, char::len_utf8);
            }
            match found {
                Some(id) => toks.push((id, end)),
                None => {
                    out(self.unk, w.len());
                    return;
                }
            }
            start = end;
        }
        for (id, e) in toks {
            out(id, e);
        }
    }

    /// Token count of a word, cached per thread.
    pub(crate) fn word_count(&self, word: &str) -> u32 {
        let cell = self.scratch.get_or_default();
        let Ok(mut sc) = cell.try_borrow_mut() else {
            return self.word_count_uncached(word, &mut Scratch::default());
        };
        if word.len() <= CACHE_MAX_PIECE {
            if let Some(&c) = sc.cache.get(word.as_bytes()) {
                return c;
            }
        }
        let c = self.word_count_uncached(word, &mut sc);
        if word.len() <= CACHE_MAX_PIECE {
            if sc.cache.len() >= CACHE_CAP {
                sc.cache.clear();
            }
            sc.cache.insert(word.as_bytes().into(), c);
        }
        c
    }

    fn word_count_uncached(&self, word: &str, sc: &mut Scratch) -> u32 {
        let Scratch { norm, tmp, buf, .. } = sc;
        self.normalize(word, norm, tmp);
        let mut n = 0u32;
        self.pre_split(norm, &mut |a, b| {
            self.wordpiece(norm.get(a..b).unwrap_or(""), buf, &mut |_, _| n += 1)
        });
        n
    }

    /// Appends the ids of a word.
    pub(crate) fn word_ids(&self, word: &str, ids: &mut Vec<u32>) {
        let mut sc = Scratch::default();
        let Scratch { norm, tmp, buf, .. } = &mut sc;
        self.normalize(word, norm, tmp);
        self.pre_split(norm, &mut |a, b| {
            self.wordpiece(norm.get(a..b).unwrap_or(""), buf, &mut |id, _| ids.push(id))
        });
    }

    /// Byte ends of a word's tokens in the original text. Normalisation is replayed one
    /// character at a time to align the normalised text with the original (exact for the
    /// per-character normalisers; an approximation where NFC/NFKC compose across characters).
    pub(crate) fn word_ends(&self, word: &str) -> Vec<usize> {
        let mut norm = String::new();
        let mut map: Vec<usize> = vec![]; // normalised byte → original end of its char
        let (mut one, mut tmp) = (String::new(), String::new());
        for (i, c) in word.char_indices() {
            one.clear();
            one.push(c);
            for n in &self.norms {
                n.apply(&one, &mut tmp);
                std::mem::swap(&mut one, &mut tmp);
            }
            norm.push_str(&one);
            map.extend(std::iter::repeat_n(i + c.len_utf8(), one.len()));
        }
        let mut ends = vec![];
        let mut buf = String::new();
        self.pre_split(&norm, &mut |a, b| {
            self.wordpiece(norm.get(a..b).unwrap_or(""), &mut buf, &mut |_, e| {
                if let Some(&o) = map.get(a + e - 1) {
                    ends.push(o);
                }
            })
        });
        ends.retain(|&e| e > 0 && e < word.len());
        ends.sort_unstable();
        ends.dedup();
        ends.push(word.len());
        ends
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> WordPiece {
        let words = [
            "[UNK]", "hello", "world", "un", "##aff", "##able", ",", "a", "##b",
        ];
        WordPiece::new(WordPieceSpec {
            vocab: words
                .iter()
                .enumerate()
                .map(|(i, w)| (w.to_string(), i as u32))
                .collect(),
            unk: "[UNK]".into(),
            prefix: "##".into(),
            max_chars: 100,
            norms: vec![Norm::Bert {
                clean_text: true,
                chinese: true,
                strip_accents: true,
                lowercase: true,
            }],
            pre: Pre::Bert,
            added: AddedTokens::default(),
        })
        .unwrap()
    }

    #[test]
    fn greedy_longest_first() {
        let wp = toy();
        let mut ids = vec![];
        wp.word_ids("Unaffable,", &mut ids);
        assert_eq!(ids, [3, 4, 5, 6]);
        assert_eq!(wp.word_count("Héllo"), 1);
        assert_eq!(wp.word_count("xyz"), 1); // [UNK]
        assert_eq!(wp.word_ends("unaffable"), [2, 5, 9]);
    }

    #[test]
    fn whitespace_pieces_count_nothing() {
        let wp = toy();
        let mut out = vec![];
        wp.walk("hello \n world", &mut |s, e, p| {
            out.push((s, e, matches!(p, WPiece::Space)))
        });
        assert_eq!(
            out,
            [(0, 5, false), (5, 6, true), (6, 8, true), (8, 13, false)]
        );
    }
}
