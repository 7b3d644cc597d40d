//! RQ-VAE: MLP encoder → residual vector quantization → MLP decoder,
//! trained in-crate (TIGER, GRID, MiniOneRec).

mod config;
mod shard;

pub use config::RqVaeConfig;
use shard::{Shard, reduce_grads};

use super::autoencoder::{
    EpochReport, StepLoss, Trainer, add_input, decode_blocks, diverged_weights, encode_blocks,
    epochs_for, param_sizes, start, train,
};
use super::{KMeans, KMeansConfig, Quantizer};
use crate::data::{Codes, Embeddings};
use crate::error::{Error, Result, invalid};
use crate::format::{
    ModelKind, decode_payload, encode_file, encode_payload, frame_version, sealed::Codec, split,
    stored_usize, to_invalid,
};
use crate::kernels::{AssignPath, CentroidSet, assign_rows, neg2_dots_pub};
use crate::nn::{GradMode, Mlp, Optimizer, shuffled};
use crate::nn::{LayerV1, pair_from_v1, pair_to_v1};
use crate::par::Par;
use crate::rng::Rng;

/// An RQ-VAE: encoder, residual codebooks, decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct RqVae {
    encoder: Mlp,
    decoder: Mlp,
    /// Level after level, each `sizes[l] × latent`.
    codebooks: Vec<f32>,
    levels: usize,
    /// Codes per level.
    sizes: Vec<usize>,
    /// Both networks add their input to their output (`z = x + enc(x)`,
    /// `x̂ = q + dec(q)`; latent width = input width): the warm start from
    /// RQ-KMeans.
    residual: bool,
}

impl RqVae {
    /// Rows per gradient shard. A training batch is cut into shards of
    /// this many rows whatever the thread count; shards run in parallel
    /// and their gradients are summed in shard order.
    pub const SHARD_ROWS: usize = 256;

    /// Rows per code that the k-means initialisation of the codebooks sees
    /// (16 × k, at least one batch, at most n). Initialised on the first
    /// batch alone (1 024 rows for 256 codes), levels 2 and 3 used 16% and
    /// 26% of their codes after the first epoch on `pypi_text_16k`; on 4 096
    /// rows, 91% and 35%.
    pub const INIT_ROWS_PER_CODE: usize = 16;

    /// Trains on `x` (`n × d`) and returns the model and one report per
    /// epoch.
    pub fn fit(config: &RqVaeConfig, x: Embeddings<'_>) -> Result<(RqVae, Vec<EpochReport>)> {
        RqVae::fit_with_callback(config, x, |_| {})
    }

    /// [`RqVae::fit`] calling `progress` after every epoch (to watch for
    /// codebook collapse while it happens).
    ///
    /// Errors: an invalid config, fewer rows than `k`, non-finite data, or
    /// a loss that becomes NaN/Inf (the error names the epoch and step).
    pub fn fit_with_callback(
        config: &RqVaeConfig,
        x: Embeddings<'_>,
        progress: impl FnMut(&EpochReport),
    ) -> Result<(RqVae, Vec<EpochReport>)> {
        RqVae::fit_inner(config, x, None, progress)
    }

    /// Trains starting from an RQ-KMeans fit (semantic-id's and MiniOneRec's
    /// "RQ-KMeans+", with the decoder made residual too): both networks
    /// are residual, `z = x + enc(x)` and `x̂ = q + dec(q)`, with their last
    /// layers at zero, so training starts at the identity: `from`'s
    /// codebooks give exactly `from`'s codes and reconstruction. Training
    /// then moves all three. Without it, the k-means start of the codebooks
    /// sees only the random encoder's outputs, and a decoder through
    /// TIGER's 128-wide bottleneck starts far from any reconstruction.
    ///
    /// Needs `config.latent` equal to the data's width and
    /// `config.level_sizes()` equal to `from.codebook_sizes()`; anything else
    /// is an `InvalidConfig` error on `warm_start`. The model is stored as
    /// format version 2 (its residual flag).
    pub fn fit_warm(
        config: &RqVaeConfig,
        x: Embeddings<'_>,
        from: &crate::RqKMeans,
    ) -> Result<(RqVae, Vec<EpochReport>)> {
        RqVae::fit_inner(config, x, Some(from), |_| {})
    }

    /// [`RqVae::fit_warm`] calling `progress` after every epoch.
    pub fn fit_warm_with_callback(
        config: &RqVaeConfig,
        x: Embeddings<'_>,
        from: &crate::RqKMeans,
        progress: impl FnMut(&EpochReport),
    ) -> Result<(RqVae, Vec<EpochReport>)> {
        RqVae::fit_inner(config, x, Some(from), progress)
    }

