//! Losses.

use crate::error::{Result, expect_len as expect};

/// Mean squared error `Σ (p − t)² / len` and its gradient w.r.t. `p`
/// (written into `grad`). The sum is accumulated in f64. Errors when the
/// lengths differ.
pub fn mse_loss(pred: &[f32], target: &[f32], grad: &mut Vec<f32>) -> Result<f64> {
    expect(
        "target length (same as the prediction)",
        pred.len(),
        target.len(),
    )?;
    let n = pred.len().max(1) as f64;
    Ok(sq_err(pred, target, (2.0 / n) as f32, grad) / n)
}

/// `Σ (p − t)²` (in f64), with `grad = scale · (p − t)`; the caller picks
/// the normalisation (a shard of a batch divides by the whole batch).
pub(crate) fn sq_err(pred: &[f32], target: &[f32], scale: f32, grad: &mut Vec<f32>) -> f64 {
    debug_assert_eq!(pred.len(), target.len());
    grad.resize(pred.len(), 0.0);
    let mut s = 0.0f64;
    for ((g, &p), &t) in grad.iter_mut().zip(pred).zip(target) {
        let d = p - t;
        s += (d as f64) * (d as f64);
        *g = scale * d;
    }
    s
}
