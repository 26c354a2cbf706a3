//! Tests of the dedup module as a whole: statistics of the estimator, the index's
//! incremental behaviour and encoding, and batch grouping.

use proptest::prelude::*;

use super::minhash::{estimate, MinHasher, Scratch};
use super::*;

/// A tiny deterministic generator, so statistical tests see the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        shingle::mix64(self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn word(i: usize) -> String {
    const SYL: [&str; 16] = [
        "ka", "ri", "to", "ne", "sa", "lo", "mi", "du", "ve", "po", "an", "el", "or", "is", "un",
        "ber",
    ];
    let mut w = String::new();
    let mut x = i + 1;
    while x > 0 {
        w.push_str(SYL[x % 16]);
        x /= 16;
    }
    w
}

fn random_words(rng: &mut Rng, n: usize, vocab: usize) -> Vec<String> {
    (0..n).map(|_| word(rng.below(vocab))).collect()
}

/// A copy of `words` with `changes` random positions replaced by words outside the vocabulary.
fn mutate(rng: &mut Rng, words: &[String], changes: usize) -> Vec<String> {
    let mut out = words.to_vec();
    for c in 0..changes {
        let p = rng.below(out.len());
        out[p] = format!("zz{c}x{}", rng.below(1_000_000));
    }
    out
}

fn sig(h: &MinHasher, text: &str) -> Vec<u32> {
    let mut s = vec![0; h.num_perm()];
    h.sketch_into(text, &mut Scratch::default(), &mut s);
    s
}

#[test]
fn estimate_tracks_exact_jaccard() {
    let mut rng = Rng(42);
    let h = MinHasher::new(128, 0);
    let mut errors = Vec::new();
    for i in 0..300 {
        let len = 20 + rng.below(400);
        let a = random_words(&mut rng, len, 3000);
        let changes = rng.below(len / 3 + 1);
        let b = mutate(&mut rng, &a, changes);
        let (a, b) = (a.join(" "), b.join(" "));
        let exact = jaccard(&a, &b);
        let est = estimate(&sig(&h, &a), &sig(&h, &b));
        let sd = (exact * (1.0 - exact) / 128.0).sqrt();
        assert!(
            (est - exact).abs() <= 5.0 * sd + 0.02,
            "pair {i}: exact {exact} est {est}"
        );
        errors.push(est - exact);
    }
    let bias = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!(bias.abs() < 0.01, "mean error {bias}");
}

#[test]
fn estimate_is_unbiased_for_short_texts() {
    // Densification matters most when shingles are fewer than bins.
    let mut rng = Rng(7);
    let h = MinHasher::new(256, 3);
    let mut errors = Vec::new();
    for _ in 0..300 {
        let len = 3 + rng.below(30);
        let a = random_words(&mut rng, len, 500);
        let changes = rng.below(4);
        let b = mutate(&mut rng, &a, changes);
        let (a, b) = (a.join(" "), b.join(" "));
        errors.push(estimate(&sig(&h, &a), &sig(&h, &b)) - jaccard(&a, &b));
    }
    let bias = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!(bias.abs() < 0.015, "mean error {bias}");
}

#[test]
fn parameters_are_checked() {
    for t in [0.0, -0.1, 1.01, f64::NAN] {
        assert!(NearDupIndex::new(t, 128, 0).is_err());
        assert!(find_duplicates(&["a"], t, 128).is_err());
    }
    for k in [0, 7, 1025] {
        assert!(NearDupIndex::new(0.8, k, 0).is_err());
    }
    assert!(NearDupIndex::new(1.0, 8, 0).is_ok());
    assert_eq!(min_equal(0.85, 128), 109);
    assert_eq!(min_equal(0.5, 128), 64);
    assert_eq!(min_equal(1.0, 128), 128);
}

#[test]
fn finds_planted_and_exact_duplicates() {
    let mut rng = Rng(1);
    let mut texts: Vec<String> = (0..60)
        .map(|_| random_words(&mut rng, 300, 20_000).join(" "))
        .collect();
    let base = texts[5].split(' ').map(String::from).collect::<Vec<_>>();
    texts.push(mutate(&mut rng, &base, 3).join(" ")); // 60 ~ 5
    texts.push(texts[9].clone()); // 61 == 9
    texts.push(texts[9].to_uppercase()); // 62: same words as 9
    texts.push(String::new()); // 63
    texts.push("  ...  ".into()); // 64: no words, like 63
    let groups = find_duplicates(&texts, 0.85, 128).unwrap();
    assert_eq!(groups, vec![vec![5, 60], vec![9, 61, 62], vec![63, 64]]);
    assert!(find_duplicates::<&str>(&[], 0.85, 128).unwrap().is_empty());
    assert!(find_duplicates(&["x"], 0.85, 128).unwrap().is_empty());
}

