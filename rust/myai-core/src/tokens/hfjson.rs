//! Builds a tokenizer from a HuggingFace `tokenizer.json`; any component this crate cannot
//! reproduce exactly is refused with a TokenizerError that names it.

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::added::{Added, AddedTokens};
use super::bpe::{Bpe, BpeSpec};
use super::pretok::{Digits, Splitter};
use super::wordpiece::{Norm, Pre, WordPiece, WordPieceSpec};
use crate::{Error, Result};

/// A model built from a tokenizer.json.
pub(crate) enum Built {
    Bpe(Box<Bpe>),
    WordPiece(Box<WordPiece>),
}

fn terr(msg: impl Into<String>) -> Error {
    Error::Tokenizer(msg.into())
}

fn typ(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("?")
}

fn flag(v: &Value, k: &str, default: bool) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(default)
}

/// Flattens nested `Sequence`s of normalizers or pre-tokenizers.
fn flatten<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    if v.is_null() {
        return;
    }
    if typ(v) == "Sequence" {
        if let Some(items) = v.get(key).and_then(Value::as_array) {
            for i in items {
                flatten(i, key, out);
            }
        }
    } else {
        out.push(v);
    }
}

fn added_tokens(root: &Value) -> Result<AddedTokens> {
    let mut out = vec![];
    for t in root
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let content = t
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| terr("added_tokens: entry without content"))?;
        let id = t
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| terr(format!("added token {content:?}: missing or bad id")))?;
        out.push(Added {
            content: content.as_bytes().into(),
            id,
            lstrip: flag(t, "lstrip", false),
            rstrip: flag(t, "rstrip", false),
            single_word: flag(t, "single_word", false),
        });
    }
    Ok(AddedTokens::new(out))
}

fn vocab_map(model: &Value) -> Result<FxHashMap<String, u32>> {
    let v = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| terr("model.vocab is missing or not an object"))?;
    let mut out = FxHashMap::default();
    out.reserve(v.len());
    for (k, id) in v {
        let id = id
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| terr(format!("model.vocab[{k:?}] is not a token id")))?;
        out.insert(k.clone(), id);
    }
    Ok(out)
}

fn merges(model: &Value) -> Result<Vec<(String, String)>> {
    let arr = model
        .get("merges")
        .and_then(Value::as_array)
        .ok_or_else(|| terr("model.merges is missing"))?;
    arr.iter()
        .map(|m| match m {
            Value::String(s) => s
                .split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| {
                    terr(format!(
                        "merge {s:?} is not two tokens separated by a space"
                    ))
                }),
            Value::Array(p) => match (
                p.first().and_then(Value::as_str),
                p.get(1).and_then(Value::as_str),
                p.len(),
            ) {
                (Some(a), Some(b), 2) => Ok((a.to_string(), b.to_string())),
                _ => Err(terr(format!("merge {m} is not a pair of strings"))),
            },
            _ => Err(terr(format!("merge {m} is not a string or a pair"))),
        })
        .collect()
}

fn bpe(root: &Value, model: &Value, added: AddedTokens) -> Result<Bpe> {
    for k in ["continuing_subword_prefix", "end_of_word_suffix"] {
        if model
            .get(k)
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
        {
            return Err(terr(format!("BPE option {k} is not supported")));
        }
    }
    if model.get("dropout").is_some_and(|v| !v.is_null()) {
        return Err(terr(
            "BPE dropout is not supported (counts would not be deterministic)",
        ));
    }
    if flag(model, "byte_fallback", false) {
        return Err(terr(
            "BPE byte_fallback (SentencePiece-style vocabularies) is not supported",
        ));
    }
    let mut norms = vec![];
    flatten(
        root.get("normalizer").unwrap_or(&Value::Null),
        "normalizers",
        &mut norms,
    );
    if let Some(n) = norms.first() {
        return Err(terr(format!(
            "normalizer {} is not supported with BPE",
            typ(n)
        )));
    }
    let mut pres = vec![];
    flatten(
        root.get("pre_tokenizer").unwrap_or(&Value::Null),
        "pretokenizers",
        &mut pres,
    );
    let mut digits = Digits::Off;
    let mut byte_level = None;
    for (i, p) in pres.iter().enumerate() {
        match typ(p) {
            "Digits" if byte_level.is_none() && digits == Digits::Off => {
                digits = if flag(p, "individual_digits", false) {
                    Digits::Individual
                } else {
                    Digits::Grouped
                };
            }
            "ByteLevel" if byte_level.is_none() && i + 1 == pres.len() => {
                let aps = flag(p, "add_prefix_space", true);
                if aps && digits != Digits::Off {
                    return Err(terr("pre-tokenizer ByteLevel(add_prefix_space=true) after Digits is not supported"));
                }
                byte_level = Some((aps, flag(p, "use_regex", true)));
            }
            other => {
                return Err(terr(format!(
                    "pre-tokenizer {other} is not supported in this position"
                )))
            }
        }
    }
    let (add_prefix_space, regex) = byte_level.ok_or_else(|| {
        terr("BPE without a ByteLevel pre-tokenizer is not supported (only byte-level BPE)")
    })?;
    let unk = model
        .get("unk_token")
        .and_then(Value::as_str)
        .map(str::to_string);
    Bpe::new(BpeSpec {
        vocab: vocab_map(model)?,
        merges: merges(model)?,
        unk,
        ignore_merges: flag(model, "ignore_merges", false),
        splitter: Splitter { digits, regex },
        add_prefix_space,
        added,
    })
}

