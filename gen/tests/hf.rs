//! Checkpoints written by HuggingFace transformers load and compute the
//! logits PyTorch recorded (tests/data/hf/make_fixtures.py wrote both;
//! versions in each expected.json). Tolerance: 1e-4 absolute on logits of
//! magnitude ≤ ~10 (float32, different summation orders).

use std::path::{Path, PathBuf};

use semid_gen::Error;
use semid_gen::t5::{T5, T5Cache, relative_bucket};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/hf")
        .join(name)
}

fn expected(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ints(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<f32>) {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            x => out.push(x.as_f64().unwrap() as f32),
        }
    }
    walk(v, &mut out);
    out
}

fn close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "{what}: max |diff| {worst}");
}

/// A tensor's values, flattened.
fn values(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Compares one decoding step's logits (`rows × v`, position `p`) with the
/// recorded logits of every row (`rows × t × v`).
fn close_step(
    step: &[f32],
    want: &[f32],
    (rows, t, v): (usize, usize, usize),
    p: usize,
    what: &str,
) {
    for r in 0..rows {
        let at = (r * t + p) * v;
        close(&step[r * v..(r + 1) * v], &want[at..at + v], what);
    }
}

#[test]
fn t5_checkpoints_match_pytorch_logits() {
    for name in ["t5_relu_v5", "t5_relu_untied_v4", "t5_gated_tied"] {
        let m = T5::load(dir(name)).unwrap();
        let e = expected(name);
        let ids = ints(&e["input_ids"]);
        let lens: Vec<usize> = ints(&e["attention_mask"])
            .iter()
            .map(|r| r.iter().sum::<u32>() as usize)
            .collect();
        let flat: Vec<u32> = ids.concat();
        let enc = m.encode(&flat, &lens, None).unwrap();
        let dec = ints(&e["decoder_input_ids"]);
        let want = floats(&e["logits"]);
        // All decoder positions at once.
        let mut cache = T5Cache::default();
        let logits = m.decode(&dec.concat(), &enc, &mut cache, None).unwrap();
        close(&values(&logits), &want, name);
        // One position at a time through the KV cache.
        let dims = (dec.len(), dec[0].len(), 40);
        let mut cache = T5Cache::default();
        for p in 0..dims.1 {
            let col: Vec<u32> = dec.iter().map(|r| r[p]).collect();
            let l = m.decode(&col, &enc, &mut cache, None).unwrap();
            close_step(&values(&l), &want, dims, p, &format!("{name}, cached step"));
        }
    }
}

#[test]
fn t5_saves_and_reloads_bit_for_bit() {
    let m = T5::load(dir("t5_relu_untied_v4")).unwrap();
    let out = std::env::temp_dir().join(format!("semid-gen-t5-{}", std::process::id()));
    m.save(&out).unwrap();
    let again = T5::load(&out).unwrap();
    let enc_a = m.encode(&[3, 4, 5, 6], &[4], None).unwrap();
    let enc_b = again.encode(&[3, 4, 5, 6], &[4], None).unwrap();
    let a = m
        .decode(&[0, 9, 8], &enc_a, &mut T5Cache::default(), None)
        .unwrap();
    let b = again
        .decode(&[0, 9, 8], &enc_b, &mut T5Cache::default(), None)
        .unwrap();
    assert_eq!(values(&a), values(&b));
    std::fs::remove_dir_all(out).ok();
}

#[test]
fn relative_buckets_match_transformers() {
    // transformers' _relative_position_bucket(torch.arange(-40, 41), ...)
    // for (bidirectional, buckets, max_distance) = (True, 32, 128) and
    // (False, 8, 20), printed by PyTorch 2.x.
    let bi: Vec<u32> = (-40..=40)
        .map(|r| relative_bucket(r, true, 32, 128))
        .collect();
    let want_bi = [
        12, 12, 12, 12, 12, 12, 12, 12, 12, 11, 11, 11, 11, 11, 11, 11, 11, 11, 10, 10, 10, 10, 10,
        10, 10, 9, 9, 9, 9, 8, 8, 8, 8, 7, 6, 5, 4, 3, 2, 1, 0, 17, 18, 19, 20, 21, 22, 23, 24, 24,
        24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 26, 26, 26, 27, 27, 27, 27, 27, 27, 27, 27, 27, 28,
        28, 28, 28, 28, 28, 28, 28, 28,
    ];
    assert_eq!(bi, want_bi);
    let uni: Vec<u32> = (-40..=0)
        .map(|r| relative_bucket(r, false, 8, 20))
        .collect();
    let want_uni = [
        7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6,
        6, 6, 5, 5, 5, 4, 4, 3, 2, 1, 0,
    ];
    assert_eq!(uni, want_uni);
    assert!((1..=40).all(|r| relative_bucket(r, false, 8, 20) == 0));
}

#[test]
fn mismatched_checkpoints_are_refused_naming_the_tensor() {
    let tmp = std::env::temp_dir().join(format!("semid-gen-bad-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let src = dir("t5_gated_tied");
    std::fs::copy(src.join("model.safetensors"), tmp.join("model.safetensors")).unwrap();
    // A config whose d_ff disagrees with the tensors.
    let cfg = std::fs::read_to_string(src.join("config.json")).unwrap();
    std::fs::write(
        tmp.join("config.json"),
        cfg.replace("\"d_ff\": 32", "\"d_ff\": 48"),
    )
    .unwrap();
    let e = T5::load(&tmp).err().expect("a d_ff mismatch");
    let msg = e.to_string();
    assert!(matches!(e, Error::File { .. }), "{msg}");
    assert!(
        msg.contains("wi_0.weight") && msg.contains("[32, 16]") && msg.contains("[48, 16]"),
        "{msg}"
    );
    // The gated checkpoint read as relu: wi.weight is missing.
    std::fs::write(tmp.join("config.json"), cfg.replace("gated-gelu", "relu")).unwrap();
    let msg = T5::load(&tmp).err().expect("relu vs gated").to_string();
    assert!(
        msg.contains("DenseReluDense.wi.weight") && msg.contains("missing"),
        "{msg}"
    );
    // An unknown feed-forward kind, a truncated file, no file.
    std::fs::write(
        tmp.join("config.json"),
        cfg.replace("gated-gelu", "gated-silu"),
    )
    .unwrap();
    assert!(
        T5::load(&tmp)
            .err()
            .unwrap()
            .to_string()
            .contains("feed_forward_proj")
    );
    std::fs::write(tmp.join("config.json"), &cfg).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(tmp.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(T5::load(&tmp), Err(Error::File { .. })));
    std::fs::remove_file(tmp.join("config.json")).unwrap();
    assert!(matches!(T5::load(&tmp), Err(Error::Io { .. })));
    std::fs::remove_dir_all(tmp).ok();
}

#[test]
fn gpt2_checkpoint_matches_pytorch_logits() {
    use semid_gen::gpt2::{Gpt2, Gpt2Cache};
    let m = Gpt2::load(dir("gpt2")).unwrap();
    let e = expected("gpt2");
    let ids = ints(&e["input_ids"]);
    let want = floats(&e["logits"]);
    let logits = m
        .forward(&ids.concat(), ids.len(), &mut Gpt2Cache::default())
        .unwrap();
    close(&values(&logits), &want, "gpt2");
    // A prompt of 7, then one token at a time through the cache.
    let dims @ (rows, t, v) = (ids.len(), ids[0].len(), 40);
    let mut cache = Gpt2Cache::default();
    let head: Vec<u32> = ids.iter().flat_map(|r| r[..7].to_vec()).collect();
    let first = values(&m.forward(&head, rows, &mut cache).unwrap());
    for r in 0..rows {
        for p in 0..7 {
            let at = (r * t + p) * v;
            close(
                &first[(r * 7 + p) * v..(r * 7 + p + 1) * v],
                &want[at..at + v],
                "gpt2 prompt",
            );
        }
    }
    for p in 7..t {
        let col: Vec<u32> = ids.iter().map(|r| r[p]).collect();
        let l = values(&m.forward(&col, rows, &mut cache).unwrap());
        close_step(&l, &want, dims, p, "gpt2 cached step");
    }
    // Past the learned positions, or a token outside the vocabulary.
    assert!(m.forward(&[1; 40], 1, &mut Gpt2Cache::default()).is_err());
    assert!(m.forward(&[40], 1, &mut Gpt2Cache::default()).is_err());
}

/// A trie of the IDs (a, b) over two levels of 5 codes.
fn small_trie() -> semid::sid::Trie {
    let ids: Vec<u16> = vec![0, 1, 0, 3, 2, 2, 4, 0, 4, 4, 1, 1];
    semid::sid::Trie::from_ids(&ids, 2, &[5, 5]).unwrap()
}

#[test]
fn hf_checkpoints_serve_semantic_ids_through_the_beam_search() {
    use semid::decode::BeamSearch;
    use semid_gen::HfModel;
    use semid_gen::gpt2::{Gpt2, Gpt2Cache};
    let trie = small_trie();
    let prompts: Vec<Vec<u32>> = vec![vec![10, 21, 12, 23, 5], vec![14, 20, 11, 24, 7]];
    let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let log_softmax = |row: &[f32]| -> Vec<f32> {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f32>().ln();
        row.iter().map(|x| x - lse).collect()
    };
    for name in ["t5_gated_tied", "gpt2"] {
        let m = HfModel::load(dir(name)).unwrap();
        m.check(&trie).unwrap();
        let mut bs = BeamSearch::new(6, 6).unwrap();
        let mut scorer = m.scorer(&refs).unwrap();
        let hits = bs.search(&trie, &mut scorer, 2).unwrap();
        assert!(scorer.model_time() > std::time::Duration::ZERO);
        for (q, p) in prompts.iter().enumerate() {
            let h = hits.query(q);
            assert_eq!(h.items.len(), 6, "{name}: every valid ID is returned");
            // Each returned score equals the teacher-forced log-probability.
            for (k, id) in h.ids.chunks(2).enumerate() {
                let (t0, t1) = (10 + id[0] as u32, 20 + id[1] as u32);
                let rows: Vec<f32> = if name == "gpt2" {
                    let g = Gpt2::load(dir(name)).unwrap();
                    let mut ids = p.clone();
                    ids.extend([t0, t1]);
                    let l = g.forward(&ids, 1, &mut Gpt2Cache::default()).unwrap();
                    l.narrow(1, p.len() - 1, 2)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1()
                        .unwrap()
                } else {
                    let t = T5::load(dir(name)).unwrap();
                    let enc = t.encode(p, &[p.len()], None).unwrap();
                    let l = t
                        .decode(&[0, t0], &enc, &mut T5Cache::default(), None)
                        .unwrap();
                    l.flatten_all().unwrap().to_vec1().unwrap()
                };
                let (a, b) = (log_softmax(&rows[..40]), log_softmax(&rows[40..80]));
                let want = a[t0 as usize] + b[t1 as usize];
                assert!(
                    (h.scores[k] - want).abs() < 1e-4,
                    "{name}: {} vs {want}",
                    h.scores[k]
                );
            }
        }
    }
}

#[test]
fn hf_serving_refuses_bad_maps_and_prompts() {
    use semid::decode::BeamSearch;
    use semid_gen::HfModel;
    let m = HfModel::load(dir("gpt2")).unwrap();
    let (a, b): (&[u32], &[u32]) = (&[10, 20], &[10, 20, 11]);
    assert!(m.scorer(&[a, b]).is_err(), "GPT-2 prompts of two lengths");
    assert!(
        m.scorer(&[&[41]]).is_err(),
        "a token outside the vocabulary"
    );
    assert!(m.scorer(&[]).is_err());
    // A trie with more codes than tokens.json maps.
    let wide = semid::sid::Trie::from_ids(&[0, 6], 2, &[5, 7]).unwrap();
    assert!(m.check(&wide).is_err());
    let mut bs = BeamSearch::new(4, 4).unwrap();
    let mut scorer = m.scorer(&[a]).unwrap();
    let e = bs
        .search(&wide, &mut scorer, 1)
        .expect_err("uncovered codes");
    assert!(matches!(e, semid::Error::Scorer { .. }), "{e}");
    // tokens.json missing, or mapping past the model's vocabulary.
    let tmp = std::env::temp_dir().join(format!("semid-gen-serve-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(dir("gpt2").join(f), tmp.join(f)).unwrap();
    }
    assert!(matches!(HfModel::load(&tmp), Err(Error::Io { .. })));
    let big = r#"{"table": [[10, 11], [50, 51]], "vocab_size": 60, "specials": {}}"#;
    std::fs::write(tmp.join("tokens.json"), big).unwrap();
    let msg = HfModel::load(&tmp).err().unwrap().to_string();
    assert!(msg.contains("tokens.json") && msg.contains("60"), "{msg}");
    let dup = r#"{"table": [[10, 10]], "vocab_size": 40, "specials": {}}"#;
    std::fs::write(tmp.join("tokens.json"), dup).unwrap();
    assert!(
        HfModel::load(&tmp)
            .err()
            .unwrap()
            .to_string()
            .contains("tokens.json")
    );
    std::fs::remove_dir_all(tmp).ok();
}
