//! FSQ autoencoder: MLP projection into FSQ and back, trained with the
//! straight-through estimator (how RecGPT tokenizes raw embeddings).

use super::autoencoder::{
    EpochReport, StepLoss, Trainer, decode_blocks, diverged_weights, encode_blocks, epochs_for,
    param_sizes, start, train,
};
use super::{Fsq, FsqMode, Quantizer};
use crate::data::{Codes, Embeddings};
use crate::error::{Error, Result, invalid};
use crate::format::{ModelKind, sealed::Payload, to_invalid};
use crate::nn::{Activation, GradMode, Grads, Mlp, MlpCache, Optimizer, OptimizerConfig};
use crate::nn::{LayerV1, pair_from_v1, pair_to_v1};
use crate::par::Par;

/// Settings of an [`FsqAutoencoder`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FsqAutoencoderConfig {
    /// Values per latent dimension, FSQ's levels (the latent width is their count). Default `[8, 5, 5,
    /// 5]` (1000 codes); the FSQ paper suggests `[8, 8, 8, 5, 5, 5]` for
    /// 64 000.
    pub levels_per_dim: Vec<u32>,
    /// FSQ bounding mode.
    pub mode: FsqMode,
    /// Encoder hidden widths (the decoder mirrors them). Default `[256]`.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Optimizer (default Adam lr 1e-3).
    pub optimizer: OptimizerConfig,
    /// Passes over the data (at least; see `min_steps`).
    pub epochs: usize,
    /// Optimizer steps to take at least: training runs
    /// `max(epochs, ⌈min_steps / steps per epoch⌉)` epochs (default 500,
    /// as [`super::RqVaeConfig::min_steps`]; 0 trains exactly `epochs`).
    pub min_steps: usize,
    /// Rows per step.
    pub batch_size: usize,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
}

impl Default for FsqAutoencoderConfig {
    fn default() -> Self {
        FsqAutoencoderConfig {
            levels_per_dim: vec![8, 5, 5, 5],
            mode: FsqMode::Default,
            hidden: vec![256],
            activation: Activation::Relu,
            optimizer: OptimizerConfig::adam(1e-3),
            epochs: 20,
            min_steps: 500,
            batch_size: 1024,
            seed: 0,
        }
    }
}

impl FsqAutoencoderConfig {
    /// [`FsqAutoencoderConfig::default`] with the given FSQ levels per dimension (the
    /// latent width is their count).
    #[must_use]
    pub fn new(levels_per_dim: &[u32]) -> Self {
        FsqAutoencoderConfig {
            levels_per_dim: levels_per_dim.to_vec(),
            ..FsqAutoencoderConfig::default()
        }
    }

    crate::config::setters! {
        /// Sets the FSQ levels per dimension.
        levels_per_dim: Vec<u32>;
        /// Sets the FSQ bounding mode.
        mode: FsqMode;
        /// Sets the encoder hidden widths (the decoder mirrors them).
        hidden: Vec<usize>;
        /// Sets the hidden activation.
        activation: Activation;
        /// Sets the optimizer.
        optimizer: OptimizerConfig;
        /// Sets the number of epochs (default 20).
        epochs: usize;
        /// Sets the minimum number of optimizer steps (default 500; 0 for
        /// exactly `epochs`).
        min_steps: usize;
        /// Sets the rows per step.
        batch_size: usize;
        /// Sets the seed.
        seed: u64;
    }

    /// Errors naming the field: invalid levels per dimension (see [`Fsq::with_mode`]),
    /// hidden sizes of 0, no epochs, batch size 0, invalid optimizer.
    pub fn validate(&self) -> Result<()> {
        Fsq::with_mode(&self.levels_per_dim, self.mode)?;
        if self.hidden.contains(&0) {
            return Err(invalid(
                "hidden",
                "layer sizes of 0; every layer needs at least 1 unit",
            ));
        }
        if self.epochs == 0 {
            return Err(invalid("epochs", "is 0; train at least one epoch"));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "is 0; use at least 1"));
        }
        self.optimizer.validate()
    }
}

