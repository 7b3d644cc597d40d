//! Model files: round trips, golden v1 files, and every kind of damage.

mod common;

use common::mixture;
use semid::ModelFile;
use semid::format::{self, FORMAT_VERSION, HEADER_LEN, ModelKind};
use semid::{
    Embeddings, Error, FormatError, KMeans, KMeansConfig, Quantizer, RqKMeans, RqKMeansConfig,
};

fn golden_kmeans() -> KMeans {
    KMeans::from_centroids(vec![0.0, 0.5, -1.25, 2.0, 3.5, -0.75], 2).unwrap()
}

fn golden_rq() -> RqKMeans {
    let cb = vec![
        1.0, 0.0, 0.0, 1.0, -1.0, -1.0, // level 0: 3 × 2
        0.25, 0.0, 0.0, 0.25, -0.125, 0.5, // level 1: 3 × 2
    ];
    RqKMeans::from_codebooks(cb, 2, 2).unwrap()
}

/// Golden files of format version 1. They must load, unchanged, forever; and
/// this build must write exactly the same bytes for the same model.
/// Regenerate only with a format-version bump: `SEMID_WRITE_GOLDEN=1 cargo test`.
#[test]
fn golden_v1_files_load_forever() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let km_path = dir.join("kmeans_v1.semid");
    let rq_path = dir.join("rq_kmeans_v1.semid");
    if std::env::var_os("SEMID_WRITE_GOLDEN").is_some() {
        golden_kmeans().save(&km_path).unwrap();
        golden_rq().save(&rq_path).unwrap();
    }
    let km = KMeans::load(&km_path).unwrap();
    assert_eq!(km, golden_kmeans());
    assert_eq!(
        std::fs::read(&km_path).unwrap(),
        golden_kmeans().to_bytes().unwrap()
    );
    let rq = RqKMeans::load(&rq_path).unwrap();
    assert_eq!(rq, golden_rq());
    assert_eq!(
        std::fs::read(&rq_path).unwrap(),
        golden_rq().to_bytes().unwrap()
    );
    let h = format::inspect(&std::fs::read(&rq_path).unwrap()).unwrap();
    assert_eq!((h.version, h.kind), (1, ModelKind::RqKMeans));
    // Behaviour of the golden model is pinned too.
    let x = [0.9f32, 0.3, -1.2, -0.4];
    let codes = rq.encode(Embeddings::new(&x, 2).unwrap()).unwrap();
    assert_eq!(codes.as_slice(), &[0, 1, 2, 2]);
}

