//! `Quantizer` and one subclass per semid quantizer.

use numpy::{IntoPyArray, PyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use semid::quantize::{
    AnyQuantizer, Fsq as RsFsq, FsqAutoencoder as RsFsqAe, FsqAutoencoderConfig, FsqMode,
    KMeans as RsKMeans, KMeansConfig, PqConfig, ProductQuantizer as RsProductQuantizer,
    ResidualFsq as RsResidualFsq, RqKMeans as RsRqKMeans, RqKMeansConfig, RqVae as RsRqVae,
    RqVaeConfig,
};
use semid::{Codes, ModelFile, Quantizer as _};

use crate::{Input, OrPy, array2, configure, encode_py, par, plain, tokens};

/// A fitted quantizer of any kind: embeddings (n × d) in, codes (n × L,
/// uint16) out.
///
/// Every quantizer class (`KMeans`, `RqKMeans`, `RqVae`, `Fsq`,
/// `ResidualFsq`, `FsqAutoencoder`) is a `Quantizer`; `Quantizer.load` and
/// `Quantizer.from_bytes` return an instance of the class the file holds.
#[pyclass(module = "semid._semid", subclass, frozen)]
pub struct Quantizer {
    pub(crate) inner: AnyQuantizer,
}

impl Quantizer {
    /// `q` as an instance of its Python class.
    pub(crate) fn wrap(py: Python<'_>, q: AnyQuantizer) -> PyResult<Py<PyAny>> {
        let kind = q.kind();
        let base = PyClassInitializer::from(Quantizer { inner: q });
        use semid::format::ModelKind as K;
        Ok(match kind {
            K::KMeans => Py::new(py, base.add_subclass(KMeans))?.into_any(),
            K::RqKMeans => Py::new(py, base.add_subclass(RqKMeans))?.into_any(),
            K::RqVae => Py::new(py, base.add_subclass(RqVae))?.into_any(),
            K::Fsq => Py::new(py, base.add_subclass(Fsq))?.into_any(),
            K::ResidualFsq => Py::new(py, base.add_subclass(ResidualFsq))?.into_any(),
            K::FsqAutoencoder => Py::new(py, base.add_subclass(FsqAutoencoder))?.into_any(),
            K::ProductQuantizer => Py::new(py, base.add_subclass(ProductQuantizer))?.into_any(),
            _ => Py::new(py, base)?.into_any(),
        })
    }
}

#[pymethods]
impl Quantizer {
    /// Model kind, as in the model file (`"rq_kmeans"`, `"fsq"`, ...).
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind().name()
    }

    /// Input width d.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Tokens per code, L.
    #[getter]
    fn levels(&self) -> usize {
        self.inner.levels()
    }

    /// Codebook size of every level.
    #[getter]
    fn codebook_sizes(&self) -> Vec<usize> {
        self.inner.codebook_sizes()
    }

    /// Codes of `x` (n × d, float32 or float16; other dtypes are converted):
    /// a uint16 array n × L. The GIL is released while encoding; `threads`
    /// (None = all) never changes the result.
    #[pyo3(signature = (x, threads=None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<u16>>> {
        encode_py(py, &self.inner, x, threads)
    }

    /// Embeddings the codes stand for: `codes` (n × L integers) to a
    /// float32 array n × d. Tokens out of range are an error.
    #[pyo3(signature = (codes, threads=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        codes: &Bound<'py, PyAny>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (v, n, l) = tokens(codes, "codes")?;
        if l != self.inner.levels() {
            return Err(PyValueError::new_err(format!(
                "codes have {l} columns; this quantizer has {} levels",
                self.inner.levels()
            )));
        }
        let codes = Codes::new(v, l).or_py()?;
        let d = self.inner.dim();
        let q = &self.inner;
        let out = py.detach(|| {
            let mut out = vec![0f32; n * d];
            q.decode_into(&codes, &mut out, par(threads)).map(|()| out)
        });
        array2(py, out.or_py()?, n, d)
    }

    /// Mean squared error per vector of encoding then decoding `x`
    /// (sum over dimensions, mean over rows).
    #[pyo3(signature = (x, threads=None))]
    fn reconstruction_mse(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        threads: Option<usize>,
    ) -> PyResult<f64> {
        let input = Input::new(x)?;
        let emb = input.view()?;
        let q = &self.inner;
        py.detach(|| q.reconstruction_mse(emb, par(threads)))
            .or_py()
    }

    /// Writes the model file (versioned, checksummed) to `path`.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let q = &self.inner;
        py.detach(|| q.save(&path)).or_py()
    }

    /// Reads a model file of any quantizer kind. Raises `FormatError` for a
    /// file that is not a valid semid quantizer file, `OSError` when it
    /// cannot be read.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Py<PyAny>> {
        let q = py.detach(|| AnyQuantizer::load(&path)).or_py()?;
        Quantizer::wrap(py, q)
    }

    /// The model file as bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.inner.to_bytes().or_py()?;
        Ok(PyBytes::new(py, &b))
    }

    /// A quantizer from model-file bytes (see `load`).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
        let q = AnyQuantizer::from_bytes(data).or_py()?;
        Quantizer::wrap(py, q)
    }

    /// Pickling goes through the model file, so quantizers can be sent to
    /// worker processes (multiprocessing, Spark, Ray).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let bytes = slf.get().to_bytes(py)?;
        let ctor = py.get_type::<Quantizer>().getattr("from_bytes")?;
        PyTuple::new(py, [ctor.into_any(), PyTuple::new(py, [bytes])?.into_any()])
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Quantizer>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "<semid {} dim={} codebook_sizes={:?}>",
            self.inner.kind().name(),
            self.inner.dim(),
            self.inner.codebook_sizes()
        )
    }
}

