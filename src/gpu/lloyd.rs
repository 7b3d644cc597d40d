//! Lloyd's algorithm on the device: [`DeviceSteps`] runs the assignment
//! (cuBLAS SGEMM and `assign.cu`) and the centroid means (`means.cu`) of
//! [`KMeans::fit_with_steps`](crate::KMeans::fit_with_steps) and
//! [`RqKMeans::fit_with_steps`](crate::RqKMeans::fit_with_steps).
//!
//! The centroid sums use no atomics: after each assignment the host orders
//! the rows by cluster ([`CentroidPlan`], a counting sort of the labels),
//! and one device thread per centroid element sums its cluster's rows in
//! the CPU's order. The means are therefore the CPU's bit for bit, on any
//! device and thread count, for the same labels.

use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaSlice, CudaStream, DriverError, PushKernelArg};

use super::{Device, blas, gpu, products, sq_norms, threads};
use crate::error::{Error, Result};
use crate::quantize::kmeans::shapes;
use crate::quantize::{Labels, LloydSteps, centroid_sum_chunk};

/// Rows ordered by cluster, as `means.cu` reads them: cluster `j`'s rows
/// are `perm[start[j]..start[j + 1]]`, in ascending order; `chunk` is
/// [`centroid_sum_chunk`] of the shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CentroidPlan {
    /// Row indices, grouped by cluster, ascending within a cluster.
    pub perm: Vec<u32>,
    /// Start of each cluster's rows in `perm`, plus the end (`k + 1`).
    pub start: Vec<u32>,
    /// Rows per summation chunk.
    pub chunk: u32,
}

impl CentroidPlan {
    /// The plan for `labels` (one per row, checked below `labels.k()`) in
    /// dimension `d`, by a counting sort (stable, so rows stay ascending).
    ///
    /// Errors: [`Error::InvalidConfig`] when there are `2³²` rows or more.
    pub fn new(labels: Labels<'_>, d: usize) -> Result<CentroidPlan> {
        let (k, labels) = (labels.k(), labels.as_slice());
        let m = labels.len();
        if u32::try_from(m).is_err() {
            return Err(Error::InvalidConfig {
                field: "labels",
                reason: format!("{m} rows: the device sums index rows with 32 bits"),
            });
        }
        let mut start = vec![0u32; k + 1];
        for &l in labels {
            start[l as usize + 1] += 1;
        }
        for j in 0..k {
            start[j + 1] += start[j];
        }
        let mut next = start.clone();
        let mut perm = vec![0u32; m];
        for (i, &l) in labels.iter().enumerate() {
            let slot = &mut next[l as usize];
            perm[*slot as usize] = i as u32;
            *slot += 1;
        }
        let chunk = u32::try_from(centroid_sum_chunk(m, k, d)).unwrap_or(u32::MAX);
        Ok(CentroidPlan { perm, start, chunk })
    }
}

/// The rows of the current [`LloydSteps::begin`], kept on the device.
struct Resident {
    x: CudaSlice<f32>,
    xnorm: CudaSlice<f32>,
    m: usize,
    d: usize,
}

/// [`LloydSteps`] on a [`Device`]: `begin` copies the rows to the device
/// once; each assignment is cuBLAS SGEMM plus the fused argmin (labels and
/// distances come back to the host, 8 bytes a row); each update sends the
/// [`CentroidPlan`] and gets the `k × d` means back.
///
/// ```no_run
/// # fn main() -> semid::Result<()> {
/// use semid::gpu::{Device, DeviceSteps};
/// use semid::{Embeddings, KMeans, KMeansConfig};
/// let dev = Device::open(0)?;
/// let data = vec![0f32; 10_000 * 64];
/// let x = Embeddings::new(&data, 64)?;
/// let (km, report) = KMeans::fit_with_steps(&KMeansConfig::new(256), x, &mut DeviceSteps::new(&dev)?)?;
/// # Ok(()) }
/// ```
///
/// Labels can differ from the CPU's where two centroids are within
/// rounding of each other (SGEMM sums in another order); given the same
/// labels, the means are the CPU's bit for bit.
pub struct DeviceSteps<'a> {
    dev: &'a Device,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    rows: Option<Resident>,
}

impl std::fmt::Debug for DeviceSteps<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSteps")
            .field("device", &self.dev.ordinal())
            .finish_non_exhaustive()
    }
}

fn drv(e: DriverError) -> Error {
    gpu(format!("{e:?}"))
}

