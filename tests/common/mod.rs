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
