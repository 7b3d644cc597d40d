//! [`ParallelModel`]: RPG's recipe (Hou et al., KDD 2025, "Generating
//! long semantic IDs in parallel for recommendation") on semid-gen's
//! transformer.
//!
//! Each item is a tuple of `m` codes from `m` independent codebooks of `k`
//! codes (product quantization, as RPG's OPQ IDs). The model reads one
//! position per item, the sum of its `m` code embeddings, and predicts the
//! next item's `m` codes at once from the last position: `m` softmaxes of
//! `k` logits, trained with the mean cross-entropy over the codebooks. An
//! item's score is the sum of its codes' log-probabilities, so the model
//! ranks every item of the catalog exactly from one forward pass (RPG
//! decodes large catalogs with a graph over IDs; an exact scan is cheaper
//! up to a few hundred thousand items).

use std::path::Path;

use candle_core::Tensor;
use rayon::prelude::*;

use crate::decoder::{Decoder, masked_nll};
use crate::error::{Error, Result, config};
use crate::model::{
    META, Meta, ModelConfig, check_items, length_batches, load_named, mkdir, top_k,
};
use crate::train::{EpochReport, Example, TrainConfig, TrainReport, fit, window_examples};
use crate::weights::{save, write_json};
use semid::seq::LeaveOneOut;

/// The codes file beside a saved model.
const CODES: &str = "codes.safetensors";

/// RPG-style recommender over items with `m`-code IDs (see the module
/// docs).
pub struct ParallelModel {
    decoder: Decoder,
    cfg: ModelConfig,
    /// `n_items × m` codes, each below `k`.
    codes: Vec<u16>,
    /// The same, codebook-major (`m × n_items`), for scoring.
    codes_t: Vec<u16>,
    m: usize,
    k: usize,
    n_items: usize,
}

impl ParallelModel {
    /// A fresh model over items `0..codes.len() / m`: `codes` holds each
    /// item's `m` codes (row-major), each below `k`. Errors name the bad
    /// argument: `m` or `k` of 0, a ragged or empty table, a code ≥ `k`.
    pub fn new(
        cfg: &ModelConfig,
        codes: &[u16],
        m: usize,
        k: usize,
        seed: u64,
    ) -> Result<ParallelModel> {
        cfg.validate()?;
        if m == 0 || k == 0 || k > 1 << 16 {
            return Err(config(
                "codes",
                format!(
                    "m = {m} codebooks of k = {k} codes; m ≥ 1 and 1 ≤ k ≤ 65536 (codes are u16)"
                ),
            ));
        }
        if codes.is_empty() || !codes.len().is_multiple_of(m) {
            return Err(config(
                "codes",
                format!(
                    "holds {} codes, not a positive multiple of m = {m}",
                    codes.len()
                ),
            ));
        }
        if let Some(p) = codes.iter().position(|&c| c as usize >= k) {
            return Err(config(
                "codes",
                format!(
                    "item {} has code {} in codebook {}; codes must be below k = {k}",
                    p / m,
                    codes[p],
                    p % m
                ),
            ));
        }
        let vocab = m
            .checked_mul(k)
            .and_then(|v| v.checked_add(1))
            .filter(|&v| v <= u32::MAX as usize)
            .ok_or_else(|| config("codes", format!("m × k = {m} × {k} is too large")))?;
        let mut shape = cfg.shape(vocab, 1);
        shape.tied = false;
        shape.plain = false;
        Ok(ParallelModel {
            decoder: Decoder::new(shape, None, seed)?,
            cfg: cfg.clone(),
            codes: codes.to_vec(),
            codes_t: (0..m)
                .flat_map(|j| codes.iter().skip(j).step_by(m).copied())
                .collect(),
            m,
            k,
            n_items: codes.len() / m,
        })
    }

