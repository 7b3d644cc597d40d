//! `SemanticIndex`, `Trie`, `Hits` and the Python scorer callback.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use semid::decode::{BeamSearch, Beams as RsBeams, Scorer};
use semid::hits::Hits as RsHits;
use semid::sid::{CollisionPolicy, Trie as RsTrie};
use semid::{ModelFile, SemanticIndex as RsIndex};

use crate::quantizer::Quantizer;
use crate::{Input, OrPy, array2, encode_py, par, plain, tokens};

fn policy(name: &str, capacity: Option<u32>) -> PyResult<CollisionPolicy> {
    let p = match name {
        "append_suffix" => CollisionPolicy::AppendSuffix,
        "allow_shared" => CollisionPolicy::AllowShared,
        "sinkhorn" => CollisionPolicy::SINKHORN,
        "reassign_last_level" => CollisionPolicy::ReassignLastLevel {
            capacity: capacity.unwrap_or(1),
        },
        other => {
            return Err(PyValueError::new_err(format!(
                "policy is {other:?}; use \"append_suffix\", \"sinkhorn\", \"reassign_last_level\" or \"allow_shared\""
            )));
        }
    };
    if capacity.is_some() && !matches!(p, CollisionPolicy::ReassignLastLevel { .. }) {
        return Err(PyValueError::new_err(
            "capacity applies only to policy=\"reassign_last_level\"",
        ));
    }
    Ok(p)
}

/// The live beams of one decoding step, as handed to a scorer callback.
///
/// A scorer returns a float32 array `len(beams.queries) × beams.codebook_size` of
/// log-scores (higher is better; -inf or NaN = never).
#[pyclass(module = "semid._semid", frozen)]
pub struct Beams {
    /// Position being decoded (0 = first token).
    #[pyo3(get)]
    level: usize,
    /// Scores to return per beam: the codebook size at `level`.
    #[pyo3(get)]
    codebook_size: usize,
    /// Number of queries in the batch.
    #[pyo3(get)]
    n_queries: usize,
    /// Prefix of every beam: uint16, beams × level.
    #[pyo3(get)]
    prefixes: Py<PyArray2<u16>>,
    /// Query (index within the batch) of every beam: uint32.
    #[pyo3(get)]
    queries: Py<PyArray1<u32>>,
    /// Parent of every beam among the previous step's beams (empty at
    /// level 0): reorder per-beam state (a KV cache) by it.
    #[pyo3(get)]
    parents: Py<PyArray1<u32>>,
}

#[pymethods]
impl Beams {
    fn __len__(&self, py: Python<'_>) -> usize {
        self.queries.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<semid Beams level={} codebook_size={} beams={} queries={}>",
            self.level,
            self.codebook_size,
            self.queries.bind(py).len(),
            self.n_queries
        )
    }
}

/// A `Scorer` that calls a Python function once per decoding step. A Python
/// exception stops the search and is raised again by `search`.
struct PyScorer {
    f: Py<PyAny>,
    err: Option<PyErr>,
}

impl PyScorer {
    fn call(&self, py: Python<'_>, b: &RsBeams<'_>, out: &mut Vec<f32>) -> PyResult<()> {
        let n = b.len();
        let prefixes = array2(py, b.prefixes.to_vec(), n, b.level)?;
        let beams = Beams {
            level: b.level,
            codebook_size: b.codebook_size,
            n_queries: b.n_queries,
            prefixes: prefixes.unbind(),
            queries: PyArray1::from_slice(py, b.queries).unbind(),
            parents: PyArray1::from_slice(py, b.parents).unbind(),
        };
        let r = self.f.call1(py, (beams,))?;
        let r = r.bind(py);
        let np = py.import("numpy")?;
        let a = np.call_method1("ascontiguousarray", (r, "float32"))?;
        let a = a.cast::<PyArray2<f32>>().map_err(|_| {
            PyValueError::new_err(format!(
                "the scorer must return a 2-D array of beams × codebook_size = {n} × {}",
                b.codebook_size
            ))
        })?;
        let a = a.readonly();
        if a.shape() != [n, b.codebook_size] {
            return Err(PyValueError::new_err(format!(
                "the scorer returned shape {:?} at level {}; expected beams × codebook_size = ({n}, {})",
                a.shape(),
                b.level,
                b.codebook_size
            )));
        }
        let s = a
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        out.extend_from_slice(s);
        Ok(())
    }
}

impl Scorer for PyScorer {
    fn score(&mut self, beams: &RsBeams<'_>, out: &mut Vec<f32>) -> semid::Result<()> {
        let r = Python::attach(|py| self.call(py, beams, out));
        r.map_err(|e| {
            let msg = e.to_string();
            self.err = Some(e);
            semid::Error::InvalidConfig {
                field: "scorer",
                reason: msg,
            }
        })
    }
}

