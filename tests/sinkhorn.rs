//! Sinkhorn assignment against the numpy twin of LC-Rec's code
//! (`tests/data/sinkhorn/gen_sinkhorn.py`): the same token for every row of
//! every case, and the same codes after LC-Rec's collision loop.

use std::path::PathBuf;

mod common;

use semid::Error;
use semid::sid::{Sinkhorn, resolve_collisions};

fn data(f: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sinkhorn")
        .join(f)
}

#[test]
fn assign_matches_the_reference_on_every_case() {
    let text = std::fs::read_to_string(data("cases.tsv")).unwrap();
    let mut cases = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let (name, b, k): (&str, usize, usize) =
            (f[0], f[1].parse().unwrap(), f[2].parse().unwrap());
        let sk = Sinkhorn::new(f[3].parse().unwrap(), f[4].parse().unwrap()).unwrap();
        let want: Vec<u16> = f[6].split(',').map(|t| t.parse().unwrap()).collect();
        let (dist, d) = semid::npy::read_npy(data(&format!("{name}.npy"))).unwrap();
        assert_eq!((dist.len() / d, d), (b, k), "{name}");
        let mut got = vec![0u16; b];
        sk.assign(&dist, k, &mut got).unwrap();
        assert_eq!(got, want, "{name} (ties: {})", f[5]);
        // The last step scales every column to 1/K, then the plan is
        // multiplied by B (LC-Rec's `Q *= B`).
        let q = sk.plan(&dist, k).unwrap();
        for j in 0..k {
            let col: f64 = q.iter().skip(j).step_by(k).sum();
            assert!((col - b as f64 / k as f64).abs() < 1e-9, "{name}");
        }
        cases += 1;
    }
    assert_eq!(cases, 9);
}

#[test]
fn the_collision_loop_matches_the_reference() {
    let (codes, l) = semid::npy::read_npy(data("loop_codes.npy")).unwrap();
    let (dist, k) = semid::npy::read_npy(data("loop_dist.npy")).unwrap();
    let (want, _) = semid::npy::read_npy(data("loop_out.npy")).unwrap();
    let mut c: Vec<u16> = codes.iter().map(|&v| v as u16).collect();
    let before = c.clone();
    let rounds = resolve_collisions(&mut c, l, &dist, k, &Sinkhorn::LC_REC, 20).unwrap();
    let want: Vec<u16> = want.iter().map(|&v| v as u16).collect();
    assert_eq!(c, want);
    assert_eq!(rounds, 20);
    // Only last tokens moved.
    for (a, b) in c.chunks_exact(l).zip(before.chunks_exact(l)) {
        assert_eq!(a[..l - 1], b[..l - 1]);
    }
    // Nothing to do once codes are unique: zero rounds, codes unchanged.
    let mut unique: Vec<u16> = (0..60u16).flat_map(|i| [i / 8, i % 8]).collect();
    let copy = unique.clone();
    assert_eq!(
        resolve_collisions(&mut unique, 2, &dist, k, &Sinkhorn::LC_REC, 20).unwrap(),
        0
    );
    assert_eq!(unique, copy);
}

#[test]
fn bad_settings_and_inputs_are_typed_errors() {
    for eps in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-4] {
        assert!(
            matches!(
                Sinkhorn::new(eps, 50),
                Err(Error::InvalidConfig {
                    field: "epsilon",
                    ..
                })
            ),
            "{eps}"
        );
    }
    assert!(matches!(
        Sinkhorn::new(0.003, 0),
        Err(Error::InvalidConfig {
            field: "iterations",
            ..
        })
    ));
    let sk = Sinkhorn::LC_REC;
    let mut out = [0u16; 2];
    assert!(matches!(
        sk.assign(&[1.0, 2.0, 3.0], 2, &mut out),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        sk.assign(&[], 2, &mut out),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        sk.assign(&[1.0, 2.0], 0, &mut out),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        sk.assign(&[1.0, f32::NAN, 3.0, 4.0], 2, &mut out),
        Err(Error::NonFinite { row: 0, col: 1, .. })
    ));
    assert!(matches!(
        sk.assign(&[1.0, 2.0, 3.0, 4.0], 2, &mut out[..1]),
        Err(Error::Shape { .. })
    ));
    // Equal distances: an even plan, the first token.
    sk.assign(&[5.0; 4], 2, &mut out).unwrap();
    assert_eq!(out, [0, 0]);
    let mut codes = vec![0u16, 1, 0, 1];
    assert!(matches!(
        resolve_collisions(&mut codes, 0, &[0.0; 4], 2, &sk, 3),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        resolve_collisions(&mut codes, 2, &[0.0; 3], 2, &sk, 3),
        Err(Error::Shape { .. })
    ));
}

