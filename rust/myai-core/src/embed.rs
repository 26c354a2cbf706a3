//! Static embeddings: a text's vector is the normalised sum of its tokens' rows in a table.
//!
//! The table (one row per token id, weights already folded in) is derived once in Python from
//! a transformer; pooling it is the hot path of ingest, so it runs here, in parallel over texts.

use rayon::prelude::*;

use crate::tokens::Tokenizer;
use crate::{Error, Result};

/// A borrowed row-major `rows × dim` table of token vectors.
#[derive(Clone, Copy, Debug)]
pub struct Table<'a> {
    data: &'a [f32],
    rows: usize,
    dim: usize,
}

impl<'a> Table<'a> {
    /// Checks that `data` holds exactly `rows × dim` values and that `dim > 0`.
    pub fn new(data: &'a [f32], rows: usize, dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::invalid("the embedding table has 0 columns"));
        }
        if rows.checked_mul(dim) != Some(data.len()) {
            return Err(Error::invalid(format!(
                "the embedding table holds {} values, not {rows} x {dim}",
                data.len()
            )));
        }
        Ok(Table { data, rows, dim })
    }

    /// Width of a row (the embedding dimension).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows (token ids covered).
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn row(&self, id: u32) -> Option<&'a [f32]> {
        let start = (id as usize).checked_mul(self.dim)?;
        self.data.get(start..start.checked_add(self.dim)?)
    }
}

/// Embeds `texts` with `tok` and `table`: row-major `texts.len() × table.dim()` values, each
/// row the sum of its tokens' rows scaled to unit length. A text without tokens (or whose
/// tokens all have zero rows) gets a zero row, which matches nothing under cosine.
///
/// The table must cover every id the tokenizer can produce (`rows ≥ vocab_size`), so that no
/// token is silently dropped.
pub fn static_embed(tok: &Tokenizer, table: Table<'_>, texts: &[&str]) -> Result<Vec<f32>> {
    if table.rows < tok.vocab_size() {
        return Err(Error::invalid(format!(
            "the embedding table has {} rows but the tokenizer has {} token ids",
            table.rows,
            tok.vocab_size()
        )));
    }
    let dim = table.dim;
    let mut out = vec![0f32; texts.len() * dim];
    out.par_chunks_mut(dim)
        .zip(texts.par_iter())
        .with_min_len(4)
        .try_for_each(|(acc, text)| embed_one(tok, &table, text, acc))?;
    Ok(out)
}

fn embed_one(tok: &Tokenizer, table: &Table<'_>, text: &str, acc: &mut [f32]) -> Result<()> {
    let ids = tok.encode(text)?;
    for &id in &ids {
        let row = table.row(id).ok_or_else(|| {
            Error::invalid(format!(
                "token id {id} is outside the embedding table ({} rows)",
                table.rows
            ))
        })?;
        for (a, r) in acc.iter_mut().zip(row) {
            *a += r;
        }
    }
    let norm = acc.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        let inv = 1.0 / norm;
        acc.iter_mut().for_each(|x| *x *= inv);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny WordPiece tokenizer: ids 0..6 for [PAD] [UNK] cat dog sat ##s.
    fn tok() -> Tokenizer {
        let json = r###"{
          "added_tokens": [],
          "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                         "strip_accents": null, "lowercase": true},
          "pre_tokenizer": {"type": "BertPreTokenizer"},
          "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                    "max_input_chars_per_word": 100,
                    "vocab": {"[PAD]": 0, "[UNK]": 1, "cat": 2, "dog": 3, "sat": 4, "##s": 5}}
        }"###;
        json.parse().expect("test tokenizer")
    }

    fn table() -> Vec<f32> {
        // dim 2: cat = (1,0), dog = (0,1), sat = (1,1), ##s = (0,2); [PAD], [UNK] zero.
        vec![0., 0., 0., 0., 1., 0., 0., 1., 1., 1., 0., 2.]
    }

    #[test]
    fn embed_sums_and_normalises() {
        let t = tok();
        let data = table();
        let tab = Table::new(&data, 6, 2).unwrap();
        let out = static_embed(&t, tab, &["cat", "cat dog", "cats", "", "zzz"]).unwrap();
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let want = [
            1.,
            0.,
            s,
            s,
            1. / 5f32.sqrt(),
            2. / 5f32.sqrt(),
            0.,
            0.,
            0.,
            0.,
        ];
        for (a, b) in out.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn embed_is_independent_of_batch() {
        let t = tok();
        let data = table();
        let tab = Table::new(&data, 6, 2).unwrap();
        let texts: Vec<&str> = ["cat sat", "dog", "dogs sat"].repeat(50);
        let all = static_embed(&t, tab, &texts).unwrap();
        for (i, text) in texts.iter().enumerate() {
            let one = static_embed(&t, tab, &[text]).unwrap();
            assert_eq!(&all[i * 2..i * 2 + 2], &one[..]);
        }
    }

    #[test]
    fn bad_tables_are_refused() {
        let t = tok();
        let data = table();
        assert!(Table::new(&data, 5, 2).is_err());
        assert!(Table::new(&data, 12, 0).is_err());
        let short = Table::new(&data[..10], 5, 2).unwrap();
        let e = static_embed(&t, short, &["cat"]).unwrap_err().to_string();
        assert!(e.contains("5 rows"), "{e}");
        let est = Tokenizer::estimator();
        let tab = Table::new(&data, 6, 2).unwrap();
        assert!(static_embed(&est, tab, &["cat"]).is_err());
        assert!(static_embed(&t, tab, &[]).unwrap().is_empty());
    }
}
