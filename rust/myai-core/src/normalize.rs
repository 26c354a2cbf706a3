//! Text normalisation: what every text goes through before it is counted, chunked or indexed.
//!
//! BOM removed, CRLF and lone CR turned into LF, NUL and other control characters (C0 but tab
//! and newline, DEL, C1) removed, Unicode NFC. Invalid UTF-8 in byte input is replaced by
//! U+FFFD and counted, never an error.

use std::borrow::Cow;

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// What [`normalize`] changed, for reports and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NormalizeStats {
    /// Invalid UTF-8 sequences replaced by U+FFFD (byte input only) or lone surrogates replaced.
    pub invalid_sequences: usize,
    /// A leading byte-order mark was removed.
    pub bom_removed: bool,
    /// CRLF pairs and lone CRs turned into LF.
    pub newlines_converted: usize,
    /// Control characters removed (NUL, other C0 but tab/newline, DEL, C1).
    pub controls_removed: usize,
    /// The text was not in NFC and was recomposed.
    pub nfc_applied: bool,
}

#[inline]
fn is_removed_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Bytes that may start something the fast path cannot pass through unchanged: C0 controls
/// but tab and newline, CR, DEL; 0xC2 starts the C1 range (U+0080..U+009F); 0xEF a BOM.
const ATTENTION: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b != 0x09 && b != 0x0a;
        b += 1;
    }
    t[0x7f] = true;
    t[0xc2] = true;
    t[0xef] = true;
    t
};

#[inline]
fn needs_attention(b: u8) -> bool {
    ATTENTION[b as usize]
}

/// True when [`clean`] would change something: a candidate byte confirmed by its neighbours
/// (0xC2 only before a C1 control, 0xEF only as a leading BOM).
fn needs_clean(b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| needs_attention(c)) {
        let p = i + off;
        let real = match b[p] {
            0xc2 => matches!(b.get(p + 1), Some(0x80..=0x9f)),
            0xef => p == 0 && b.get(1) == Some(&0xbb) && b.get(2) == Some(&0xbf),
            _ => true,
        };
        if real {
            return true;
        }
        i = p + 1;
    }
    false
}

/// NFC quick check over the non-ASCII runs only: an ASCII character is a starter with
/// NFC_QC=Yes, so each run (with the character before it) can be checked on its own.
fn is_nfc_fast(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // Skip ASCII eight bytes at a time.
        while i + 8 <= b.len() {
            let w = u64::from_le_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ]);
            if w & 0x8080_8080_8080_8080 != 0 {
                break;
            }
            i += 8;
        }
        while i < b.len() && b[i] < 0x80 {
            i += 1;
        }
        if i >= b.len() {
            return true;
        }
        let start = i.saturating_sub(1);
        while i < b.len() && b[i] >= 0x80 {
            i += 1;
        }
        if is_nfc_quick(text[start..i].chars()) != IsNormalized::Yes {
            return false;
        }
    }
    true
}

/// Normalises a valid UTF-8 string. Borrows when nothing changes (the common case).
pub fn normalize_str(text: &str) -> (Cow<'_, str>, NormalizeStats) {
    let mut stats = NormalizeStats::default();
    let bytes = text.as_bytes();
    let dirty = needs_clean(bytes);
    let cleaned: Cow<'_, str> = if dirty {
        Cow::Owned(clean(text, &mut stats))
    } else {
        Cow::Borrowed(text)
    };
    if is_nfc_fast(&cleaned) {
        return (cleaned, stats);
    }
    let nfc: String = cleaned.nfc().collect();
    if nfc != cleaned {
        stats.nfc_applied = true;
        return (Cow::Owned(nfc), stats);
    }
    (cleaned, stats)
}

fn clean(text: &str, stats: &mut NormalizeStats) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    if chars.peek() == Some(&'\u{feff}') {
        chars.next();
        stats.bom_removed = true;
    }
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
                stats.newlines_converted += 1;
            }
            c if is_removed_control(c) => stats.controls_removed += 1,
            c => out.push(c),
        }
    }
    out
}

/// Normalises bytes that should be UTF-8: invalid sequences become U+FFFD and are counted.
pub fn normalize_bytes(data: &[u8]) -> (String, NormalizeStats) {
    match std::str::from_utf8(data) {
        Ok(s) => {
            let (t, st) = normalize_str(s);
            (t.into_owned(), st)
        }
        Err(_) => {
            let mut invalid = 0usize;
            let mut decoded = String::with_capacity(data.len() + 16);
            for chunk in data.utf8_chunks() {
                decoded.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    decoded.push('\u{fffd}');
                    invalid += 1;
                }
            }
            let (t, mut st) = normalize_str(&decoded);
            st.invalid_sequences += invalid;
            (t.into_owned(), st)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_borrowed() {
        let (t, st) = normalize_str("plain text\nwith\ttabs");
        assert!(matches!(t, Cow::Borrowed(_)));
        assert_eq!(st, NormalizeStats::default());
    }

    #[test]
    fn bom_crlf_controls() {
        let (t, st) = normalize_str("\u{feff}a\r\nb\rc\u{0}d\u{7}e\u{85}f\u{7f}");
        assert_eq!(t, "a\nb\ncdef");
        assert!(st.bom_removed);
        assert_eq!(st.newlines_converted, 2);
        assert_eq!(st.controls_removed, 4);
    }

    #[test]
    fn nfc() {
        let (t, st) = normalize_str("e\u{301}cole");
        assert_eq!(t, "\u{e9}cole");
        assert!(st.nfc_applied);
        let (t, st) = normalize_str("\u{e9}cole \u{5d0}\u{5d1} 中文 🎉");
        assert_eq!(t, "\u{e9}cole \u{5d0}\u{5d1} 中文 🎉");
        assert!(!st.nfc_applied);
    }

    #[test]
    fn invalid_bytes_are_replaced_and_counted() {
        let (t, st) = normalize_bytes(b"ok\xff\xfe then \xc3 end");
        assert_eq!(t, "ok\u{fffd}\u{fffd} then \u{fffd} end");
        assert_eq!(st.invalid_sequences, 3);
    }

    proptest::proptest! {
        #[test]
        fn fast_nfc_check_agrees_with_full_nfc(text in "\\PC{0,80}") {
            let (t, _) = normalize_str(&text);
            let reference: String = t.nfc().collect();
            proptest::prop_assert_eq!(&*t, reference.as_str());
        }

        #[test]
        fn never_panics_and_is_idempotent(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let (t, _) = normalize_bytes(&data);
            let (t2, st2) = normalize_str(&t);
            proptest::prop_assert_eq!(&t, &*t2);
            proptest::prop_assert_eq!(st2, NormalizeStats::default());
        }
    }
}