    fn fit_inner(
        config: &RqVaeConfig,
        x: Embeddings<'_>,
        warm: Option<&crate::RqKMeans>,
        progress: impl FnMut(&EpochReport),
    ) -> Result<(RqVae, Vec<EpochReport>)> {
        config.validate()?;
        if let Some(from) = warm {
            check_warm(config, x, from)?;
        }
        let n = x.rows();
        let sizes = config.level_sizes();
        let k = sizes.iter().copied().max().unwrap_or(1);
        if n < k {
            return Err(invalid(
                if config.codebook_sizes.is_some() {
                    "codebook_sizes"
                } else {
                    "k"
                },
                format!(
                    "holds {k} codes at a level but only {n} rows were given; a level's codes must not exceed n"
                ),
            ));
        }
        let (lat, levels) = (config.latent, config.levels);
        let st = start(x, &config.hidden, lat, config.activation, config.seed)?;
        let (stdz, encoder, decoder) = (st.stdz, st.encoder, st.decoder);
        let mut encoder = encoder;
        let mut decoder = decoder;
        if warm.is_some() {
            // Identity at the start: the residual branches output zero.
            for net in [&mut encoder, &mut decoder] {
                if let Some(last) = net.layers.last_mut() {
                    last.weight.fill(0.0);
                    last.bias.fill(0.0);
                }
            }
        }
        let mut m = RqVae {
            encoder,
            decoder,
            codebooks: vec![0.0; sizes.iter().sum::<usize>() * lat],
            levels,
            sizes,
            residual: warm.is_some(),
        };
        let batch = config.batch_size.min(n);
        // k-means initialisation on the residuals of the first rows of the
        // first epoch's order (several batches).
        let order0 = shuffled(n, config.seed, 0);
        let init_rows = (Self::INIT_ROWS_PER_CODE * k).max(batch).min(n);
        let idx0: Vec<usize> = order0[..init_rows].iter().map(|&i| i as usize).collect();
        let mut xb0 = x.gather(&idx0);
        stdz.apply(&mut xb0);
        if let Some(from) = warm {
            // `from`'s codebooks in the standardised space the encoder sees.
            m.codebooks.copy_from_slice(from.codebooks());
            let first = from.codebook(0).len();
            let (head, tail) = m.codebooks.split_at_mut(first);
            stdz.to_latent(head, true);
            stdz.to_latent(tail, false);
        } else {
            m.init_codebooks(&xb0, config.seed, config.par)
            .map_err(|e| match e {
                Error::NonFinite { .. } => invalid(
                    "training",
                    "the encoder output is not finite at initialisation (epoch 0, step 0); check the scale of the data",
                ),
                other => other,
            })?;
        }

        let mut sizes = param_sizes(&mut m.encoder, &mut m.decoder);
        sizes.push(m.codebooks.len());
        let epochs = epochs_for(config.epochs, config.min_steps, n, batch);
        let mut t = RqVaeTrainer {
            opt: Optimizer::new(config.optimizer, &sizes)?,
            last_used: vec![0usize; m.sizes.iter().sum()],
            rng: Rng::new(config.seed, 77),
            shards: Vec::new(),
            step_no: 0,
            sinkhorn: config.level_sinkhorn()?,
            config,
            m,
        };
        let reports = train(&mut t, x, &stdz, (config.seed, batch, epochs), progress)?;
        let mut m = t.m;
        if m.residual {
            let first = m.sizes[0] * lat;
            let (head, tail) = m.codebooks.split_at_mut(first);
            stdz.fold_into_residual(&mut m.encoder, &mut m.decoder, head, tail);
        } else {
            stdz.fold_into(&mut m.encoder, &mut m.decoder);
        }
        if !(m.encoder.is_finite()
            && m.decoder.is_finite()
            && m.codebooks.iter().all(|v| v.is_finite()))
        {
            return Err(diverged_weights(epochs, n, batch));
        }
        Ok((m, reports))
    }

    /// The latents of rows `xb` into `z` (the encoder, plus its input when
    /// residual).
    fn latents(&self, xb: &[f32], z: &mut Vec<f32>) -> Result<()> {
        self.encoder.infer(xb, z)?;
        if self.residual {
            add_input(z, xb);
        }
        Ok(())
    }