/// An FSQ autoencoder: encoder MLP `d → … → levels_per_dim.len()`, [`Fsq`], decoder
/// MLP back to `d`, trained end to end on reconstruction MSE with the
/// straight-through estimator (the gradient of the rounding is the
/// identity, so the encoder learns through the FSQ bound's derivative).
///
/// This is FSQ on raw embeddings as RecGPT uses it; vector-quantize-pytorch
/// offers the same with a single linear `project_in`/`project_out` (use
/// `hidden: vec![]` for that). As a [`Quantizer`]: one level whose token
/// is the FSQ index.
#[derive(Clone, Debug, PartialEq)]
pub struct FsqAutoencoder {
    encoder: Mlp,
    decoder: Mlp,
    fsq: Fsq,
}

impl FsqAutoencoder {
    /// Trains on `x` and returns the model and one report per epoch.
    pub fn fit(
        config: &FsqAutoencoderConfig,
        x: Embeddings<'_>,
    ) -> Result<(FsqAutoencoder, Vec<EpochReport>)> {
        FsqAutoencoder::fit_with_callback(config, x, |_| {})
    }

    /// [`FsqAutoencoder::fit`] calling `progress` after every epoch.
    ///
    /// Errors: an invalid config, no rows, non-finite data, or a loss that
    /// becomes NaN/Inf (named by epoch and step).
    pub fn fit_with_callback(
        config: &FsqAutoencoderConfig,
        x: Embeddings<'_>,
        progress: impl FnMut(&EpochReport),
    ) -> Result<(FsqAutoencoder, Vec<EpochReport>)> {
        config.validate()?;
        let n = x.rows();
        if n == 0 {
            return Err(Error::Empty {
                what: "training rows",
            });
        }
        let fsq = Fsq::with_mode(&config.levels_per_dim, config.mode)?;
        let lat = config.levels_per_dim.len();
        let st = start(x, &config.hidden, lat, config.activation, config.seed)?;
        let (stdz, encoder, decoder) = (st.stdz, st.encoder, st.decoder);
        let mut m = FsqAutoencoder {
            encoder,
            decoder,
            fsq,
        };
        let sizes = param_sizes(&mut m.encoder, &mut m.decoder);
        let batch = config.batch_size.min(n);
        let epochs = epochs_for(config.epochs, config.min_steps, n, batch);
        let mut t = FsqTrainer {
            opt: Optimizer::new(config.optimizer, &sizes)?,
            enc_grads: m.encoder.zero_grads(),
            dec_grads: m.decoder.zero_grads(),
            enc_cache: MlpCache::default(),
            dec_cache: MlpCache::default(),
            bufs: Default::default(),
            m,
        };
        let reports = train(&mut t, x, &stdz, (config.seed, batch, epochs), progress)?;
        let mut m = t.m;
        stdz.fold_into(&mut m.encoder, &mut m.decoder);
        if !(m.encoder.is_finite() && m.decoder.is_finite()) {
            return Err(diverged_weights(epochs, n, batch));
        }
        Ok((m, reports))
    }

    /// Builds a model from its parts, checking that the shapes chain
    /// (encoder `d → levels.len()`, decoder back to `d`) and every
    /// parameter is finite.
    pub fn from_parts(encoder: Mlp, decoder: Mlp, fsq: Fsq) -> Result<FsqAutoencoder> {
        super::autoencoder::check_autoencoder(&encoder, &decoder, fsq.levels_per_dim().len())?;
        Ok(FsqAutoencoder {
            encoder,
            decoder,
            fsq,
        })
    }

    /// The encoder and decoder networks.
    #[must_use]
    pub fn networks(&self) -> (&Mlp, &Mlp) {
        (&self.encoder, &self.decoder)
    }

    /// The FSQ between them.
    #[must_use]
    pub fn fsq(&self) -> &Fsq {
        &self.fsq
    }
}

/// [`FsqAutoencoder`]'s training state for the shared loop.
struct FsqTrainer {
    m: FsqAutoencoder,
    opt: Optimizer,
    enc_grads: Grads,
    dec_grads: Grads,
    enc_cache: MlpCache,
    dec_cache: MlpCache,
    /// `z`, `q`, `y`, `dy`, `dq`.
    bufs: [Vec<f32>; 5],
}

impl Trainer for FsqTrainer {
    fn code_sizes(&self) -> Vec<usize> {
        vec![self.m.fsq.n_codes()]
    }

