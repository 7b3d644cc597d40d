//! Greedy RQ-KMeans encode on the device, with the residuals kept there:
//! per level, cuBLAS SGEMM against the codebook, the fused argmin
//! (`assign.cu`), the codes (`codes.cu`) and the residual update
//! (`residual.cu`).
//!
//! Two entry points:
//! - [`Device::rq_encode`] streams rows from host memory in batches through
//!   two page-locked staging buffers and two streams, so one batch's copy
//!   overlaps the other's kernels;
//! - [`Device::rq_encode_device`] encodes rows already on the device
//!   ([`DeviceRows`], from [`Device::upload_rows`]) and leaves the codes
//!   there ([`DeviceCodes`]).

use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::driver::{
    CudaSlice, CudaStream, CudaViewMut, DriverError, PinnedHostSlice, PushKernelArg,
};

use super::{Device, MAX_ROWS_PER_LAUNCH, blas, check_rows, gpu, products, sq_norms, threads};
use crate::error::{Error, Result};
use crate::quantize::{Quantizer, RqKMeans};

fn drv(e: DriverError) -> Error {
    gpu(format!("{e:?}"))
}

/// A row-major `rows × cols` matrix in device memory: [`DeviceRows`]
/// (embeddings, checked finite when uploaded) or [`DeviceCodes`] (codes).
pub struct DeviceMatrix<T> {
    data: CudaSlice<T>,
    rows: usize,
    cols: usize,
}

/// Embeddings on the device (`rows × dim` f32), from [`Device::upload_rows`].
pub type DeviceRows = DeviceMatrix<f32>;

/// Codes on the device (`rows × levels` u16), from
/// [`Device::rq_encode_device`].
pub type DeviceCodes = DeviceMatrix<u16>;

impl<T> std::fmt::Debug for DeviceMatrix<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceMatrix")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl<T: cudarc::driver::DeviceRepr> DeviceMatrix<T> {
    /// Number of rows.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row length (the dimension of embeddings, the levels of codes).
    #[must_use]
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The device buffer (at least one element, even for 0 rows).
    #[must_use]
    pub fn data(&self) -> &CudaSlice<T> {
        &self.data
    }

    /// The matrix copied to the host, row-major.
    pub fn to_host(&self) -> Result<Vec<T>> {
        let s = self.data.stream().clone();
        let mut v = s.clone_dtoh(&self.data).map_err(drv)?;
        v.truncate(self.rows * self.cols);
        Ok(v)
    }
}

/// The codebooks and their squared norms on the device.
struct Books {
    levels: Vec<(CudaSlice<f32>, CudaSlice<f32>)>,
    k: usize,
    d: usize,
}

impl Books {
    fn new(stream: &Arc<CudaStream>, rq: &RqKMeans) -> Result<Books> {
        let (d, k) = (rq.dim(), rq.codebook_size(0));
        let mut levels = Vec::with_capacity(rq.levels());
        for l in 0..rq.levels() {
            let c = rq.codebook(l);
            levels.push((
                stream.clone_htod(c).map_err(drv)?,
                stream.clone_htod(&sq_norms(c, d)).map_err(drv)?,
            ));
        }
        Ok(Books { levels, k, d })
    }

    /// Rows per batch: the product matrix stays under 2²⁸ floats.
    fn batch_rows(&self, n: usize) -> usize {
        ((1usize << 28) / self.k.max(self.d))
            .clamp(1, MAX_ROWS_PER_LAUNCH)
            .min(n.max(1))
    }
}

/// One batch's device buffers, on its own stream and cuBLAS handle.
struct Slot {
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    resid: CudaSlice<f32>,
    dots: CudaSlice<f32>,
    labels: CudaSlice<u32>,
    dist: CudaSlice<f32>,
    zeros: CudaSlice<f32>,
}

impl Slot {
    fn new(stream: Arc<CudaStream>, books: &Books, cap: usize) -> Result<Slot> {
        let blas = blas(&stream)?;
        Ok(Slot {
            resid: stream.alloc_zeros::<f32>(cap * books.d).map_err(drv)?,
            dots: stream.alloc_zeros::<f32>(cap * books.k).map_err(drv)?,
            labels: stream.alloc_zeros::<u32>(cap).map_err(drv)?,
            dist: stream.alloc_zeros::<f32>(cap).map_err(drv)?,
            zeros: stream.alloc_zeros::<f32>(cap).map_err(drv)?,
            stream,
            blas,
        })
    }
}