    /// Codebooks by k-means on the residuals of the encoded rows `xb`.
    fn init_codebooks(&mut self, xb: &[f32], seed: u64, par: Par) -> Result<()> {
        let lat = self.encoder.outputs();
        let mut z = Vec::new();
        self.latents(xb, &mut z)?;
        let rows = z.len() / lat;
        let mut labels = vec![0u32; rows];
        let mut dists = vec![0f32; rows];
        for l in 0..self.levels {
            let km = KMeansConfig::new(self.sizes[l])
                .seed(seed.wrapping_add(l as u64))
                .max_iter(25)
                .par(par);
            let (model, _) = KMeans::fit(&km, Embeddings::new(&z, lat)?)?;
            let cents = model.centroids();
            let off = self.offset(l);
            self.codebooks[off..off + cents.len()].copy_from_slice(cents);
            let set = CentroidSet::new(cents, lat);
            assign_rows(AssignPath::Gemm, &z, &set, &mut labels, &mut dists, par);
            for (r, &c) in z.chunks_exact_mut(lat).zip(&labels) {
                for (a, b) in r
                    .iter_mut()
                    .zip(&cents[c as usize * lat..(c as usize + 1) * lat])
                {
                    *a -= b;
                }
            }
        }
        Ok(())
    }

    /// Where level `l`'s codebook starts in `codebooks`, in values.
    fn offset(&self, l: usize) -> usize {
        self.code_offset(l) * self.encoder.outputs()
    }

    /// Codes of the levels before `l` (level `l`'s first code, counting
    /// codes of all levels in order).
    fn code_offset(&self, l: usize) -> usize {
        self.sizes[..l].iter().sum()
    }

    fn codebook(&self, l: usize) -> &[f32] {
        let off = self.offset(l);
        &self.codebooks[off..off + self.sizes[l] * self.encoder.outputs()]
    }

    /// Residual quantization of latents `z` (rows × latent): labels
    /// (`levels × rows`, level-major) and the quantized sum `q`; `resid`
    /// keeps every level's input residual (`levels × rows × latent`).
    /// `forced[l]`, where given and not empty, holds level `l`'s labels of
    /// these rows (Sinkhorn's, taken over the whole batch).
    #[allow(clippy::too_many_arguments)]
    fn quantize(
        &self,
        z: &[f32],
        s_resid: &mut Vec<f32>,
        q: &mut Vec<f32>,
        labels: &mut Vec<u32>,
        dists: &mut Vec<f32>,
        cur: &mut Vec<f32>,
        forced: &[&[u32]],
    ) {
        let lat = self.encoder.outputs();
        let rows = z.len() / lat;
        s_resid.clear();
        q.clear();
        q.resize(z.len(), 0.0);
        labels.resize(self.levels * rows, 0);
        dists.resize(rows, 0.0);
        cur.clear();
        cur.extend_from_slice(z);
        for l in 0..self.levels {
            s_resid.extend_from_slice(cur);
            let cb = self.codebook(l);
            let set = CentroidSet::new(cb, lat);
            let lab = &mut labels[l * rows..(l + 1) * rows];
            match forced.get(l) {
                Some(f) if !f.is_empty() => lab.copy_from_slice(f),
                _ => assign_rows(AssignPath::Gemm, cur, &set, lab, dists, Par::Seq),
            }
            for ((r, qr), &c) in cur
                .chunks_exact_mut(lat)
                .zip(q.chunks_exact_mut(lat))
                .zip(lab.iter())
            {
                let e = &cb[c as usize * lat..(c as usize + 1) * lat];
                for ((a, qa), &b) in r.iter_mut().zip(qr.iter_mut()).zip(e) {
                    *a -= b;
                    *qa += b;
                }
            }
        }
    }