/// Ranked hits of a batch of queries, padded to k per query: `items`
/// (int64, -1 = no hit), `scores` (float32, -inf = no hit), `ids` (uint16,
/// queries × k × id_len) and `counts` (hits per query).
#[pyclass(module = "semid._semid", frozen)]
pub struct Hits {
    /// Items, best first: int64, queries × k, -1 where a query has fewer.
    #[pyo3(get)]
    items: Py<PyAny>,
    /// Scores (sum of per-level log-scores): float32, queries × k.
    #[pyo3(get)]
    scores: Py<PyAny>,
    /// IDs of the hits: uint16, queries × k × id_len.
    #[pyo3(get)]
    ids: Py<PyAny>,
    /// Hits per query: int64.
    #[pyo3(get)]
    counts: Py<PyAny>,
    lists: Vec<Vec<u32>>,
}

impl Hits {
    fn new(py: Python<'_>, h: &RsHits, k: usize) -> PyResult<Hits> {
        let nq = h.n_queries();
        let l = h.id_len();
        let mut items = ndarray::Array2::<i64>::from_elem((nq, k), -1);
        let mut scores = ndarray::Array2::<f32>::from_elem((nq, k), f32::NEG_INFINITY);
        let mut ids = ndarray::Array3::<u16>::zeros((nq, k, l));
        let mut counts = ndarray::Array1::<i64>::zeros(nq);
        for q in 0..nq {
            let r = h.query(q);
            counts[q] = r.items.len() as i64;
            for (j, (&it, &s)) in r.items.iter().zip(r.scores).enumerate().take(k) {
                items[[q, j]] = if it == semid::hits::NO_ITEM {
                    -1
                } else {
                    i64::from(it)
                };
                scores[[q, j]] = s;
                for t in 0..l {
                    ids[[q, j, t]] = r.ids[j * l + t];
                }
            }
        }
        Ok(Hits {
            items: items.into_pyarray(py).into_any().unbind(),
            scores: scores.into_pyarray(py).into_any().unbind(),
            ids: ids.into_pyarray(py).into_any().unbind(),
            counts: counts.into_pyarray(py).into_any().unbind(),
            lists: h.to_lists(),
        })
    }
}

#[pymethods]
impl Hits {
    /// Items of every query as lists, best first (no padding).
    fn to_lists(&self) -> Vec<Vec<u32>> {
        self.lists.clone()
    }

    fn __len__(&self) -> usize {
        self.lists.len()
    }

    fn __repr__(&self) -> String {
        format!("<semid Hits queries={}>", self.lists.len())
    }
}

/// The prefix trie of valid semantic IDs.
#[pyclass(module = "semid._semid", frozen)]
pub struct Trie {
    pub(crate) inner: RsTrie,
}

#[pymethods]
impl Trie {
    /// The trie of `ids` (rows × id_len integers; row i is item i; repeats
    /// allowed). `codebook_sizes` gives the tokens possible per position
    /// (default: the largest token of each column + 1).
    #[staticmethod]
    #[pyo3(signature = (ids, codebook_sizes=None))]
    fn from_ids(ids: &Bound<'_, PyAny>, codebook_sizes: Option<Vec<usize>>) -> PyResult<Trie> {
        let (v, n, l) = tokens(ids, "ids")?;
        if n == 0 || l == 0 {
            return Err(PyValueError::new_err(
                "ids are empty; give at least one ID of at least one token",
            ));
        }
        let sizes = match codebook_sizes {
            Some(v) => v,
            None => (0..l)
                .map(|j| (0..n).map(|i| v[i * l + j] as usize).max().unwrap_or(0) + 1)
                .collect(),
        };
        Ok(Trie {
            inner: RsTrie::from_ids(&v, l, &sizes).or_py()?,
        })
    }

    /// Tokens per ID.
    #[getter]
    fn id_len(&self) -> usize {
        self.inner.id_len()
    }

    /// Codebook size of every ID position (the suffix counts as one).
    #[getter]
    fn codebook_sizes(&self) -> Vec<usize> {
        self.inner.codebook_sizes().to_vec()
    }

    /// Number of distinct IDs.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// True when `id` (a sequence of `depth` tokens) is in the trie.
    fn __contains__(&self, id: Vec<i64>) -> bool {
        let Ok(id) = id
            .iter()
            .map(|&t| u16::try_from(t))
            .collect::<Result<Vec<u16>, _>>()
        else {
            return false;
        };
        self.inner.contains(&id)
    }