impl Device {
    /// `x` (`n × d`, row-major) copied to the device, after the checks of
    /// every GPU path (length a multiple of `d`, finite values).
    ///
    /// Errors: [`Error::Shape`], [`Error::NonFinite`], [`Error::Gpu`].
    pub fn upload_rows(&self, x: &[f32], d: usize) -> Result<DeviceRows> {
        let rows = check_rows(x, d)?;
        let stream = self.ctx.default_stream();
        Ok(DeviceRows {
            data: super::upload(&stream, x)?,
            rows,
            cols: d,
        })
    }

    /// Greedy codes of the `rows` rows in `slot.resid` (which become their
    /// last residuals), written to `codes` (`rows × levels`).
    fn encode_slot(
        &self,
        books: &Books,
        slot: &mut Slot,
        rows: usize,
        codes: &mut CudaViewMut<'_, u16>,
    ) -> Result<()> {
        let (k, d, lv) = (books.k, books.d, books.levels.len());
        let assign = self.function("semid_assign")?;
        let store = self.function("semid_store_codes")?;
        let residual = self.function("semid_residual")?;
        let (n32, k32, d32, lv32) = (rows as u32, k as u32, d as u32, lv as u32);
        let s = &slot.stream;
        for (l, (dc, dcn)) in books.levels.iter().enumerate() {
            products(&slot.blas, dc, &slot.resid, &mut slot.dots, rows, k, d)?;
            let mut b = s.launch_builder(assign);
            b.arg(&slot.dots)
                .arg(dcn)
                .arg(&slot.zeros)
                .arg(&n32)
                .arg(&k32)
                .arg(&mut slot.labels)
                .arg(&mut slot.dist);
            // SAFETY: the arguments match `semid_assign`; `dots` holds at
            // least rows × k floats, the norms k and rows, the outputs
            // `rows`; the grid covers `rows` threads.
            unsafe { b.launch(threads(rows)) }.map_err(drv)?;
            let l32 = l as u32;
            let mut b = s.launch_builder(store);
            b.arg(&slot.labels)
                .arg(&n32)
                .arg(&lv32)
                .arg(&l32)
                .arg(&mut *codes);
            // SAFETY: `semid_store_codes` writes codes[i * levels + l] for
            // i < rows, inside the rows × levels view; grid covers `rows`.
            unsafe { b.launch(threads(rows)) }.map_err(drv)?;
            if l + 1 < lv {
                let mut r = s.launch_builder(residual);
                r.arg(&mut slot.resid)
                    .arg(dc)
                    .arg(&slot.labels)
                    .arg(&n32)
                    .arg(&d32);
                // SAFETY: `semid_residual` updates the rows × d residuals
                // and reads codewords labels[i] < k of the k × d codebook;
                // the grid covers rows × d threads.
                unsafe { r.launch(threads(rows * d)) }.map_err(drv)?;
            }
        }
        Ok(())
    }

    /// Greedy RQ-KMeans codes of every row of `x` (`n × d`, host memory),
    /// row-major `n × L` as [`Quantizer::encode_into`] writes them. Rows go
    /// in batches through two page-locked staging buffers on two streams:
    /// while one batch's kernels run, the next batch is copied in. Codes
    /// equal the CPU's except where two codewords are within rounding of
    /// each other (SGEMM sums in another order).
    ///
    /// Errors: [`Error::Shape`], [`Error::NonFinite`] (before any launch),
    /// [`Error::Gpu`].
    pub fn rq_encode(&self, rq: &RqKMeans, x: &[f32]) -> Result<Vec<u16>> {
        self.rq_encode_batches(rq, x, usize::MAX)
    }

