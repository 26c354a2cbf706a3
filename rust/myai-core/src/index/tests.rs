//! Unit and property tests of the index: pruned search equals a brute-force BM25, removals
//! keep the statistics exact, and the byte format round-trips and rejects corruption.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// BM25 (Lucene idf) computed from scratch in f64 over the analyzer's tokens.
fn brute_force(
    idx: &Bm25Index,
    docs: &HashMap<u64, (u64, String)>,
    query: &str,
) -> HashMap<u64, f64> {
    let toks: HashMap<u64, Vec<String>> = docs
        .iter()
        .map(|(&c, (_, t))| (c, idx.analyze(t)))
        .collect();
    let n = docs.len() as f64;
    let avgdl = toks.values().map(|t| t.len()).sum::<usize>() as f64 / n.max(1.0);
    let (k1, b) = (idx.k1(), idx.b());
    let mut out = HashMap::new();
    for q in idx.analyze(query) {
        let df = toks.values().filter(|t| t.contains(&q)).count() as f64;
        if df == 0.0 {
            continue;
        }
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        for (&c, t) in &toks {
            let tf = t.iter().filter(|x| **x == q).count() as f64;
            if tf > 0.0 {
                let dl = t.len() as f64;
                *out.entry(c).or_insert(0.0) += idf * tf / (tf + k1 * (1.0 - b + b * dl / avgdl));
            }
        }
    }
    out
}

/// Checks `hits` against the brute force: scores agree, and nothing better was left out.
fn check_against(hits: &[(u64, f32)], reference: &HashMap<u64, f64>, k: usize) {
    for &(c, s) in hits {
        let r = reference[&c];
        assert!(
            (s as f64 - r).abs() <= 1e-4 * r.max(1.0),
            "chunk {c}: {s} vs {r}"
        );
    }
    assert_eq!(hits.len(), k.min(reference.len()));
    if let Some(&(_, last)) = hits.last() {
        let ids: Vec<u64> = hits.iter().map(|h| h.0).collect();
        for (c, &r) in reference {
            if r > last as f64 + 1e-4 * r.max(1.0) {
                assert!(ids.contains(c), "chunk {c} ({r}) missing, last {last}");
            }
        }
    }
}

fn sample() -> Bm25Index {
    let mut idx = Bm25Index::new(1.2, 0.75, true, true).unwrap();
    idx.add(1, 10, "The whale swam in the deep blue sea")
        .unwrap();
    idx.add(2, 10, "A white whale! The whale, the whale.")
        .unwrap();
    idx.add(3, 20, "Ships sail the sea; sailors sing").unwrap();
    idx.add(4, 30, "").unwrap();
    idx
}

