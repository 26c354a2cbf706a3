//! The GPT-2 family pre-tokenizer, written by hand (no regex engine on the hot path).
//!
//! It reproduces HuggingFace's `ByteLevel(use_regex=true)` split, i.e. the regex
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, optionally preceded
//! by `Digits` (each number character, or each run of them, is its own piece and a hard boundary
//! for the regex: HF runs the regex on each piece separately, so `\s+(?!\S)` sees a digit as the
//! end of its input). llama.cpp's `smollm`/`starcoder` pre-tokenizer is exactly
//! `Digits(individual) + ByteLevel`.

use unicode_general_category::{get_general_category, GeneralCategory as G};

/// The character classes the regex distinguishes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Cls {
    /// `\p{L}`.
    L,
    /// `\p{N}`.
    N,
    /// `\s` (Unicode White_Space).
    S,
    /// Anything else.
    P,
}

const fn ascii_cls(b: u8) -> Cls {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => Cls::L,
        b'0'..=b'9' => Cls::N,
        b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => Cls::S,
        _ => Cls::P,
    }
}

static ASCII_CLS: [Cls; 128] = {
    let mut t = [Cls::P; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = ascii_cls(i as u8);
        i += 1;
    }
    t
};

/// The regex class of a character.
#[inline]
pub(crate) fn char_cls(c: char) -> Cls {
    if (c as u32) < 128 {
        return ASCII_CLS[c as usize];
    }
    if c.is_whitespace() {
        return Cls::S;
    }
    match get_general_category(c) {
        G::UppercaseLetter
        | G::LowercaseLetter
        | G::TitlecaseLetter
        | G::ModifierLetter
        | G::OtherLetter => Cls::L,
        G::DecimalNumber | G::LetterNumber | G::OtherNumber => Cls::N,
        _ => Cls::P,
    }
}

/// Class and UTF-8 length of the character at byte `i` of `text` (`i` on a char boundary).
#[inline]
pub(crate) fn cls_at(text: &str, i: usize) -> (Cls, usize) {
    let b = text.as_bytes().get(i).copied().unwrap_or(b' ');
    if b < 0x80 {
        return (ASCII_CLS[b as usize], 1);
    }
    match text.get(i..).and_then(|s| s.chars().next()) {
        Some(c) => (char_cls(c), c.len_utf8()),
        None => (Cls::P, 1),
    }
}

/// How `Digits` splits numbers before the regex runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Digits {
    /// No `Digits` pre-tokenizer.
    Off,
    /// `Digits(individual_digits=true)`: each number character alone.
    Individual,
    /// `Digits(individual_digits=false)`: each run of number characters.
    Grouped,
}

/// The byte-level pre-tokenizer configuration (`Digits` then `ByteLevel`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Splitter {
    pub digits: Digits,
    pub regex: bool,
}

impl Splitter {
    /// llama.cpp's `smollm` pre-tokenizer.
    pub(crate) const SMOLLM: Splitter = Splitter {
        digits: Digits::Individual,
        regex: true,
    };

    /// Calls `f(start, end)` for each piece of `text[start..end]` (a segment between added tokens).
    #[inline]
    pub(crate) fn split<F: FnMut(usize, usize)>(
        &self,
        text: &str,
        start: usize,
        end: usize,
        f: &mut F,
    ) {
        let mut i = start;
        while i < end {
            let j = if self.regex {
                self.next_regex(text, i, end)
            } else {
                self.next_plain(text, i, end)
            };
            // A piece always advances; the guard keeps a logic slip from looping forever.
            let j = if j > i { j.min(end) } else { end };
            f(i, j);
            i = j;
        }
    }

    /// End of the run of class `c` starting at `i` (stops at `end`).
    #[inline]
    fn run_end(text: &str, mut i: usize, end: usize, c: Cls) -> usize {
        let b = text.as_bytes();
        while i < end {
            let x = b.get(i).copied().unwrap_or(0);
            if x < 0x80 {
                if ASCII_CLS[x as usize] != c {
                    return i;
                }
                i += 1;
            } else {
                let (k, l) = cls_at(text, i);
                if k != c {
                    return i;
                }
                i += l;
            }
        }
        end
    }

    /// Without the regex only `Digits` splits (or nothing).
    fn next_plain(&self, text: &str, i: usize, end: usize) -> usize {
        if self.digits == Digits::Off {
            return end;
        }
        let (c0, l0) = cls_at(text, i);
        if c0 == Cls::N {
            return if self.digits == Digits::Individual {
                i + l0
            } else {
                Self::run_end(text, i, end, Cls::N)
            };
        }
        let mut j = i + l0;
        while j < end {
            let (c, l) = cls_at(text, j);
            if c == Cls::N {
                break;
            }
            j += l;
        }
        j
    }

    /// End of a run of letters starting at `i`, ASCII fast.
    #[inline(always)]
    fn letters_end(text: &str, mut i: usize, end: usize) -> usize {
        let b = text.as_bytes();
        while i < end {
            match b.get(i) {
                Some(x) if x.is_ascii_alphabetic() => i += 1,
                Some(x) if *x >= 0x80 => return Self::run_end(text, i, end, Cls::L),
                _ => return i,
            }
        }
        end
    }

