//! GPU twins of the hot paths (feature `cuda`), through cudarc.
//!
//! libcuda and NVRTC are loaded at run time, so the crate builds without a
//! CUDA toolkit or driver; every entry point checks for them first and
//! returns [`Error::Gpu`] instead of panicking. Kernels are CUDA C sources
//! in `src/gpu/kernels/*.cu`, compiled by NVRTC when a [`Device`] is opened
//! and kept with it.
//!
//! Each kernel has a CPU twin that is its oracle: the same `.cu` source
//! also compiles as C++ under a small host header that runs the grid on
//! the CPU (`gpu-emu/`, for tests only), so the kernel logic is tested on
//! machines with no GPU. That checks the logic, not the device plumbing
//! (transfers, launches, streams): `tests/gpu.rs` does that where a GPU is
//! present. See `docs/GPU.md` for what was verified where.
//!
//! A user picks the device path explicitly, by calling a [`Device`]
//! method; nothing switches globally.
#![allow(unsafe_code)]

use std::sync::Arc;

use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, sys::cublasOperation_t};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{CompileOptions, Ptx};

use crate::decode::Scorer;
use crate::error::{Error, Result};
use crate::hits::Hits;
use crate::quantize::Fsq;
use crate::sid::Trie;

pub mod beam;
pub mod encode;
pub mod lloyd;

pub use beam::{NOT_ALLOWED, StepInput, StepOutput, TrieTables, search_with_step};
pub use encode::{DeviceCodes, DeviceMatrix, DeviceRows};
pub use lloyd::{CentroidPlan, DeviceSteps};

/// Threads per block of the one-thread-per-row kernels.
pub const BLOCK: u32 = 256;

/// Most rows one launch covers; larger inputs take several launches (the
/// grid's x dimension stays far below its 2³¹ − 1 limit).
pub const MAX_ROWS_PER_LAUNCH: usize = 1 << 24;

/// Kernel sources: `(file name, kernel entry, source)` of every `.cu` file
/// (one kernel each), without the prelude.
pub const KERNELS: &[(&str, &str, &str)] = &[
    (
        "assign.cu",
        "semid_assign",
        include_str!("kernels/assign.cu"),
    ),
    (
        "fsq.cu",
        "semid_fsq_indices",
        include_str!("kernels/fsq.cu"),
    ),
    (
        "beam.cu",
        "semid_beam_step",
        include_str!("kernels/beam.cu"),
    ),
    (
        "residual.cu",
        "semid_residual",
        include_str!("kernels/residual.cu"),
    ),
    (
        "means.cu",
        "semid_centroid_means",
        include_str!("kernels/means.cu"),
    ),
    (
        "codes.cu",
        "semid_store_codes",
        include_str!("kernels/codes.cu"),
    ),
];

/// Definitions every kernel source starts with (`SEMID_KERNEL`, the integer
/// typedefs) when compiled by NVRTC.
pub const PRELUDE: &str = include_str!("kernels/prelude.h");

/// `(first row, rows)` of each launch over `n` rows, at most `max` rows
/// each (`max` ≥ 1).
#[must_use]
pub fn launches(n: usize, max: usize) -> Vec<(usize, usize)> {
    let max = max.max(1);
    (0..n.div_ceil(max))
        .map(|i| (i * max, max.min(n - i * max)))
        .collect()
}

/// Blocks of [`BLOCK`] threads covering `rows` rows.
#[must_use]
pub fn grid(rows: usize) -> u32 {
    u32::try_from(rows.div_ceil(BLOCK as usize)).unwrap_or(u32::MAX)
}

fn gpu(reason: impl Into<String>) -> Error {
    Error::Gpu {
        reason: reason.into(),
    }
}

/// True when libcuda (the driver library) can be loaded.
#[must_use]
pub fn driver_available() -> bool {
    // SAFETY: `is_culib_present` only tries to dlopen the library.
    std::panic::catch_unwind(|| unsafe { cudarc::driver::sys::is_culib_present() }).unwrap_or(false)
}

/// True when NVRTC (libnvrtc) can be loaded, e.g. from PyPI's
/// `nvidia-cuda-nvrtc` with its `lib` folder on `LD_LIBRARY_PATH`.
#[must_use]
pub fn nvrtc_available() -> bool {
    // SAFETY: `is_culib_present` only tries to dlopen the library.
    std::panic::catch_unwind(|| unsafe { cudarc::nvrtc::sys::is_culib_present() }).unwrap_or(false)
}

