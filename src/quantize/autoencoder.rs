//! Pieces both autoencoder quantizers ([`RqVae`](super::RqVae) and
//! [`FsqAutoencoder`](super::FsqAutoencoder)) share: the shape check of an
//! encoder/decoder pair, the rotation trick's backward pass, the training
//! loop, the per-epoch report, and block-parallel encode and decode.

use super::standardize::Standardize;
use crate::data::{Codes, Embeddings};
use crate::error::{Error, Result, expect_len as expect, invalid};
use crate::kernels::BLOCK_ROWS;
use crate::nn::{Activation, Mlp};
use crate::par::{Par, for_each_block};

/// Encodes `x` in blocks of [`BLOCK_ROWS`] rows (in parallel with `par`):
/// the `encoder`'s latents of a block go to `quantize(z, codes)`, which
/// writes the block's `rows × levels` codes.
pub(crate) fn encode_blocks(
    (encoder, residual): (&Mlp, bool),
    x: Embeddings<'_>,
    (out, levels): (&mut [u16], usize),
    par: Par,
    quantize: impl Fn(&[f32], &mut [u16]) -> Result<()> + Sync,
) -> Result<()> {
    x.expect_dim(encoder.inputs())?;
    expect(
        "code buffer length (n × levels)",
        x.rows() * levels,
        out.len(),
    )?;
    let scratch = || (Vec::new(), Vec::new());
    for_each_block(
        par,
        x.rows(),
        BLOCK_ROWS,
        out,
        levels,
        scratch,
        |(buf, z), start, codes| {
            let xb = x.block(start, start + codes.len() / levels, buf)?;
            encoder.infer(xb, z)?;
            if residual {
                add_input(z, xb);
            }
            quantize(z, codes)
        },
    )
}

/// `z += x` (a residual encoder's skip path; equal widths).
pub(crate) fn add_input(z: &mut [f32], x: &[f32]) {
    for (a, &b) in z.iter_mut().zip(x) {
        *a += b;
    }
}

/// Decodes `codes` in blocks of [`BLOCK_ROWS`] rows (in parallel with
/// `par`): `latent(row_codes, q)` writes one row's quantized latent (`q`
/// arrives zeroed), then the `decoder` maps the block's latents to `out`.
pub(crate) fn decode_blocks(
    (decoder, residual): (&Mlp, bool),
    codes: &Codes,
    out: &mut [f32],
    par: Par,
    latent: impl Fn(&[u16], &mut [f32]) -> Result<()> + Sync,
) -> Result<()> {
    let (d, lat) = (decoder.outputs(), decoder.inputs());
    expect("output length (n × d)", codes.rows() * d, out.len())?;
    let scratch = || (Vec::new(), Vec::new());
    for_each_block(
        par,
        codes.rows(),
        BLOCK_ROWS,
        out,
        d,
        scratch,
        |(q, y), start, o| {
            let rows = o.len() / d;
            q.clear();
            q.resize(rows * lat, 0.0);
            for (r, qr) in q.chunks_exact_mut(lat).enumerate() {
                latent(codes.row(start + r), qr)?;
            }
            decoder.infer(q, y)?;
            o.copy_from_slice(y);
            if residual {
                add_input(o, q);
            }
            Ok(())
        },
    )
}

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
    if latent == 0 {
        return Err(invalid("latent", "is 0 values wide; use at least 1"));
    }
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

/// One optimizer step's losses, in the standardised units the networks
/// train in: `recon` per element, `vq` per row; `resets` dead codes
/// re-seeded.
pub(crate) struct StepLoss {
    pub(crate) recon: f64,
    pub(crate) vq: f64,
    pub(crate) resets: usize,
}

/// What an autoencoder quantizer does in one step of [`train`].
pub(crate) trait Trainer {
    /// Codebook size of every level (for the epoch's usage figures).
    fn code_sizes(&self) -> Vec<usize>;
    /// One optimizer step on the standardised batch `xb` (`b × d`): writes
    /// the rows' codes (`b × levels`) into `codes`. A non-finite loss means
    /// divergence (the shared loop reports it); the step then leaves the
    /// weights as they were.
    fn step(&mut self, xb: &[f32], codes: &mut [u16]) -> Result<StepLoss>;
}

