//! semid-gen on small built-in data: the KV-cache scorer against the
//! teacher-forced oracle, training, decoding, and refused inputs.

use semid::decode::BeamSearch;
use semid::seq::{LeaveOneOut, SequenceConfig, synthetic_sequences};
use semid::sid::CollisionPolicy;
use semid::synthetic::{MixtureConfig, hierarchical_mixture};
use semid::{Embeddings, Par, RqKMeans, RqKMeansConfig, SemanticIndex};
use semid_gen::{
    Arch, Content, Error, ItemModel, ModelConfig, ParallelModel, SidModel, Stop, TrainConfig,
};

struct Fixture {
    emb: Vec<f32>,
    dim: usize,
    index: SemanticIndex,
    split: LeaveOneOut,
}

fn fixture(max_history: usize) -> Fixture {
    let catalog = MixtureConfig {
        n: 120,
        dim: 16,
        topics: 3,
        ..MixtureConfig::default()
    };
    let emb = hierarchical_mixture(&catalog);
    let seqs = synthetic_sequences(
        &SequenceConfig {
            users: 400,
            ..SequenceConfig::default()
        },
        &catalog,
    )
    .unwrap();
    let (index, _, _) = SemanticIndex::fit::<RqKMeans>(
        &RqKMeansConfig::new(2, 8).seed(3),
        Embeddings::new(&emb, 16).unwrap(),
        CollisionPolicy::AppendSuffix,
        Par::Seq,
    )
    .unwrap();
    Fixture {
        emb,
        dim: 16,
        index,
        split: LeaveOneOut::new(seqs, max_history).unwrap(),
    }
}

fn small() -> ModelConfig {
    ModelConfig {
        arch: Arch::DecoderOnly,
        d: 16,
        heads: 2,
        layers: 1,
        d_ff: 32,
        max_history: 6,
        renormalize: true,
        tied: false,
        plain: false,
    }
}

fn quick(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch: 32,
        lr: 3e-3,
        warmup: 10,
        stride: 3,
        time_budget: None,
        dropout: 0.0,
        ..TrainConfig::default()
    }
}

#[test]
fn cached_scorer_equals_teacher_forced_log_probs() {
    let f = fixture(6);
    let content = Some(Content {
        rows: &f.emb,
        dim: f.dim,
    });
    let m = SidModel::new(&small(), &f.index, 120, 0, content, 7).unwrap();
    check_cached_scorer(&f, &m);
    let plain = ModelConfig {
        plain: true,
        tied: true,
        ..small()
    };
    let m = SidModel::new(&plain, &f.index, 120, 0, None, 7).unwrap();
    check_cached_scorer(&f, &m);
    let t5 = ModelConfig {
        arch: Arch::EncoderDecoder,
        ..small()
    };
    let m = SidModel::new(&t5, &f.index, 120, 0, None, 7).unwrap();
    check_cached_scorer(&f, &m);
    assert!(
        SidModel::new(&t5, &f.index, 120, 0, content, 7).is_err(),
        "content is for the decoder-only model"
    );
}

fn check_cached_scorer(f: &Fixture, m: &SidModel) {
    // A little training so the scores are not uniform.
    m.train(&f.split, f.index.trie(), &quick(1), |_| Ok(0.0), |_| {})
        .unwrap();
    let hs: Vec<&[u32]> = f.split.test().map(|e| e.history).take(40).collect();
    let same: Vec<&[u32]> = hs
        .iter()
        .filter(|h| h.len() == 6)
        .copied()
        .take(3)
        .collect();
    assert_eq!(same.len(), 3);
    for renorm in [true, false] {
        // A beam as wide as the catalog: exhaustive, so every returned
        // score is the item's full log-probability.
        let mut bs = BeamSearch::new(f.index.len(), 10)
            .unwrap()
            .renormalize(renorm);
        let (lists, st) = m.recommend(&f.index, &same, &mut bs).unwrap();
        assert_eq!(st.invalid, 0);
        let mut scorer = m.scorer(&same).unwrap();
        let hits = f.index.search(&mut scorer, same.len(), &mut bs).unwrap();
        for (q, h) in same.iter().enumerate() {
            assert_eq!(hits.query(q).items, lists[q].as_slice());
            let want = m.log_prob(f.index.trie(), h, &lists[q], renorm).unwrap();
            for (a, b) in hits.query(q).scores.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 1e-4,
                    "renorm {renorm}: cached {a} vs oracle {b}"
                );
            }
            // Exhaustive: no other item scores higher than the 10th.
            let all: Vec<u32> = (0..120).collect();
            let every = m.log_prob(f.index.trie(), h, &all, renorm).unwrap();
            let tenth = hits.query(q).scores[9];
            let above = every.iter().filter(|&&s| s > tenth + 1e-4).count();
            assert!(above < 10, "{above} items beat the 10th hit");
        }
    }
}