    /// Forward and backward pass of one shard `xb` of a batch of `batch`
    /// rows: leaves the shard's gradients, squared reconstruction error and
    /// VQ loss (normalised by the whole batch) in `sh`.
    fn train_shard(
        &self,
        xb: &[f32],
        batch: usize,
        config: &RqVaeConfig,
        forced: &[&[u32]],
        sh: &mut Shard,
    ) -> Result<()> {
        let lat = self.encoder.outputs();
        let beta = config.beta;
        self.encoder.forward(xb, &mut sh.z, &mut sh.enc_cache)?;
        if self.residual {
            // The skip path has no parameters: the encoder's gradient is
            // the same with or without it.
            add_input(&mut sh.z, xb);
        }
        let rows = sh.z.len() / lat;
        self.quantize(
            &sh.z,
            &mut sh.resid,
            &mut sh.q,
            &mut sh.labels,
            &mut sh.dists,
            &mut sh.cur,
            forced,
        );
        // The decoder sees q; its input gradient reaches z through the
        // straight-through estimator or the rotation trick.
        self.decoder
            .forward(&sh.q, &mut sh.xhat, &mut sh.dec_cache)?;
        if self.residual {
            add_input(&mut sh.xhat, &sh.q);
        }
        // Reconstruction loss: mean over rows of ‖x̂ − x‖² summed over
        // dimensions, as TIGER's PyTorch re-implementations compute it
        // (RQ-VAE-Recommender PR #66). Averaging over dimensions too made
        // it d times weaker than the VQ terms, and on `pypi_text_16k`
        // the decoder learned almost nothing (MSE 1.63× RQ-KMeans, level
        // 3 at 74% of its codes).
        let scale = (2.0 / batch as f64) as f32;
        sh.recon = crate::nn::sq_err(&sh.xhat, xb, scale, &mut sh.dxhat);
        self.decoder.backward_as(
            GradMode::Overwrite,
            &sh.dxhat,
            &mut sh.dec_cache,
            &mut sh.dec_grads,
            Some(&mut sh.dq),
        )?;
        if self.residual {
            // The decoder's skip path passes x̂'s gradient straight to q.
            add_input(&mut sh.dq, &sh.dxhat);
        }
        sh.dz.clear();
        if config.rotation_trick {
            sh.dz.resize(sh.dq.len(), 0.0);
            for l in 0..self.levels {
                let cb = self.codebook(l);
                let res = &sh.resid[l * rows * lat..(l + 1) * rows * lat];
                for (r, ((x, g), dz)) in res
                    .chunks_exact(lat)
                    .zip(sh.dq.chunks_exact(lat))
                    .zip(sh.dz.chunks_exact_mut(lat))
                    .enumerate()
                {
                    let c = sh.labels[l * rows + r] as usize;
                    super::autoencoder::rotation_grad(x, &cb[c * lat..(c + 1) * lat], g, dz);
                }
            }
        } else {
            sh.dz.extend_from_slice(&sh.dq);
        }
        // VQ losses, per row summed over the latent: Σ_l mean_rows
        // ‖sg[r_l] − e_l‖² + β mean_rows ‖r_l − sg[e_l]‖².
        sh.cb_grad.fill(0.0);
        let norm = 1.0 / batch as f64;
        let g = (2.0 * norm) as f32;
        let mut vq = 0.0f64;
        for l in 0..self.levels {
            let cb = self.codebook(l);
            let off = self.offset(l);
            let gcb = &mut sh.cb_grad[off..off + cb.len()];
            let res = &sh.resid[l * rows * lat..(l + 1) * rows * lat];
            for (r, (rv, dzr)) in res
                .chunks_exact(lat)
                .zip(sh.dz.chunks_exact_mut(lat))
                .enumerate()
            {
                let c = sh.labels[l * rows + r] as usize;
                let e = &cb[c * lat..(c + 1) * lat];
                let ge = &mut gcb[c * lat..(c + 1) * lat];
                let mut sq = 0.0f64;
                for (((&rv, &ev), gev), dzv) in
                    rv.iter().zip(e).zip(ge.iter_mut()).zip(dzr.iter_mut())
                {
                    let diff = rv - ev;
                    sq += (diff as f64) * (diff as f64);
                    *gev -= g * diff; // d/de ‖r − e‖² = −2(r − e)
                    *dzv += beta * g * diff; // commitment pulls z (r_l = z − Σ sg[e])
                }
                vq += sq * norm * (1.0 + beta as f64);
            }
        }
        sh.vq = vq;
        self.encoder.backward_as(
            GradMode::Overwrite,
            &sh.dz,
            &mut sh.enc_cache,
            &mut sh.enc_grads,
            None,
        )
    }

