//! Compiles semid's kernel sources (../src/gpu/kernels/*.cu) as C++ with
//! the grid-emulating header emu.h.
fn main() {
    let kernels = "../src/gpu/kernels";
    println!("cargo:rerun-if-changed=emu.h");
    println!("cargo:rerun-if-changed=emu.cpp");
    println!("cargo:rerun-if-changed={kernels}");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("emu.cpp")
        .include(".")
        .include(kernels)
        .warnings(true)
        .compile("semid_gpu_emu");
}