/// The training loop both autoencoder quantizers share: `epochs` passes in
/// seeded shuffled orders (`nn::shuffled(n, seed, epoch)`), batches of
/// `batch` rows standardised by `stdz`, one [`Trainer::step`] each; a
/// non-finite loss is [`Error::Diverged`]. After every epoch, the usage of
/// the epoch's codes goes into an [`EpochReport`] (losses in the data's
/// units), handed to `progress` and returned.
pub(crate) fn train<T: Trainer>(
    t: &mut T,
    x: crate::data::Embeddings<'_>,
    stdz: &super::standardize::Standardize,
    (seed, batch, epochs): (u64, usize, usize),
    mut progress: impl FnMut(&EpochReport),
) -> Result<Vec<EpochReport>> {
    let n = x.rows();
    let sizes = t.code_sizes();
    let levels = sizes.len();
    let scale2 = (stdz.scale as f64).powi(2);
    let mut epoch_codes = vec![0u16; n * levels];
    let mut reports = Vec::with_capacity(epochs);
    for epoch in 0..epochs {
        let order = crate::nn::shuffled(n, seed, epoch as u64);
        let (mut recon_sum, mut vq_sum, mut steps) = (0.0f64, 0.0f64, 0usize);
        let (mut resets, mut done) = (0usize, 0usize);
        for (bi, chunk) in order.chunks(batch).enumerate() {
            let rows: Vec<usize> = chunk.iter().map(|&i| i as usize).collect();
            let mut xb = x.gather(&rows);
            stdz.apply(&mut xb);
            let b = rows.len();
            let codes = &mut epoch_codes[done * levels..(done + b) * levels];
            let loss = t.step(&xb, codes)?;
            // Reported in the data's units.
            let recon = loss.recon / scale2;
            if !(recon.is_finite() && loss.vq.is_finite()) {
                return Err(Error::Diverged {
                    epoch,
                    step: bi,
                    loss: recon + loss.vq,
                });
            }
            recon_sum += recon;
            vq_sum += loss.vq;
            resets += loss.resets;
            steps += 1;
            done += b;
        }
        let codes = crate::data::Codes::new(epoch_codes, levels)?;
        let quality = crate::stats::code_quality(&codes, &sizes)?;
        epoch_codes = codes.into_vec();
        let rep = EpochReport {
            epoch,
            recon_loss: recon_sum / steps as f64,
            vq_loss: vq_sum / steps as f64,
            utilization: quality.levels.iter().map(|l| l.stats.utilization).collect(),
            perplexity: quality.levels.iter().map(|l| l.stats.perplexity).collect(),
            dead_resets: resets,
            collision_rate: quality.collision_rate,
        };
        progress(&rep);
        reports.push(rep);
    }
    Ok(reports)
}

/// What every autoencoder fit starts from: checked data, its
/// standardisation, and freshly initialised networks.
pub(crate) struct Start {
    pub(crate) stdz: Standardize,
    pub(crate) encoder: Mlp,
    pub(crate) decoder: Mlp,
}

/// Checks that `x` is finite, fits its standardisation, and initialises an
/// encoder `d → hidden… → latent` and its mirror-image decoder (seeds
/// `seed` and `seed + 1`).
pub(crate) fn start(
    x: Embeddings<'_>,
    hidden: &[usize],
    latent: usize,
    activation: Activation,
    seed: u64,
) -> Result<Start> {
    x.check_all_finite()?;
    let stdz = Standardize::fit(x)?;
    let mut widths = vec![x.dim()];
    widths.extend(hidden);
    widths.push(latent);
    let encoder = Mlp::new(&widths, activation, seed)?;
    widths.reverse();
    let decoder = Mlp::new(&widths, activation, seed.wrapping_add(1))?;
    Ok(Start {
        stdz,
        encoder,
        decoder,
    })
}

/// Parameter-tensor sizes of an encoder/decoder pair, in optimizer order.
pub(crate) fn param_sizes(encoder: &mut Mlp, decoder: &mut Mlp) -> Vec<usize> {
    let mut sizes: Vec<usize> = encoder.params_mut().map(|p| p.len()).collect();
    sizes.extend(decoder.params_mut().map(|p| p.len()));
    sizes
}

/// Epochs to train: at least `epochs`, and enough for `min_steps` steps of
/// `batch` rows over `n` rows.
pub(crate) fn epochs_for(epochs: usize, min_steps: usize, n: usize, batch: usize) -> usize {
    epochs.max(min_steps.div_ceil(n.div_ceil(batch)))
}

/// The error for weights that became non-finite although every loss was
/// finite: reported at the last step.
pub(crate) fn diverged_weights(epochs: usize, n: usize, batch: usize) -> Error {
    Error::Diverged {
        epoch: epochs - 1,
        step: n.div_ceil(batch) - 1,
        loss: f64::NAN,
    }
}