    /// Level labels of a whole training batch `xb` where a level assigns
    /// by Sinkhorn (`sinkhorn[l]`), empty elsewhere: the batch is encoded,
    /// each level's distances taken over all its rows, and the Sinkhorn
    /// levels' codes chosen from them (the nearest code at the others). The
    /// shards then train with these codes.
    fn sinkhorn_labels(
        &self,
        xb: &[f32],
        sinkhorn: &[Option<crate::sid::Sinkhorn>],
        par: Par,
    ) -> Result<Vec<Vec<u32>>> {
        let lat = self.encoder.outputs();
        let mut z = Vec::new();
        self.latents(xb, &mut z)?;
        let rows = z.len() / lat;
        let mut out = vec![Vec::new(); self.levels];
        let (mut labels, mut dists) = (vec![0u32; rows], vec![0f32; rows]);
        let (mut dots, mut tokens) = (Vec::new(), vec![0u16; rows]);
        let last_sinkhorn = sinkhorn.iter().rposition(Option::is_some).unwrap_or(0);
        for l in 0..=last_sinkhorn {
            let cb = self.codebook(l);
            let set = CentroidSet::new(cb, lat);
            let k = self.sizes[l];
            match &sinkhorn[l] {
                Some(sk) => {
                    neg2_dots_pub(&z, &set, &mut dots);
                    for (row, r) in dots.chunks_exact_mut(k).zip(z.chunks_exact(lat)) {
                        let norm: f32 = r.iter().map(|v| v * v).sum();
                        for (o, &cn) in row.iter_mut().zip(&set.norms) {
                            *o = (*o + norm + cn).max(0.0);
                        }
                    }
                    sk.assign(&dots, k, &mut tokens)?;
                    for (o, &t) in labels.iter_mut().zip(&tokens) {
                        *o = u32::from(t);
                    }
                    out[l] = labels.clone();
                }
                None => assign_rows(AssignPath::Gemm, &z, &set, &mut labels, &mut dists, par),
            }
            for (r, &c) in z.chunks_exact_mut(lat).zip(&labels) {
                for (a, b) in r
                    .iter_mut()
                    .zip(&cb[c as usize * lat..(c as usize + 1) * lat])
                {
                    *a -= b;
                }
            }
        }
        Ok(out)
    }

    /// Re-seeds codes unused for `after` steps from the current batch's
    /// residuals at their level (seeded choice of a batch row). Returns
    /// how many.
    fn reset_dead(
        &mut self,
        shards: &[Shard],
        rows: usize,
        last_used: &[usize],
        step_no: usize,
        after: usize,
        rng: &mut Rng,
    ) -> usize {
        let lat = self.encoder.outputs();
        let mut n = 0;
        for l in 0..self.levels {
            let (first, off) = (self.code_offset(l), self.offset(l));
            for c in 0..self.sizes[l] {
                if step_no - last_used[first + c] >= after {
                    let r = rng.below(rows);
                    let sh = &shards[r / Self::SHARD_ROWS];
                    let lr = r % Self::SHARD_ROWS;
                    let at = (l * sh.rows + lr) * lat;
                    let dst = off + c * lat;
                    self.codebooks[dst..dst + lat].copy_from_slice(&sh.resid[at..at + lat]);
                    n += 1;
                }
            }
        }
        n
    }

    /// Builds a model from its parts, checking that the shapes chain
    /// (encoder `d → latent`, decoder `latent → d`, codebooks `levels × k ×
    /// latent`) and every value is finite.
    pub fn from_parts(
        encoder: Mlp,
        decoder: Mlp,
        codebooks: Vec<f32>,
        levels: usize,
        k: usize,
    ) -> Result<RqVae> {
        if levels == 0 {
            return Err(invalid("levels", "is 0; use at least 1"));
        }
        crate::data::check_vocab("k", &[k], 2)?;
        // The networks (a latent width of at least 1) and the length are
        // checked before the size list is made, so a hostile `levels`
        // cannot ask for a huge allocation: `levels ≤ codebooks.len() / 2`.
        super::autoencoder::check_autoencoder(&encoder, &decoder, encoder.outputs())?;
        let want = levels
            .checked_mul(k)
            .and_then(|v| v.checked_mul(encoder.outputs()));
        if want != Some(codebooks.len()) {
            return Err(Error::Shape {
                what: "codebook values (levels × k × latent)",
                expected: want.unwrap_or(usize::MAX),
                got: codebooks.len(),
            });
        }
        RqVae::from_sized_parts(encoder, decoder, codebooks, &vec![k; levels])
    }

    /// [`RqVae::from_parts`] with a codebook size per level: `codebooks`
    /// holds level after level, each `sizes[l] × latent`.
    pub fn from_sized_parts(
        encoder: Mlp,
        decoder: Mlp,
        codebooks: Vec<f32>,
        sizes: &[usize],
    ) -> Result<RqVae> {
        let lat = encoder.outputs();
        super::autoencoder::check_autoencoder(&encoder, &decoder, lat)?;
        if sizes.is_empty() {
            return Err(invalid("codebook_sizes", "is empty; use at least 1 level"));
        }
        crate::data::check_vocab("codebook_sizes", sizes, 2)?;
        let want = sizes.iter().sum::<usize>().checked_mul(lat);
        if want != Some(codebooks.len()) {
            return Err(Error::Shape {
                what: "codebook values (Σ codebook sizes × latent)",
                expected: want.unwrap_or(usize::MAX),
                got: codebooks.len(),
            });
        }
        if !codebooks.iter().all(|v| v.is_finite()) {
            return Err(invalid("codebooks", "hold NaN or Inf"));
        }
        Ok(RqVae {
            encoder,
            decoder,
            codebooks,
            levels: sizes.len(),
            sizes: sizes.to_vec(),
            residual: false,
        })
    }