/// Fits `M` under the GIL-free region and wraps the result.
fn fit_any<M, C, R>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    config: C,
    fit: impl FnOnce(&C, semid::Embeddings<'_>) -> semid::Result<(M, R)> + Send,
) -> PyResult<(Py<PyAny>, Py<PyAny>)>
where
    M: Into<AnyQuantizer> + Send,
    R: serde::Serialize + Send,
    C: Sync,
{
    let input = Input::new(x)?;
    let emb = input.view()?;
    let (m, report) = py.detach(|| fit(&config, emb)).or_py()?;
    Ok((Quantizer::wrap(py, m.into())?, plain(py, &report)?))
}

/// k-means: one level, k codes.
#[pyclass(module = "semid._semid", extends = Quantizer, frozen)]
pub struct KMeans;

#[pymethods]
impl KMeans {
    /// Fits k-means to `x` (n × d) and returns `(model, report)`; the
    /// report is a dict (iterations, inertia, cluster sizes, ...).
    /// `config` overrides any field of semid's `KMeansConfig`, e.g.
    /// `{"max_points_per_centroid": None, "init": "KMeansPlusPlus"}`.
    #[staticmethod]
    #[pyo3(signature = (x, k=256, *, seed=0, max_iter=None, threads=None, config=None))]
    fn fit(
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        k: usize,
        seed: u64,
        max_iter: Option<usize>,
        threads: Option<usize>,
        config: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        let mut c = KMeansConfig::new(k).seed(seed).par(par(threads));
        if let Some(m) = max_iter {
            c = c.max_iter(m);
        }
        let c = configure(py, c, config)?;
        fit_any(py, x, c, RsKMeans::fit)
    }
}

/// Residual k-means (RQ-KMeans): `levels` levels of k codes, each fitted
/// to the residuals of the ones before.
#[pyclass(module = "semid._semid", extends = Quantizer, frozen)]
pub struct RqKMeans;

#[pymethods]
impl RqKMeans {
    /// Fits RQ-KMeans to `x` (n × d) and returns `(model, report)`.
    /// `config` overrides fields of semid's `RqKMeansConfig`, e.g.
    /// `{"refine_rounds": 0, "kmeans": {"max_iter": 10}}`.
    /// `codebook_sizes=[512, 256, 128]` gives each level its own size (and
    /// sets `levels` to its length).
    #[staticmethod]
    #[pyo3(signature = (x, levels=3, k=256, *, codebook_sizes=None, seed=0, threads=None, config=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        levels: usize,
        k: usize,
        codebook_sizes: Option<Vec<usize>>,
        seed: u64,
        threads: Option<usize>,
        config: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        let c = match codebook_sizes {
            Some(sizes) => RqKMeansConfig::with_codebook_sizes(&sizes),
            None => RqKMeansConfig::new(levels, k),
        };
        let c = c.seed(seed).par(par(threads));
        let c = configure(py, c, config)?;
        fit_any(py, x, c, RsRqKMeans::fit)
    }

    /// Codebooks as a float32 array (levels × k × d); a list of one
    /// (k_l × d) array per level when the levels' sizes differ.
    #[getter]
    fn codebooks<'py>(slf: PyRef<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let q = slf
            .as_super()
            .inner
            .as_rq_kmeans()
            .ok_or_else(|| PyValueError::new_err("not an RQ-KMeans model"))?;
        let sizes = q.codebook_sizes();
        let (l, d) = (q.levels(), q.dim());
        if sizes.iter().all(|&k| k == sizes[0]) {
            let a = ndarray::Array3::from_shape_vec((l, sizes[0], d), q.codebooks().to_vec())
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            return Ok(a.into_pyarray(py).into_any());
        }
        let mut out = Vec::with_capacity(l);
        for (lv, &k) in sizes.iter().enumerate() {
            let a = ndarray::Array2::from_shape_vec((k, d), q.codebook(lv).to_vec())
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            out.push(a.into_pyarray(py).into_any());
        }
        Ok(pyo3::types::PyList::new(py, out)?.into_any())
    }
}

