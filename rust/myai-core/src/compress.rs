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
/// With `level` None the zstd pass is skipped (zstd_bytes 0, storage_ratio left to the caller).
pub fn stats(
    text: &str,
    spans: &[Span],
    duplicates: &[bool],
    counter: &dyn TokenCounter,
    level: Option<i32>,
) -> Result<CompressionStats> {
    if !duplicates.is_empty() && duplicates.len() != spans.len() {
        return Err(Error::invalid(format!(
            "{} duplicate flags for {} chunks",
            duplicates.len(),
            spans.len()
        )));
    }
    let mut st = CompressionStats {
        original_bytes: text.len(),
        chunks: spans.len(),
        ..Default::default()
    };
    let mut stored = Vec::with_capacity(text.len());
    let mut prev_end = 0usize;
    let mut prev_start = 0usize;
    for (i, s) in spans.iter().enumerate() {
        if s.start > s.end
            || s.end > text.len()
            || !text.is_char_boundary(s.start)
            || !text.is_char_boundary(s.end)
        {
            return Err(Error::invalid(format!(
                "chunk {i} [{}, {}) is not a span of the text",
                s.start, s.end
            )));
        }
        if i > 0 && (s.start < prev_start || s.end < prev_end) {
            return Err(Error::invalid(format!(
                "chunk {i} starts or ends before chunk {}",
                i - 1
            )));
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
    if let Some(level) = level {
        st.zstd_bytes = if stored.is_empty() {
            0
        } else {
            zstd_compress(&stored, level)?.len()
        };
        st.storage_ratio = ratio(st.original_bytes, st.zstd_bytes);
    }
    st.context_ratio = ratio(st.original_tokens, st.stored_tokens);
    st.overhead_percent = if st.original_tokens == 0 {
        0.0
    } else {
        100.0 * st.overlap_tokens as f64 / st.original_tokens as f64
    };
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
        return Err(Error::invalid(format!(
            "zstd level must be within 1..=22, got {level}"
        )));
    }
    zstd::bulk::compress(data, level)
        .map_err(|e| Error::invalid(format!("zstd compression failed: {e}")))
}

/// Decompresses a zstd frame; refuses frames that would exceed `max_size` bytes.
pub fn zstd_decompress(data: &[u8], max_size: usize) -> Result<Vec<u8>> {
    let size = zstd::zstd_safe::get_frame_content_size(data)
        .map_err(|_| Error::corrupt("zstd frame", "not a zstd frame or truncated header"))?;
    if let Some(n) = size {
        if n as usize > max_size {
            return Err(Error::corrupt(
                "zstd frame",
                format!("declares {n} bytes, over the limit of {max_size}"),
            ));
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
        Span {
            start,
            end,
            tokens: end - start,
        }
    }

    #[test]
    fn overlap_and_dedup_figures() {
        let text = "abcdefghij".repeat(10); // 100 bytes
        let spans = [sp(0, 40), sp(30, 70), sp(60, 100)];
        let st = stats(&text, &spans, &[false, true, false], &Bytes, Some(3)).unwrap();
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
        assert!(stats("abc", &[sp(0, 5)], &[], &Bytes, Some(3)).is_err());
        assert!(stats("abc", &[sp(0, 3)], &[true, false], &Bytes, Some(3)).is_err());
        assert!(stats("abc", &[sp(0, 3)], &[], &Bytes, Some(0)).is_err());
        assert!(stats("abcdef", &[sp(2, 6), sp(0, 3)], &[], &Bytes, Some(3)).is_err());
        let st = stats("", &[], &[], &Bytes, Some(3)).unwrap();
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

/// zstd with an optional dictionary, prepared once and shared: what the context store
/// compresses its text segments with (each segment readable on its own).
pub struct Codec {
    level: i32,
    dictionary: Vec<u8>,
    encoder: Option<zstd::dict::EncoderDictionary<'static>>,
    decoder: Option<zstd::dict::DecoderDictionary<'static>>,
    /// One decompression context reused by every read: creating one costs more than
    /// decompressing a small frame.
    dctx: std::sync::Mutex<zstd::zstd_safe::DCtx<'static>>,
}

impl Codec {
    /// A codec at `level` (1..=22), with `dictionary` when non-empty.
    pub fn new(level: i32, dictionary: &[u8]) -> Result<Codec> {
        if !(1..=22).contains(&level) {
            return Err(Error::invalid(format!(
                "zstd level must be within 1..=22, got {level}"
            )));
        }
        let (encoder, decoder) = if dictionary.is_empty() {
            (None, None)
        } else {
            (
                Some(zstd::dict::EncoderDictionary::copy(dictionary, level)),
                Some(zstd::dict::DecoderDictionary::copy(dictionary)),
            )
        };
        Ok(Codec {
            level,
            dictionary: dictionary.to_vec(),
            encoder,
            decoder,
            dctx: std::sync::Mutex::new(zstd::zstd_safe::DCtx::create()),
        })
    }

    /// Trains a dictionary of at most `max_size` bytes on `samples`.
    pub fn train(samples: &[&[u8]], max_size: usize) -> Result<Vec<u8>> {
        if samples.len() < 8 {
            return Err(Error::invalid(format!(
                "training a dictionary needs at least 8 samples, got {}",
                samples.len()
            )));
        }
        let sizes: Vec<usize> = samples.iter().map(|s| s.len()).collect();
        let flat: Vec<u8> = samples.concat();
        zstd::dict::from_continuous(&flat, &sizes, max_size)
            .map_err(|e| Error::invalid(format!("zstd dictionary training failed: {e}")))
    }

    pub fn dictionary(&self) -> &[u8] {
        &self.dictionary
    }

    pub fn level(&self) -> i32 {
        self.level
    }

    /// Compresses each input into its own frame, in parallel.
    pub fn compress_batch(&self, inputs: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
        use rayon::prelude::*;
        inputs
            .par_iter()
            .map_init(
                || match &self.encoder {
                    Some(d) => zstd::bulk::Compressor::with_prepared_dictionary(d),
                    None => zstd::bulk::Compressor::new(self.level),
                },
                |c, data| match c {
                    Ok(c) => c
                        .compress(data)
                        .map_err(|e| Error::invalid(format!("zstd compression failed: {e}"))),
                    Err(e) => Err(Error::invalid(format!("zstd compressor: {e}"))),
                },
            )
            .collect()
    }

    /// Decompresses one frame made by this codec; refuses more than `max_size` bytes.
    pub fn decompress(&self, data: &[u8], max_size: usize) -> Result<Vec<u8>> {
        let size = zstd::zstd_safe::get_frame_content_size(data)
            .map_err(|_| Error::corrupt("zstd frame", "not a zstd frame or truncated header"))?
            .ok_or_else(|| Error::corrupt("zstd frame", "the frame does not declare its size"))?;
        if size as usize > max_size {
            return Err(Error::corrupt(
                "zstd frame",
                format!("declares {size} bytes, over the limit of {max_size}"),
            ));
        }
        let mut out: Vec<u8> = Vec::with_capacity(size as usize);
        let mut ctx = self
            .dctx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = match &self.decoder {
            Some(d) => ctx.decompress_using_ddict(&mut out, data, d.as_ddict()),
            None => ctx.decompress(&mut out, data),
        };
        r.map_err(|code| Error::corrupt("zstd frame", zstd::zstd_safe::get_error_name(code)))?;
        if out.len() != size as usize {
            return Err(Error::corrupt(
                "zstd frame",
                format!("decompressed to {} bytes, declared {size}", out.len()),
            ));
        }
        Ok(out)
    }
}

/// The searchable form of a document's chunks under adaptive compression: a line seen before
/// in the document (the same once a leading timestamp is dropped, and every number too when
/// `mask_numbers`) is left out, and the first occurrence of a repeated line is marked
/// ` [repeated Nx]`. Returns the texts (None where a chunk is unchanged) and the lines left out.
pub fn collapse_repeated_lines(texts: &[&str], mask_numbers: bool) -> (Vec<Option<String>>, usize) {
    use rustc_hash::FxHashMap;
    let mut counts: FxHashMap<String, u32> = FxHashMap::default();
    let mut key = String::new();
    for t in texts {
        for line in t.lines() {
            line_key(line, mask_numbers, &mut key);
            if !key.is_empty() {
                *counts.entry(key.clone()).or_insert(0) += 1;
            }
        }
    }
    if counts.values().all(|&n| n <= 1) {
        return (vec![None; texts.len()], 0);
    }
    let mut seen: rustc_hash::FxHashSet<String> = rustc_hash::FxHashSet::default();
    let mut dropped = 0usize;
    let mut out = Vec::with_capacity(texts.len());
    for t in texts {
        let mut s = String::with_capacity(t.len());
        let mut changed = false;
        for line in t.lines() {
            line_key(line, mask_numbers, &mut key);
            let n = counts.get(key.as_str()).copied().unwrap_or(0);
            if key.is_empty() || n <= 1 {
                push_line(&mut s, line);
            } else if seen.contains(key.as_str()) {
                dropped += 1;
                changed = true;
            } else {
                seen.insert(key.clone());
                push_line(&mut s, line);
                s.push_str(&format!(" [repeated {n}x]"));
                changed = true;
            }
        }
        out.push(if changed { Some(s) } else { None });
    }
    (out, dropped)
}

fn push_line(s: &mut String, line: &str) {
    if !s.is_empty() {
        s.push('\n');
    }
    s.push_str(line);
}

/// The comparison key of a log line: leading timestamp dropped (`2024-01-02 10:11:12[.123]`,
/// `[10:11:12]`, `Jan  2 10:11:12`), numbers masked when asked, trimmed.
fn line_key(line: &str, mask_numbers: bool, out: &mut String) {
    out.clear();
    let rest = strip_timestamp(line.trim_start());
    let rest = rest.trim();
    if !mask_numbers {
        out.push_str(rest);
        return;
    }
    let mut in_num = false;
    for c in rest.chars() {
        if c.is_ascii_digit() || (in_num && (c == '.' || c.is_ascii_hexdigit())) {
            if !in_num {
                out.push('#');
                in_num = true;
            }
        } else {
            in_num = false;
            out.push(c);
        }
    }
}

fn strip_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'[') {
        i = 1;
    }
    let digits = |from: usize, n: usize| {
        b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit)
    };
    let mut end = None;
    if digits(i, 4)
        && b.get(i + 4) == Some(&b'-')
        && digits(i + 5, 2)
        && b.get(i + 7) == Some(&b'-')
        && digits(i + 8, 2)
    {
        // ISO date, then optional [T ]hh:mm[:ss[.fff]][Z|+hh:mm]
        let mut j = i + 10;
        if matches!(b.get(j), Some(b'T') | Some(b' '))
            && digits(j + 1, 2)
            && b.get(j + 3) == Some(&b':')
        {
            j += 1;
            while j < b.len() && (b[j].is_ascii_digit() || matches!(b[j], b':' | b'.' | b',')) {
                j += 1;
            }
            if matches!(b.get(j), Some(b'Z')) {
                j += 1;
            } else if matches!(b.get(j), Some(b'+') | Some(b'-')) && digits(j + 1, 2) {
                j += 3;
                if b.get(j) == Some(&b':') {
                    j += 1;
                }
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
        }
        end = Some(j);
    } else if digits(i, 2)
        && b.get(i + 2) == Some(&b':')
        && digits(i + 3, 2)
        && b.get(i + 5) == Some(&b':')
        && digits(i + 6, 2)
    {
        let mut j = i + 8;
        while j < b.len() && (b[j].is_ascii_digit() || matches!(b[j], b'.' | b',')) {
            j += 1;
        }
        end = Some(j);
    } else if b.len() >= 15 && b[..3].iter().all(u8::is_ascii_alphabetic) && b[3] == b' ' {
        // syslog: "Jan  2 10:11:12"
        let mut j = 4;
        while j < b.len() && (b[j] == b' ' || b[j].is_ascii_digit()) && j < 7 {
            j += 1;
        }
        if digits(j, 2)
            && b.get(j + 2) == Some(&b':')
            && digits(j + 3, 2)
            && b.get(j + 5) == Some(&b':')
            && digits(j + 6, 2)
        {
            end = Some(j + 8);
        }
    }
    match end {
        Some(mut j) => {
            if i == 1 && b.get(j) == Some(&b']') {
                j += 1;
            }
            line.get(j..).unwrap_or("").trim_start()
        }
        None => line,
    }
}

#[cfg(test)]
mod codec_tests {
    use super::*;

    #[test]
    fn codec_with_and_without_dictionary() {
        let samples: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                format!(
                    "record {i}: the quick brown fox jumps over the lazy dog number {}",
                    i * 7
                )
                .into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = samples.iter().map(|s| s.as_slice()).collect();
        let dict = Codec::train(&refs, 4096).unwrap();
        for d in [&dict[..], &[][..]] {
            let c = Codec::new(3, d).unwrap();
            let z = c.compress_batch(&refs).unwrap();
            for (a, b) in z.iter().zip(&samples) {
                assert_eq!(&c.decompress(a, 1 << 20).unwrap(), b);
            }
            assert!(c.decompress(&z[0][..z[0].len() / 2], 1 << 20).is_err());
        }
        assert!(Codec::new(0, &[]).is_err());
        assert!(Codec::train(&refs[..3], 4096).is_err());
    }

    #[test]
    fn collapse_logs() {
        let log = "2024-01-01 10:00:00 INFO ok\n2024-01-01 10:00:01 INFO ok\n[10:00:02] INFO ok\nJan  2 10:11:12 INFO ok\nunique line";
        let (out, dropped) = collapse_repeated_lines(&[log], false);
        assert_eq!(dropped, 3);
        assert_eq!(
            out[0].as_deref(),
            Some("2024-01-01 10:00:00 INFO ok [repeated 4x]\nunique line")
        );
        let (out, dropped) = collapse_repeated_lines(&["a 1\na 2", "a 3"], true);
        assert_eq!(dropped, 2);
        assert_eq!(out[1], Some(String::new()));
        let (out, dropped) = collapse_repeated_lines(&["x\ny"], true);
        assert_eq!((out, dropped), (vec![None], 0));
    }
}