/// The policy: a map built under `CollisionPolicy::Sinkhorn` holds the
/// codes `resolve_collisions` gives, then the suffix; it is saved as a
/// version-2 file and read back; other maps stay version 1.
#[test]
fn sinkhorn_policy_builds_saves_and_inserts() {
    use semid::quantize::LastLevelDistances;
    use semid::sid::{CollisionPolicy, SidMap, Trie};
    use semid::{
        Codes, Embeddings, ModelFile, Par, Quantizer, RqKMeans, RqKMeansConfig, SemanticIndex,
    };
    let cfg = semid::synthetic::MixtureConfig {
        n: 1_500,
        dim: 16,
        topics: 20,
        ..Default::default()
    };
    let data = semid::synthetic::hierarchical_mixture(&cfg);
    let x = Embeddings::new(&data, 16).unwrap();
    let (q, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 32).seed(3), x).unwrap();
    let greedy = q.encode(x).unwrap();
    assert!(SidMap::build(&greedy, &[32, 32], CollisionPolicy::SINKHORN).is_err());
    let (map, r) = SidMap::build_with_distances(&greedy, &q, x, CollisionPolicy::SINKHORN).unwrap();
    assert_eq!(map.id_len(), 3);
    assert_eq!(r.unique_ids, 1_500);
    // The same codes as the loop run by hand on the whole catalog (rows
    // outside collisions never move, so distances of every row do).
    let mut dist = vec![0f32; 1_500 * 32];
    q.last_level_distances(x, greedy.as_slice(), &mut dist)
        .unwrap();
    let mut want = greedy.as_slice().to_vec();
    resolve_collisions(&mut want, 2, &dist, 32, &Sinkhorn::LC_REC, 20).unwrap();
    for item in 0..1_500u32 {
        assert_eq!(
            &map.id_of(item).unwrap()[..2],
            &want[item as usize * 2..item as usize * 2 + 2]
        );
    }
    let moved = want
        .iter()
        .zip(greedy.as_slice())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(r.moved, moved);
    assert!(moved > 0);
    // Version 2 on disk; reads back equal; the suffix map stays version 1.
    let bytes = map.to_bytes().unwrap();
    assert_eq!(semid::format::inspect(&bytes).unwrap().version, 2);
    assert_eq!(SidMap::from_bytes(&bytes).unwrap(), map);
    let (plain, _) = SidMap::build(&greedy, &[32, 32], CollisionPolicy::AppendSuffix).unwrap();
    assert_eq!(
        semid::format::inspect(&plain.to_bytes().unwrap())
            .unwrap()
            .version,
        1
    );
    // The trie holds every ID; an index builds, inserts and round-trips.
    assert_eq!(Trie::build(&map).unwrap().len(), 1_500);
    let (mut index, _) = SemanticIndex::build(
        q.clone(),
        x.slice(0, 1_000).unwrap(),
        CollisionPolicy::SINKHORN,
        Par::Seq,
    )
    .unwrap();
    let before: Vec<Vec<u16>> = (0..1_000)
        .map(|i| index.id_of(i).unwrap().to_vec())
        .collect();
    let items: Vec<u32> = (1_000..1_500).collect();
    let r = index
        .insert(&items, x.slice(1_000, 1_500).unwrap(), Par::Seq)
        .unwrap();
    assert_eq!((r.items, r.unique_ids), (1_500, 1_500));
    for (i, id) in before.iter().enumerate() {
        assert_eq!(index.id_of(i as u32).unwrap(), &id[..]);
    }
    assert_eq!(
        SemanticIndex::from_bytes(&index.to_bytes().unwrap()).unwrap(),
        index
    );
    // Settings that cannot work are refused.
    let zero = CollisionPolicy::Sinkhorn {
        sinkhorn: Sinkhorn::LC_REC,
        rounds: 0,
    };
    assert!(matches!(
        SidMap::new(&[32, 32], zero),
        Err(Error::InvalidConfig {
            field: "rounds",
            ..
        })
    ));
    let _ = Codes::new(vec![0, 0], 2).unwrap();
}

