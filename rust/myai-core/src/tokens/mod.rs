//! Token counting exactly as the model in use counts, fast.
//!
//! Three kinds of [`Tokenizer`]: byte-level BPE (GPT-2 family; from a HuggingFace
//! `tokenizer.json` or from the vocabulary inside a GGUF model file), WordPiece (BERT family,
//! from a `tokenizer.json`), and a vocabulary-free estimator calibrated on SmolLM2.
//!
//! Counts never include the special tokens a model adds around a sequence (BOS, `[CLS]`,
//! `[SEP]`); an added/special token that appears in the text counts as one token, as in
//! HuggingFace `tokenizers`. A text's count is the sum of its pre-tokenization pieces' counts
//! (merges never cross pieces), so piece counts are cached per thread and long texts are cut at
//! newlines and counted in parallel.

mod added;
mod bpe;
mod estimate;
mod gguf;
mod hfjson;
mod pretok;
mod wordpiece;

use std::path::Path;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::{Error, Result};
use added::{Added, AddedTokens};
use bpe::{Bpe, BpeSpec, Piece};
use pretok::{Digits, Splitter};
use wordpiece::{WPiece, WordPiece};

/// Splits text into pre-tokenization pieces and counts the tokens of each.
/// Contract: pieces are contiguous, in order, cover the text exactly, each non-empty;
/// count(text) == sum of the piece counts; and for any byte position p where
/// `self.is_cut(text, p)` (text[p] == b'\n' and text[p+1] is not whitespace, narrowed by a
/// tokenizer where that is not enough), the pieces of text equal the pieces of text[..p] followed
/// by the pieces of text[p..] (so a long text can be split there and counted in parallel).
pub trait TokenCounter: Send + Sync {
    /// Calls f(start, end, tokens) for each piece, byte offsets into text.
    fn for_each_piece(&self, text: &str, f: &mut dyn FnMut(usize, usize, u32));
    /// Exact number of tokens of text (special tokens not added).
    fn count(&self, text: &str) -> usize;
    /// Byte end offsets of the tokens of one piece, ascending, last == piece.len(); used to cut a
    /// piece longer than a chunk. An end that would fall inside a UTF-8 character is moved to the
    /// next character boundary (merge such tokens).
    fn token_ends(&self, piece: &str) -> Vec<usize>;
    /// Whether the newline-split part of the contract holds for this tokenizer. It does for
    /// every tokenizer but those whose pieces can span a whole line: a byte-level BPE without
    /// its regex split, one that adds a prefix space to the text, or one with added tokens that
    /// swallow neighbouring whitespace. Callers must not split texts where this is false.
    fn splittable(&self) -> bool {
        true
    }
    /// Whether text may be cut at byte p (see the contract). The default is a newline followed
    /// by a non-whitespace character; [`Tokenizer`] narrows it to a newline followed by a letter
    /// or punctuation (not a number: `Digits` keeps `"\n\n"` whole before a digit) that does not
    /// start an added token (a whitespace run before an added token is not given back either).
    fn is_cut(&self, text: &str, p: usize) -> bool {
        text.as_bytes().get(p) == Some(&b'\n')
            && text
                .get(p + 1..)
                .and_then(|s| s.chars().next())
                .is_some_and(|c| !c.is_whitespace())
    }
}

/// Below this size a text is counted on one thread.
const PAR_MIN_BYTES: usize = 256 * 1024;
/// Smallest block a long text is cut into for parallel counting.
const PAR_BLOCK_BYTES: usize = 64 * 1024;

enum Inner {
    Bpe(Box<Bpe>),
    WordPiece(Box<WordPiece>),
    Estimate,
}

/// A tokenizer: byte-level BPE, WordPiece, or the estimator. Cheap to share across threads.
pub struct Tokenizer {
    name: String,
    inner: Inner,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({:?}, {})", self.name, self.kind())
    }
}