#[test]
fn index_add_query_remove() {
    let mut rng = Rng(2);
    let mut idx = NearDupIndex::new(0.85, 128, 9).unwrap();
    let a = random_words(&mut rng, 200, 20_000);
    let b = random_words(&mut rng, 200, 20_000);
    idx.add(1, &a.join(" ")).unwrap();
    idx.add(2, &b.join(" ")).unwrap();
    assert!(idx.add(2, "again").is_err());
    let near = mutate(&mut rng, &a, 2).join(" ");
    let hits = idx.query(&near);
    assert_eq!(hits.first().map(|h| h.0), Some(1));
    assert_eq!(hits.len(), 1);
    assert_eq!(idx.query(&b.join(" ")), vec![(2, 1.0)]);
    assert!(idx.query("something else entirely, unrelated").is_empty());
    assert!(idx.remove(1));
    assert!(!idx.remove(1));
    assert!(idx.query(&near).is_empty());
    assert_eq!(idx.len(), 1);
}

#[test]
fn add_batch_matches_sequential_and_skips() {
    let mut rng = Rng(3);
    let base: Vec<Vec<String>> = (0..20)
        .map(|_| random_words(&mut rng, 150, 20_000))
        .collect();
    let mut texts: Vec<String> = base.iter().map(|w| w.join(" ")).collect();
    texts.push(mutate(&mut rng, &base[3], 1).join(" "));
    texts.push(texts[7].clone());
    let ids: Vec<u64> = (100..100 + texts.len() as u64).collect();

    let mut batch = NearDupIndex::new(0.85, 64, 0).unwrap();
    let got = batch.add_batch(&ids, &texts, false).unwrap();
    let mut seq = NearDupIndex::new(0.85, 64, 0).unwrap();
    let mut want = Vec::new();
    for (&id, t) in ids.iter().zip(&texts) {
        want.push(seq.query(t).first().map(|h| h.0));
        seq.add(id, t).unwrap();
    }
    assert_eq!(got, want);
    assert_eq!(got[20], Some(103));
    assert_eq!(got[21], Some(107));
    assert_eq!(batch.to_bytes(), seq.to_bytes());

    let mut skip = NearDupIndex::new(0.85, 64, 0).unwrap();
    let got = skip.add_batch(&ids, &texts, true).unwrap();
    assert_eq!(got, want);
    assert_eq!(skip.len(), 20);
    assert!(!skip.contains(120) && !skip.contains(121));

    // A bad batch changes nothing.
    assert!(skip.add_batch(&[1, 1], &["a", "b"], false).is_err());
    assert!(skip.add_batch(&[100], &["a"], false).is_err());
    assert!(skip.add_batch(&[1], &["a", "b"], false).is_err());
    assert_eq!(skip.len(), 20);
}

#[test]
fn encoding_round_trip_and_damage() {
    let mut rng = Rng(4);
    let mut idx = NearDupIndex::new(0.7, 32, 5).unwrap();
    for id in 0..10 {
        idx.add(id * 3, &random_words(&mut rng, 50, 1000).join(" "))
            .unwrap();
    }
    let bytes = idx.to_bytes();
    let back = NearDupIndex::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(
        (back.threshold(), back.num_perm(), back.seed()),
        (0.7, 32, 5)
    );
    assert_eq!(back.banding(), idx.banding());
    for cut in [0, 7, 8, 47, 56, bytes.len() - 1] {
        assert!(matches!(
            NearDupIndex::from_bytes(&bytes[..cut]),
            Err(Error::Corrupt { .. })
        ));
    }
    for i in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        assert!(
            NearDupIndex::from_bytes(&b).is_err(),
            "flip of bit {i} accepted"
        );
    }
    let empty = NearDupIndex::new(0.9, 8, 0).unwrap();
    assert_eq!(
        NearDupIndex::from_bytes(&empty.to_bytes()).unwrap().len(),
        0
    );
}

