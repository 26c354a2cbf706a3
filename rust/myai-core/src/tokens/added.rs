//! Added (special) tokens: matched in the raw text before normalisation and pre-tokenisation,
//! each occurrence one token, as HuggingFace's AddedVocabulary does (leftmost, then longest).

/// One added token.
#[derive(Clone, Debug)]
pub(crate) struct Added {
    pub content: Box<[u8]>,
    pub id: u32,
    pub lstrip: bool,
    pub rstrip: bool,
    pub single_word: bool,
}

/// The added tokens of a vocabulary, indexed by first byte.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddedTokens {
    /// Longest first, so the first that matches at a position is the longest.
    tokens: Vec<Added>,
    first: Vec<u8>,
    is_first: Box<[bool]>,
}

/// An occurrence: `[start, end)` is what the token covers (stripped whitespace included).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Match {
    pub start: usize,
    pub end: usize,
    pub id: u32,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl AddedTokens {
    pub(crate) fn new(mut tokens: Vec<Added>) -> Self {
        tokens.retain(|t| !t.content.is_empty());
        tokens.sort_by(|a, b| b.content.len().cmp(&a.content.len()).then(a.id.cmp(&b.id)));
        let mut is_first = vec![false; 256].into_boxed_slice();
        let mut first = vec![];
        for t in &tokens {
            if let Some(&b) = t.content.first() {
                if let Some(slot) = is_first.get_mut(b as usize) {
                    if !*slot {
                        *slot = true;
                        first.push(b);
                    }
                }
            }
        }
        AddedTokens {
            tokens,
            first,
            is_first,
        }
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.tokens.iter().map(|t| t.id)
    }

    /// Whether cutting a text at a newline followed by a non-space could cut through an
    /// occurrence (a token holding such a newline, or one that swallows whitespace).
    pub(crate) fn may_span_newline(&self) -> bool {
        self.tokens.iter().any(|t| {
            t.lstrip
                || t.rstrip
                || t.content
                    .windows(2)
                    .any(|w| w[0] == b'\n' && !w[1].is_ascii_whitespace())
        })
    }

    /// Whether an added token starts exactly at byte `p`.
    pub(crate) fn starts_at(&self, text: &str, p: usize) -> bool {
        let rest = text.as_bytes().get(p..).unwrap_or(&[]);
        match rest.first() {
            Some(&b) if self.is_first.get(b as usize).copied().unwrap_or(false) => {
                self.tokens.iter().any(|t| rest.starts_with(&t.content))
            }
            _ => false,
        }
    }

    fn candidates<'a>(&'a self, b: &'a [u8], from: usize) -> Box<dyn Iterator<Item = usize> + 'a> {
        let hay = b.get(from..).unwrap_or(&[]);
        match self.first.as_slice() {
            [x] => Box::new(memchr::memchr_iter(*x, hay).map(move |p| p + from)),
            [x, y] => Box::new(memchr::memchr2_iter(*x, *y, hay).map(move |p| p + from)),
            [x, y, z] => Box::new(memchr::memchr3_iter(*x, *y, *z, hay).map(move |p| p + from)),
            _ => Box::new(
                hay.iter()
                    .enumerate()
                    .filter(|(_, &c)| self.is_first.get(c as usize).copied().unwrap_or(false))
                    .map(move |(p, _)| p + from),
            ),
        }
    }

    /// The next occurrence at or after `from`, or None.
    pub(crate) fn find(&self, text: &str, from: usize) -> Option<Match> {
        if self.tokens.is_empty() {
            return None;
        }
        let b = text.as_bytes();
        for p in self.candidates(b, from) {
            if !text.is_char_boundary(p) {
                continue;
            }
            let rest = b.get(p..).unwrap_or(&[]);
            for t in &self.tokens {
                if !rest.starts_with(&t.content) {
                    continue;
                }
                let stop = p + t.content.len();
                if t.single_word {
                    let before = text.get(..p).and_then(|s| s.chars().next_back());
                    let after = text.get(stop..).and_then(|s| s.chars().next());
                    if before.is_some_and(is_word_char) || after.is_some_and(is_word_char) {
                        continue;
                    }
                }
                let mut start = p;
                if t.lstrip {
                    let head = text.get(from..p).unwrap_or("");
                    start = from + head.trim_end().len();
                }
                let mut end = stop;
                if t.rstrip {
                    let tail = text.get(stop..).unwrap_or("");
                    end = stop + (tail.len() - tail.trim_start().len());
                }
                return Some(Match {
                    start,
                    end,
                    id: t.id,
                });
            }
        }
        None
    }

    /// Calls `f(Ok((start, end)))` for each stretch of ordinary text and `f(Err(match))` for
    /// each added token, in order.
    #[inline]
    pub(crate) fn segments<F: FnMut(std::result::Result<(usize, usize), Match>)>(
        &self,
        text: &str,
        f: &mut F,
    ) {
        if self.tokens.is_empty() {
            if !text.is_empty() {
                f(Ok((0, text.len())));
            }
            return;
        }
        let mut at = 0;
        while at < text.len() {
            match self.find(text, at) {
                Some(m) => {
                    if m.start > at {
                        f(Ok((at, m.start)));
                    }
                    f(Err(m));
                    at = m.end.max(at + 1);
                }
                None => {
                    f(Ok((at, text.len())));
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str, id: u32) -> Added {
        Added {
            content: s.as_bytes().into(),
            id,
            lstrip: false,
            rstrip: false,
            single_word: false,
        }
    }

    #[test]
    fn longest_leftmost() {
        let a = AddedTokens::new(vec![tok("<a>", 1), tok("<a><b>", 2), tok("<b>", 3)]);
        let mut out = vec![];
        a.segments("x<a><b>y<b>", &mut |x| match x {
            Ok((s, e)) => out.push(format!("s{s}-{e}")),
            Err(m) => out.push(format!("t{}", m.id)),
        });
        assert_eq!(out, ["s0-1", "t2", "s7-8", "t3"]);
    }

    #[test]
    fn strips() {
        let mut t = tok("<m>", 5);
        t.lstrip = true;
        t.rstrip = true;
        let a = AddedTokens::new(vec![t]);
        let m = a.find("ab  <m>  c", 0).unwrap();
        assert_eq!((m.start, m.end), (2, 9));
    }
}
