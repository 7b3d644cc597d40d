//! Every kernel compiles with the real NVRTC for sm_80 and sm_90, on a
//! machine with no GPU. NVRTC comes from the CUDA toolkit or PyPI's
//! `nvidia-cuda-nvrtc` (its `lib` folder on `LD_LIBRARY_PATH`); without it
//! the test says so and skips, unless `SEMID_REQUIRE_NVRTC=1` (CI) makes
//! that a failure.

use semid::Error;
use semid::gpu::{self, Device, KERNELS};

fn nvrtc_or_skip() -> bool {
    if gpu::nvrtc_available() {
        return true;
    }
    assert!(
        std::env::var("SEMID_REQUIRE_NVRTC").as_deref() != Ok("1"),
        "SEMID_REQUIRE_NVRTC=1 but libnvrtc could not be loaded: put nvidia-cuda-nvrtc's lib folder on LD_LIBRARY_PATH"
    );
    eprintln!(
        "skipped: libnvrtc not found (pip install nvidia-cuda-nvrtc; add its lib folder to LD_LIBRARY_PATH)"
    );
    false
}

#[test]
fn every_kernel_compiles_for_sm80_and_sm90() {
    if !nvrtc_or_skip() {
        return;
    }
    for (file, entry, src) in KERNELS {
        for arch in ["sm_80", "sm_90"] {
            let ptx = gpu::compile_ptx(src, arch).unwrap_or_else(|e| panic!("{file} {arch}: {e}"));
            assert!(ptx.contains(&format!(".target {arch}")), "{file} {arch}");
            assert!(
                ptx.contains(&format!(".entry {entry}(")),
                "{file} {arch}: no entry {entry} in the PTX"
            );
        }
    }
}

#[test]
fn a_broken_kernel_is_a_typed_error() {
    if !nvrtc_or_skip() {
        return;
    }
    match gpu::compile_ptx("SEMID_KERNEL void broken( { }", "sm_80") {
        Err(Error::Gpu { reason }) => assert!(reason.contains("sm_80"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn opening_a_device_without_a_driver_is_a_typed_error() {
    if gpu::driver_available() {
        eprintln!("skipped: a CUDA driver is present (tests/gpu.rs covers the device)");
        return;
    }
    match Device::open(0) {
        Err(Error::Gpu { reason }) => assert!(reason.contains("libcuda"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn launch_plans_cover_every_row_once() {
    assert!(gpu::launches(0, 10).is_empty());
    assert_eq!(gpu::launches(1, 10), vec![(0, 1)]);
    assert_eq!(gpu::launches(25, 10), vec![(0, 10), (10, 10), (20, 5)]);
    assert_eq!(gpu::launches(20, 10), vec![(0, 10), (10, 10)]);
    assert_eq!(gpu::grid(0), 0);
    assert_eq!(gpu::grid(1), 1);
    assert_eq!(gpu::grid(gpu::BLOCK as usize + 1), 2);
}

#[test]
fn every_kernel_file_is_listed_and_emulated() {
    // A .cu file missing from KERNELS would compile in the emulator but never
    // be loaded by Device::open (its entry point would be "not loaded").
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gpu/kernels");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("src/gpu/kernels")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".cu"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = KERNELS.iter().map(|(f, _, _)| (*f).to_string()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "src/gpu/kernels/*.cu and gpu::KERNELS differ"
    );
    let emu = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gpu-emu/emu.cpp"),
    )
    .expect("gpu-emu/emu.cpp");
    for (file, entry, src) in KERNELS {
        assert!(
            emu.contains(&format!("#include \"{file}\"")),
            "emu.cpp lacks {file}"
        );
        assert!(
            emu.contains(&format!("emu_{entry}(")),
            "emu.cpp lacks emu_{entry}"
        );
        assert!(
            src.contains(&format!("void {entry}(")),
            "{file} does not define {entry}"
        );
    }
}