fn wordpiece(root: &Value, model: &Value, added: AddedTokens) -> Result<WordPiece> {
    let mut ns = vec![];
    flatten(
        root.get("normalizer").unwrap_or(&Value::Null),
        "normalizers",
        &mut ns,
    );
    let mut norms = vec![];
    for (i, n) in ns.iter().enumerate() {
        norms.push(match typ(n) {
            "BertNormalizer" if i == 0 => {
                let lowercase = flag(n, "lowercase", true);
                Norm::Bert {
                    clean_text: flag(n, "clean_text", true),
                    chinese: flag(n, "handle_chinese_chars", true),
                    strip_accents: n
                        .get("strip_accents")
                        .and_then(Value::as_bool)
                        .unwrap_or(lowercase),
                    lowercase,
                }
            }
            "Lowercase" => Norm::Lowercase,
            "StripAccents" => Norm::StripAccents,
            "NFC" => Norm::Nfc,
            "NFD" => Norm::Nfd,
            "NFKC" => Norm::Nfkc,
            "NFKD" => Norm::Nfkd,
            other => {
                return Err(terr(format!(
                    "normalizer {other} is not supported with WordPiece"
                )))
            }
        });
    }
    let mut ps = vec![];
    flatten(
        root.get("pre_tokenizer").unwrap_or(&Value::Null),
        "pretokenizers",
        &mut ps,
    );
    let pre = match ps.as_slice() {
        [p] => match typ(p) {
            "BertPreTokenizer" => Pre::Bert,
            "Whitespace" => Pre::Whitespace,
            "WhitespaceSplit" => Pre::WhitespaceSplit,
            other => {
                return Err(terr(format!(
                    "pre-tokenizer {other} is not supported with WordPiece"
                )))
            }
        },
        [] => return Err(terr("WordPiece without a pre-tokenizer is not supported")),
        _ => {
            return Err(terr(
                "a Sequence of pre-tokenizers is not supported with WordPiece",
            ))
        }
    };
    let max_chars = model
        .get("max_input_chars_per_word")
        .and_then(Value::as_u64)
        .map_or(100, |m| usize::try_from(m).unwrap_or(usize::MAX));
    WordPiece::new(WordPieceSpec {
        vocab: vocab_map(model)?,
        unk: model
            .get("unk_token")
            .and_then(Value::as_str)
            .unwrap_or("[UNK]")
            .to_string(),
        prefix: model
            .get("continuing_subword_prefix")
            .and_then(Value::as_str)
            .unwrap_or("##")
            .to_string(),
        max_chars,
        norms,
        pre,
        added,
    })
}

/// Parses a tokenizer.json document.
pub(crate) fn build(json: &str) -> Result<Built> {
    let root: Value =
        serde_json::from_str(json).map_err(|e| terr(format!("not valid JSON: {e}")))?;
    let model = root
        .get("model")
        .ok_or_else(|| terr("no \"model\" section (is this a tokenizer.json?)"))?;
    let added = added_tokens(&root)?;
    let kind = match model.get("type").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None if model.get("merges").is_some() => "BPE".into(),
        None if model.get("continuing_subword_prefix").is_some() => "WordPiece".into(),
        None => return Err(terr("model without a type")),
    };
    match kind.as_str() {
        "BPE" => Ok(Built::Bpe(Box::new(bpe(&root, model, added)?))),
        "WordPiece" => Ok(Built::WordPiece(Box::new(wordpiece(&root, model, added)?))),
        other => Err(terr(format!(
            "model type {other} is not supported (BPE and WordPiece are)"
        ))),
    }
}
