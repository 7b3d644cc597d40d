//! Helpers shared by the integration tests.
#![allow(dead_code)]

use semid::synthetic::{MixtureConfig, hierarchical_mixture};

/// Small seeded mixture data, `n × dim`.
pub fn mixture(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    hierarchical_mixture(&MixtureConfig {
        n,
        dim,
        topics: 40,
        subtopics: 3,
        seed,
        ..Default::default()
    })
}

/// Runs `f` inside a rayon pool with `threads` threads.
pub fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(f)
}

/// Frames `payload` as a model file of `kind`, written from the layout in
/// docs/FORMAT.md (magic, version, kind tag, length, FNV-1a 64 checksum),
/// independently of the crate's own writer.
pub fn frame(kind: semid::format::ModelKind, payload: &[u8]) -> Vec<u8> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in payload {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut out = Vec::with_capacity(semid::format::HEADER_LEN + payload.len());
    out.extend_from_slice(b"SEMIDMF\0");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&kind.tag().to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The model-file contract every [`semid::ModelFile`] type keeps, checked on
/// `m`: bytes round-trip to an equal model and to the same bytes; save/load
/// through a file; every truncation (sampled every `stride` bytes, plus the
/// last few) and single-bit flips (sampled likewise) are `Error::Format`;
/// a trailing byte is refused; another kind's file is `WrongKind`.
pub fn check_model_file<M>(m: &M, stride: usize, other_kind: &[u8])
where
    M: semid::ModelFile + PartialEq + std::fmt::Debug,
{
    use semid::{Error, FormatError};
    let bytes = m.to_bytes().expect("encode");
    let back = M::from_bytes(&bytes).expect("decode");
    assert_eq!(&back, m);
    assert_eq!(back.to_bytes().unwrap(), bytes, "re-encoding changed bytes");

    let dir = std::env::temp_dir().join(format!(
        "semid-mf-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.semid");
    m.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(&M::load(&path).unwrap(), m);
    std::fs::remove_dir_all(&dir).ok();

    let is_format = |r: semid::Result<M>, what: String| match r {
        Err(Error::Format(_)) => {}
        other => panic!("{what}: expected a format error, got {other:?}"),
    };
    let n = bytes.len();
    for cut in (0..n).step_by(stride.max(1)).chain(n.saturating_sub(9)..n) {
        is_format(M::from_bytes(&bytes[..cut]), format!("truncated to {cut}"));
    }
    for pos in (0..n).step_by(stride.max(1)) {
        for bit in [0, 5] {
            let mut b = bytes.clone();
            b[pos] ^= 1 << bit;
            is_format(M::from_bytes(&b), format!("flip of byte {pos} bit {bit}"));
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        M::from_bytes(&longer),
        Err(Error::Format(FormatError::TrailingBytes { extra: 1 }))
    ));
    assert!(
        matches!(
            M::from_bytes(other_kind),
            Err(Error::Format(FormatError::WrongKind { .. }))
        ),
        "another kind's file was not refused"
    );
}
