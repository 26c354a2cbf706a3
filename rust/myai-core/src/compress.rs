//! Compression statistics of a document and its chunks: the figures the compression monitor
//! reports, computed in one pass over the chunk spans plus one zstd pass over what is stored.
//!
//! Definitions (all exact, from the chunker's spans):
//! - original: the document's bytes and tokens;
//! - chunked: the sum over chunks (overlaps counted once per chunk that holds them);
//! - overlap: what consecutive chunks share; overhead_percent = overlap tokens / original tokens;
//! - dedup savings: the part of duplicate chunks not shared with a neighbour;
//! - stored: the text kept once (overlaps not repeated, duplicates skipped), and its zstd size;
//! - storage_ratio = original bytes / zstd bytes; context_ratio = original tokens / stored tokens;
//! - efficiency = 100 − overhead_percent.

use crate::error::{Error, Result};
use crate::tokens::TokenCounter;

/// A chunk as the chunker returns it: byte offsets and token count.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub tokens: usize,
}

/// The statistics; see the module documentation for the definitions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompressionStats {
    pub original_bytes: usize,
    pub original_tokens: usize,
    pub chunks: usize,
    pub chunked_bytes: usize,
    pub chunked_tokens: usize,
    pub overlap_bytes: usize,
    pub overlap_tokens: usize,
    pub duplicate_chunks: usize,
    pub dedup_saved_bytes: usize,
    pub dedup_saved_tokens: usize,
    pub stored_bytes: usize,
    pub stored_tokens: usize,
    pub zstd_bytes: usize,
    pub storage_ratio: f64,
    pub context_ratio: f64,
    pub overhead_percent: f64,
    pub efficiency: f64,
}

/// Computes the statistics of `text` cut into `spans` (in order, covering the text, as the
/// chunker makes them), `duplicates[i]` telling whether chunk i was skipped as a duplicate.
pub fn stats(text: &str, spans: &[Span], duplicates: &[bool], counter: &dyn TokenCounter, level: i32) -> Result<CompressionStats> {
    if !duplicates.is_empty() && duplicates.len() != spans.len() {
        return Err(Error::invalid(format!("{} duplicate flags for {} chunks", duplicates.len(), spans.len())));
    }
    let mut st = CompressionStats { original_bytes: text.len(), chunks: spans.len(), ..Default::default() };
    let mut stored = Vec::with_capacity(text.len());
    let mut prev_end = 0usize;
    let mut prev_start = 0usize;
    for (i, s) in spans.iter().enumerate() {
        if s.start > s.end || s.end > text.len() || !text.is_char_boundary(s.start) || !text.is_char_boundary(s.end) {
            return Err(Error::invalid(format!("chunk {i} [{}, {}) is not a span of the text", s.start, s.end)));
        }
        if i > 0 && (s.start < prev_start || s.end < prev_end) {
            return Err(Error::invalid(format!("chunk {i} starts or ends before chunk {}", i - 1)));
        }
        let shared_end = prev_end.max(s.start);
        let (ov_bytes, ov_tokens) = if i > 0 && s.start < prev_end {
            (prev_end - s.start, counter.count(&text[s.start..prev_end]))
        } else {
            (0, 0)
        };
        let own_bytes = s.end - shared_end;
        let own_tokens = s.tokens.saturating_sub(ov_tokens);
        st.chunked_bytes += s.end - s.start;
        st.chunked_tokens += s.tokens;
        st.overlap_bytes += ov_bytes;
        st.overlap_tokens += ov_tokens;
        st.original_tokens += own_tokens;
        if duplicates.get(i).copied().unwrap_or(false) {
            st.duplicate_chunks += 1;
            st.dedup_saved_bytes += own_bytes;
            st.dedup_saved_tokens += own_tokens;
        } else {
            stored.extend_from_slice(&text.as_bytes()[shared_end..s.end]);
            st.stored_tokens += own_tokens;
        }
        prev_start = s.start;
        prev_end = prev_end.max(s.end);
    }
    if spans.is_empty() && !text.is_empty() {
        st.original_tokens = counter.count(text);
        st.stored_tokens = st.original_tokens;
        stored.extend_from_slice(text.as_bytes());
    }
    st.stored_bytes = stored.len();
    st.zstd_bytes = if stored.is_empty() { 0 } else { zstd_compress(&stored, level)?.len() };
    st.storage_ratio = ratio(st.original_bytes, st.zstd_bytes);
    st.context_ratio = ratio(st.original_tokens, st.stored_tokens);
    st.overhead_percent = if st.original_tokens == 0 { 0.0 } else { 100.0 * st.overlap_tokens as f64 / st.original_tokens as f64 };
    st.efficiency = 100.0 - st.overhead_percent;
    Ok(st)
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        if a == 0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else {
        a as f64 / b as f64
    }
}