#[test]
fn training_keeps_the_best_epoch_and_stops_on_patience() {
    let f = fixture(6);
    let m = SidModel::new(&small(), &f.index, 120, 0, None, 1).unwrap();
    // A validation score that peaks at epoch 2.
    let mut calls = 0;
    let cfg = TrainConfig {
        patience: 2,
        ..quick(10)
    };
    let r = m
        .train(
            &f.split,
            f.index.trie(),
            &cfg,
            |_| {
                calls += 1;
                Ok([0.1, 0.3, 0.2, 0.25, 0.9][calls - 1])
            },
            |_| {},
        )
        .unwrap();
    assert_eq!(r.best_epoch, 2);
    assert_eq!(r.epochs.len(), 4);
    assert_eq!(r.stop, Stop::Patience);
    assert!(r.epochs[3].loss < r.epochs[0].loss, "{:?}", r.epochs);
    assert!(r.epochs.iter().filter(|e| e.best).count() == 2);
}

/// The 10 items most frequent in the training parts (ties by id).
fn popular_top10(f: &Fixture) -> Vec<u32> {
    let mut counts = vec![0usize; 120];
    for u in 0..f.split.sequences().len() {
        let s = f.split.sequences().items(u);
        for &i in &s[..s.len() - 2] {
            counts[i as usize] += 1;
        }
    }
    let mut pop: Vec<u32> = (0..120).collect();
    pop.sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
    pop.truncate(10);
    pop
}

#[test]
fn trained_models_beat_popularity_on_built_in_sequences() {
    let f = fixture(6);
    let test: Vec<_> = f.split.test().collect();
    let hs: Vec<&[u32]> = test.iter().map(|e| e.history).collect();
    let hit = |lists: &[Vec<u32>]| {
        lists
            .iter()
            .zip(&test)
            .filter(|(l, e)| l.contains(&e.target))
            .count()
    };
    let popular = hit(&vec![popular_top10(&f); test.len()]);
    let m = SidModel::new(&small(), &f.index, 120, 0, None, 1).unwrap();
    m.train(&f.split, f.index.trie(), &quick(8), |_| Ok(0.0), |_| {})
        .unwrap();
    let mut bs = BeamSearch::new(10, 10).unwrap().renormalize(true);
    let (lists, st) = m.recommend(&f.index, &hs, &mut bs).unwrap();
    assert_eq!(st.invalid, 0);
    assert!(
        lists
            .iter()
            .all(|l| l.len() == 10 && l.iter().all(|&i| i < 120))
    );
    // Built-in users stay within topics, which popularity cannot see.
    println!(
        "hits of {}: popularity {popular}, generative {}",
        test.len(),
        hit(&lists)
    );
    assert!(hit(&lists) > popular, "generative hits {}", hit(&lists));

    let t5 = ModelConfig {
        arch: Arch::EncoderDecoder,
        ..small()
    };
    let m = SidModel::new(&t5, &f.index, 120, 0, None, 1).unwrap();
    m.train(&f.split, f.index.trie(), &quick(3), |_| Ok(0.0), |_| {})
        .unwrap();
    let (lists, st) = m.recommend(&f.index, &hs, &mut bs).unwrap();
    assert_eq!(st.invalid, 0);
    println!("encoder-decoder {}", hit(&lists));
    assert!(
        hit(&lists) > popular,
        "encoder-decoder hits {}",
        hit(&lists)
    );

    let sas = ItemModel::new(&small(), 120, None, 1).unwrap();
    sas.train(&f.split, &quick(8), |_| Ok(0.0), |_| {}).unwrap();
    let lists = sas.recommend(&hs, 10).unwrap();
    assert!(lists.iter().all(|l| {
        let mut s = l.clone();
        s.sort();
        s.dedup();
        s.len() == 10
    }));
    println!("SASRec {}", hit(&lists));
    assert!(hit(&lists) > popular, "SASRec hits {}", hit(&lists));
}

/// Product-quantizer codes of the fixture: `m` sub-spaces of the 16-wide
/// embeddings, k-means with `k` centroids in each.
fn pq(f: &Fixture, m: usize, k: usize) -> Vec<u16> {
    let ds = f.dim / m;
    let n = f.emb.len() / f.dim;
    let mut codes = vec![0u16; n * m];
    for j in 0..m {
        let part: Vec<f32> = f
            .emb
            .chunks_exact(f.dim)
            .flat_map(|r| r[j * ds..(j + 1) * ds].to_vec())
            .collect();
        let x = Embeddings::new(&part, ds).unwrap();
        let (km, _) = semid::KMeans::fit(&semid::KMeansConfig::new(k).seed(j as u64), x).unwrap();
        let (labels, _) = km.assign(x, Par::Seq).unwrap();
        for (r, &l) in labels.iter().enumerate() {
            codes[r * m + j] = l as u16;
        }
    }
    codes
}