#[test]
fn fitted_models_round_trip_through_files() {
    let data = mixture(2000, 8, 1);
    let x = Embeddings::new(&data, 8).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, 16), x).unwrap();
    let (km, _) = KMeans::fit(&KMeansConfig::new(16), x).unwrap();
    let dir = std::env::temp_dir().join(format!("semid-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    rq.save(dir.join("rq.semid")).unwrap();
    km.save(dir.join("km.semid")).unwrap();
    let rq2 = RqKMeans::load(dir.join("rq.semid")).unwrap();
    let km2 = KMeans::load(dir.join("km.semid")).unwrap();
    assert_eq!(rq, rq2);
    assert_eq!(km, km2);
    assert_eq!(rq.encode(x).unwrap(), rq2.encode(x).unwrap());
    // No temporary files are left behind by the atomic save.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // Wrong kind: the error names the file, and its root says what is
    // wrong inside.
    let rq_path = dir.join("rq.semid");
    let e = KMeans::load(&rq_path).err().unwrap();
    assert!(
        matches!(&e, Error::File { path, .. } if *path == rq_path),
        "{e}"
    );
    assert!(matches!(
        e.root(),
        Error::Format(FormatError::WrongKind {
            expected: "KMeans",
            found: 2
        })
    ));
    assert!(
        e.to_string().starts_with(&*rq_path.to_string_lossy()),
        "{e}"
    );
    let missing = dir.join("missing.semid");
    let e = KMeans::load(&missing).err().unwrap();
    assert!(matches!(&e, Error::Io { path, .. } if *path == missing));
    // The message names the file and what to do.
    let msg = e.to_string();
    assert!(
        msg.contains(&*missing.to_string_lossy()) && msg.ends_with("check the path"),
        "{msg}"
    );
    let e = semid::npy::read_npy(&dir).err().unwrap();
    assert!(matches!(&e, Error::Io { path, .. } if *path == dir), "{e}");
    let e = km
        .save(dir.join("no-such-dir").join("m.semid"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("no-such-dir"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn fmt_err(r: semid::Result<RqKMeans>) -> FormatError {
    match r {
        Err(Error::Format(f)) => f,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = golden_rq().to_bytes().unwrap();
    for len in 0..bytes.len() {
        let e = fmt_err(RqKMeans::from_bytes(&bytes[..len]));
        assert!(
            matches!(e, FormatError::Truncated { .. } | FormatError::BadMagic),
            "len {len}: {e:?}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        fmt_err(RqKMeans::from_bytes(&longer)),
        FormatError::TrailingBytes { extra: 1 }
    );
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let bytes = golden_rq().to_bytes().unwrap();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            assert!(
                RqKMeans::from_bytes(&b).is_err(),
                "flip of byte {i} bit {bit} was accepted"
            );
        }
    }
}

#[test]
fn future_versions_and_huge_lengths_are_rejected() {
    let bytes = golden_rq().to_bytes().unwrap();
    let mut future = bytes.clone();
    future[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert_eq!(
        fmt_err(RqKMeans::from_bytes(&future)),
        FormatError::UnsupportedVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        }
    );
    let mut huge = bytes.clone();
    huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        fmt_err(RqKMeans::from_bytes(&huge)),
        FormatError::Payload(_)
    ));
    let mut big = bytes.clone();
    big[16..24].copy_from_slice(&(1u64 << 29).to_le_bytes());
    assert!(matches!(
        fmt_err(RqKMeans::from_bytes(&big)),
        FormatError::Truncated { .. }
    ));
    let mut kind = bytes.clone();
    kind[12..16].copy_from_slice(&99u32.to_le_bytes());
    assert!(matches!(
        fmt_err(RqKMeans::from_bytes(&kind)),
        FormatError::WrongKind { found: 99, .. }
    ));
    assert_eq!(
        fmt_err(RqKMeans::from_bytes(b"not a model file at all, not at all")),
        FormatError::BadMagic
    );
}

#[test]
fn hostile_payloads_behind_a_valid_header_are_rejected() {
    use common::frame;
    // A payload whose vector length claims ~2^60 floats.
    let mut p = Vec::new();
    for v in [2u64, 2, 3] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(&(1u64 << 60).to_le_bytes());
    p.extend_from_slice(&[0u8; 16]);
    assert!(matches!(
        fmt_err(RqKMeans::from_bytes(&frame(ModelKind::RqKMeans, &p))),
        FormatError::Payload(_)
    ));
    // Consistent lengths but fields that disagree (levels × k × dim ≠ len).
    let mut p = Vec::new();
    for v in [2u64, 2, 3, 4] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    for _ in 0..4 {
        p.extend_from_slice(&1.0f32.to_le_bytes());
    }
    assert!(matches!(
        fmt_err(RqKMeans::from_bytes(&frame(ModelKind::RqKMeans, &p))),
        FormatError::Invalid(_)
    ));
    // A NaN codeword.
    let mut p = Vec::new();
    for v in [1u64, 1, 2, 2] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    for v in [1.0f32, f32::NAN] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    assert!(matches!(
        fmt_err(RqKMeans::from_bytes(&frame(ModelKind::RqKMeans, &p))),
        FormatError::Invalid(_)
    ));
    // dim = 0 and overflow in levels × k × dim.
    for fields in [[1u64, 1, 0, 0], [u64::MAX, u64::MAX, 2, 0]] {
        let mut p = Vec::new();
        for v in fields {
            p.extend_from_slice(&v.to_le_bytes());
        }
        assert!(RqKMeans::from_bytes(&frame(ModelKind::RqKMeans, &p)).is_err());
    }
    assert_eq!(HEADER_LEN, 32);
}

/// The model-file contract (tests/common `check_model_file`) for every
/// stored type, on the golden version-1 files.
#[test]
fn every_model_file_type_keeps_the_contract() {
    use semid::quantize::{AnyQuantizer, FsqAutoencoder, RqVae};
    use semid::sid::{SidMap, Trie};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let km = read("kmeans_v1.semid");
    let rq = read("rq_kmeans_v1.semid");
    common::check_model_file(&KMeans::from_bytes(&km).unwrap(), 1, &rq);
    common::check_model_file(&RqKMeans::from_bytes(&rq).unwrap(), 1, &km);
    let map = SidMap::from_bytes(&read("sid_map_v1.semid")).unwrap();
    common::check_model_file(&map, 3, &km);
    let trie = Trie::from_bytes(&read("trie_v1.semid")).unwrap();
    common::check_model_file(&trie, 3, &km);
    let vae = RqVae::from_bytes(&read("rqvae_v1.semid")).unwrap();
    common::check_model_file(&vae, 53, &km);
    let ae = FsqAutoencoder::from_bytes(&read("fsq_autoencoder_v1.semid")).unwrap();
    common::check_model_file(&ae, 53, &km);
    // Any quantizer file loads as AnyQuantizer and writes the same bytes.
    for f in [
        "kmeans_v1.semid",
        "rq_kmeans_v1.semid",
        "rqvae_v1.semid",
        "fsq_autoencoder_v1.semid",
    ] {
        let bytes = read(f);
        let any = AnyQuantizer::from_bytes(&bytes).unwrap();
        assert_eq!(any.to_bytes().unwrap(), bytes, "{f}");
    }
    assert!(AnyQuantizer::from_bytes(&read("trie_v1.semid")).is_err());
}
