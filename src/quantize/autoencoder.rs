//! Pieces both autoencoder quantizers ([`RqVae`](super::RqVae) and
//! [`FsqAutoencoder`](super::FsqAutoencoder)) share: the shape check of an
//! encoder/decoder pair, the rotation trick's backward pass, and the
//! per-epoch report.

use crate::error::{Result, expect_len as expect, invalid};
use crate::nn::Mlp;

/// Figures of one training epoch of an autoencoder quantizer ([`RqVae`](super::RqVae),
/// [`FsqAutoencoder`](super::FsqAutoencoder); FSQ has one level, no VQ loss and
/// no dead codes to reset).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EpochReport {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean reconstruction MSE over the epoch's steps.
    pub recon_loss: f64,
    /// Mean codebook + β·commitment loss per row (summed over the latent and
    /// the levels, in the standardised units the networks train in; 0 for
    /// FSQ).
    pub vq_loss: f64,
    /// Share of codes used per level, over the epoch's rows.
    pub utilization: Vec<f64>,
    /// Perplexity (exp entropy) per level.
    pub perplexity: Vec<f64>,
    /// Codes re-seeded by the dead-code reset during the epoch.
    pub dead_resets: usize,
    /// Share of rows whose full code repeats an earlier row's, over the
    /// epoch (codes change while training, so this is indicative).
    pub collision_rate: f64,
}

/// Checks an encoder/decoder pair around a latent of width `latent`: both
/// MLPs valid, encoder `d → latent`, decoder `latent → d`, every parameter
/// finite.
pub(crate) fn check_autoencoder(encoder: &Mlp, decoder: &Mlp, latent: usize) -> Result<()> {
    encoder.validate()?;
    decoder.validate()?;
    if encoder.outputs() != latent {
        return Err(invalid(
            "encoder",
            format!(
                "outputs {} values, not the latent width {latent}",
                encoder.outputs()
            ),
        ));
    }
    if decoder.inputs() != latent || decoder.outputs() != encoder.inputs() {
        return Err(invalid(
            "decoder",
            format!(
                "maps {} → {}, but the encoder maps {} → {latent}",
                decoder.inputs(),
                decoder.outputs(),
                encoder.inputs()
            ),
        ));
    }
    if !(encoder.is_finite() && decoder.is_finite()) {
        return Err(invalid("parameters", "hold NaN or Inf"));
    }
    Ok(())
}

/// Rotation-trick backward pass (Fifty et al. 2024, §4.2), as
/// vector-quantize-pytorch's `rotate_to(x, e)` differentiates it.
///
/// The forward pass maps the encoder-side vector `x` onto the codeword `e`
/// by `λ R x` with `R = I − 2wwᵀ + 2quᵀ`, `u = x/‖x‖`, `q = e/‖e‖`, `w =
/// (u + q)/‖u + q‖` and `λ = ‖e‖/‖x‖`, all held constant (norms are floored
/// at `1e-6` as the reference does). The gradient `g` of that output then
/// reaches `x` as `λ Rᵀ g = λ (g − 2w(w·g) + 2u(q·g))`, which this adds
/// into `dx`. Unlike the straight-through estimator it carries the angle
/// between `x` and `e` and their norm ratio into the encoder's gradient.
///
/// Errors when the four lengths differ.
pub fn rotation_trick_backward(x: &[f32], e: &[f32], g: &[f32], dx: &mut [f32]) -> Result<()> {
    expect("codeword length (same as x)", x.len(), e.len())?;
    expect("gradient length (same as x)", x.len(), g.len())?;
    expect("input-gradient length (same as x)", x.len(), dx.len())?;
    rotation_grad(x, e, g, dx);
    Ok(())
}

/// Norm floor of the rotation trick (vector-quantize-pytorch's `safe_div`
/// and `l2norm` eps).
const ROTATION_EPS: f32 = 1e-6;

/// Rotation-trick gradient without checks (see
/// [`rotation_trick_backward`]).
///
/// Rotation-trick gradient (Fifty et al. 2024, §4.2, as
/// vector-quantize-pytorch's `rotate_to(x, e)`): the forward pass maps the
/// residual `x` onto the codeword `e` by `λ R x` with `R = I − 2wwᵀ +
/// 2quᵀ`, `u = x/‖x‖`, `q = e/‖e‖`, `w = (u + q)/‖u + q‖` and `λ =
/// ‖e‖/‖x‖`, all held constant; so the gradient `g` of the output reaches
/// `x` as `λ Rᵀ g = λ (g − 2w(w·g) + 2u(q·g))`, added into `dx`.
pub(crate) fn rotation_grad(x: &[f32], e: &[f32], g: &[f32], dx: &mut [f32]) {
    let nx = x.iter().map(|v| v * v).sum::<f32>().sqrt();
    let ne = e.iter().map(|v| v * v).sum::<f32>().sqrt();
    let (ix, ie) = (1.0 / nx.max(ROTATION_EPS), 1.0 / ne.max(ROTATION_EPS));
    let mut nw = 0.0f32;
    for (&a, &b) in x.iter().zip(e) {
        let w = a * ix + b * ie;
        nw += w * w;
    }
    let iw = 1.0 / nw.sqrt().max(ROTATION_EPS);
    let (mut wg, mut qg) = (0.0f32, 0.0f32);
    for ((&a, &b), &gv) in x.iter().zip(e).zip(g) {
        wg += (a * ix + b * ie) * iw * gv;
        qg += b * ie * gv;
    }
    let lambda = ne * ix;
    for (((&a, &b), &gv), d) in x.iter().zip(e).zip(g).zip(dx.iter_mut()) {
        let w = (a * ix + b * ie) * iw;
        *d += lambda * (gv - 2.0 * w * wg + 2.0 * a * ix * qg);
    }
}