#[test]
fn parallel_code_model_beats_popularity_and_is_deterministic() {
    let f = fixture(6);
    let test: Vec<_> = f.split.test().collect();
    let hs: Vec<&[u32]> = test.iter().map(|e| e.history).collect();
    let hits = |lists: &[Vec<u32>]| {
        lists
            .iter()
            .zip(&test)
            .filter(|(l, e)| l.contains(&e.target))
            .count()
    };
    let popular = hits(&vec![popular_top10(&f); test.len()]);
    let codes = pq(&f, 4, 8);
    let run = || {
        let m = ParallelModel::new(&small(), &codes, 4, 8, 1).unwrap();
        assert_eq!((m.n_items(), m.code_shape()), (120, (4, 8)));
        m.train(&f.split, &quick(8), |_| Ok(0.0), |_| {}).unwrap();
        m.recommend(&hs, 10).unwrap()
    };
    let lists = run();
    assert!(lists.iter().all(|l| {
        let mut s = l.clone();
        s.sort();
        s.dedup();
        s.len() == 10 && s.iter().all(|&i| i < 120)
    }));
    println!("parallel codes {} vs popularity {popular}", hits(&lists));
    assert!(hits(&lists) > popular, "parallel hits {}", hits(&lists));
    assert_eq!(lists, run(), "same data and seed, same lists");
}

#[test]
fn parallel_code_model_saves_and_loads_with_the_same_lists() {
    let f = fixture(6);
    let codes = pq(&f, 4, 8);
    let m = ParallelModel::new(&small(), &codes, 4, 8, 3).unwrap();
    m.train(&f.split, &quick(2), |_| Ok(0.0), |_| {}).unwrap();
    let hs: Vec<&[u32]> = f.split.test().map(|e| e.history).collect();
    let dir = std::env::temp_dir().join(format!("semid-gen-parallel-{}", std::process::id()));
    m.save(&dir).unwrap();
    let back = ParallelModel::load(&dir).unwrap();
    assert_eq!(back.code_shape(), (4, 8));
    assert_eq!(
        m.recommend(&hs, 10).unwrap(),
        back.recommend(&hs, 10).unwrap()
    );
    // Another kind of model file, and a codes file that disagrees.
    assert!(ItemModel::load(&dir, None).is_err());
    let other = ParallelModel::new(&small(), &codes[..60 * 4], 4, 8, 3).unwrap();
    let dir2 = dir.with_extension("short");
    other.save(&dir2).unwrap();
    std::fs::copy(
        dir2.join("codes.safetensors"),
        dir.join("codes.safetensors"),
    )
    .unwrap();
    let e = ParallelModel::load(&dir).err().unwrap();
    assert!(
        matches!(&e, Error::File { path, .. } if path.ends_with("codes.safetensors")),
        "{e}"
    );
    std::fs::remove_file(dir.join("codes.safetensors")).unwrap();
    assert!(matches!(ParallelModel::load(&dir), Err(Error::File { .. })));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&dir2).ok();
}

#[test]
fn parallel_code_model_refuses_bad_codes_and_items() {
    let f = fixture(6);
    let codes = pq(&f, 4, 8);
    for (c, m, k) in [
        (&codes[..], 0, 8),
        (&codes[..], 4, 0),
        (&codes[..7], 4, 8),
        (&[][..], 4, 8),
        (&codes[..], 4, 4),
        (&codes[..], 4, 70_000),
    ] {
        assert!(
            matches!(
                ParallelModel::new(&small(), c, m, k, 1),
                Err(Error::Config { field: "codes", .. })
            ),
            "m {m}, k {k}, {} codes",
            c.len()
        );
    }
    let m = ParallelModel::new(&small(), &codes, 4, 8, 1).unwrap();
    let unknown: &[u32] = &[3, 500];
    assert!(matches!(
        m.recommend(&[unknown], 5),
        Err(Error::UnknownItem { item: 500, .. })
    ));
}

