//! Sinkhorn assignment against the numpy twin of LC-Rec's code
//! (`tests/data/sinkhorn/gen_sinkhorn.py`): the same token for every row of
//! every case, and the same codes after LC-Rec's collision loop.

use std::path::PathBuf;

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