/// llama.cpp `tokenizer.ggml.pre` values that a byte-level splitter reproduces.
fn gguf_splitter(pre: &str) -> Option<Splitter> {
    match pre {
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            Some(Splitter::SMOLLM)
        }
        "gpt2" | "default" | "mpt" | "olmo" | "jais" | "gpt-2" => Some(Splitter {
            digits: Digits::Off,
            regex: true,
        }),
        _ => None,
    }
}

impl Tokenizer {
    /// Loads a HuggingFace `tokenizer.json` file (BPE with ByteLevel, or WordPiece).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let json =
            std::fs::read_to_string(path).map_err(|e| Error::Tokenizer(format!("{shown}: {e}")))?;
        let name = path
            .file_stem()
            .map_or_else(|| shown.clone(), |s| s.to_string_lossy().into_owned());
        Self::build_json(&json, name).map_err(|e| match e {
            Error::Tokenizer(m) => Error::Tokenizer(format!("{shown}: {m}")),
            other => other,
        })
    }

    fn build_json(json: &str, name: String) -> Result<Tokenizer> {
        let inner = match hfjson::build(json)? {
            hfjson::Built::Bpe(b) => Inner::Bpe(b),
            hfjson::Built::WordPiece(w) => Inner::WordPiece(w),
        };
        Ok(Tokenizer { name, inner })
    }

    /// Loads the BPE vocabulary stored in a GGUF model file (metadata only; tensors unread).
    pub fn from_gguf(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let g = gguf::read_vocab(path)?;
        let err = |m: String| Error::Tokenizer(format!("{shown}: {m}"));
        match g.model.as_deref() {
            Some("gpt2") => {}
            Some(m) => {
                return Err(err(format!(
                    "tokenizer.ggml.model {m:?} is not supported (only \"gpt2\", byte-level BPE)"
                )))
            }
            None => return Err(err("no tokenizer.ggml.model in the metadata".into())),
        }
        let pre = g.pre.as_deref().unwrap_or("default");
        let splitter = gguf_splitter(pre)
            .ok_or_else(|| err(format!("tokenizer.ggml.pre {pre:?} is not supported")))?;
        if g.tokens.is_empty() {
            return Err(err("tokenizer.ggml.tokens is missing or empty".into()));
        }
        let mut vocab: FxHashMap<String, u32> = FxHashMap::default();
        vocab.reserve(g.tokens.len());
        let mut added = vec![];
        for (i, t) in g.tokens.iter().enumerate() {
            let id = u32::try_from(i).map_err(|_| err("too many tokens".into()))?;
            vocab.entry(t.clone()).or_insert(id);
            // Control (3) and user-defined (4) tokens are matched whole in text, as HF does.
            if matches!(g.token_type.get(i), Some(3) | Some(4)) {
                added.push(Added {
                    content: t.as_bytes().into(),
                    id,
                    lstrip: false,
                    rstrip: false,
                    single_word: false,
                });
            }
        }
        let merges = g
            .merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                err("a tokenizer.ggml.merges entry is not two tokens separated by a space".into())
            })?;
        let bpe = Bpe::new(BpeSpec {
            vocab,
            merges,
            unk: None,
            ignore_merges: false,
            splitter,
            add_prefix_space: false,
            added: AddedTokens::new(added),
        })
        .map_err(|e| match e {
            Error::Tokenizer(m) => err(m),
            other => other,
        })?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        let base = g.basename.or(stem).unwrap_or_else(|| "gguf".into());
        Ok(Tokenizer {
            name: format!("{} (gguf bpe)", base.to_lowercase()),
            inner: Inner::Bpe(Box::new(bpe)),
        })
    }

    /// The vocabulary-free estimator (calibrated on SmolLM2 over English prose).
    pub fn estimator() -> Tokenizer {
        Tokenizer {
            name: "estimate".into(),
            inner: Inner::Estimate,
        }
    }

    /// A human-readable name: "smollm2 (gguf bpe)", the tokenizer.json file stem, "estimate".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// "bpe", "wordpiece" or "estimate".
    pub fn kind(&self) -> &'static str {
        match self.inner {
            Inner::Bpe(_) => "bpe",
            Inner::WordPiece(_) => "wordpiece",
            Inner::Estimate => "estimate",
        }
    }

    /// Number of token ids (vocabulary plus added tokens); 0 for the estimator.
    pub fn vocab_size(&self) -> usize {
        match &self.inner {
            Inner::Bpe(b) => b.vocab_size,
            Inner::WordPiece(w) => w.vocab_size,
            Inner::Estimate => 0,
        }
    }

    /// Token ids of `text` (no special tokens added). The estimator has no ids: an error.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 4 + 1);
        match &self.inner {
            Inner::Bpe(b) => b.with_scratch(|sc| {
                let push = |bytes: &[u8], ids: &mut Vec<u32>, sc: &mut bpe::Scratch| {
                    b.merge_piece(bytes, sc);
                    ids.extend(sc.syms.iter().map(|s| s.id));
                };
                b.walk(text, &mut |_, _, p| match p {
                    Piece::Bytes(x) => push(x, &mut ids, sc),
                    Piece::Two(x, y) => {
                        push(x, &mut ids, sc);
                        push(y, &mut ids, sc);
                    }
                    Piece::Added(id) => ids.push(id),
                })
            }),
            Inner::WordPiece(w) => w.walk(text, &mut |_, _, p| match p {
                WPiece::Space => {}
                WPiece::Word(s) => w.word_ids(s, &mut ids),
                WPiece::Added(id) => ids.push(id),
            }),
            Inner::Estimate => {
                return Err(Error::invalid(
                    "the estimator has no vocabulary: it cannot encode",
                ))
            }
        }
        Ok(ids)
    }

    /// Counts on the calling thread.
    fn count_serial(&self, text: &str) -> usize {
        match &self.inner {
            Inner::Bpe(b) => b.with_scratch(|sc| {
                let mut n = 0usize;
                b.walk(text, &mut |_, _, p| {
                    n += match p {
                        Piece::Bytes(x) => b.piece_count(x, sc),
                        Piece::Two(x, y) => b.piece_count(x, sc) + b.piece_count(y, sc),
                        Piece::Added(_) => 1,
                    } as usize
                });
                n
            }),
            Inner::WordPiece(w) => {
                let mut n = 0usize;
                w.walk(text, &mut |_, _, p| {
                    n += match p {
                        WPiece::Space => 0,
                        WPiece::Word(s) => w.word_count(s),
                        WPiece::Added(_) => 1,
                    } as usize
                });
                n
            }
            Inner::Estimate => {
                let mut n = 0usize;
                estimate::walk(text, &mut |_, _, c| n += c as usize);
                n
            }
        }
    }

    /// Token counts of many texts, in parallel.
    pub fn count_batch(&self, texts: &[&str]) -> Vec<usize> {
        texts.par_iter().map(|t| self.count(t)).collect()
    }
}