    /// One match of the GPT-2 regex at `i`.
    #[inline]
    fn next_regex(&self, text: &str, i: usize, end: usize) -> usize {
        let b = text.as_bytes();
        // The common English cases first: " word" and "word".
        match b.get(i) {
            Some(b' ') if i + 1 < end && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) => {
                return Self::letters_end(text, i + 2, end)
            }
            Some(x) if x.is_ascii_alphabetic() => return Self::letters_end(text, i + 1, end),
            _ => {}
        }
        let digits = self.digits != Digits::Off;
        let (c0, l0) = cls_at(text, i);
        if digits && c0 == Cls::N {
            return if self.digits == Digits::Individual {
                i + l0
            } else {
                Self::run_end(text, i, end, Cls::N)
            };
        }
        let at = |k: usize| {
            if k < end {
                b.get(k).copied().unwrap_or(0)
            } else {
                0
            }
        };
        let b0 = at(i);
        if b0 == b'\'' {
            match at(i + 1) {
                b's' | b't' | b'm' | b'd' => return i + 2,
                b'r' | b'v' if at(i + 2) == b'e' => return i + 3,
                b'l' if at(i + 2) == b'l' => return i + 3,
                _ => {}
            }
        }
        if b0 == b' ' && i + 1 < end {
            let (c1, _) = cls_at(text, i + 1);
            if c1 == Cls::L || c1 == Cls::P || (c1 == Cls::N && !digits) {
                return Self::run_end(text, i + 1, end, c1);
            }
        }
        if c0 != Cls::S {
            return Self::run_end(text, i, end, c0);
        }
        // Whitespace: `\s+(?!\S)` gives back the last whitespace char when a non-space follows,
        // unless that would leave nothing, in which case `\s+` takes the whole run.
        let mut j = i;
        let mut last = i;
        while j < end {
            let (c, l) = cls_at(text, j);
            if c != Cls::S {
                break;
            }
            last = j;
            j += l;
        }
        if j >= end {
            return end;
        }
        if digits && cls_at(text, j).0 == Cls::N {
            return j; // the digit starts a new piece: this run ends its input
        }
        if last > i {
            last
        } else {
            j
        }
    }
}

/// Whether a newline at `p` is followed by a character that is neither whitespace nor a number.
/// A number is excluded because `Digits` ends a whitespace run before it without the regex's
/// give-back (`"\n\n4"` is the pieces `"\n\n"`, `"4"`, so it cannot be cut after the first `\n`).
#[inline]
pub(crate) fn newline_cut(text: &str, p: usize) -> bool {
    text.as_bytes().get(p) == Some(&b'\n')
        && p + 1 < text.len()
        && matches!(cls_at(text, p + 1).0, Cls::L | Cls::P)
}

/// Byte offsets where `text` may be cut (positions `p` where `cut(text, p)`), at least `target`
/// bytes apart. Returns `[0, cuts..., len]`.
pub(crate) fn split_points(
    text: &str,
    target: usize,
    cut: impl Fn(&str, usize) -> bool,
) -> Vec<usize> {
    let b = text.as_bytes();
    let mut cuts = vec![0];
    let mut next = target.max(1);
    while next < b.len() {
        let found = memchr::memchr_iter(b'\n', b.get(next..).unwrap_or(&[]))
            .map(|q| next + q)
            .find(|&p| cut(text, p));
        match found {
            Some(p) => {
                cuts.push(p);
                next = p + target.max(1);
            }
            None => break,
        }
    }
    cuts.push(b.len());
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(s: &Splitter, text: &str) -> Vec<String> {
        let mut out = vec![];
        s.split(text, 0, text.len(), &mut |a, b| {
            out.push(text[a..b].to_string())
        });
        out
    }

    #[test]
    fn gpt2_regex_pieces() {
        let g = Splitter {
            digits: Digits::Off,
            regex: true,
        };
        assert_eq!(pieces(&g, "Hello world"), ["Hello", " world"]);
        assert_eq!(pieces(&g, "a  b"), ["a", " ", " b"]);
        assert_eq!(pieces(&g, "a \nb"), ["a", " ", "\n", "b"]);
        assert_eq!(pieces(&g, "it's they're"), ["it", "'s", " they", "'re"]);
        assert_eq!(pieces(&g, "x 123!?"), ["x", " 123", "!?"]);
        assert_eq!(pieces(&g, "end   "), ["end", "   "]);
        assert_eq!(pieces(&g, " 'sx"), [" '", "sx"]);
    }

    #[test]
    fn smollm_digits_are_hard_boundaries() {
        let s = Splitter::SMOLLM;
        assert_eq!(pieces(&s, "x 123"), ["x", " ", "1", "2", "3"]);
        assert_eq!(pieces(&s, "a  1"), ["a", "  ", "1"]);
        assert_eq!(pieces(&s, "1st"), ["1", "st"]);
    }

    #[test]
    fn split_points_are_newlines_before_text() {
        let t = "aaaa\nbbbb\n cccc\ndddd";
        let cuts = split_points(t, 3, newline_cut);
        for w in cuts.windows(2) {
            assert!(w[0] < w[1]);
        }
        for &c in &cuts[1..cuts.len() - 1] {
            assert_eq!(t.as_bytes()[c], b'\n');
            assert_ne!(t.as_bytes()[c + 1], b' ');
        }
    }
}