    /// Tokens that may follow `prefix` (ascending, uint16); empty when the
    /// prefix is not in the trie or is a whole ID.
    fn allowed<'py>(&self, py: Python<'py>, prefix: Vec<i64>) -> Bound<'py, PyArray1<u16>> {
        let s = self.walk(&prefix);
        let v: &[u16] = match s {
            Some(s) if (s.depth as usize) < self.inner.id_len() => self.inner.allowed(s),
            _ => &[],
        };
        PyArray1::from_slice(py, v)
    }

    /// Items whose ID starts with `prefix` (uint32); empty when no ID does.
    fn items<'py>(&self, py: Python<'py>, prefix: Vec<i64>) -> Bound<'py, PyArray1<u32>> {
        match self.walk(&prefix) {
            Some(s) => PyArray1::from_vec(py, self.inner.items_under(s)),
            None => PyArray1::from_slice(py, &[]),
        }
    }

    /// Sizes: a dict of distinct IDs, items, nodes per depth and bytes.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = self.inner.stats();
        let d = pyo3::types::PyDict::new(py);
        d.set_item("ids", s.ids)?;
        d.set_item("items", s.items)?;
        d.set_item("nodes_per_depth", s.nodes_per_depth)?;
        d.set_item("structure_bytes", s.structure_bytes)?;
        d.set_item("item_bytes", s.item_bytes)?;
        Ok(d.into_any().unbind())
    }

    fn __repr__(&self) -> String {
        format!(
            "<semid Trie ids={} codebook_sizes={:?}>",
            self.inner.len(),
            self.inner.codebook_sizes()
        )
    }
}

impl Trie {
    fn walk(&self, prefix: &[i64]) -> Option<semid::sid::State> {
        let p: Vec<u16> = prefix
            .iter()
            .map(|&t| u16::try_from(t).ok())
            .collect::<Option<_>>()?;
        if p.len() > self.inner.id_len() {
            return None;
        }
        self.inner.walk(&p)
    }
}

/// Items (uint32) and their IDs (uint16, items × id_len).
type ItemsAndIds<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray2<u16>>);

/// A quantizer, the item ⇄ semantic-ID map and the trie of valid IDs, as
/// one artifact.
#[pyclass(module = "semid._semid")]
pub struct SemanticIndex {
    inner: RsIndex,
}

#[pymethods]
impl SemanticIndex {
    /// Encodes `x` (n × d; row i is item i) with a fitted `quantizer`,
    /// gives every item a semantic ID under the collision `policy`
    /// (`"append_suffix"`, TIGER's extra token; `"sinkhorn"`, LC-Rec's
    /// last-level Sinkhorn then the suffix, RQ-KMeans only;
    /// `"reassign_last_level"` with
    /// `capacity` items per ID, RQ-KMeans only; `"allow_shared"`), builds
    /// the trie, and returns `(index, report)`.
    #[staticmethod]
    #[pyo3(signature = (quantizer, x, policy="append_suffix", *, capacity=None, threads=None))]
    fn build(
        py: Python<'_>,
        quantizer: &Bound<'_, Quantizer>,
        x: &Bound<'_, PyAny>,
        policy: &str,
        capacity: Option<u32>,
        threads: Option<usize>,
    ) -> PyResult<(SemanticIndex, Py<PyAny>)> {
        let p = self::policy(policy, capacity)?;
        let q = quantizer.get().inner.clone();
        let input = Input::new(x)?;
        let emb = input.view()?;
        let (inner, report) = py
            .detach(|| RsIndex::build(q, emb, p, par(threads)))
            .or_py()?;
        Ok((SemanticIndex { inner }, plain(py, &report)?))
    }

    /// Adds `items` (one per row of `x`) and returns the report of the
    /// change; an item already present is an error.
    #[pyo3(signature = (items, x, threads=None))]
    fn insert(
        &mut self,
        py: Python<'_>,
        items: Vec<u32>,
        x: &Bound<'_, PyAny>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        let input = Input::new(x)?;
        let emb = input.view()?;
        let inner = &mut self.inner;
        let r = py
            .detach(|| inner.insert(&items, emb, par(threads)))
            .or_py()?;
        plain(py, &r)
    }

