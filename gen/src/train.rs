//! The training loop shared by every model: windows of users' training
//! sequences, seeded batches, AdamW with warm-up and weight decay,
//! validation after every epoch, early stopping with patience, a time
//! budget, and the best epoch's weights kept.

use std::time::{Duration, Instant};

use candle_core::{Tensor, Var};
use semid::seq::Sequences;

use crate::decoder::Trainer;
use crate::error::{Result, config};

/// How a model is trained. `Default` is the recipe tuned on MovieLens-100K
/// validation (docs/GENREC.md).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Most epochs (default 60); early stopping or the time budget usually
    /// ends training first.
    pub epochs: usize,
    /// Peak learning rate of AdamW (default 1e-3).
    pub lr: f64,
    /// Steps of linear warm-up to `lr`, which then stays constant
    /// (default 200).
    pub warmup: usize,
    /// Decoupled weight decay of AdamW, on every weight (default 0.01).
    pub weight_decay: f64,
    /// Dropout on the embeddings and every residual branch (default 0.2).
    pub dropout: f32,
    /// Windows per batch (default 64).
    pub batch: usize,
    /// Stop after this many epochs without a better validation score
    /// (default 8).
    pub patience: usize,
    /// Training and validation stay within this much wall time: an epoch
    /// starts only if one as long as the longest so far still fits
    /// (default 15 minutes; `None`: no limit). The first epoch always runs.
    pub time_budget: Option<Duration>,
    /// A training window starts every `stride` items (default 10, at most
    /// the history length); each target is trained once per epoch, in the
    /// window that gives it the longest history.
    pub stride: usize,
    /// Seed of the initial weights, the batch order and dropout (default 1).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 60,
            lr: 1e-3,
            warmup: 200,
            weight_decay: 0.01,
            dropout: 0.2,
            batch: 64,
            patience: 8,
            time_budget: Some(Duration::from_secs(15 * 60)),
            stride: 10,
            seed: 1,
        }
    }
}

impl TrainConfig {
    /// Checks every field; [`crate::SidModel::train`] and
    /// [`crate::ItemModel::train`] call it first.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(config("epochs", "is 0; train at least 1 epoch"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(config("lr", format!("is {}; use a value > 0", self.lr)));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(config(
                "weight_decay",
                format!("is {}; use a value ≥ 0", self.weight_decay),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(config(
                "dropout",
                format!("is {}; use a rate in [0, 1)", self.dropout),
            ));
        }
        if self.batch == 0 {
            return Err(config("batch", "is 0; use at least 1"));
        }
        if self.patience == 0 {
            return Err(config("patience", "is 0; use at least 1 epoch"));
        }
        if self.stride == 0 {
            return Err(config("stride", "is 0; use at least 1 item"));
        }
        Ok(())
    }
}

/// Why training stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// [`TrainConfig::epochs`] epochs ran.
    EpochCap,
    /// [`TrainConfig::patience`] epochs passed without improvement.
    Patience,
    /// Another epoch would not have fitted in
    /// [`TrainConfig::time_budget`].
    TimeBudget,
}

/// One epoch's figures, handed to the progress callback.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss per predicted token.
    pub loss: f64,
    /// Validation score (higher is better; NDCG@10 in the examples).
    pub valid: f64,
    /// Seconds of training in this epoch (validation excluded).
    pub train_s: f64,
    /// Seconds of validation after this epoch.
    pub valid_s: f64,
    /// Whether this epoch is the best so far (its weights are kept).
    pub best: bool,
}

/// What a training run did. The model holds the best epoch's weights.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Every epoch run.
    pub epochs: Vec<EpochReport>,
    /// The epoch whose weights were kept (from 1).
    pub best_epoch: usize,
    /// Its validation score.
    pub best_valid: f64,
    /// Seconds of training, validation excluded.
    pub train_s: f64,
    /// Seconds of validation.
    pub valid_s: f64,
    /// Why it stopped.
    pub stop: Stop,
}

/// A training window of one user: items `start..end` of the user's
/// training part; items from `first` on are targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub user: usize,
    pub start: usize,
    pub end: usize,
    /// Index within the window of the first target item (≥ 1).
    pub first: usize,
}