    /// The same model with residual networks: `z = x + encoder(x)` and
    /// `x̂ = q + decoder(q)`, as the warm start from RQ-KMeans trains it
    /// ([`RqVae::fit_warm`]). Needs a latent width equal to the input
    /// width.
    pub fn with_residual(mut self) -> Result<RqVae> {
        if self.encoder.outputs() != self.encoder.inputs() {
            return Err(invalid(
                "residual",
                format!(
                    "needs the latent width to equal the input width; the encoder maps {} to {}",
                    self.encoder.inputs(),
                    self.encoder.outputs()
                ),
            ));
        }
        self.residual = true;
        Ok(self)
    }

    /// Whether both networks add their input to their output
    /// ([`RqVae::with_residual`]).
    #[must_use]
    pub fn is_residual(&self) -> bool {
        self.residual
    }

    /// The encoder and decoder networks.
    #[must_use]
    pub fn networks(&self) -> (&Mlp, &Mlp) {
        (&self.encoder, &self.decoder)
    }

    /// Latent width.
    #[must_use]
    pub fn latent(&self) -> usize {
        self.encoder.outputs()
    }

    /// Codebooks, level after level, each `codebook_size(l) × latent`
    /// row-major.
    #[must_use]
    pub fn codebooks(&self) -> &[f32] {
        &self.codebooks
    }
}

/// The checks of a warm start from `from`: same width, latent = width,
/// same codebook sizes.
fn check_warm(config: &RqVaeConfig, x: Embeddings<'_>, from: &crate::RqKMeans) -> Result<()> {
    let d = x.dim();
    if from.dim() != d {
        return Err(invalid(
            "warm_start",
            format!(
                "the RQ-KMeans model takes {}-dimensional rows but the data has {d} columns",
                from.dim()
            ),
        ));
    }
    if config.latent != d {
        return Err(invalid(
            "warm_start",
            format!(
                "needs latent = {d} (the data's width: the encoder starts at the identity); latent is {}",
                config.latent
            ),
        ));
    }
    if config.level_sizes() != from.codebook_sizes() {
        return Err(invalid(
            "warm_start",
            format!(
                "the RQ-KMeans model has codebook sizes {:?} but the config asks for {:?}; set levels and k (or codebook_sizes) to match",
                from.codebook_sizes(),
                config.level_sizes()
            ),
        ));
    }
    Ok(())
}

/// [`RqVae`]'s training state for the shared loop: optimizer, shards,
/// code usage for the dead-code reset.
struct RqVaeTrainer<'c> {
    m: RqVae,
    config: &'c RqVaeConfig,
    opt: Optimizer,
    /// Step at which each code (level-major) was last used.
    last_used: Vec<usize>,
    rng: Rng,
    shards: Vec<Shard>,
    step_no: usize,
    /// Per level: Sinkhorn's settings where codes are assigned over the
    /// batch by Sinkhorn during training.
    sinkhorn: Vec<Option<crate::sid::Sinkhorn>>,
}

