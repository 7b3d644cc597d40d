//! Model-file loading from arbitrary bytes.
//!
//! The first byte picks a model kind; the rest is framed with a valid header
//! (magic, version, kind, length, checksum) so the fuzzer reaches the payload
//! decoder and the model validators. Every input must return Ok or Err:
//! never panic, never allocate beyond the payload limit. Raw, unframed bytes
//! are tried as well.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semid::io::__fuzz::{ModelKind, frame};
use semid::{KMeans, Quantizer, RqKMeans};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let kind = if sel & 1 == 0 { ModelKind::KMeans } else { ModelKind::RqKMeans };
    let framed = frame(kind, payload);
    if let Ok(m) = KMeans::from_bytes(&framed) {
        let _ = m.codebook_sizes();
    }
    if let Ok(m) = RqKMeans::from_bytes(&framed) {
        let _ = m.codebook_sizes();
    }
    let _ = RqKMeans::from_bytes(data);
    let _ = KMeans::from_bytes(data);
});