/// Windows of `max_history + 1` items over every user's training part
/// (all but the last two items), starting every `stride` items, plus one
/// ending at the part's end. Each item but a user's first is a target of
/// exactly one window: the first that holds it, which gives it the longest
/// history (at least `max_history + 1 − stride` items when the part is long
/// enough).
pub(crate) fn windows(seqs: &Sequences, max_history: usize, stride: usize) -> Vec<Window> {
    let w = max_history + 1;
    let stride = stride.clamp(1, max_history);
    let mut out = Vec::new();
    for u in 0..seqs.len() {
        let n = seqs.items(u).len().saturating_sub(2);
        if n < 2 {
            continue;
        }
        let mut starts: Vec<usize> = (0..)
            .map(|k| k * stride)
            .take_while(|&s| s + w < n)
            .collect();
        starts.push(n.saturating_sub(w));
        starts.dedup();
        // Targets below `next` belong to earlier windows.
        let mut next = 1;
        for s in starts {
            let end = (s + w).min(n);
            let first = next.max(s + 1);
            if first < end {
                out.push(Window {
                    user: u,
                    start: s,
                    end,
                    first: first - s,
                });
                next = end;
            }
        }
    }
    out
}

/// One training example. Decoder-only: the model's tokens, the window's
/// items (for their content embeddings), and the first token position
/// whose next token is a target. Encoder-decoder: the history's tokens,
/// the target item, and 0.
pub(crate) struct Example {
    pub tokens: Vec<u32>,
    pub items: Vec<u32>,
    pub from: usize,
}

/// One causal-model example per training window (see [`windows`]):
/// `sequence` turns the window's items into the model's tokens, and each
/// item takes `per_item` tokens, so targets start at token
/// `first × per_item`.
pub(crate) fn window_examples(
    seqs: &Sequences,
    max_history: usize,
    stride: usize,
    per_item: usize,
    sequence: impl Fn(&[u32]) -> Result<Vec<u32>>,
) -> Result<Vec<Example>> {
    windows(seqs, max_history, stride)
        .into_iter()
        .map(|w| {
            let items = seqs.items(w.user)[w.start..w.end].to_vec();
            Ok(Example {
                tokens: sequence(&items)?,
                items,
                from: w.first * per_item,
            })
        })
        .collect()
}

/// A causal-model batch as the decoder's loss takes it: each example's
/// tokens, items and first target position.
pub(crate) fn batch_parts<'a>(
    batch: &[&'a Example],
) -> (Vec<&'a [u32]>, Vec<&'a [u32]>, Vec<usize>) {
    (
        batch.iter().map(|e| e.tokens.as_slice()).collect(),
        batch.iter().map(|e| e.items.as_slice()).collect(),
        batch.iter().map(|e| e.from).collect(),
    )
}

/// A batch's loss: the examples and the step's dropout → (mean loss,
/// predicted tokens).
pub(crate) type LossFn<'a> =
    &'a mut dyn FnMut(&[&Example], Option<(f32, u64)>) -> Result<(Tensor, usize)>;

