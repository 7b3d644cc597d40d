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