impl std::str::FromStr for Tokenizer {
    type Err = Error;

    /// Parses a HuggingFace `tokenizer.json` document (named "tokenizer.json").
    fn from_str(json: &str) -> Result<Tokenizer> {
        Tokenizer::build_json(json, "tokenizer.json".into())
    }
}

impl TokenCounter for Tokenizer {
    fn for_each_piece(&self, text: &str, f: &mut dyn FnMut(usize, usize, u32)) {
        match &self.inner {
            Inner::Bpe(b) => b.with_scratch(|sc| {
                b.walk(text, &mut |s, e, p| {
                    let n = match p {
                        Piece::Bytes(x) => b.piece_count(x, sc),
                        Piece::Two(x, y) => b.piece_count(x, sc) + b.piece_count(y, sc),
                        Piece::Added(_) => 1,
                    };
                    f(s, e, n)
                })
            }),
            Inner::WordPiece(w) => w.walk(text, &mut |s, e, p| {
                let n = match p {
                    WPiece::Space => 0,
                    WPiece::Word(x) => w.word_count(x),
                    WPiece::Added(_) => 1,
                };
                f(s, e, n)
            }),
            Inner::Estimate => estimate::walk(text, &mut |s, e, n| f(s, e, n)),
        }
    }

    fn count(&self, text: &str) -> usize {
        let threads = rayon::current_num_threads();
        if text.len() < PAR_MIN_BYTES || threads < 2 || !self.splittable() {
            return self.count_serial(text);
        }
        let target = (text.len() / (threads * 4)).max(PAR_BLOCK_BYTES);
        let cuts = pretok::split_points(text, target, |t, p| self.is_cut(t, p));
        cuts.par_windows(2)
            .map(|w| self.count_serial(text.get(w[0]..w[1]).unwrap_or("")))
            .sum()
    }

