//! Python bindings of semid: the `semid._semid` extension module.
//!
//! Each Python-facing type wraps one semid type and calls it; the only logic
//! here is converting arrays, options and errors. Heavy calls (fit, encode,
//! decode, search, masking) run with the GIL released.

use numpy::{PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use semid::{Embeddings, Par};

mod constraint;
mod index;
mod metrics;
mod quantizer;

pyo3::create_exception!(
    semid,
    FormatError,
    PyValueError,
    "A model file is not a semid file, has another version or kind, is truncated or damaged."
);

/// The Python exception for a semid error: `FormatError` for model files,
/// `OSError` for I/O, `ValueError` for everything else (bad shapes, NaN,
/// invalid options, out-of-range tokens).
pub(crate) fn to_py(e: semid::Error) -> PyErr {
    let msg = e.to_string();
    // The message names the file; the class follows what is wrong in it.
    match e.root() {
        semid::Error::Format(_) => FormatError::new_err(msg),
        semid::Error::Io { .. } => PyOSError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// `Result<T, semid::Error>` → `PyResult<T>`.
pub(crate) trait OrPy<T> {
    fn or_py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for semid::Result<T> {
    fn or_py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// `threads` as semid's `Par`: `None`/0 = all threads of the pool, 1 = the
/// calling thread only, n = at most n threads. Results never depend on it.
pub(crate) fn par(threads: Option<usize>) -> Par {
    match threads {
        None | Some(0) => Par::Rayon(0),
        Some(1) => Par::Seq,
        Some(n) => Par::Rayon(n),
    }
}

/// Embeddings borrowed from a numpy array: float32 or float16, 2-D,
/// C-contiguous arrays are read in place; anything else is converted to a
/// C-contiguous float32 copy first.
pub(crate) enum Input<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F16(PyReadonlyArray2<'py, half::f16>),
}

impl<'py> Input<'py> {
    pub(crate) fn new(x: &Bound<'py, PyAny>) -> PyResult<Input<'py>> {
        if let Ok(a) = x.cast::<PyArray2<f32>>()
            && a.is_c_contiguous()
        {
            return Ok(Input::F32(a.readonly()));
        }
        if let Ok(a) = x.cast::<PyArray2<half::f16>>()
            && a.is_c_contiguous()
        {
            return Ok(Input::F16(a.readonly()));
        }
        let np = x.py().import("numpy")?;
        let c = np.call_method1("ascontiguousarray", (x, "float32"))?;
        let ndim: usize = c.getattr("ndim")?.extract()?;
        if ndim != 2 {
            let shape = c.getattr("shape")?.str()?.to_string();
            return Err(PyValueError::new_err(format!(
                "embeddings must be a 2-D array (n × d); got shape {shape}: reshape a single vector with x[None, :]"
            )));
        }
        let a = c.cast::<PyArray2<f32>>()?;
        Ok(Input::F32(a.readonly()))
    }

    pub(crate) fn view(&self) -> PyResult<Embeddings<'_>> {
        match self {
            Input::F32(a) => view_of(a, Embeddings::new),
            Input::F16(a) => view_of(a, Embeddings::from_f16),
        }
    }
}

fn view_of<'a, T: numpy::Element>(
    a: &'a PyReadonlyArray2<'_, T>,
    make: fn(&'a [T], usize) -> semid::Result<Embeddings<'a>>,
) -> PyResult<Embeddings<'a>> {
    let dim = a.shape()[1];
    if dim == 0 {
        return Err(PyValueError::new_err("embeddings have 0 columns"));
    }
    let s = a
        .as_slice()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    make(s, dim).or_py()
}

/// `v` (row-major, rows × cols) as a numpy array, without a copy.
pub(crate) fn array2<T: numpy::Element>(
    py: Python<'_>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'_, PyArray2<T>>> {
    let a = ndarray::Array2::from_shape_vec((rows, cols), v)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(numpy::IntoPyArray::into_pyarray(a, py))
}

/// Codes of `x` under `q` (uint16, n × L), encoded with the GIL released.
pub(crate) fn encode_py<'py>(
    py: Python<'py>,
    q: &semid::AnyQuantizer,
    x: &Bound<'py, PyAny>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<u16>>> {
    use semid::Quantizer as _;
    let input = Input::new(x)?;
    let emb = input.view()?;
    let (rows, levels) = (emb.rows(), q.levels());
    let out = py.detach(|| {
        let mut out = vec![0u16; emb.rows() * levels];
        q.encode_into(emb, &mut out, par(threads)).map(|()| out)
    });
    array2(py, out.or_py()?, rows, levels)
}

/// A 2-D array of tokens (codes or IDs) as `u16`: a C-contiguous uint16
/// array is copied once; any other integer array is range-checked first,
/// so a negative or too large token is an error, never a wrapped value.
pub(crate) fn tokens(x: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<u16>, usize, usize)> {
    if let Ok(a) = x.cast::<PyArray2<u16>>() {
        let a = a.readonly();
        let (n, l) = (a.shape()[0], a.shape()[1]);
        let v = a.as_array().iter().copied().collect();
        return Ok((v, n, l));
    }
    let np = x.py().import("numpy")?;
    let c = np.call_method1("asarray", (x,))?;
    let kind: String = c.getattr("dtype")?.getattr("kind")?.extract()?;
    let ndim: usize = c.getattr("ndim")?.extract()?;
    if ndim != 2 {
        return Err(PyValueError::new_err(format!(
            "{what} must be a 2-D integer array (rows × tokens); got {ndim} dimensions"
        )));
    }
    if kind != "i" && kind != "u" && !(kind == "f" && c.getattr("size")?.extract::<usize>()? == 0) {
        return Err(PyValueError::new_err(format!(
            "{what} must hold integers; got dtype kind '{kind}'"
        )));
    }
    let c = np.call_method1("ascontiguousarray", (c, "int64"))?;
    let a = c.cast::<PyArray2<i64>>()?.readonly();
    let (n, l) = (a.shape()[0], a.shape()[1]);
    let mut v = Vec::with_capacity(n * l);
    for (i, &t) in a.as_array().iter().enumerate() {
        let t = u16::try_from(t).map_err(|_| {
            PyValueError::new_err(format!(
                "{what}: row {} token {} is {t}; tokens must be in 0..65536",
                i / l.max(1),
                i % l.max(1)
            ))
        })?;
        v.push(t);
    }
    Ok((v, n, l))
}

/// A serde value as plain Python objects (dicts, lists, numbers, strings,
/// None), through JSON.
pub(crate) fn plain(py: Python<'_>, v: &impl serde::Serialize) -> PyResult<Py<PyAny>> {
    let s = serde_json::to_string(v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (s,))?.unbind())
}

/// `base` with the entries of `config` (a dict in the shape of semid's
/// config struct, as `serde` writes it) laid over it. An unknown field is an
/// error naming the fields that exist.
pub(crate) fn configure<C>(
    py: Python<'_>,
    base: C,
    config: Option<&Bound<'_, PyDict>>,
) -> PyResult<C>
where
    C: serde::Serialize + serde::de::DeserializeOwned,
{
    let Some(d) = config else {
        return Ok(base);
    };
    let s: String = py.import("json")?.call_method1("dumps", (d,))?.extract()?;
    let over: serde_json::Value =
        serde_json::from_str(&s).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let mut v = serde_json::to_value(&base).map_err(|e| PyValueError::new_err(e.to_string()))?;
    overlay(&mut v, over, "config")?;
    serde_json::from_value(v).map_err(|e| PyValueError::new_err(format!("config: {e}")))
}

fn overlay(base: &mut serde_json::Value, over: serde_json::Value, path: &str) -> PyResult<()> {
    use serde_json::Value;
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let is_struct = o.keys().all(|k| b.contains_key(k));
            if !is_struct && b.len() == 1 {
                // An enum variant (`{"Variant": {...}}`): replace it.
                *b = o;
                return Ok(());
            }
            for (k, v) in o {
                let Some(slot) = b.get_mut(&k) else {
                    let known: Vec<&String> = b.keys().collect();
                    return Err(PyValueError::new_err(format!(
                        "{path}: unknown field `{k}`; the fields are {known:?}"
                    )));
                };
                overlay(slot, v, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (b, o) => {
            *b = o;
            Ok(())
        }
    }
}

/// semid: semantic-ID tokenization and generative retrieval (Rust core).
#[pymodule]
fn _semid(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("FormatError", m.py().get_type::<FormatError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    quantizer::register(m)?;
    index::register(m)?;
    constraint::register(m)?;
    metrics::register(m)?;
    Ok(())
}
