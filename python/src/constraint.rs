//! `VocabConstraint`: a trie of semantic IDs over a language model's
//! vocabulary, masking the next-token scores of many beams in one call
//! (the core of `semid.hf.SidLogitsProcessor`).

use numpy::{PyArray2, PyReadonlyArray2, PyReadwriteArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use semid::sid::{Next, SpecialTokens, TokenMap, Trie as RsTrie};

use crate::OrPy;
use crate::index::Trie;

/// Valid semantic IDs as token sequences of a language model.
///
/// Level `l` code `c` is model token `offsets[l] + c`, or
/// `token_table[l][c]` when a table is given. The generated part of a
/// sequence starts at `prompt_length`; its first `id_len` tokens must spell
/// a prefix of a valid ID. After a whole ID only `eos_token_id` is allowed.
///
/// It fails closed (MiniOneRec #50: a `prefix_allowed_tokens_fn` that
/// returns `[]` lets the model emit anything). With `eos_token_id`, a row
/// whose tokens are no valid prefix, or a row past a whole ID, may only
/// emit it. Without one, a row that is no valid prefix (a dead beam) gets
/// no allowed token at all (every score -inf), and a row past a whole ID
/// raises `ValueError` naming the row. A row is never left unconstrained.
#[pyclass(module = "semid._semid", frozen)]
pub struct VocabConstraint {
    trie: RsTrie,
    map: TokenMap,
}

impl VocabConstraint {
    /// Writes into `buf` the model tokens allowed after `generated` (the
    /// row's tokens after the prompt): the next codes, or EOS where nothing
    /// else may follow and an EOS is configured, or nothing for a dead
    /// beam. Errors past a whole ID without an EOS (fail closed).
    fn allowed(
        &self,
        row: usize,
        generated: &[i64],
        buf: &mut Vec<u32>,
        toks: &mut Vec<u32>,
    ) -> Result<(), String> {
        toks.clear();
        // A negative or huge id is no code of any level.
        toks.extend(
            generated
                .iter()
                .map(|&t| u32::try_from(t).unwrap_or(u32::MAX)),
        );
        let next = self.map.allowed_next(&self.trie, toks, buf);
        if next == Next::Tokens && !buf.is_empty() {
            return Ok(());
        }
        if let Some(e) = self.map.specials().eos {
            buf.clear();
            buf.push(e);
            return Ok(());
        }
        if next == Next::Tokens {
            // No valid prefix (a dead beam): every token stays forbidden,
            // so the row's score is -inf and it can never rank.
            return Ok(());
        }
        Err(format!(
            "row {row} has generated a whole ID ({} tokens) and the constraint has no \
             eos_token_id, so no token may follow: give one, or generate exactly id_len = {} \
             new tokens (the constraint never leaves a row unconstrained)",
            generated.len(),
            self.trie.id_len()
        ))
    }

    fn check_ids(&self, ids: &PyReadonlyArray2<'_, i64>, prompt_length: usize) -> PyResult<()> {
        let cur = ids.shape()[1];
        if cur < prompt_length {
            return Err(PyValueError::new_err(format!(
                "input_ids have {cur} positions, fewer than prompt_length = {prompt_length}"
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl VocabConstraint {
    /// Builds the constraint for `trie` over a vocabulary of `vocab_size`
    /// model tokens. Give exactly one of `offsets` (one per level) or
    /// `token_table` (one integer sequence per level, at least as long as
    /// that level's vocabulary; distinct tokens within a level).
    #[new]
    #[pyo3(signature = (trie, vocab_size, *, offsets=None, token_table=None, eos_token_id=None))]
    fn new(
        trie: &Bound<'_, Trie>,
        vocab_size: usize,
        offsets: Option<Vec<i64>>,
        token_table: Option<Vec<Vec<i64>>>,
        eos_token_id: Option<i64>,
    ) -> PyResult<VocabConstraint> {
        let trie = trie.get().inner.clone();
        let vocab = trie.codebook_sizes().to_vec();
        let depth = trie.id_len();
        if vocab_size == 0 || vocab_size > u32::MAX as usize {
            return Err(PyValueError::new_err(format!(
                "vocab_size is {vocab_size}; it must be in 1..2^32"
            )));
        }
        let table: Vec<Vec<i64>> = match (offsets, token_table) {
            (Some(o), None) => {
                if o.len() != depth {
                    return Err(PyValueError::new_err(format!(
                        "offsets has {} entries; the trie has {depth} levels",
                        o.len()
                    )));
                }
                o.iter()
                    .zip(&vocab)
                    .map(|(&off, &v)| (0..v as i64).map(|c| off + c).collect())
                    .collect()
            }
            (None, Some(t)) => {
                if t.len() != depth {
                    return Err(PyValueError::new_err(format!(
                        "token_table has {} levels; the trie has {depth}",
                        t.len()
                    )));
                }
                for (l, (row, &v)) in t.iter().zip(&vocab).enumerate() {
                    if row.len() < v {
                        return Err(PyValueError::new_err(format!(
                            "token_table[{l}] has {} tokens; level {l} has {v} codes",
                            row.len()
                        )));
                    }
                }
                t.into_iter()
                    .zip(&vocab)
                    .map(|(row, &v)| row[..v].to_vec())
                    .collect()
            }
            _ => {
                return Err(PyValueError::new_err(
                    "give exactly one of offsets= or token_table=",
                ));
            }
        };
        let mut rows = Vec::with_capacity(depth);
        for (l, row) in table.into_iter().enumerate() {
            let row: Vec<u32> = row
                .into_iter()
                .enumerate()
                .map(|(c, tok)| {
                    u32::try_from(tok).map_err(|_| {
                        PyValueError::new_err(format!(
                            "level {l} code {c} maps to token {tok}, outside 0..{vocab_size}"
                        ))
                    })
                })
                .collect::<PyResult<_>>()?;
            rows.push(row);
        }
        let eos = match eos_token_id {
            None => None,
            Some(e) => Some(u32::try_from(e).map_err(|_| {
                PyValueError::new_err(format!("eos_token_id is {e}, outside 0..{vocab_size}"))
            })?),
        };
        let specials = SpecialTokens {
            eos,
            ..SpecialTokens::default()
        };
        let map = TokenMap::from_table(rows, vocab_size, specials)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(VocabConstraint { trie, map })
    }

    /// Tokens per ID.
    #[getter]
    fn id_len(&self) -> usize {
        self.trie.id_len()
    }

    /// Model vocabulary size.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.map.vocab_size()
    }

    /// Sets every forbidden next-token score of every row to -inf, in
    /// place. `input_ids`: int64, rows × positions (prompt then generated
    /// tokens); `scores`: float32, C-contiguous, rows × V with V ≥
    /// vocab_size (columns past vocab_size are forbidden too). The GIL is
    /// released.
    fn apply(
        &self,
        py: Python<'_>,
        input_ids: PyReadonlyArray2<'_, i64>,
        prompt_length: usize,
        mut scores: PyReadwriteArray2<'_, f32>,
    ) -> PyResult<()> {
        self.check_ids(&input_ids, prompt_length)?;
        let rows = input_ids.shape()[0];
        let cur = input_ids.shape()[1];
        let (srows, v) = (scores.shape()[0], scores.shape()[1]);
        if srows != rows {
            return Err(PyValueError::new_err(format!(
                "scores have {srows} rows, input_ids {rows}"
            )));
        }
        if v < self.map.vocab_size() {
            return Err(PyValueError::new_err(format!(
                "scores have {v} columns, fewer than vocab_size = {}",
                self.map.vocab_size()
            )));
        }
        let ids = input_ids
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let s = scores.as_slice_mut().map_err(|e| {
            PyValueError::new_err(format!("scores: {e}; pass a C-contiguous array"))
        })?;
        py.detach(|| {
            let (mut buf, mut toks, mut keep) = (Vec::new(), Vec::new(), Vec::new());
            for r in 0..rows {
                let generated = &ids[r * cur + prompt_length..(r + 1) * cur];
                self.allowed(r, generated, &mut buf, &mut toks)?;
                let row = &mut s[r * v..(r + 1) * v];
                keep.clear();
                keep.extend(buf.iter().map(|&t| row[t as usize]));
                row.fill(f32::NEG_INFINITY);
                for (&t, &x) in buf.iter().zip(&keep) {
                    row[t as usize] = x;
                }
            }
            Ok::<(), String>(())
        })
        .map_err(PyValueError::new_err)
    }

    /// The allowed next tokens of every row as a boolean array rows ×
    /// vocab_size (True = allowed), for scores that `apply` cannot write in
    /// place (on a GPU, or not float32).
    fn mask<'py>(
        &self,
        py: Python<'py>,
        input_ids: PyReadonlyArray2<'py, i64>,
        prompt_length: usize,
    ) -> PyResult<Bound<'py, PyArray2<bool>>> {
        self.check_ids(&input_ids, prompt_length)?;
        let rows = input_ids.shape()[0];
        let cur = input_ids.shape()[1];
        let v = self.map.vocab_size();
        let ids = input_ids
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let out = py
            .detach(|| {
                let mut out = vec![false; rows * v];
                let (mut buf, mut toks) = (Vec::new(), Vec::new());
                for r in 0..rows {
                    let generated = &ids[r * cur + prompt_length..(r + 1) * cur];
                    self.allowed(r, generated, &mut buf, &mut toks)?;
                    let row = &mut out[r * v..(r + 1) * v];
                    for &t in &buf {
                        row[t as usize] = true;
                    }
                }
                Ok::<_, String>(out)
            })
            .map_err(PyValueError::new_err)?;
        crate::array2(py, out, rows, v)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<VocabConstraint>()?;
    m.add_class::<TextFormat>()
}

/// Semantic IDs as language-model text tokens, LC-Rec's
/// `<a_12><b_34><c_5><d_0>`: one token per ID position, the position named
/// by a letter.
#[pyclass(module = "semid._semid", frozen)]
pub struct TextFormat {
    inner: semid::sid::TextFormat,
}

#[pymethods]
impl TextFormat {
    /// The format for IDs of `id_len` tokens (1 to 26 positions, `a`..`z`).
    #[new]
    fn new(id_len: usize) -> PyResult<TextFormat> {
        Ok(TextFormat {
            inner: semid::sid::TextFormat::new(id_len).or_py()?,
        })
    }

    /// Tokens per ID.
    #[getter]
    fn id_len(&self) -> usize {
        self.inner.id_len()
    }

    /// The text of one ID, e.g. `"<a_12><b_34><c_5><d_0>"`.
    fn format(&self, id: Vec<u16>) -> PyResult<String> {
        self.inner.format(&id).or_py()
    }

    /// The ID written in `text`; `ValueError` saying which token is wrong.
    fn parse(&self, text: &str) -> PyResult<Vec<u16>> {
        self.inner.parse(text).or_py()
    }

    /// The token of `code` at position `level`, e.g. `"<b_34>"`.
    fn token(&self, level: usize, code: u16) -> PyResult<String> {
        self.inner.token(level, code).or_py()
    }

    /// Every token of every position (`codebook_sizes[l]` at position `l`),
    /// position after position: what a tokenizer gains.
    fn vocabulary(&self, codebook_sizes: Vec<usize>) -> PyResult<Vec<String>> {
        self.inner.vocabulary(&codebook_sizes).or_py()
    }

    fn __repr__(&self) -> String {
        format!("<semid TextFormat id_len={}>", self.inner.id_len())
    }
}