/// Trains the model of `vars` on `examples` under `cfg`; `validate` scores
/// the model after every epoch (higher is better); `on_epoch` sees each
/// epoch's report. The best epoch's weights are restored at the end.
pub(crate) fn fit(
    vars: &[Var],
    examples: &[Example],
    cfg: &TrainConfig,
    loss_of: LossFn<'_>,
    validate: &mut dyn FnMut() -> Result<f64>,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<TrainReport> {
    cfg.validate()?;
    if examples.is_empty() {
        return Err(config(
            "sequences",
            "hold no training targets; each user needs at least 4 items (two training, one validation, one test)",
        ));
    }
    let mut trainer = Trainer::new(vars, cfg.lr, cfg.weight_decay, cfg.dropout, cfg.seed)?;
    let snapshot = || -> Result<Vec<Tensor>> {
        Ok(vars
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<_>>()?)
    };
    let mut snap = snapshot()?;
    let mut report = TrainReport {
        epochs: Vec::new(),
        best_epoch: 0,
        best_valid: f64::NEG_INFINITY,
        train_s: 0.0,
        valid_s: 0.0,
        stop: Stop::EpochCap,
    };
    let t_all = Instant::now();
    let mut step = 0usize;
    // The longest epoch so far, validation included.
    let mut longest = std::time::Duration::ZERO;
    for epoch in 1..=cfg.epochs {
        if epoch > 1
            && cfg
                .time_budget
                .is_some_and(|b| t_all.elapsed() + longest > b)
        {
            report.stop = Stop::TimeBudget;
            break;
        }
        let t_epoch = Instant::now();
        let t0 = Instant::now();
        let (mut loss, mut count) = (0.0, 0usize);
        for chunk in batches(examples, cfg.batch, cfg.seed ^ (epoch as u64)) {
            step += 1;
            let warm = (step as f64 / cfg.warmup.max(1) as f64).min(1.0);
            trainer.set_lr(cfg.lr * warm);
            let batch: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
            let drop = trainer.next_dropout();
            let (loss_t, n) = loss_of(&batch, drop)?;
            let l = trainer.step(&loss_t)?;
            if !l.is_finite() {
                return Err(config(
                    "lr",
                    format!(
                        "is {}: the loss became {l} at epoch {epoch}; lower the learning rate",
                        cfg.lr
                    ),
                ));
            }
            loss += l as f64 * n as f64;
            count += n;
        }
        let train_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let valid = validate()?;
        let valid_s = t1.elapsed().as_secs_f64();
        report.train_s += train_s;
        report.valid_s += valid_s;
        let best = valid > report.best_valid;
        if best {
            report.best_valid = valid;
            report.best_epoch = epoch;
            snap = snapshot()?;
        }
        longest = longest.max(t_epoch.elapsed());
        let e = EpochReport {
            epoch,
            loss: loss / count.max(1) as f64,
            valid,
            train_s,
            valid_s,
            best,
        };
        on_epoch(&e);
        report.epochs.push(e);
        if epoch - report.best_epoch >= cfg.patience {
            report.stop = Stop::Patience;
            break;
        }
    }
    for (v, t) in vars.iter().zip(&snap) {
        v.set(t)?;
    }
    Ok(report)
}

/// Batches of `size` examples in a seeded order: a seeded shuffle, cut
/// into pools of 16 batches whose examples are sorted by length (less
/// padding), then the batches in a seeded order.
fn batches(examples: &[Example], size: usize, seed: u64) -> Vec<Vec<usize>> {
    let order = shuffled(examples.len(), seed);
    let mut out: Vec<Vec<usize>> = Vec::new();
    for pool in order.chunks(size * 16) {
        let mut pool = pool.to_vec();
        pool.sort_by_key(|&i| (examples[i].tokens.len(), i));
        out.extend(pool.chunks(size).map(<[usize]>::to_vec));
    }
    let turn = shuffled(out.len(), seed.rotate_left(17));
    turn.into_iter()
        .map(|b| std::mem::take(&mut out[b]))
        .collect()
}

/// `0..n` in a seeded order.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let keys = semid::synthetic::integers(n, u32::MAX, seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (keys[i], i));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn every_target_once_with_the_longest_history() {
        let mut seqs = Sequences::new();
        for n in [3usize, 4, 5, 12, 23, 24, 40, 57] {
            let items: Vec<u32> = (0..n as u32).collect();
            seqs.push(format!("u{n}"), &items);
        }
        for (h, stride) in [(5, 2), (5, 5), (20, 10), (3, 1), (4, 9)] {
            let ws = windows(&seqs, h, stride);
            for u in 0..seqs.len() {
                let part = seqs.items(u).len() - 2;
                let mut seen = vec![0; part];
                for w in ws.iter().filter(|w| w.user == u) {
                    assert!(w.end - w.start <= h + 1 && w.first >= 1 && w.first < w.end - w.start);
                    for t in w.start + w.first..w.end {
                        seen[t] += 1;
                        // The longest history any window of ≤ h + 1 items gives.
                        let best = t.min(h);
                        let got = t - w.start;
                        let s = stride.clamp(1, h);
                        assert!(
                            got + s > best || got == best,
                            "{h} {stride}: t {t} got {got}"
                        );
                    }
                }
                let want: Vec<usize> = (0..part).map(|t| usize::from(t >= 1)).collect();
                assert_eq!(seen, want, "user {u}, history {h}, stride {stride}");
            }
        }
    }

    #[test]
    fn config_rules() {
        assert!(TrainConfig::default().validate().is_ok());
        let bad = [
            TrainConfig {
                epochs: 0,
                ..Default::default()
            },
            TrainConfig {
                lr: f64::NAN,
                ..Default::default()
            },
            TrainConfig {
                weight_decay: -1.0,
                ..Default::default()
            },
            TrainConfig {
                dropout: 1.0,
                ..Default::default()
            },
            TrainConfig {
                batch: 0,
                ..Default::default()
            },
            TrainConfig {
                patience: 0,
                ..Default::default()
            },
            TrainConfig {
                stride: 0,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