/// RQ-VAE (TIGER's recipe), trained in semid.
#[pyclass(module = "semid._semid", extends = Quantizer, frozen)]
pub struct RqVae;

#[pymethods]
impl RqVae {
    /// Trains an RQ-VAE on `x` (n × d) and returns `(model, reports)`, one
    /// dict per epoch. `config` overrides fields of semid's `RqVaeConfig`
    /// (`hidden`, `latent`, `beta`, `optimizer`, `batch_size`, ...).
    /// `codebook_sizes=[512, 256, 128]` gives each level its own size.
    /// `warm_start=rq` (a fitted `RqKMeans`) starts from its codebooks with
    /// a residual encoder at the identity; the latent is then the data's
    /// width and the levels and sizes are `rq`'s.
    #[staticmethod]
    #[pyo3(signature = (x, levels=3, k=256, *, codebook_sizes=None, seed=0, epochs=None, threads=None, config=None, warm_start=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        levels: usize,
        k: usize,
        codebook_sizes: Option<Vec<usize>>,
        seed: u64,
        epochs: Option<usize>,
        threads: Option<usize>,
        config: Option<&Bound<'_, PyDict>>,
        warm_start: Option<PyRef<'_, Quantizer>>,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        if let Some(w) = warm_start {
            let rq = w
                .inner
                .as_rq_kmeans()
                .ok_or_else(|| PyValueError::new_err("warm_start takes a fitted RqKMeans"))?
                .clone();
            let input = Input::new(x)?;
            let d = input.view()?.dim();
            let mut c = RqVaeConfig::default()
                .codebook_sizes(rq.codebook_sizes())
                .seed(seed)
                .par(par(threads));
            c.latent = d;
            if let Some(e) = epochs {
                c = c.epochs(e);
            }
            let c = configure(py, c, config)?;
            return fit_any(py, x, c, move |c, emb| RsRqVae::fit_warm(c, emb, &rq));
        }
        let mut c = RqVaeConfig::new(levels, k).seed(seed).par(par(threads));
        if let Some(sizes) = codebook_sizes {
            c = c.codebook_sizes(sizes);
        }
        if let Some(e) = epochs {
            c = c.epochs(e);
        }
        let c = configure(py, c, config)?;
        fit_any(py, x, c, RsRqVae::fit)
    }
}

fn fsq_mode(mode: &str) -> PyResult<FsqMode> {
    match mode {
        "default" => Ok(FsqMode::Default),
        "symmetric" => Ok(FsqMode::Symmetric),
        "symmetric_hard_clamp" => Ok(FsqMode::SymmetricHardClamp),
        other => Err(PyValueError::new_err(format!(
            "mode is {other:?}; use \"default\", \"symmetric\" or \"symmetric_hard_clamp\""
        ))),
    }
}

/// FSQ: each of the d = len(levels_per_dim) input dimensions is bounded and
/// rounded to `levels_per_dim[j]` values; one token per vector (at most 65 536 codes).
#[pyclass(module = "semid._semid", extends = Quantizer, frozen)]
pub struct Fsq;

#[pymethods]
impl Fsq {
    /// An FSQ quantizer (no training needed), e.g. `Fsq([8, 5, 5, 5])`.
    /// `mode` is `"default"` or `"symmetric"` (vector-quantize-pytorch's
    /// `preserve_symmetry=True`).
    #[new]
    #[pyo3(signature = (levels_per_dim, mode="default"))]
    fn new(levels_per_dim: Vec<u32>, mode: &str) -> PyResult<PyClassInitializer<Self>> {
        let q = RsFsq::with_mode(&levels_per_dim, fsq_mode(mode)?).or_py()?;
        Ok(PyClassInitializer::from(Quantizer { inner: q.into() }).add_subclass(Fsq))
    }
}

/// Residual FSQ: `levels` FSQ layers, each on the residual of the ones
/// before, at shrinking scales; one token per layer.
#[pyclass(module = "semid._semid", extends = Quantizer, frozen)]
pub struct ResidualFsq;

