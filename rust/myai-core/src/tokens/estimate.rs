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
//! length below `MAX_LEN`, the mean exact token count of the pieces, and for longer pieces
//! their tokens per byte. The numbers below are that output, lightly smoothed (see `TABLE`).

use super::pretok::{cls_at, newline_cut, Cls, Splitter};

/// Fixed-point unit: one token.
pub(crate) const ONE: u32 = 1024;
/// Pieces shorter than this many bytes are tabulated per class; longer ones use `RATE`.
pub(crate) const MAX_LEN: usize = 16;
/// Number of piece classes.
pub(crate) const NCLS: usize = 9;

/// Class names, for the fitting report.
#[cfg(test)]
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

/// Mean tokens (×1024) per class and byte length 1..MAX_LEN (index 0 unused), as fitted,
/// then smoothed by hand: lengths never seen (0) or seen a handful of times filled from their
/// neighbours and each row made non-decreasing.
#[rustfmt::skip]
pub(crate) static TABLE: [[u32; MAX_LEN]; NCLS] = [
    [0, 1024, 1024, 1024, 1028, 1035, 1070, 1119, 1178, 1268, 1303, 1404, 1532, 1594, 1676, 1738],
    [0, 1024, 1024, 1039, 1131, 1285, 1602, 1830, 2018, 2215, 2352, 2495, 2827, 2960, 3041, 3041],
    [0, 1024, 1024, 1025, 1045, 1125, 1342, 1592, 1951, 2185, 2359, 2565, 2628, 2831, 2831, 2831],
    [0, 1024, 1026, 1079, 1231, 1390, 1878, 1980, 2400, 2450, 2900, 2950, 2950, 2958, 3300, 3400],
    [0, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024],
    [0, 1024, 1044, 1508, 1816, 2068, 2215, 2215, 2600, 2800, 3000, 3200, 3400, 3600, 3800, 4000],
    [0, 1024, 1024, 1024, 1041, 1043, 1043, 1104, 1232, 1232, 1365, 1434, 1434, 1434, 1434, 1434],
    [0, 1024, 1024, 1408, 2048, 2952, 2964, 2964, 2964, 4058, 4058, 4160, 4608, 5120, 5120, 5120],
    [0, 1024, 1024, 1025, 1086, 2042, 2042, 2299, 2970, 3065, 3324, 3324, 3324, 3324, 3324, 3324],
];

/// Tokens (×1024) per byte of pieces of MAX_LEN bytes or more, per class (fitted: total tokens
/// over total bytes of those pieces; the digit class never has such pieces).
pub(crate) static RATE: [u32; NCLS] = [115, 222, 217, 240, 1024, 260, 51, 320, 225];

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
    match row.get(n) {
        Some(&e) => e,
        None => row[MAX_LEN - 1].max(RATE[c].saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))),
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