#[test]
fn huge_count_is_rejected_without_allocating() {
    let idx = NearDupIndex::new(0.9, 8, 0).unwrap();
    let mut b = idx.to_bytes();
    b.truncate(b.len() - 8);
    b[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
    let sum = xxhash_rust::xxh3::xxh3_64(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    assert!(matches!(
        NearDupIndex::from_bytes(&b),
        Err(Error::Corrupt { .. })
    ));
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(0usize..40, 0..60)
        .prop_map(|ws| ws.into_iter().map(word).collect::<Vec<_>>().join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn identical_texts_always_match(t in "\\PC{0,200}", k in 8usize..300, seed in any::<u64>()) {
        let groups = find_duplicates(&[t.clone(), t.clone()], 1.0, k).unwrap();
        prop_assert_eq!(groups, vec![vec![0, 1]]);
        let mut idx = NearDupIndex::new(1.0, k, seed).unwrap();
        idx.add(7, &t).unwrap();
        prop_assert_eq!(idx.query(&t), vec![(7, 1.0)]);
    }

    #[test]
    fn from_bytes_never_panics(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = NearDupIndex::from_bytes(&data);
        let mut framed = b"MYAIDDUP".to_vec();
        framed.extend_from_slice(&data);
        let _ = NearDupIndex::from_bytes(&framed);
    }

    #[test]
    fn incremental_equals_rebuild(
        ops in prop::collection::vec((any::<bool>(), 0u64..12, text_strategy()), 0..40)
    ) {
        let mut inc = NearDupIndex::new(0.6, 32, 1).unwrap();
        let mut model: std::collections::BTreeMap<u64, String> = Default::default();
        for (add, id, text) in &ops {
            if *add {
                let r = inc.add(*id, text);
                prop_assert_eq!(r.is_ok(), !model.contains_key(id));
                model.entry(*id).or_insert_with(|| text.clone());
            } else {
                prop_assert_eq!(inc.remove(*id), model.remove(id).is_some());
            }
        }
        let mut rebuilt = NearDupIndex::new(0.6, 32, 1).unwrap();
        for (id, text) in &model {
            rebuilt.add(*id, text).unwrap();
        }
        prop_assert_eq!(inc.to_bytes(), rebuilt.to_bytes());
        for (_, _, text) in &ops {
            prop_assert_eq!(inc.query(text), rebuilt.query(text));
        }
        // The buckets hold exactly the stored ids.
        let bucketed: usize = inc.buckets_len();
        prop_assert_eq!(bucketed, model.len() * inc.banding().0);
    }

    #[test]
    fn groups_are_well_formed(texts in prop::collection::vec(text_strategy(), 0..30)) {
        let groups = find_duplicates(&texts, 0.5, 64).unwrap();
        let mut seen = std::collections::HashSet::new();
        for g in &groups {
            prop_assert!(g.len() >= 2);
            prop_assert!(g.windows(2).all(|w| w[0] < w[1]));
            for &i in g {
                prop_assert!(i < texts.len() && seen.insert(i));
            }
        }
        prop_assert!(groups.windows(2).all(|w| w[0][0] < w[1][0]));
        for i in 0..texts.len() {
            for j in i + 1..texts.len() {
                if texts[i] == texts[j] {
                    prop_assert!(groups.iter().any(|g| g.contains(&i) && g.contains(&j)));
                }
            }
        }
    }
}

#[test]
fn batch_groups_equal_index_components() {
    // find_duplicates and an index of the same settings see the same candidate pairs and
    // verify them alike, so the groups are the connected components of the index's matches.
    let mut rng = Rng(8);
    let mut texts = Vec::new();
    for _ in 0..40 {
        let len = 20 + rng.below(200);
        let base = random_words(&mut rng, len, 2000);
        texts.push(base.join(" "));
        for _ in 0..rng.below(4) {
            let changes = rng.below(base.len() / 8 + 1);
            texts.push(mutate(&mut rng, &base, changes).join(" "));
        }
    }
    texts.push(String::new());
    texts.push("?!".into());
    texts.push(texts[3].clone());
    let groups = find_duplicates(&texts, 0.8, 64).unwrap();
    let mut idx = NearDupIndex::new(0.8, 64, 0).unwrap();
    let ids: Vec<u64> = (0..texts.len() as u64).collect();
    idx.add_batch(&ids, &texts, false).unwrap();
    let mut uf = UnionFind::new(texts.len());
    for (i, t) in texts.iter().enumerate() {
        for (j, _) in idx.query(t) {
            uf.union(i, j as usize);
        }
    }
    assert_eq!(groups, super::groups(&mut uf, texts.len()));
    assert!(groups.len() > 10);
}