    /// [`Device::rq_encode`] in batches of at most `batch_rows` rows (and
    /// at most what keeps the batch's product matrix under 2²⁸ floats): a
    /// smaller batch takes less device and page-locked memory.
    ///
    /// Errors: as [`Device::rq_encode`]; [`Error::InvalidConfig`] when
    /// `batch_rows` is 0.
    pub fn rq_encode_batches(
        &self,
        rq: &RqKMeans,
        x: &[f32],
        batch_rows: usize,
    ) -> Result<Vec<u16>> {
        if batch_rows == 0 {
            return Err(Error::InvalidConfig {
                field: "batch_rows",
                reason: "must be at least 1".into(),
            });
        }
        let (d, lv) = (rq.dim(), rq.levels());
        let n = check_rows(x, d)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let main = self.ctx.default_stream();
        let books = Books::new(&main, rq)?;
        let cap = books.batch_rows(n).min(batch_rows);
        let mut slots = Vec::with_capacity(2);
        let mut pinned_in: Vec<PinnedHostSlice<f32>> = Vec::with_capacity(2);
        let mut pinned_out: Vec<PinnedHostSlice<u16>> = Vec::with_capacity(2);
        let mut dcodes = Vec::with_capacity(2);
        let n_slots = if n > cap { 2 } else { 1 };
        for _ in 0..n_slots {
            let stream = self.ctx.new_stream().map_err(drv)?;
            dcodes.push(stream.alloc_zeros::<u16>(cap * lv).map_err(drv)?);
            slots.push(Slot::new(stream, &books, cap)?);
            // SAFETY: the buffers are written (input) or filled by a copy
            // (output) before they are read.
            unsafe {
                pinned_in.push(
                    self.ctx
                        .alloc_pinned_with_flags::<f32>(
                            cap * d,
                            cudarc::driver::sys::CU_MEMHOSTALLOC_WRITECOMBINED,
                        )
                        .map_err(drv)?,
                );
                pinned_out.push(
                    self.ctx
                        .alloc_pinned_with_flags::<u16>(cap * lv, 0)
                        .map_err(drv)?,
                );
            }
        }
        // Books were uploaded on the main stream: let the slots wait for it.
        main.synchronize().map_err(drv)?;
        let mut codes = vec![0u16; n * lv];
        let mut pending: Vec<Option<(usize, usize)>> = vec![None; n_slots];
        let harvest =
            |out: &PinnedHostSlice<u16>, (row0, rows): (usize, usize), codes: &mut [u16]| {
                let host = out.as_slice().map_err(drv)?;
                codes[row0 * lv..(row0 + rows) * lv].copy_from_slice(&host[..rows * lv]);
                Ok::<(), Error>(())
            };
        for (b, (row0, rows)) in super::launches(n, cap).into_iter().enumerate() {
            let i = b % n_slots;
            if let Some(p) = pending[i].take() {
                harvest(&pinned_out[i], p, &mut codes)?;
            }
            // One thread copies ~5–10 GB/s into page-locked memory, below
            // PCIe's rate: copy in parallel blocks (a copy, so the thread
            // count cannot change the result).
            {
                let dst = &mut pinned_in[i].as_mut_slice().map_err(drv)?[..rows * d];
                let src = &x[row0 * d..(row0 + rows) * d];
                #[cfg(feature = "rayon")]
                {
                    use rayon::prelude::*;
                    dst.par_chunks_mut(1 << 16)
                        .zip(src.par_chunks(1 << 16))
                        .for_each(|(a, b)| a.copy_from_slice(b));
                }
                #[cfg(not(feature = "rayon"))]
                dst.copy_from_slice(src);
            }
            let slot = &mut slots[i];
            slot.stream
                .memcpy_htod(&pinned_in[i], &mut slot.resid)
                .map_err(drv)?;
            let mut view = dcodes[i].slice_mut(..);
            self.encode_slot(&books, slot, rows, &mut view)?;
            slot.stream
                .memcpy_dtoh(&dcodes[i], &mut pinned_out[i])
                .map_err(drv)?;
            pending[i] = Some((row0, rows));
        }
        for i in 0..n_slots {
            if let Some(p) = pending[i].take() {
                harvest(&pinned_out[i], p, &mut codes)?;
            }
        }
        Ok(codes)
    }

    /// Greedy RQ-KMeans codes of rows already on the device; the codes stay
    /// there. `x` is not changed (each batch's residuals live in a scratch
    /// buffer). Codes equal [`Device::rq_encode`]'s.
    ///
    /// Errors: [`Error::Shape`] when `x`'s dimension is not the model's,
    /// [`Error::Gpu`].
    pub fn rq_encode_device(&self, rq: &RqKMeans, x: &DeviceRows) -> Result<DeviceCodes> {
        let (d, lv, n) = (rq.dim(), rq.levels(), x.rows);
        if x.cols != d {
            return Err(Error::Shape {
                what: "data dimension",
                expected: d,
                got: x.cols,
            });
        }
        let stream = self.ctx.default_stream();
        let mut out = stream.alloc_zeros::<u16>((n * lv).max(1)).map_err(drv)?;
        if n == 0 {
            return Ok(DeviceCodes {
                data: out,
                rows: 0,
                cols: lv,
            });
        }
        let books = Books::new(&stream, rq)?;
        let cap = books.batch_rows(n);
        let mut slot = Slot::new(stream.clone(), &books, cap)?;
        for (row0, rows) in super::launches(n, cap) {
            let src = x.data.slice(row0 * d..(row0 + rows) * d);
            let mut dst = slot.resid.slice_mut(..rows * d);
            stream.memcpy_dtod(&src, &mut dst).map_err(drv)?;
            let mut view = out.slice_mut(row0 * lv..(row0 + rows) * lv);
            self.encode_slot(&books, &mut slot, rows, &mut view)?;
        }
        Ok(DeviceCodes {
            data: out,
            rows: n,
            cols: lv,
        })
    }
}