impl<'a> DeviceSteps<'a> {
    /// Steps on `dev`'s default stream.
    ///
    /// Errors: [`Error::Gpu`] when cuBLAS cannot be loaded.
    pub fn new(dev: &'a Device) -> Result<DeviceSteps<'a>> {
        let stream = dev.ctx.default_stream();
        let blas = blas(&stream)?;
        Ok(DeviceSteps {
            dev,
            stream,
            blas,
            rows: None,
        })
    }

    fn resident(&self, x: &[f32], d: usize) -> Result<&Resident> {
        match &self.rows {
            Some(r) if r.d == d && r.m * d == x.len() => Ok(r),
            _ => Err(gpu(
                "DeviceSteps: assign/update called with rows other than those of begin",
            )),
        }
    }
}

impl LloydSteps for DeviceSteps<'_> {
    fn begin(&mut self, x: &[f32], d: usize) -> Result<()> {
        self.rows = None;
        let m = super::check_rows(x, d)?;
        if u32::try_from(m).is_err() {
            return Err(gpu(format!(
                "{m} rows: the device path takes fewer than 2^32"
            )));
        }
        let s = &self.stream;
        let x_dev = super::upload(s, x)?;
        let xnorm = super::upload(s, &sq_norms(x, d.max(1)))?;
        self.rows = Some(Resident {
            x: x_dev,
            xnorm,
            m,
            d,
        });
        Ok(())
    }

    fn assign(
        &mut self,
        x: &[f32],
        d: usize,
        centroids: &[f32],
        labels: &mut [u32],
        dists: &mut [f32],
    ) -> Result<()> {
        let r = self.resident(x, d)?;
        let (_, k) = shapes(x, d, centroids, &[labels.len(), dists.len()])?;
        let s = &self.stream;
        let f = self.dev.function("semid_assign")?;
        let dc = s.clone_htod(centroids).map_err(drv)?;
        let dcn = s.clone_htod(&sq_norms(centroids, d)).map_err(drv)?;
        let per = ((1usize << 28) / k).clamp(1, super::MAX_ROWS_PER_LAUNCH);
        let mut dots = s.alloc_zeros::<f32>(per.min(r.m) * k).map_err(drv)?;
        let mut dl = s.alloc_zeros::<u32>(per.min(r.m)).map_err(drv)?;
        let mut dd = s.alloc_zeros::<f32>(per.min(r.m)).map_err(drv)?;
        let kk = k as u32;
        for (row0, rows) in super::launches(r.m, per) {
            let xv = r.x.slice(row0 * d..(row0 + rows) * d);
            let xn = r.xnorm.slice(row0..row0 + rows);
            products(&self.blas, &dc, &xv, &mut dots, rows, k, d)?;
            let n32 = rows as u32;
            let mut b = s.launch_builder(f);
            b.arg(&dots)
                .arg(&dcn)
                .arg(&xn)
                .arg(&n32)
                .arg(&kk)
                .arg(&mut dl)
                .arg(&mut dd);
            // SAFETY: the arguments match `semid_assign`; `dots` holds at
            // least rows × k floats, the norms k and rows, the outputs at
            // least `rows`; the grid covers `rows` threads.
            unsafe { b.launch(threads(rows)) }.map_err(drv)?;
            s.memcpy_dtoh(&dl.slice(..rows), &mut labels[row0..row0 + rows])
                .map_err(drv)?;
            s.memcpy_dtoh(&dd.slice(..rows), &mut dists[row0..row0 + rows])
                .map_err(drv)?;
        }
        Ok(())
    }

    fn update(
        &mut self,
        x: &[f32],
        d: usize,
        labels: Labels<'_>,
        centroids: &mut [f32],
    ) -> Result<()> {
        let r = self.resident(x, d)?;
        let (_, k) = shapes(x, d, centroids, &[labels.as_slice().len()])?;
        labels.expect_k(k)?;
        let plan = CentroidPlan::new(labels, d)?;
        let s = &self.stream;
        let f = self.dev.function("semid_centroid_means")?;
        let perm = super::upload(s, &plan.perm)?;
        let start = s.clone_htod(&plan.start).map_err(drv)?;
        let mut dc = s.clone_htod(centroids).map_err(drv)?;
        let (d32, k32) = (d as u32, k as u32);
        let mut b = s.launch_builder(f);
        b.arg(&r.x)
            .arg(&d32)
            .arg(&perm)
            .arg(&start)
            .arg(&k32)
            .arg(&plan.chunk)
            .arg(&mut dc);
        // SAFETY: the arguments match `semid_centroid_means`; `perm` holds
        // row indices below m (x holds m × d floats), `start` k + 1
        // offsets within `perm`, `dc` k × d floats; the grid covers k × d.
        unsafe { b.launch(threads(k * d)) }.map_err(drv)?;
        s.memcpy_dtoh(&dc, centroids).map_err(drv)?;
        Ok(())
    }
}