impl Trainer for RqVaeTrainer<'_> {
    fn code_sizes(&self) -> Vec<usize> {
        self.m.sizes.clone()
    }

    fn step(&mut self, xb: &[f32], codes: &mut [u16]) -> Result<StepLoss> {
        let (config, levels) = (self.config, self.m.levels);
        let firsts: Vec<usize> = (0..levels).map(|l| self.m.code_offset(l)).collect();
        let d = self.m.dim();
        let b = xb.len() / d;
        let ns = b.div_ceil(RqVae::SHARD_ROWS);
        while self.shards.len() < ns {
            self.shards.push(Shard::new(&self.m));
        }
        let model = &self.m;
        let forced = if self.sinkhorn.iter().any(Option::is_some) {
            model.sinkhorn_labels(xb, &self.sinkhorn, config.par)?
        } else {
            Vec::new()
        };
        crate::par::for_each_item(config.par, &mut self.shards[..ns], |i, sh| {
            let r0 = i * RqVae::SHARD_ROWS;
            let r1 = (r0 + RqVae::SHARD_ROWS).min(b);
            sh.rows = r1 - r0;
            let shard_forced: Vec<&[u32]> = forced
                .iter()
                .map(|f| if f.is_empty() { &f[..] } else { &f[r0..r1] })
                .collect();
            sh.status = model.train_shard(&xb[r0 * d..r1 * d], b, config, &shard_forced, sh);
        });
        let (mut recon, mut vq) = (0.0f64, 0.0f64);
        for sh in &mut self.shards[..ns] {
            std::mem::replace(&mut sh.status, Ok(()))?;
            recon += sh.recon;
            vq += sh.vq;
        }
        // Per element (the shared loop converts to the data's units).
        let recon = recon / (b * d) as f64;
        if !(recon.is_finite() && vq.is_finite()) {
            // Diverged: the shared loop reports it; skip the update.
            return Ok(StepLoss {
                recon,
                vq,
                resets: 0,
            });
        }
        reduce_grads(&mut self.shards[..ns], config.par);
        let m = &mut self.m;
        let mut params: Vec<&mut Vec<f32>> = m.encoder.params_mut().collect();
        params.extend(m.decoder.params_mut());
        params.push(&mut m.codebooks);
        self.opt.step_par(
            params.into_iter(),
            self.shards[0].grads_mut().map(|g| &*g),
            config.par,
        )?;
        self.step_no += 1;
        // The batch's codes, and code usage for the dead-code reset.
        let mut done = 0;
        for sh in &self.shards[..ns] {
            for r in 0..sh.rows {
                let row = &mut codes[(done + r) * levels..][..levels];
                for (l, t) in row.iter_mut().enumerate() {
                    let c = sh.labels[l * sh.rows + r];
                    *t = c as u16;
                    self.last_used[firsts[l] + c as usize] = self.step_no;
                }
            }
            done += sh.rows;
        }
        let mut resets = 0;
        if config.dead_code_steps > 0 {
            resets = m.reset_dead(
                &self.shards[..ns],
                b,
                &self.last_used,
                self.step_no,
                config.dead_code_steps,
                &mut self.rng,
            );
            for u in self.last_used.iter_mut() {
                if self.step_no - *u >= config.dead_code_steps {
                    *u = self.step_no; // just re-seeded
                }
            }
        }
        Ok(StepLoss { recon, vq, resets })
    }
}

impl Quantizer for RqVae {
    fn dim(&self) -> usize {
        self.encoder.inputs()
    }
    fn levels(&self) -> usize {
        self.levels
    }
    fn codebook_size(&self, level: usize) -> usize {
        self.sizes.get(level).copied().unwrap_or(0)
    }
    fn encode_into(&self, x: Embeddings<'_>, out: &mut [u16], par: Par) -> Result<()> {
        let levels = self.levels;
        encode_blocks(
            (&self.encoder, self.residual),
            x,
            (out, levels),
            par,
            |z, codes| {
                let (mut resid, mut q, mut labels) = (Vec::new(), Vec::new(), Vec::new());
                let (mut dists, mut cur) = (Vec::new(), Vec::new());
                self.quantize(
                    z,
                    &mut resid,
                    &mut q,
                    &mut labels,
                    &mut dists,
                    &mut cur,
                    &[],
                );
                let rows = codes.len() / levels;
                for (r, row) in codes.chunks_exact_mut(levels).enumerate() {
                    for (l, t) in row.iter_mut().enumerate() {
                        *t = labels[l * rows + r] as u16;
                    }
                }
                Ok(())
            },
        )
    }
    fn decode_into(&self, codes: &Codes, out: &mut [f32], par: Par) -> Result<()> {
        codes.check_tokens(&self.codebook_sizes())?;
        let lat = self.latent();
        decode_blocks((&self.decoder, self.residual), codes, out, par, |row, q| {
            for (l, &t) in row.iter().enumerate() {
                let e = &self.codebook(l)[t as usize * lat..(t as usize + 1) * lat];
                for (a, b) in q.iter_mut().zip(e) {
                    *a += b;
                }
            }
            Ok(())
        })
    }
}

super::fit_by_inherent!(RqVae, RqVaeConfig, Vec<EpochReport>);

