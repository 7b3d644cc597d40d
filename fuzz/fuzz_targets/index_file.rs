//! See `semid::fuzz::index_file`: the body lives in the crate so
//! `tests/fuzz_regressions.rs` replays exactly the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| semid::fuzz::index_file(data));
