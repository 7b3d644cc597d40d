//! The device path on a real GPU: each GPU twin against its CPU twin. Runs
//! where `Device::open(0)` succeeds; elsewhere each test prints why it
//! skipped.

use semid::gpu::Device;
use semid::quantize::Fsq;
use semid::{Error, Par};

fn device() -> Option<Device> {
    match Device::open(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: no usable GPU ({e})");
            None
        }
    }
}

#[test]
fn fsq_indices_on_the_device_equal_the_cpu() {
    let Some(dev) = device() else { return };
    let fsq = Fsq::new(&[8, 5, 5, 5]).unwrap();
    for n in [0usize, 1, 255, 257, 100_000] {
        let z: Vec<f32> = (0..n * 4)
            .map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * 6.0)
            .collect();
        let mut want = vec![0u16; n];
        if n > 0 {
            fsq.indices_into(&z, &mut want, Par::Seq).unwrap();
        }
        assert_eq!(dev.fsq_indices(&fsq, &z).unwrap(), want, "n={n}");
    }
    let bad = vec![f32::NAN; 4];
    assert!(matches!(
        dev.fsq_indices(&fsq, &bad),
        Err(Error::NonFinite { .. })
    ));
}
