//! Model-file loading from arbitrary bytes.
//!
//! The first byte picks a model kind; the rest is framed with a valid header
//! (magic, version, kind, length, checksum) so the fuzzer reaches the payload
//! decoder and the model validators. Raw, unframed bytes are tried as well.
//! Every input must return Ok or Err: never panic, never allocate beyond the
//! payload limit. The body lives in `semid::fuzz::model_file` so
//! `tests/fuzz_regressions.rs` replays exactly the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| semid::fuzz::model_file(data));