    fn step(&mut self, xb: &[f32], codes: &mut [u16]) -> Result<StepLoss> {
        let m = &mut self.m;
        let lat = m.fsq.levels_per_dim().len();
        let [z, q, y, dy, dq] = &mut self.bufs;
        m.encoder.forward(xb, z, &mut self.enc_cache)?;
        // FSQ has no codebook loss. A non-finite loss returns before the
        // update; the shared loop reports the divergence.
        let recon_only = |recon| StepLoss {
            recon,
            vq: 0.0,
            resets: 0,
        };
        if z.iter().any(|v| !v.is_finite()) {
            return Ok(recon_only(f64::NAN));
        }
        q.resize(z.len(), 0.0);
        m.fsq.quantize_into(z, q)?;
        m.fsq.indices_into(z, codes, Par::Seq)?;
        m.decoder.forward(q, y, &mut self.dec_cache)?;
        let recon = crate::nn::mse_loss(y, xb, dy)?;
        if !recon.is_finite() {
            return Ok(recon_only(recon));
        }
        m.decoder.backward_as(
            GradMode::Overwrite,
            dy,
            &mut self.dec_cache,
            &mut self.dec_grads,
            Some(dq),
        )?;
        // Straight-through: the rounding passes the gradient, the bound
        // contributes its derivative.
        for (row_z, row_g) in z.chunks_exact(lat).zip(dq.chunks_exact_mut(lat)) {
            for (j, (&zv, g)) in row_z.iter().zip(row_g.iter_mut()).enumerate() {
                *g *= m.fsq.ste_grad_at(j, zv);
            }
        }
        m.encoder.backward_as(
            GradMode::Overwrite,
            dq,
            &mut self.enc_cache,
            &mut self.enc_grads,
            None,
        )?;
        let mut params: Vec<&mut Vec<f32>> = m.encoder.params_mut().collect();
        params.extend(m.decoder.params_mut());
        let grads = self.enc_grads.tensors().chain(self.dec_grads.tensors());
        self.opt.step(params.into_iter(), grads)?;
        Ok(recon_only(recon))
    }
}

impl Quantizer for FsqAutoencoder {
    fn dim(&self) -> usize {
        self.encoder.inputs()
    }
    fn levels(&self) -> usize {
        1
    }
    fn codebook_size(&self, level: usize) -> usize {
        if level == 0 { self.fsq.n_codes() } else { 0 }
    }
    fn encode_into(&self, x: Embeddings<'_>, out: &mut [u16], par: Par) -> Result<()> {
        encode_blocks((&self.encoder, false), x, (out, 1), par, |z, codes| {
            self.fsq.indices_into(z, codes, Par::Seq)
        })
    }
    fn decode_into(&self, codes: &Codes, out: &mut [f32], par: Par) -> Result<()> {
        codes.check_tokens(&[self.fsq.n_codes()])?;
        decode_blocks((&self.decoder, false), codes, out, par, |t, q| {
            self.fsq.index_to_values(t[0], q)
        })
    }
}

super::fit_by_inherent!(FsqAutoencoder, FsqAutoencoderConfig, Vec<EpochReport>);

// ---- model file (format version 1; docs/FORMAT.md) ----

/// [`FsqAutoencoder`]'s model-file payload.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct FsqAutoencoderV1 {
    /// 0 = ReLU, 1 = SiLU.
    activation: u8,
    /// 0 = default, 1 = symmetric, 2 = symmetric with hard clamp.
    mode: u8,
    levels: Vec<u32>,
    encoder: Vec<LayerV1>,
    decoder: Vec<LayerV1>,
}

impl Payload for FsqAutoencoder {
    const KIND: ModelKind = ModelKind::FsqAutoencoder;
    type V = FsqAutoencoderV1;
    fn to_payload(&self) -> FsqAutoencoderV1 {
        let (activation, encoder, decoder) = pair_to_v1(self.networks());
        let (mode, levels) = (self.fsq().mode(), self.fsq().levels_per_dim());
        FsqAutoencoderV1 {
            activation,
            mode: super::fsq::mode_tag(mode),
            levels,
            encoder,
            decoder,
        }
    }
    fn from_payload(p: FsqAutoencoderV1) -> Result<Self> {
        let mode = super::fsq::mode_of(p.mode)?;
        let fsq = Fsq::with_mode(&p.levels, mode).map_err(to_invalid)?;
        let (enc, dec) = pair_from_v1((p.activation, p.encoder, p.decoder))?;
        FsqAutoencoder::from_parts(enc, dec, fsq).map_err(to_invalid)
    }
}