/// zstd at `level` (1..=22).
pub fn zstd_compress(data: &[u8], level: i32) -> Result<Vec<u8>> {
    if !(1..=22).contains(&level) {
        return Err(Error::invalid(format!("zstd level must be within 1..=22, got {level}")));
    }
    zstd::bulk::compress(data, level).map_err(|e| Error::invalid(format!("zstd compression failed: {e}")))
}

/// Decompresses a zstd frame; refuses frames that would exceed `max_size` bytes.
pub fn zstd_decompress(data: &[u8], max_size: usize) -> Result<Vec<u8>> {
    let size = zstd::zstd_safe::get_frame_content_size(data)
        .map_err(|_| Error::corrupt("zstd frame", "not a zstd frame or truncated header"))?;
    if let Some(n) = size {
        if n as usize > max_size {
            return Err(Error::corrupt("zstd frame", format!("declares {n} bytes, over the limit of {max_size}")));
        }
    }
    zstd::bulk::decompress(data, max_size).map_err(|e| Error::corrupt("zstd frame", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bytes;
    impl TokenCounter for Bytes {
        fn for_each_piece(&self, text: &str, f: &mut dyn FnMut(usize, usize, u32)) {
            if !text.is_empty() {
                f(0, text.len(), text.len() as u32);
            }
        }
        fn count(&self, text: &str) -> usize {
            text.len()
        }
        fn token_ends(&self, piece: &str) -> Vec<usize> {
            (1..=piece.len()).collect()
        }
    }

    fn sp(start: usize, end: usize) -> Span {
        Span { start, end, tokens: end - start }
    }

    #[test]
    fn overlap_and_dedup_figures() {
        let text = "abcdefghij".repeat(10); // 100 bytes
        let spans = [sp(0, 40), sp(30, 70), sp(60, 100)];
        let st = stats(&text, &spans, &[false, true, false], &Bytes, 3).unwrap();
        assert_eq!(st.original_bytes, 100);
        assert_eq!(st.original_tokens, 100);
        assert_eq!(st.chunked_tokens, 120);
        assert_eq!(st.overlap_tokens, 20);
        assert_eq!(st.dedup_saved_tokens, 30);
        assert_eq!(st.stored_tokens, 70);
        assert_eq!(st.stored_bytes, 70);
        assert!((st.overhead_percent - 20.0).abs() < 1e-9);
        assert!((st.efficiency - 80.0).abs() < 1e-9);
        assert!(st.storage_ratio > 1.0, "repetitive text compresses");
        assert!((st.context_ratio - 100.0 / 70.0).abs() < 1e-9);
    }

    #[test]
    fn bad_input() {
        assert!(stats("abc", &[sp(0, 5)], &[], &Bytes, 3).is_err());
        assert!(stats("abc", &[sp(0, 3)], &[true, false], &Bytes, 3).is_err());
        assert!(stats("abc", &[sp(0, 3)], &[], &Bytes, 0).is_err());
        assert!(stats("abcdef", &[sp(2, 6), sp(0, 3)], &[], &Bytes, 3).is_err());
        let st = stats("", &[], &[], &Bytes, 3).unwrap();
        assert_eq!(st.storage_ratio, 1.0);
    }

    #[test]
    fn zstd_round_trip_and_corrupt() {
        let data = b"hello hello hello hello".repeat(100);
        let z = zstd_compress(&data, 3).unwrap();
        assert_eq!(zstd_decompress(&z, 1 << 20).unwrap(), data);
        assert!(zstd_decompress(&z, 10).is_err());
        assert!(zstd_decompress(&z[..z.len() / 2], 1 << 20).is_err());
        assert!(zstd_decompress(b"", 1 << 20).is_err());
        assert!(zstd_decompress(b"garbage!", 1 << 20).is_err());
    }
}