    /// Writes `semid-gen.json` (with the code shape), `codes.safetensors`
    /// (`n_items × m`, u32) and `model.safetensors` into `dir`.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        mkdir(dir)?;
        let mut meta = Meta::new("parallel", &self.cfg, self.n_items, None);
        meta.code_shape = Some((self.m, self.k));
        write_json(&meta, &dir.join(META))?;
        let codes: Vec<u32> = self.codes.iter().map(|&c| c as u32).collect();
        let codes = Tensor::from_vec(codes, (self.n_items, self.m), &candle_core::Device::Cpu)?;
        save(&[("codes".into(), codes)], &dir.join(CODES))?;
        save(&self.decoder.named(), &dir.join("model.safetensors"))
    }

    /// Reads a model [`ParallelModel::save`] wrote. The codes are checked
    /// as [`ParallelModel::new`] checks them; errors name the file.
    pub fn load(dir: impl AsRef<Path>) -> Result<ParallelModel> {
        let dir = dir.as_ref();
        let meta = Meta::read(dir, "parallel")?;
        let bad = |path: &Path, reason: String| Error::File {
            path: path.to_path_buf(),
            reason,
        };
        let (m, k) = meta
            .code_shape
            .ok_or_else(|| bad(&dir.join(META), "has no code_shape".into()))?;
        let path = dir.join(CODES);
        let tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
            .map_err(|e| bad(&path, format!("not a readable safetensors file ({e})")))?;
        let t = tensors
            .get("codes")
            .ok_or_else(|| bad(&path, "has no tensor \"codes\"".into()))?;
        if t.dims() != [meta.n_items, m] || t.dtype() != candle_core::DType::U32 {
            return Err(bad(
                &path,
                format!(
                    "codes are {:?} {:?}; semid-gen.json asks for u32 [{}, {m}]",
                    t.dtype(),
                    t.dims(),
                    meta.n_items
                ),
            ));
        }
        let codes: Vec<u16> = t
            .flatten_all()?
            .to_vec1::<u32>()?
            .into_iter()
            .map(|c| u16::try_from(c).map_err(|_| bad(&path, format!("holds code {c} ≥ 65536"))))
            .collect::<Result<_>>()?;
        let model = ParallelModel::new(&meta.config, &codes, m, k, 0)
            .map_err(|e| bad(&path, e.to_string()))?;
        load_named(&model.decoder, dir)?;
        Ok(model)
    }

    /// Items in the catalog.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Codebooks per item (`m`) and codes per codebook (`k`).
    pub fn code_shape(&self) -> (usize, usize) {
        (self.m, self.k)
    }

    /// The model's tokens of `t` positions per row: BOS, then each item's
    /// `m` code tokens (`j · k + code` for codebook `j`); shorter rows are
    /// padded with absent tokens.
    fn positions(&self, rows: &[&[u32]], t: usize) -> (Vec<u32>, Vec<f32>) {
        let (m, k) = (self.m, self.k);
        let bos = (m * k) as u32;
        let mut ids = Vec::with_capacity(rows.len() * t * m);
        let mut present = Vec::with_capacity(rows.len() * t * m);
        for r in rows {
            for p in 0..t {
                if p == 0 {
                    ids.push(bos);
                    present.push(1.0);
                    ids.extend(std::iter::repeat_n(0, m - 1));
                    present.extend(std::iter::repeat_n(0.0, m - 1));
                } else if let Some(&item) = r.get(p - 1) {
                    let c = &self.codes[item as usize * m..(item as usize + 1) * m];
                    ids.extend(
                        c.iter()
                            .enumerate()
                            .map(|(j, &c)| (j * k) as u32 + c as u32),
                    );
                    present.extend(std::iter::repeat_n(1.0, m));
                } else {
                    ids.extend(std::iter::repeat_n(0, m));
                    present.extend(std::iter::repeat_n(0.0, m));
                }
            }
        }
        (ids, present)
    }

    /// Per-codebook logits `(n, m, k)` from the output layer's `(n, vocab)`.
    fn code_logits(&self, logits: &Tensor) -> Result<Tensor> {
        let n = logits.dim(0)?;
        Ok(logits
            .narrow(1, 0, self.m * self.k)?
            .contiguous()?
            .reshape((n, self.m, self.k))?)
    }

    /// Trains on the training part of `split`; as
    /// [`SidModel::train`](crate::SidModel::train). The loss is the mean
    /// cross-entropy of the next item's codes, one softmax per codebook.
    pub fn train(
        &self,
        split: &LeaveOneOut,
        cfg: &TrainConfig,
        mut validate: impl FnMut(&ParallelModel) -> Result<f64>,
        mut on_epoch: impl FnMut(&EpochReport),
    ) -> Result<TrainReport> {
        cfg.validate()?;
        let seqs = split.sequences();
        let examples = window_examples(seqs, self.cfg.max_history, cfg.stride, 1, |items| {
            check_items(items, self.n_items)?;
            Ok(Vec::new())
        })?;
        let m = self.m;
        let mut loss = |batch: &[&Example], drop| {
            // Position i reads BOS (i = 0) or item i − 1 and predicts item i.
            let t = batch.iter().map(|e| e.items.len()).max().unwrap_or(1);
            let inputs: Vec<&[u32]> = batch
                .iter()
                .map(|e| &e.items[..e.items.len() - 1])
                .collect();
            let (ids, present) = self.positions(&inputs, t);
            let (mut at, mut targets) = (Vec::new(), Vec::new());
            for (r, e) in batch.iter().enumerate() {
                for i in e.from..e.items.len() {
                    at.push((r * t + i) as u32);
                    let item = e.items[i] as usize;
                    targets.extend(
                        self.codes[item * m..(item + 1) * m]
                            .iter()
                            .map(|&c| c as u32),
                    );
                }
            }
            let n = at.len();
            let mut x = self.decoder.inputs_of(ids, present, (batch.len(), t, m))?;
            x.dropout = drop;
            x.rows_out = Some(Tensor::from_vec(at, n, &candle_core::Device::Cpu)?);
            let logits = self.decoder.forward(&x, 0, &mut Vec::new())?;
            let logits = self.code_logits(&logits)?.reshape((n * m, self.k))?;
            Ok(masked_nll(logits, targets, vec![1.0; n * m], None)?)
        };
        fit(
            self.decoder.vars(),
            &examples,
            cfg,
            &mut loss,
            &mut || validate(self),
            &mut on_epoch,
        )
    }

    /// `scores[i]` ← item `i`'s score from one user's `m × k` code
    /// log-probabilities `lp`: the sum over codebooks, in codebook order.
    fn score_items(&self, lp: &[f32], scores: &mut [f32]) {
        scores.fill(0.0);
        let n = self.n_items;
        for (lp, codes) in lp.chunks_exact(self.k).zip(self.codes_t.chunks_exact(n)) {
            for (s, &c) in scores.iter_mut().zip(codes) {
                *s += lp[c as usize];
            }
        }
    }

    /// The `k` highest-scored items after each history (its last
    /// `max_history` items), best first, ties by item id. Every item of
    /// the catalog is scored: the sum of its codes' log-probabilities.
    pub fn recommend(&self, histories: &[&[u32]], k: usize) -> Result<Vec<Vec<u32>>> {
        let (n, m, kc) = (self.n_items, self.m, self.k);
        let k = k.min(n);
        let (cut, batches) = length_batches(histories, self.cfg.max_history);
        for c in &cut {
            check_items(c, n)?;
        }
        // Each item's input vector (the sum of its m code embeddings) once,
        // after BOS's: row 0 is BOS, row i + 1 item i.
        let all: Vec<u32> = (0..n as u32).collect();
        let (ids, present) = self.positions(&[&all], n + 1);
        let sums = self.decoder.token_sums(&ids, &present, m)?;
        let dev = candle_core::Device::Cpu;
        let mut lists = vec![Vec::new(); histories.len()];
        for batch in &batches {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| cut[i]).collect();
            let t = rows[0].len() + 1;
            let at: Vec<u32> = rows
                .iter()
                .flat_map(|r| std::iter::once(0).chain(r.iter().map(|&i| i + 1)))
                .collect();
            let x = sums
                .index_select(&Tensor::from_vec(at, rows.len() * t, &dev)?, 0)?
                .reshape((rows.len(), t, self.cfg.d))?;
            let mut x = self.decoder.inputs_summed(x)?;
            x.rows_out = Some(last_positions(rows.len(), t)?);
            // The output layer at each row's last position only.
            let last = self.decoder.forward(&x, 0, &mut Vec::new())?;
            let mut lp = self.code_logits(&last)?.flatten_all()?.to_vec1::<f32>()?;
            // Users in parallel; each list depends on its own row only.
            let out: Vec<Vec<u32>> = lp
                .par_chunks_exact_mut(m * kc)
                .map_init(
                    || vec![0f32; n],
                    |scores, row| {
                        row.chunks_exact_mut(kc).for_each(log_softmax);
                        self.score_items(row, scores);
                        top_k(scores, k)
                    },
                )
                .collect();
            for (&u, list) in batch.iter().zip(out) {
                lists[u] = list;
            }
        }
        Ok(lists)
    }
}

/// `x ← log_softmax(x)`, in place.
fn log_softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + x.iter().map(|&v| (v - max).exp()).sum::<f32>().ln();
    x.iter_mut().for_each(|v| *v -= lse);
}

/// The flat positions `r · t + t − 1` of `rows` rows of `t` positions: the
/// last of each row, where the next item is predicted.
pub(crate) fn last_positions(rows: usize, t: usize) -> Result<Tensor> {
    let at: Vec<u32> = (0..rows).map(|r| (r * t + t - 1) as u32).collect();
    Ok(Tensor::from_vec(at, rows, &candle_core::Device::Cpu)?)
}