    /// Codes of `x` under the index's quantizer (uint16, n × L).
    #[pyo3(signature = (x, threads=None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<u16>>> {
        encode_py(py, self.inner.quantizer(), x, threads)
    }

    /// Trie-constrained beam search over a Python scorer: `scorer(beams)`
    /// is called once per level with a `Beams` and returns log-scores
    /// (float32, beams × codebook_size). Returns the top `k` items of each of
    /// `n_queries` queries. `renormalize=True` conditions each step's scores
    /// on emitting a valid ID.
    #[pyo3(signature = (scorer, n_queries, *, beam=20, k=10, renormalize=false))]
    fn search(
        &self,
        py: Python<'_>,
        scorer: Py<PyAny>,
        n_queries: usize,
        beam: usize,
        k: usize,
        renormalize: bool,
    ) -> PyResult<Hits> {
        let mut bs = BeamSearch::new(beam, k).or_py()?.renormalize(renormalize);
        let mut s = PyScorer {
            f: scorer,
            err: None,
        };
        let inner = &self.inner;
        let r = py.detach(|| inner.search(&mut s, n_queries, &mut bs));
        match (r, s.err) {
            (_, Some(e)) => Err(e),
            (r, None) => Hits::new(py, &r.or_py()?, k),
        }
    }

    /// Beam search scored by the distances of query embeddings (n × d) to
    /// the RQ-KMeans codebooks: the items whose codes best match each query.
    #[pyo3(signature = (queries, *, beam=20, k=10))]
    fn search_embeddings(
        &self,
        py: Python<'_>,
        queries: &Bound<'_, PyAny>,
        beam: usize,
        k: usize,
    ) -> PyResult<Hits> {
        let mut bs = BeamSearch::new(beam, k).or_py()?;
        let input = Input::new(queries)?;
        let emb = input.view()?;
        let inner = &self.inner;
        let h = py
            .detach(|| inner.search_embeddings(emb, &mut bs))
            .or_py()?;
        Hits::new(py, &h, k)
    }

    /// Semantic ID of `item` (uint16), or None.
    fn id_of<'py>(&self, py: Python<'py>, item: u32) -> Option<Bound<'py, PyArray1<u16>>> {
        self.inner
            .id_of(item)
            .map(|id| PyArray1::from_slice(py, id))
    }

    /// Items (uint32) and their IDs (uint16, items × id_len), in item
    /// order.
    fn ids<'py>(&self, py: Python<'py>) -> PyResult<ItemsAndIds<'py>> {
        let m = self.inner.map();
        let l = m.id_len();
        let mut pairs: Vec<(u32, &[u16])> = m.iter_sorted().collect();
        pairs.sort_unstable_by_key(|p| p.0);
        let items: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let ids: Vec<u16> = pairs.iter().flat_map(|p| p.1.iter().copied()).collect();
        let n = items.len();
        Ok((PyArray1::from_vec(py, items), array2(py, ids, n, l)?))
    }

    /// Number of items.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// The index's quantizer (a copy).
    #[getter]
    fn quantizer(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Quantizer::wrap(py, self.inner.quantizer().clone())
    }

    /// The trie of valid IDs (a copy).
    #[getter]
    fn trie(&self) -> Trie {
        Trie {
            inner: self.inner.trie().clone(),
        }
    }

    /// Writes the index file to `path`.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let inner = &self.inner;
        py.detach(|| inner.save(&path)).or_py()
    }

    /// Reads an index file (`FormatError` when it is not a valid one).
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<SemanticIndex> {
        let inner = py.detach(|| RsIndex::load(&path)).or_py()?;
        Ok(SemanticIndex { inner })
    }

    /// Opens an index file in place: memory-mapped and searched where it
    /// lies (milliseconds, where `load` reads and checks every byte).
    /// `check`: `"structure"` (the header, the directory and what searches
    /// walk) or `"full"` (every byte, as `load`); `verify()` checks the
    /// rest later. The file must not be rewritten in place while the index
    /// is open (`save` replaces files by rename, which is safe).
    #[staticmethod]
    #[pyo3(signature = (path, check="structure"))]
    fn open(py: Python<'_>, path: std::path::PathBuf, check: &str) -> PyResult<SemanticIndex> {
        let check = match check {
            "structure" => semid::Check::Structure,
            "full" => semid::Check::Full,
            other => {
                return Err(PyValueError::new_err(format!(
                    "check is {other:?}; use \"structure\" or \"full\""
                )));
            }
        };
        let inner = py.detach(|| RsIndex::open_with(&path, check)).or_py()?;
        Ok(SemanticIndex { inner })
    }

    /// Checks every invariant of the index (`FormatError` naming the first
    /// that fails); what `open(path, "full")` adds but the checksums.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        py.detach(|| inner.verify()).or_py()
    }

    /// The index file as bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.inner.to_bytes().or_py()?))
    }

    /// An index from index-file bytes.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<SemanticIndex> {
        Ok(SemanticIndex {
            inner: RsIndex::from_bytes(data).or_py()?,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "<semid SemanticIndex items={} quantizer={} id_len={}>",
            self.inner.len(),
            self.inner.quantizer().kind().name(),
            self.inner.map().id_len()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Beams>()?;
    m.add_class::<Hits>()?;
    m.add_class::<Trie>()?;
    m.add_class::<SemanticIndex>()?;
    Ok(())
}