#[pymethods]
impl ResidualFsq {
    /// A residual FSQ quantizer, e.g. `ResidualFsq([8, 5, 5, 5], 3)`.
    #[new]
    fn new(levels_per_dim: Vec<u32>, levels: usize) -> PyResult<PyClassInitializer<Self>> {
        let q = RsResidualFsq::new(&levels_per_dim, levels).or_py()?;
        Ok(PyClassInitializer::from(Quantizer { inner: q.into() }).add_subclass(ResidualFsq))
    }
}

/// An MLP encoder → FSQ → MLP decoder, trained in semid; one token per
/// vector.
#[pyclass(module = "semid._semid", extends = Quantizer, frozen)]
pub struct FsqAutoencoder;

#[pymethods]
impl FsqAutoencoder {
    /// Trains on `x` (n × d) and returns `(model, reports)`, one dict per
    /// epoch. `config` overrides fields of semid's `FsqAutoencoderConfig`.
    #[staticmethod]
    #[pyo3(signature = (x, levels_per_dim=vec![8, 5, 5, 5], *, seed=0, epochs=None, config=None))]
    fn fit(
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        levels_per_dim: Vec<u32>,
        seed: u64,
        epochs: Option<usize>,
        config: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        let mut c = FsqAutoencoderConfig::new(&levels_per_dim);
        c.seed = seed;
        if let Some(e) = epochs {
            c.epochs = e;
        }
        let c = configure(py, c, config)?;
        fit_any(py, x, c, RsFsqAe::fit)
    }
}

/// Seconds of each of `repeats` calls of the Rust `encode_into` on `x`,
/// timed inside Rust with the output buffer allocated per call as
/// `Quantizer.encode` does: the baseline for measuring what the Python
/// binding adds (examples/python/encode_overhead.py). Not public API.
#[pyfunction]
#[pyo3(signature = (quantizer, x, repeats, threads=None))]
fn _time_encode(
    py: Python<'_>,
    quantizer: &Bound<'_, Quantizer>,
    x: &Bound<'_, PyAny>,
    repeats: usize,
    threads: Option<usize>,
) -> PyResult<Vec<f64>> {
    let input = Input::new(x)?;
    let emb = input.view()?;
    let q = &quantizer.get().inner;
    py.detach(|| {
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let t = std::time::Instant::now();
            let mut out = vec![0u16; emb.rows() * q.levels()];
            q.encode_into(emb, &mut out, par(threads))?;
            std::hint::black_box(&out);
            times.push(t.elapsed().as_secs_f64());
        }
        Ok(times)
    })
    .or_py()
}

/// Product quantization (RPG's IDs) and OPQ (with a learned rotation,
/// ActionPiece's): `m` sub-spaces of `k` codes, one token each.
#[pyclass(module = "semid._semid", extends = Quantizer, frozen)]
pub struct ProductQuantizer;

#[pymethods]
impl ProductQuantizer {
    /// Fits to `x` (n × d; `m` must divide d) and returns `(model,
    /// report)`. `opq=True` learns a rotation first (FAISS `OPQMatrix`'s
    /// alternations). `config` overrides fields of semid's `PqConfig`
    /// (`opq_iterations`, `kmeans`, ...).
    #[staticmethod]
    #[pyo3(signature = (x, m=4, k=256, *, opq=false, seed=0, threads=None, config=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        m: usize,
        k: usize,
        opq: bool,
        seed: u64,
        threads: Option<usize>,
        config: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        let c = if opq {
            PqConfig::opq(m, k)
        } else {
            PqConfig::pq(m, k)
        };
        let c = configure(py, c.seed(seed).par(par(threads)), config)?;
        fit_any(py, x, c, RsProductQuantizer::fit)
    }

    /// The learned rotation (d × d, `y = R x`), or None for plain PQ.
    #[getter]
    fn rotation<'py>(slf: PyRef<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        let AnyQuantizer::ProductQuantizer(q) = &slf.as_super().inner else {
            return Err(PyValueError::new_err("not a product quantizer"));
        };
        q.rotation()
            .map(|r| {
                let d = q.dim();
                ndarray::Array2::from_shape_vec((d, d), r.to_vec())
                    .map(|a| a.into_pyarray(py).into_any())
                    .map_err(|e| PyValueError::new_err(e.to_string()))
            })
            .transpose()
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_time_encode, m)?)?;
    m.add_class::<Quantizer>()?;
    m.add_class::<KMeans>()?;
    m.add_class::<RqKMeans>()?;
    m.add_class::<RqVae>()?;
    m.add_class::<Fsq>()?;
    m.add_class::<ResidualFsq>()?;
    m.add_class::<FsqAutoencoder>()?;
    m.add_class::<ProductQuantizer>()?;
    Ok(())
}