/// Compiles one kernel source (with [`PRELUDE`]) to PTX for `arch`
/// (`"sm_80"`, `"sm_90"`, ...). Needs NVRTC, not a GPU.
///
/// Errors: [`Error::Gpu`] when NVRTC cannot be loaded or the source does not
/// compile (with NVRTC's log).
pub fn compile_ptx(source: &str, arch: &'static str) -> Result<String> {
    compile(source, arch).map(|p| p.to_src())
}

fn compile(source: &str, arch: &'static str) -> Result<Ptx> {
    if !nvrtc_available() {
        return Err(gpu(
            "NVRTC (libnvrtc.so) was not found: install the CUDA toolkit or PyPI's \
             nvidia-cuda-nvrtc and put its lib folder on LD_LIBRARY_PATH",
        ));
    }
    let src = format!("{PRELUDE}\n{source}");
    // No fused multiply-add contraction: the device then rounds as the
    // emulated C++ (and the CPU twins) do, operation by operation.
    let opts = CompileOptions {
        arch: Some(arch),
        fmad: Some(false),
        ..Default::default()
    };
    std::panic::catch_unwind(|| cudarc::nvrtc::compile_ptx_with_opts(src, opts))
        .map_err(|_| gpu("NVRTC panicked while compiling"))?
        .map_err(|e| {
            gpu(format!(
                "NVRTC could not compile the kernel for {arch}: {e:?}"
            ))
        })
}

/// Rows of `x` (`n × d`, row-major) after the checks every GPU path makes
/// before a launch: a length that is a multiple of `d`, finite values. An
/// empty `x` has 0 rows.
///
/// Errors: [`Error::Shape`], [`Error::NonFinite`] (naming row and column).
pub fn check_rows(x: &[f32], d: usize) -> Result<usize> {
    if x.is_empty() {
        return Ok(0);
    }
    let e = crate::data::Embeddings::new(x, d)?;
    e.check_all_finite()?;
    Ok(e.rows())
}

/// `v` copied to the device; an empty `v` becomes one default element, so
/// that a kernel argument is always a valid pointer.
fn upload<T: cudarc::driver::DeviceRepr + Default + Copy>(
    stream: &Arc<cudarc::driver::CudaStream>,
    v: &[T],
) -> Result<cudarc::driver::CudaSlice<T>> {
    let one = [T::default()];
    let src = if v.is_empty() { &one[..] } else { v };
    stream.clone_htod(src).map_err(|e| gpu(format!("{e:?}")))
}

/// A cuBLAS handle on `stream`, after checking that libcublas loads
/// (cudarc panics on the first call into a missing library).
fn blas(stream: &Arc<cudarc::driver::CudaStream>) -> Result<CudaBlas> {
    // SAFETY: `is_culib_present` only tries to dlopen the library.
    let present = std::panic::catch_unwind(|| unsafe { cudarc::cublas::sys::is_culib_present() })
        .unwrap_or(false);
    if !present {
        return Err(gpu("cuBLAS (libcublas.so) was not found"));
    }
    CudaBlas::new(stream.clone()).map_err(|e| gpu(format!("cuBLAS: {e:?}")))
}

/// Squared norm of every `d`-wide row of `x`, summed in f64.
fn sq_norms(x: &[f32], d: usize) -> Vec<f32> {
    x.chunks_exact(d)
        .map(|r| r.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() as f32)
        .collect()
}