#[test]
fn basic_ranking_and_errors() {
    let idx = sample();
    assert_eq!(idx.len(), 4);
    let hits = idx.search("whale", 10, None).unwrap();
    assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [2, 1]);
    assert!(hits[0].1 > hits[1].1);
    assert!(idx.search("", 10, None).unwrap().is_empty());
    assert!(idx.search("the of", 10, None).unwrap().is_empty());
    assert!(idx.search("whale", 0, None).unwrap().is_empty());
    assert_eq!(idx.search("sea", 10, Some(&[20])).unwrap().len(), 1);
    assert!(idx.search("sea", 10, Some(&[99])).unwrap().is_empty());
    let mut idx = idx;
    assert!(matches!(
        idx.add(1, 1, "dup"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        idx.add_batch(&[7, 7], &[1, 1], &["a", "b"]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(idx.len(), 4, "a rejected batch adds nothing");
    assert!(Bm25Index::new(-1.0, 0.5, true, true).is_err());
    assert!(Bm25Index::new(1.0, 1.5, true, true).is_err());
}

#[test]
fn removal_keeps_statistics_exact() {
    let mut idx = sample();
    assert_eq!(idx.remove_document(10), 2);
    assert!(!idx.remove(1));
    let mut fresh = Bm25Index::new(1.2, 0.75, true, true).unwrap();
    fresh
        .add(3, 20, "Ships sail the sea; sailors sing")
        .unwrap();
    fresh.add(4, 30, "").unwrap();
    assert_eq!(
        idx.search("sea sail", 5, None).unwrap(),
        fresh.search("sea sail", 5, None).unwrap()
    );
    assert!(idx.search("whale", 5, None).unwrap().is_empty());
    assert_eq!(idx.num_terms(), fresh.num_terms());
}

#[test]
fn bytes_round_trip_and_corruption() {
    let mut idx = sample();
    idx.remove(3);
    let bytes = idx.to_bytes();
    let back = Bm25Index::from_bytes(&bytes).unwrap();
    assert_eq!(
        back.search("whale sea", 10, None).unwrap(),
        idx.search("whale sea", 10, None).unwrap()
    );
    assert_eq!(back.to_bytes(), bytes);
    let err = |d: &[u8]| Bm25Index::from_bytes(d).unwrap_err().to_string();
    assert!(err(&[]).contains("length"));
    assert!(err(b"NOTANINDEX-------------------------------------------------").contains("magic"));
    assert!(err(&bytes[..bytes.len() - 1]).contains("length"));
    let mut v = bytes.clone();
    v[8] ^= 1;
    assert!(err(&v).contains("version"));
    let mut v = bytes.clone();
    v[60] ^= 4;
    assert!(err(&v).contains("checksum"));
}

#[test]
fn compaction_preserves_results() {
    let mut idx = Bm25Index::new(1.2, 0.75, false, false).unwrap();
    let texts: Vec<String> = (0..200)
        .map(|i| format!("w{} w{} common x{}", i % 7, i % 13, i))
        .collect();
    let ids: Vec<u64> = (0..200).collect();
    let docs: Vec<u64> = (0..200).map(|i| i / 4).collect();
    idx.add_batch(&ids, &docs, &texts).unwrap();
    for d in 0..30 {
        idx.remove_document(d);
    }
    assert!(idx.stats().dead_postings < idx.stats().postings);
    let mut fresh = Bm25Index::new(1.2, 0.75, false, false).unwrap();
    fresh
        .add_batch(&ids[120..], &docs[120..], &texts[120..])
        .unwrap();
    for q in ["w1 w5", "common", "x150 w3 common"] {
        assert_eq!(
            idx.search(q, 7, None).unwrap(),
            fresh.search(q, 7, None).unwrap()
        );
    }
}

const WORDS: &[&str] = &[
    "ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "ibis", "jay", "the", "kiwi",
];

fn text_strategy() -> impl Strategy<Value = String> {
    // Skewed choice so that some words are frequent (long lists) and some rare.
    prop::collection::vec((0usize..4, 0usize..WORDS.len()), 0..40).prop_map(|v| {
        v.into_iter()
            .map(|(a, b)| WORDS[if a == 0 { b } else { b % 4 }])
            .collect::<Vec<_>>()
            .join(" ")
    })
}

#[derive(Clone, Debug)]
enum Op {
    Add(u64, String),
    Remove(u64),
    RemoveDoc(u64),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..400, text_strategy()).prop_map(|(c, t)| Op::Add(c, t)),
        1 => (0u64..400).prop_map(Op::Remove),
        1 => (0u64..40).prop_map(Op::RemoveDoc),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn search_equals_brute_force(
        ops in prop::collection::vec(op_strategy(), 1..300),
        queries in prop::collection::vec(prop::collection::vec(0usize..WORDS.len(), 1..5), 1..6),
        k in 1usize..12,
        filter in prop::option::of(prop::collection::vec(0u64..40, 0..6)),
    ) {
        let mut idx = Bm25Index::new(1.2, 0.75, false, true).unwrap();
        let mut docs: HashMap<u64, (u64, String)> = HashMap::new();
        for op in ops {
            match op {
                Op::Add(c, t) => {
                    let doc = c % 40;
                    prop_assert_eq!(idx.add(c, doc, &t).is_ok(), !docs.contains_key(&c));
                    docs.entry(c).or_insert((doc, t));
                }
                Op::Remove(c) => prop_assert_eq!(idx.remove(c), docs.remove(&c).is_some()),
                Op::RemoveDoc(d) => {
                    let before = docs.len();
                    docs.retain(|_, v| v.0 != d);
                    prop_assert_eq!(idx.remove_document(d), before - docs.len());
                }
            }
        }
        prop_assert_eq!(idx.len(), docs.len());
        let bytes = idx.to_bytes();
        let back = Bm25Index::from_bytes(&bytes).unwrap();
        for q in queries {
            let q: String = q.iter().map(|&i| WORDS[i]).collect::<Vec<_>>().join(" ");
            let f = filter.as_deref();
            let pruned = idx.search(&q, k, f).unwrap();
            prop_assert_eq!(&pruned, &idx.search_exhaustive(&q, k, f).unwrap());
            prop_assert_eq!(&pruned, &back.search(&q, k, f).unwrap());
            let sub: HashMap<u64, (u64, String)> = docs.iter()
                .filter(|(_, v)| f.is_none_or(|f| f.contains(&v.0)))
                .map(|(c, v)| (*c, v.clone())).collect();
            let mut reference = brute_force(&idx, &docs, &q);
            reference.retain(|c, _| sub.contains_key(c));
            check_against(&pruned, &reference, k);
        }
    }

    #[test]
    fn from_bytes_never_panics_on_garbage(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Bm25Index::from_bytes(&data);
        let mut v = b"MYAIBM25".to_vec();
        v.extend_from_slice(&data);
        let _ = Bm25Index::from_bytes(&v);
    }

    #[test]
    fn from_bytes_rejects_bit_flips(seed in 0usize..10_000, bit in 0u8..8, cut in 0usize..10_000) {
        let mut idx = Bm25Index::new(1.2, 0.75, true, true).unwrap();
        idx.add_batch(&[1, 2, 3], &[1, 1, 2], &["whales swim deep", "the sea", "ships on the sea"]).unwrap();
        let bytes = idx.to_bytes();
        let mut v = bytes.clone();
        let i = seed % v.len();
        v[i] ^= 1 << bit;
        prop_assert!(Bm25Index::from_bytes(&v).is_err());
        prop_assert!(Bm25Index::from_bytes(&bytes[..cut % bytes.len()]).is_err());
    }
}

#[test]
fn batch_is_deterministic_across_slicing() {
    let texts: Vec<String> = (0..3000)
        .map(|i| format!("alpha{} beta{} gamma {}", i % 50, i % 77, "pad ".repeat(30)))
        .collect();
    let ids: Vec<u64> = (0..3000).collect();
    let mut a = Bm25Index::new(1.2, 0.75, true, true).unwrap();
    a.add_batch(&ids, &ids, &texts).unwrap();
    let mut b = Bm25Index::new(1.2, 0.75, true, true).unwrap();
    for (i, t) in texts.iter().enumerate() {
        b.add(i as u64, i as u64, t).unwrap();
    }
    assert_eq!(a.to_bytes(), b.to_bytes());
}

#[test]
fn short_keys_match_zero_padding() {
    for w in [
        "a",
        "ab",
        "abc",
        "abcd",
        "abcde",
        "abcdefg",
        "abcdefgh",
        "abcdefghi",
        "abcdefghijklmnop",
        "é",
        "naïve",
    ] {
        let mut k = [0u8; 16];
        k[..w.len()].copy_from_slice(w.as_bytes());
        assert_eq!(super::short_key(w), Some(u128::from_le_bytes(k)), "{w}");
    }
    assert_eq!(super::short_key("abcdefghijklmnopq"), None);
}

#[test]
fn huge_top_k_and_long_queries() {
    let idx = sample();
    let all = idx.search("whale sea ship", usize::MAX, None).unwrap();
    assert_eq!(
        all,
        idx.search_exhaustive("whale sea ship", usize::MAX, None)
            .unwrap()
    );
    assert_eq!(all.len(), 3);
    let long: String = (0..50_000).map(|i| format!("w{i} whale ")).collect();
    let hits = idx.search(&long, 2, None).unwrap();
    assert_eq!(hits, idx.search_exhaustive(&long, 2, None).unwrap());
    assert_eq!(hits.first().map(|h| h.0), Some(2));
}

#[test]
fn cached_words_and_new_words_with_known_stems_share_a_term() {
    let texts = [
        "running fast",
        "runs running run, Running!",
        "the runner runs",
        "fast runs",
    ];
    let mut inc = Bm25Index::new(1.2, 0.75, true, true).unwrap();
    for (i, t) in texts.iter().enumerate() {
        inc.add(i as u64, 0, t).unwrap();
    }
    let mut batch = Bm25Index::new(1.2, 0.75, true, true).unwrap();
    batch
        .add_batch(&[0, 1, 2, 3], &[0, 0, 0, 0], &texts)
        .unwrap();
    assert_eq!(inc.to_bytes(), batch.to_bytes());
    let hits = inc.search("run", 10, None).unwrap();
    assert_eq!(hits, inc.search_exhaustive("run", 10, None).unwrap());
    assert_eq!(
        hits.first().map(|h| h.0),
        Some(1),
        "four occurrences in chunk 1"
    );
    let back = Bm25Index::from_bytes(&inc.to_bytes()).unwrap();
    let mut back = back;
    back.add(9, 1, "RUNNING runs").unwrap();
    inc.add(9, 1, "RUNNING runs").unwrap();
    assert_eq!(back.to_bytes(), inc.to_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Corruption that a checksum does not catch (a blob re-sealed after the change) must
    /// still be an error or a usable index, never a panic.
    #[test]
    fn from_bytes_survives_resealed_mutations(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
        truncate in any::<bool>(),
    ) {
        let mut idx = Bm25Index::new(1.2, 0.75, true, true).unwrap();
        idx.add_batch(&[1, 2, 3, 4], &[1, 1, 2, 3], &["whales swim deep", "the sea", "ships on the sea", ""]).unwrap();
        idx.remove(2);
        let bytes = idx.to_bytes();
        let mut body = bytes[..bytes.len() - 8].to_vec();
        for (at, v) in edits {
            let i = 8 + at % (body.len() - 8);
            body[i] = v;
        }
        if truncate {
            body.truncate(8 + cut % (body.len() - 8));
        }
        let sum = xxhash_rust::xxh3::xxh3_64(&body);
        body.extend_from_slice(&sum.to_le_bytes());
        if let Ok(mut back) = Bm25Index::from_bytes(&body) {
            let _ = back.search("whale sea ship", 3, None);
            let _ = back.search_exhaustive("sea", 3, Some(&[1, 2]));
            let _ = back.remove(3);
            let _ = back.remove_document(1);
            let _ = back.add(77, 1, "sea whales");
            let _ = back.to_bytes();
        }
    }
}