/// In the latent space: each row's encoding minus the codewords of its
/// first `L − 1` tokens, against every last-level codeword (squared L2,
/// [`Simd::l2_sq`](crate::kernels::Simd::l2_sq)). What
/// [`CollisionPolicy::Sinkhorn`](crate::sid::CollisionPolicy::Sinkhorn) and
/// [`CollisionPolicy::ReassignLastLevel`](crate::sid::CollisionPolicy::ReassignLastLevel)
/// read.
impl super::LastLevelDistances for RqVae {
    fn last_level_distances(
        &self,
        x: Embeddings<'_>,
        codes: &[u16],
        out: &mut [f32],
    ) -> Result<()> {
        let (n, lv, k) = super::check_last_level(self, x, codes, out)?;
        let lat = self.latent();
        let last = self.codebook(lv - 1);
        let simd = crate::kernels::Simd::detect();
        let (mut buf, mut z) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(crate::kernels::BLOCK_ROWS) {
            let end = (start + crate::kernels::BLOCK_ROWS).min(n);
            self.latents(x.block(start, end, &mut buf)?, &mut z)?;
            for (r, row) in z.chunks_exact_mut(lat).enumerate() {
                let i = start + r;
                for (l, &t) in codes[i * lv..i * lv + lv - 1].iter().enumerate() {
                    let e = &self.codebook(l)[t as usize * lat..(t as usize + 1) * lat];
                    for (a, b) in row.iter_mut().zip(e) {
                        *a -= b;
                    }
                }
                for (o, e) in out[i * k..(i + 1) * k]
                    .iter_mut()
                    .zip(last.chunks_exact(lat))
                {
                    *o = simd.l2_sq(row, e);
                }
            }
        }
        Ok(())
    }
}

// ---- model file (format versions 1 and 2; docs/FORMAT.md) ----

/// [`RqVae`]'s model-file payload (format version 1: every level has `k`
/// codes; version 2, [`RqVaeV2`], holds a size per level).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct RqVaeV1 {
    /// 0 = ReLU, 1 = SiLU.
    activation: u8,
    levels: u64,
    k: u64,
    encoder: Vec<LayerV1>,
    decoder: Vec<LayerV1>,
    codebooks: Vec<f32>,
}

/// Version 2 of [`RqVae`]'s payload, written only when the levels'
/// codebook sizes differ: version 1's fields with one size per level in
/// place of `levels` and `k`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct RqVaeV2 {
    activation: u8,
    sizes: Vec<u64>,
    /// 1: the encoder adds its input to its output (`z = x + mlp(x)`).
    residual: u8,
    encoder: Vec<LayerV1>,
    decoder: Vec<LayerV1>,
    codebooks: Vec<f32>,
}

impl Codec for RqVae {
    fn encode_file(&self) -> Result<Vec<u8>> {
        let (activation, encoder, decoder) = pair_to_v1(self.networks());
        // The oldest version that holds the model: files of equal sizes
        // stay byte-identical to version 1.
        if !self.residual && self.sizes.iter().all(|&k| k == self.sizes[0]) {
            let v1 = RqVaeV1 {
                activation,
                levels: self.levels as u64,
                k: self.sizes[0] as u64,
                encoder,
                decoder,
                codebooks: self.codebooks.clone(),
            };
            return encode_file(ModelKind::RqVae, &v1);
        }
        let v2 = RqVaeV2 {
            activation,
            sizes: self.sizes.iter().map(|&k| k as u64).collect(),
            residual: u8::from(self.residual),
            encoder,
            decoder,
            codebooks: self.codebooks.clone(),
        };
        Ok(frame_version(ModelKind::RqVae, 2, &encode_payload(&v2)?))
    }

    fn decode_file(bytes: &[u8]) -> Result<Self> {
        let (h, payload) = split(bytes)?;
        if h.kind != ModelKind::RqVae {
            return Err(crate::error::FormatError::WrongKind {
                expected: ModelKind::RqVae.name(),
                found: h.kind.tag(),
            }
            .into());
        }
        if h.version == 1 {
            let p: RqVaeV1 = decode_payload(payload)?;
            let (enc, dec) = pair_from_v1((p.activation, p.encoder, p.decoder))?;
            let levels = stored_usize(p.levels, "levels")?;
            let k = stored_usize(p.k, "k")?;
            return RqVae::from_parts(enc, dec, p.codebooks, levels, k).map_err(to_invalid);
        }
        let p: RqVaeV2 = decode_payload(payload)?;
        let (enc, dec) = pair_from_v1((p.activation, p.encoder, p.decoder))?;
        let sizes = p
            .sizes
            .iter()
            .map(|&k| stored_usize(k, "codebook size"))
            .collect::<Result<Vec<_>>>()?;
        let m = RqVae::from_sized_parts(enc, dec, p.codebooks, &sizes).map_err(to_invalid)?;
        match p.residual {
            0 => Ok(m),
            1 => m.with_residual().map_err(to_invalid),
            r => Err(crate::format::invalid_payload(format!(
                "residual flag {r}; 0 or 1"
            ))),
        }
    }
}