/// A launch of [`BLOCK`]-thread blocks covering `n` threads.
fn threads(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (grid(n), 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `dots` (rows × k, **column-major**: product (i, j) at `j * rows + i`) =
/// `x` (rows × d, row-major) · `c`ᵀ (`c`: k × d, row-major) by cuBLAS
/// SGEMM. Row-major x is column-major d × rows, so xᵀ is `op(A)` with
/// `transa = T`; row-major c is column-major d × k, `op(B)` as it is. The
/// argmin kernel reads one column per centroid, coalesced across rows.
fn products<C: DevicePtr<f32>, X: DevicePtr<f32>, O: DevicePtrMut<f32>>(
    blas: &CudaBlas,
    c: &C,
    x: &X,
    dots: &mut O,
    rows: usize,
    k: usize,
    d: usize,
) -> Result<()> {
    let int = |v: usize, what: &str| {
        i32::try_from(v).map_err(|_| gpu(format!("{what} is {v}; cuBLAS takes at most 2^31 - 1")))
    };
    let (m, n, kk) = (int(rows, "rows per batch")?, int(k, "k")?, int(d, "d")?);
    if c.len() < k * d || x.len() < rows * d || dots.len() < rows * k {
        return Err(gpu("SGEMM operands are smaller than their shapes"));
    }
    let cfg = GemmConfig {
        transa: cublasOperation_t::CUBLAS_OP_T,
        transb: cublasOperation_t::CUBLAS_OP_N,
        m,
        n,
        k: kk,
        alpha: 1.0f32,
        lda: kk,
        ldb: kk,
        beta: 0.0f32,
        ldc: m,
    };
    // SAFETY: the operands hold at least rows × d, k × d and rows × k
    // floats (checked above), as the shapes and leading dimensions say.
    unsafe { blas.gemm(cfg, x, c, dots) }.map_err(|e| gpu(format!("cuBLAS SGEMM: {e:?}")))
}

/// The rounding tables of an [`Fsq`] in the layout of `semid_fsq_indices`:
/// thresholds of every dimension back to back (`offsets[j]..offsets[j + 1]`),
/// each dimension's digit below its first threshold (`base`) and its place
/// value (`basis`).
#[derive(Clone, Debug, PartialEq)]
pub struct FsqTables {
    /// All thresholds, dimension after dimension.
    pub thresholds: Vec<f32>,
    /// Start of each dimension's thresholds, plus the end (`d + 1` entries).
    pub offsets: Vec<u32>,
    /// Digit of a value below every threshold of the dimension.
    pub base: Vec<u32>,
    /// Place value of each dimension's digit in the index.
    pub basis: Vec<u32>,
}

impl FsqTables {
    /// The tables of `fsq`.
    #[must_use]
    pub fn new(fsq: &Fsq) -> FsqTables {
        let levels = fsq.levels_per_dim();
        let mut t = FsqTables {
            thresholds: Vec::new(),
            offsets: vec![0],
            base: Vec::with_capacity(levels.len()),
            basis: Vec::with_capacity(levels.len()),
        };
        let mut place = 1u32;
        for (j, &l) in levels.iter().enumerate() {
            t.thresholds.extend_from_slice(fsq.thresholds(j));
            t.offsets.push(t.thresholds.len() as u32);
            t.base.push(fsq.digit_at(j, f32::NEG_INFINITY));
            t.basis.push(place);
            place = place.saturating_mul(l);
        }
        t
    }
}

/// One CUDA device with semid's kernels loaded.
pub struct Device {
    ctx: Arc<CudaContext>,
    functions: Vec<(&'static str, CudaFunction)>,
    _modules: Vec<Arc<CudaModule>>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("ordinal", &self.ctx.ordinal())
            .finish_non_exhaustive()
    }
}

impl Device {
    /// Opens device `ordinal` and compiles the kernels for it (NVRTC, once
    /// per `Device`).
    ///
    /// Errors ([`Error::Gpu`]): no driver library, no such device, no NVRTC,
    /// or a CUDA call failed. Never panics.
    pub fn open(ordinal: usize) -> Result<Device> {
        if !driver_available() {
            return Err(gpu(
                "the CUDA driver library (libcuda.so) was not found: no NVIDIA driver on this machine",
            ));
        }
        let ctx = std::panic::catch_unwind(|| CudaContext::new(ordinal))
            .map_err(|_| gpu("the CUDA driver panicked while opening the device"))?
            .map_err(|e| gpu(format!("cannot open CUDA device {ordinal}: {e:?}")))?;
        let (major, minor) = (
            ctx.attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
            )
            .map_err(|e| gpu(format!("{e:?}")))?,
            ctx.attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
            )
            .map_err(|e| gpu(format!("{e:?}")))?,
        );
        let arch: &'static str = match (major, minor) {
            (8, 0) => "sm_80",
            (8, 6) => "sm_86",
            (8, 9) => "sm_89",
            (9, _) => "sm_90",
            (10, _) => "sm_100",
            (m, _) if m > 10 => "sm_100",
            _ => "sm_80",
        };
        let mut functions = Vec::new();
        let mut modules = Vec::new();
        for &(name, entry, src) in KERNELS {
            let ptx = compile(src, arch)?;
            let module = ctx
                .load_module(ptx)
                .map_err(|e| gpu(format!("loading {name}: {e:?}")))?;
            let f = module
                .load_function(entry)
                .map_err(|e| gpu(format!("{entry}: {e:?}")))?;
            functions.push((entry, f));
            modules.push(module);
        }
        Ok(Device {
            ctx,
            functions,
            _modules: modules,
        })
    }

    /// The device's ordinal.
    #[must_use]
    pub fn ordinal(&self) -> usize {
        self.ctx.ordinal()
    }

    fn function(&self, name: &str) -> Result<&CudaFunction> {
        self.functions
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
            .ok_or_else(|| gpu(format!("kernel {name} is not loaded")))
    }

    /// FSQ indices of every row of `z` (`n × levels.len()`, row-major) on
    /// the device: equal to [`Fsq::indices_into`] bit for bit (same
    /// thresholds). Non-finite values are rejected before any launch.
    pub fn fsq_indices(&self, fsq: &Fsq, z: &[f32]) -> Result<Vec<u16>> {
        let d = fsq.levels_per_dim().len();
        let n = check_rows(z, d)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let t = FsqTables::new(fsq);
        let stream = self.ctx.default_stream();
        let err = |e: cudarc::driver::DriverError| gpu(format!("{e:?}"));
        let thr = stream.clone_htod(&t.thresholds).map_err(err)?;
        let off = stream.clone_htod(&t.offsets).map_err(err)?;
        let base = stream.clone_htod(&t.base).map_err(err)?;
        let basis = stream.clone_htod(&t.basis).map_err(err)?;
        let f = self.function("semid_fsq_indices")?;
        let mut out = vec![0u16; n];
        for (row0, rows) in launches(n, MAX_ROWS_PER_LAUNCH) {
            let dz = stream
                .clone_htod(&z[row0 * d..(row0 + rows) * d])
                .map_err(err)?;
            let mut dout = stream.alloc_zeros::<u16>(rows).map_err(err)?;
            let (rows32, d32) = (rows as u32, d as u32);
            let cfg = threads(rows);
            let mut b = stream.launch_builder(f);
            b.arg(&dz)
                .arg(&rows32)
                .arg(&d32)
                .arg(&thr)
                .arg(&off)
                .arg(&base)
                .arg(&basis)
                .arg(&mut dout);
            // SAFETY: the argument list matches `semid_fsq_indices` in
            // kernels/fsq.cu (pointer, u32, u32, 4 pointers, out pointer);
            // the kernel reads `rows × d` floats and writes `rows` u16, the
            // sizes of `dz` and `dout`; the grid covers `rows` threads.
            unsafe { b.launch(cfg) }.map_err(err)?;
            let host = stream.clone_dtoh(&dout).map_err(err)?;
            out[row0..row0 + rows].copy_from_slice(&host);
        }
        Ok(out)
    }

    /// Nearest centroid of every row of `x` (`n × d`) among `centroids`
    /// (`k × d`), on the device: products by cuBLAS SGEMM, then the fused
    /// argmin of `assign.cu` (ties to the lower index, as on the CPU).
    /// Returns labels and squared distances. Rows go in batches whose
    /// product matrix stays under 2²⁸ floats.
    ///
    /// The labels equal the CPU's except where two centroids are within
    /// rounding of each other (the products are summed in another order).
    pub fn nearest(&self, x: &[f32], centroids: &[f32], d: usize) -> Result<(Vec<u32>, Vec<f32>)> {
        let k = check_rows(centroids, d)?;
        if k == 0 {
            return Err(Error::Empty { what: "centroids" });
        }
        let n = check_rows(x, d)?;
        if n == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let cnorm = sq_norms(centroids, d);
        let stream = self.ctx.default_stream();
        let err = |e: cudarc::driver::DriverError| gpu(format!("{e:?}"));
        let blas = blas(&stream)?;
        let dc = stream.clone_htod(centroids).map_err(err)?;
        let dcn = stream.clone_htod(&cnorm).map_err(err)?;
        let f = self.function("semid_assign")?;
        let per = ((1usize << 28) / k).clamp(1, MAX_ROWS_PER_LAUNCH);
        let (mut labels, mut dists) = (vec![0u32; n], vec![0f32; n]);
        for (row0, rows) in launches(n, per) {
            let xb = &x[row0 * d..(row0 + rows) * d];
            let xnorm = sq_norms(xb, d);
            let dx = stream.clone_htod(xb).map_err(err)?;
            let dxn = stream.clone_htod(&xnorm).map_err(err)?;
            let mut dots = stream.alloc_zeros::<f32>(rows * k).map_err(err)?;
            products(&blas, &dc, &dx, &mut dots, rows, k, d)?;
            let mut dl = stream.alloc_zeros::<u32>(rows).map_err(err)?;
            let mut dd = stream.alloc_zeros::<f32>(rows).map_err(err)?;
            let (n32, kk) = (rows as u32, k as u32);
            let launch = threads(rows);
            let mut b = stream.launch_builder(f);
            b.arg(&dots)
                .arg(&dcn)
                .arg(&dxn)
                .arg(&n32)
                .arg(&kk)
                .arg(&mut dl)
                .arg(&mut dd);
            // SAFETY: the arguments match `semid_assign` in
            // kernels/assign.cu; `dots` holds rows × k floats, the norms k
            // and rows, the outputs rows each; the grid covers `rows`.
            unsafe { b.launch(launch) }.map_err(err)?;
            labels[row0..row0 + rows].copy_from_slice(&stream.clone_dtoh(&dl).map_err(err)?);
            dists[row0..row0 + rows].copy_from_slice(&stream.clone_dtoh(&dd).map_err(err)?);
        }
        Ok((labels, dists))
    }

    /// Trie-constrained beam search with each level's selection done on
    /// the device (`kernels/beam.cu`, one thread per query): the top `k`
    /// items of each of `n_queries` queries, equal to
    /// [`BeamSearch::search`](crate::decode::BeamSearch::search) with the
    /// same beam and k (without `renormalize`). The scorer runs on the host;
    /// `tables` is [`TrieTables::new`] of `trie`.
    pub fn search<S: Scorer + ?Sized>(
        &self,
        trie: &Trie,
        tables: &TrieTables,
        scorer: &mut S,
        n_queries: usize,
        beam: usize,
        k: usize,
    ) -> Result<Hits> {
        let f = self.function("semid_beam_step")?;
        let stream = self.ctx.default_stream();
        let err = |e: cudarc::driver::DriverError| gpu(format!("{e:?}"));
        // The trie's tables go to the device once per search, not per step.
        let mut resident = Vec::with_capacity(tables.levels.len());
        for t in &tables.levels {
            resident.push((
                upload(&stream, &t.offsets)?,
                upload(&stream, &t.tokens)?,
                upload(&stream, &t.dense)?,
                u32::from(!t.dense.is_empty()),
            ));
        }
        let mut step = |inp: &StepInput<'_>, out: &mut StepOutput| -> Result<()> {
            let (coff, ctok, dchild, dense) = resident
                .get(inp.level as usize)
                .ok_or_else(|| gpu("a beam step beyond the trie's depth"))?;
            let n = inp.n_queries as usize * inp.cap as usize;
            let qbeg = upload(&stream, inp.qbeg)?;
            let order = upload(&stream, inp.order)?;
            let node = upload(&stream, inp.node)?;
            let bscore = upload(&stream, inp.bscore)?;
            let scores = upload(&stream, inp.scores)?;
            let mut key = stream.alloc_zeros::<f32>(n.max(1)).map_err(err)?;
            let mut par = stream.alloc_zeros::<u32>(n.max(1)).map_err(err)?;
            let mut chi = stream.alloc_zeros::<u32>(n.max(1)).map_err(err)?;
            let mut tok = stream.alloc_zeros::<u16>(n.max(1)).map_err(err)?;
            let mut cnt = stream
                .alloc_zeros::<u32>((inp.n_queries as usize).max(1))
                .map_err(err)?;
            let cfg = threads(inp.n_queries as usize);
            let mut b = stream.launch_builder(f);
            b.arg(&inp.n_queries)
                .arg(&inp.cap)
                .arg(&qbeg)
                .arg(&order)
                .arg(&node)
                .arg(&bscore)
                .arg(&scores)
                .arg(&inp.vocab)
                .arg(coff)
                .arg(ctok)
                .arg(dense)
                .arg(dchild)
                .arg(&mut key)
                .arg(&mut par)
                .arg(&mut chi)
                .arg(&mut tok)
                .arg(&mut cnt);
            // SAFETY: the arguments match `semid_beam_step` in
            // kernels/beam.cu; every buffer holds what the host-side
            // StepInput says (at least one element; search_with_step has
            // checked the tables against the trie), the outputs
            // n_queries × cap entries and n_queries counts; the grid covers
            // n_queries threads.
            unsafe { b.launch(cfg) }.map_err(err)?;
            out.key = stream.clone_dtoh(&key).map_err(err)?;
            out.parent = stream.clone_dtoh(&par).map_err(err)?;
            out.child = stream.clone_dtoh(&chi).map_err(err)?;
            out.token = stream.clone_dtoh(&tok).map_err(err)?;
            out.count = stream.clone_dtoh(&cnt).map_err(err)?;
            out.key.truncate(n);
            out.parent.truncate(n);
            out.child.truncate(n);
            out.token.truncate(n);
            out.count.truncate(inp.n_queries as usize);
            Ok(())
        };
        search_with_step(trie, tables, scorer, n_queries, beam, k, &mut step)
    }
}