    fn token_ends(&self, piece: &str) -> Vec<usize> {
        let mut ends: Vec<usize> = vec![];
        match &self.inner {
            Inner::Bpe(b) => b.with_scratch(|sc| {
                let add =
                    |base: usize, bytes: &[u8], sc: &mut bpe::Scratch, ends: &mut Vec<usize>| {
                        b.merge_piece(bytes, sc);
                        let syms = &sc.syms;
                        for (k, _) in syms.iter().enumerate() {
                            let end = syms.get(k + 1).map_or(bytes.len(), |n| n.start as usize);
                            ends.push(base + end);
                        }
                    };
                b.walk(piece, &mut |s, e, p| match p {
                    Piece::Bytes(x) => add(s, x, sc, &mut ends),
                    // The prefix space is not in the text: its token ends where the text starts.
                    Piece::Two(_, _) | Piece::Added(_) => ends.push(e),
                })
            }),
            Inner::WordPiece(w) => w.walk(piece, &mut |s, e, p| match p {
                WPiece::Space => ends.push(e),
                WPiece::Word(x) => ends.extend(w.word_ends(x).into_iter().map(|o| s + o)),
                WPiece::Added(_) => ends.push(e),
            }),
            Inner::Estimate => estimate::walk(piece, &mut |s, e, _| {
                let part = piece.get(s..e).unwrap_or("");
                let n = estimate::piece_tokens(part) as usize;
                let chars: Vec<usize> =
                    part.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
                for k in 1..=n {
                    if let Some(&o) = chars.get((k * chars.len()).div_ceil(n).saturating_sub(1)) {
                        ends.push(s + o);
                    }
                }
            }),
        }
        // Move ends inside a UTF-8 character to its end, then drop duplicates.
        for e in ends.iter_mut() {
            while *e < piece.len() && !piece.is_char_boundary(*e) {
                *e += 1;
            }
            *e = (*e).min(piece.len());
        }
        ends.retain(|&e| e > 0);
        ends.sort_unstable();
        ends.dedup();
        if ends.last() != Some(&piece.len()) {
            ends.push(piece.len());
        }
        ends
    }

    fn is_cut(&self, text: &str, p: usize) -> bool {
        pretok::newline_cut(text, p)
            && match &self.inner {
                Inner::Bpe(b) => !b.added.starts_at(text, p + 1),
                Inner::WordPiece(w) => !w.added.starts_at(text, p + 1),
                Inner::Estimate => true,
            }
    }

    fn splittable(&self) -> bool {
        match &self.inner {
            Inner::Bpe(b) => b.splitter.regex && !b.add_prefix_space && !b.added.may_span_newline(),
            Inner::WordPiece(w) => !w.added.may_span_newline(),
            Inner::Estimate => true,
        }
    }
}

#[cfg(test)]
mod tests;