#[test]
fn bad_inputs_are_typed_errors() {
    let f = fixture(6);
    let m = SidModel::new(&small(), &f.index, 120, 0, None, 1).unwrap();
    let mut bs = BeamSearch::new(4, 4).unwrap();
    let unknown: &[u32] = &[3, 500];
    assert!(matches!(
        m.recommend(&f.index, &[unknown], &mut bs),
        Err(Error::UnknownItem { item: 500, .. })
    ));
    let (a, b): (&[u32], &[u32]) = (&[1, 2], &[1, 2, 3]);
    assert!(matches!(m.scorer(&[a, b]), Err(Error::Config { .. })));
    let empty: &[u32] = &[];
    assert!(m.scorer(&[empty]).is_err());
    // A token map that does not cover a wider trie.
    let (wide, _, _) = SemanticIndex::fit::<RqKMeans>(
        &RqKMeansConfig::new(2, 16).seed(3),
        Embeddings::new(&f.emb, 16).unwrap(),
        CollisionPolicy::AppendSuffix,
        Par::Seq,
    )
    .unwrap();
    assert!(matches!(
        m.recommend(&wide, &[a], &mut bs),
        Err(Error::Semid(semid::Error::InvalidConfig { .. }))
    ));
    // A scorer failure inside a search is semid's Scorer error.
    let mut scorer = m.scorer(&[a]).unwrap();
    let r = f.index.search(&mut scorer, 2, &mut bs);
    assert!(r.is_err());
    // Content of the wrong size, NaN content, bad shapes.
    let short = Content {
        rows: &f.emb[..16],
        dim: 16,
    };
    assert!(SidModel::new(&small(), &f.index, 120, 0, Some(short), 1).is_err());
    let mut nan = f.emb.clone();
    nan[40] = f32::NAN;
    let c = Content {
        rows: &nan,
        dim: 16,
    };
    assert!(SidModel::new(&small(), &f.index, 120, 0, Some(c), 1).is_err());
    let bad = ModelConfig {
        heads: 3,
        ..small()
    };
    assert!(matches!(
        SidModel::new(&bad, &f.index, 120, 0, None, 1),
        Err(Error::Config { field: "heads", .. })
    ));
    assert!(SidModel::new(&small(), &f.index, 500, 0, None, 1).is_err());
    assert!(ItemModel::new(&small(), 0, None, 1).is_err());
    let cfg = TrainConfig {
        lr: -1.0,
        ..quick(1)
    };
    assert!(matches!(
        m.train(&f.split, f.index.trie(), &cfg, |_| Ok(0.0), |_| {}),
        Err(Error::Config { field: "lr", .. })
    ));
}

#[test]
fn models_save_and_load_with_the_same_recommendations() {
    let f = fixture(6);
    let content = Some(Content {
        rows: &f.emb,
        dim: f.dim,
    });
    let hs: Vec<&[u32]> = f.split.test().map(|e| e.history).take(30).collect();
    let tmp = std::env::temp_dir().join(format!("semid-gen-save-{}", std::process::id()));
    for (arch, c) in [(Arch::DecoderOnly, content), (Arch::EncoderDecoder, None)] {
        let cfg = ModelConfig { arch, ..small() };
        let m = SidModel::new(&cfg, &f.index, 120, 0, c, 4).unwrap();
        m.train(&f.split, f.index.trie(), &quick(1), |_| Ok(0.0), |_| {})
            .unwrap();
        let dir = tmp.join(format!("{arch:?}"));
        m.save(&dir).unwrap();
        let back = SidModel::load(&dir, &f.index, 120, c).unwrap();
        let mut bs = BeamSearch::new(10, 10).unwrap().renormalize(true);
        let a = m.recommend(&f.index, &hs, &mut bs).unwrap().0;
        let b = back.recommend(&f.index, &hs, &mut bs).unwrap().0;
        assert_eq!(a, b, "{arch:?}");
        // The wrong kind, content of another shape, a newer format.
        assert!(ItemModel::load(&dir, None).is_err());
        if c.is_some() {
            assert!(SidModel::load(&dir, &f.index, 120, None).is_err());
        }
        let meta = std::fs::read_to_string(dir.join("semid-gen.json")).unwrap();
        std::fs::write(
            dir.join("semid-gen.json"),
            meta.replace("\"version\": 1", "\"version\": 99"),
        )
        .unwrap();
        let e = SidModel::load(&dir, &f.index, 120, c)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("semid-gen.json") && e.contains("newer"), "{e}");
    }
    let sas = ItemModel::new(&small(), 120, None, 2).unwrap();
    sas.train(&f.split, &quick(1), |_| Ok(0.0), |_| {}).unwrap();
    let dir = tmp.join("sas");
    sas.save(&dir).unwrap();
    let back = ItemModel::load(&dir, None).unwrap();
    assert_eq!(
        sas.recommend(&hs, 10).unwrap(),
        back.recommend(&hs, 10).unwrap()
    );
    // Weights of another shape.
    std::fs::copy(
        tmp.join("DecoderOnly/model.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    let e = ItemModel::load(&dir, None).err().unwrap().to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("tensor"),
        "{e}"
    );
    std::fs::remove_dir_all(tmp).ok();
}