/// The golden version-2 file: a Sinkhorn map of 60 items (the loop's
/// codes and distances, through a map built from them). It must load
/// unchanged forever, pass the model-file contract, and this build must
/// write the same bytes. Written once with `SEMID_WRITE_GOLDEN=1`.
#[test]
fn golden_v2_sinkhorn_map_loads_forever() {
    use semid::ModelFile;
    use semid::sid::{CollisionPolicy, SidMap};
    let path = data("../sid_map_sinkhorn_v2.semid");
    if std::env::var_os("SEMID_WRITE_GOLDEN").is_some() {
        // Any Sinkhorn map will do; this one comes from a small fit.
        let cfg = semid::synthetic::MixtureConfig {
            n: 200,
            dim: 8,
            topics: 6,
            ..Default::default()
        };
        let v = semid::synthetic::hierarchical_mixture(&cfg);
        let x = semid::Embeddings::new(&v, 8).unwrap();
        let (q, _) = semid::RqKMeans::fit(&semid::RqKMeansConfig::new(2, 8).seed(1), x).unwrap();
        let codes = semid::Quantizer::encode(&q, x).unwrap();
        let (m, _) =
            SidMap::build_with_distances(&codes, &q, x, CollisionPolicy::SINKHORN).unwrap();
        m.save(&path).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(semid::format::inspect(&bytes).unwrap().version, 2);
    let m = SidMap::from_bytes(&bytes).unwrap();
    assert_eq!(m.policy(), CollisionPolicy::SINKHORN);
    assert_eq!((m.len(), m.id_len()), (200, 3));
    assert_eq!(m.stats().unique_ids, 200);
    assert_eq!(m.to_bytes().unwrap(), bytes);
    let other = std::fs::read(data("../kmeans_v1.semid")).unwrap();
    common::check_model_file(&m, 7, &other);
    // The same payload framed as version 1 is refused: tag 3 needs 2.
    let mut v1 = bytes.clone();
    v1[8] = 1;
    assert!(SidMap::from_bytes(&v1).is_err());
}

/// RQ-VAE gives last-level distances too: each row's last token is (up to
/// rounding) its nearest last-level codeword, and both distance policies
/// build unique IDs over it.
#[test]
fn rqvae_last_level_distances_serve_the_policies() {
    use semid::quantize::{LastLevelDistances, RqVae, RqVaeConfig};
    use semid::sid::CollisionPolicy;
    use semid::{Embeddings, Par, Quantizer, SemanticIndex};
    let cfg = semid::synthetic::MixtureConfig {
        n: 800,
        dim: 12,
        topics: 10,
        ..Default::default()
    };
    let data = semid::synthetic::hierarchical_mixture(&cfg);
    let x = Embeddings::new(&data, 12).unwrap();
    let mut c = RqVaeConfig::new(2, 16).seed(2);
    c.hidden = vec![16];
    c.latent = 4;
    c.epochs = 2;
    c.min_steps = 0;
    c.batch_size = 200;
    let (q, _) = RqVae::fit(&c, x).unwrap();
    let codes = q.encode(x).unwrap();
    let mut d = vec![0f32; 800 * 16];
    q.last_level_distances(x, codes.as_slice(), &mut d).unwrap();
    for (row, code) in d.chunks_exact(16).zip(codes.iter()) {
        let min = row.iter().copied().fold(f32::INFINITY, f32::min);
        assert!(
            row[code[1] as usize] <= min * (1.0 + 1e-4) + 1e-6,
            "{row:?} {code:?}"
        );
    }
    assert!(matches!(
        q.last_level_distances(x, &codes.as_slice()[..10], &mut d),
        Err(Error::Shape { .. })
    ));
    for policy in [
        CollisionPolicy::SINKHORN,
        CollisionPolicy::ReassignLastLevel { capacity: 60 },
    ] {
        let (index, r) = SemanticIndex::build(q.clone(), x, policy, Par::Seq).unwrap();
        assert_eq!(index.len(), 800);
        if policy == CollisionPolicy::SINKHORN {
            assert_eq!(r.unique_ids, 800);
        } else {
            assert!(r.max_items_per_id <= 60);
        }
    }
    // A quantizer without last-level distances is refused, by name.
    let fsq = semid::Fsq::new(&[5, 5, 5]).unwrap();
    let x3 = Embeddings::new(&data[..300], 3).unwrap();
    let e = SemanticIndex::build(fsq, x3, CollisionPolicy::SINKHORN, Par::Seq)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("Fsq") && e.to_string().contains("RqVae"),
        "{e}"
    );
}
