//! Reads the tokenizer metadata of a GGUF model file (v2/v3), never its tensors.
//!
//! Every length read from the file is checked against the bytes left before anything is
//! allocated, so a truncated or hostile file is an error, not a panic or a huge allocation.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::{Error, Result};

/// The tokenizer-related metadata of a GGUF file.
#[derive(Debug, Default)]
pub(crate) struct GgufVocab {
    pub model: Option<String>,
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    pub merges: Vec<String>,
    pub token_type: Vec<i32>,
    pub basename: Option<String>,
    pub name: Option<String>,
}

struct Reader<R> {
    r: R,
    left: u64,
    path: String,
}

const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

fn fixed_size(t: u32) -> Option<u64> {
    match t {
        T_U8 | T_I8 | T_BOOL => Some(1),
        T_U16 | T_I16 => Some(2),
        T_U32 | T_I32 | T_F32 => Some(4),
        T_U64 | T_I64 | T_F64 => Some(8),
        _ => None,
    }
}

impl<R: Read + Seek> Reader<R> {
    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::Tokenizer(format!("{}: not a valid GGUF file: {what}", self.path))
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        if n > self.left {
            return Err(self.err(format!(
                "truncated while reading {what} ({n} bytes wanted, {} left)",
                self.left
            )));
        }
        let mut v = vec![0u8; n as usize];
        self.r
            .read_exact(&mut v)
            .map_err(|e| self.err(format!("{what}: {e}")))?;
        self.left -= n;
        Ok(v)
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        if n > self.left {
            return Err(self.err(format!("truncated while skipping {what}")));
        }
        let off = i64::try_from(n).map_err(|_| self.err("length overflow"))?;
        self.r
            .seek(SeekFrom::Current(off))
            .map_err(|e| self.err(format!("{what}: {e}")))?;
        self.left -= n;
        Ok(())
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u64(what)?;
        let b = self.bytes(n, what)?;
        String::from_utf8(b).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }

    fn skip_value(&mut self, t: u32, key: &str) -> Result<()> {
        match t {
            T_STRING => {
                let n = self.u64(key)?;
                self.skip(n, key)
            }
            T_ARRAY => {
                let it = self.u32(key)?;
                let n = self.u64(key)?;
                match fixed_size(it) {
                    Some(s) => {
                        let total = n
                            .checked_mul(s)
                            .ok_or_else(|| self.err(format!("{key}: array too long")))?;
                        self.skip(total, key)
                    }
                    None if it == T_STRING => {
                        if n.saturating_mul(8) > self.left {
                            return Err(self.err(format!(
                                "{key}: array of {n} strings does not fit the file"
                            )));
                        }
                        for _ in 0..n {
                            let l = self.u64(key)?;
                            self.skip(l, key)?;
                        }
                        Ok(())
                    }
                    None => Err(self.err(format!("{key}: unsupported array element type {it}"))),
                }
            }
            _ => match fixed_size(t) {
                Some(s) => self.skip(s, key),
                None => Err(self.err(format!("{key}: unknown value type {t}"))),
            },
        }
    }

    fn string_array(&mut self, key: &str) -> Result<Vec<String>> {
        let it = self.u32(key)?;
        if it != T_STRING {
            return Err(self.err(format!(
                "{key}: expected an array of strings, found element type {it}"
            )));
        }
        let n = self.u64(key)?;
        if n.saturating_mul(8) > self.left {
            return Err(self.err(format!("{key}: array of {n} strings does not fit the file")));
        }
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            v.push(self.string(key)?);
        }
        Ok(v)
    }

    fn int_array(&mut self, key: &str) -> Result<Vec<i32>> {
        let it = self.u32(key)?;
        let n = self.u64(key)?;
        let size =
            fixed_size(it).ok_or_else(|| self.err(format!("{key}: expected an integer array")))?;
        if n.saturating_mul(size) > self.left {
            return Err(self.err(format!("{key}: array of {n} items does not fit the file")));
        }
        let raw = self.bytes(n * size, key)?;
        let v = raw
            .chunks_exact(size as usize)
            .map(|c| match size {
                1 => c[0] as i8 as i32,
                2 => i16::from_le_bytes([c[0], c[1]]) as i32,
                4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as i32,
            })
            .collect();
        Ok(v)
    }
}

/// Reads the tokenizer metadata of the GGUF file at `path`.
pub(crate) fn read_vocab(path: &Path) -> Result<GgufVocab> {
    let shown = path.display().to_string();
    let f = File::open(path).map_err(|e| Error::Tokenizer(format!("{shown}: {e}")))?;
    let len = f
        .metadata()
        .map_err(|e| Error::Tokenizer(format!("{shown}: {e}")))?
        .len();
    let mut r = Reader {
        r: BufReader::with_capacity(1 << 16, f),
        left: len,
        path: shown,
    };
    if len < 24 {
        return Err(r.err(format!("{len} bytes, shorter than a GGUF header")));
    }
    let magic = r.bytes(4, "magic")?;
    if magic != b"GGUF" {
        return Err(r.err(format!("bad magic {:?}", String::from_utf8_lossy(&magic))));
    }
    let version = r.u32("version")?;
    if version != 2 && version != 3 {
        let hint = if version.swap_bytes() <= 3 {
            " (big-endian files are not supported)"
        } else {
            ""
        };
        return Err(r.err(format!("unsupported version {version}{hint}")));
    }
    let _tensors = r.u64("tensor count")?;
    let kv = r.u64("metadata count")?;
    // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes.
    if kv.saturating_mul(13) > r.left {
        return Err(r.err(format!("{kv} metadata entries do not fit the file")));
    }
    let mut out = GgufVocab::default();
    for _ in 0..kv {
        let key = r.string("metadata key")?;
        let t = r.u32(&key)?;
        match (key.as_str(), t) {
            ("tokenizer.ggml.model", T_STRING) => out.model = Some(r.string(&key)?),
            ("tokenizer.ggml.pre", T_STRING) => out.pre = Some(r.string(&key)?),
            ("general.basename", T_STRING) => out.basename = Some(r.string(&key)?),
            ("general.name", T_STRING) => out.name = Some(r.string(&key)?),
            ("tokenizer.ggml.tokens", T_ARRAY) => out.tokens = r.string_array(&key)?,
            ("tokenizer.ggml.merges", T_ARRAY) => out.merges = r.string_array(&key)?,
            ("tokenizer.ggml.token_type", T_ARRAY) => out.token_type = r.int_array(&key)?,
            _ => r.skip_value(t, &key)?,
        }
    }
    Ok(out)
}
