//! The minimum of a neural-network toolkit that RQ-VAE and the FSQ
//! autoencoder need: dense layers, ReLU/SiLU, an MLP, MSE, Adam(W) and
//! Adagrad, seeded initialisation and shuffling. Every backward pass is
//! checked against finite differences in the tests. Not a general
//! framework.
//!
//! Tensors are row-major `f32` slices: a batch of `n` rows of width `d` is
//! `n × d`. GEMMs run through faer on the calling thread, so results do not
//! depend on the thread count.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef};

use crate::error::{Error, Result, expect_len as expect, invalid};
use crate::format::{invalid_payload, stored_usize};
use crate::par::Par;
use crate::rng::Rng;

/// `dst (m × n) = alpha · a (m × k) · b (k × n)` (+ `dst` when
/// `accumulate`), all row-major; `ta`/`tb` transpose the operands as stored.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    dst: &mut [f32],
    m: usize,
    n: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    k: usize,
    alpha: f32,
    accumulate: bool,
) {
    let lhs = if ta {
        MatRef::from_row_major_slice(a, k, m).transpose()
    } else {
        MatRef::from_row_major_slice(a, m, k)
    };
    let rhs = if tb {
        MatRef::from_row_major_slice(b, n, k).transpose()
    } else {
        MatRef::from_row_major_slice(b, k, n)
    };
    let out = MatMut::from_row_major_slice_mut(dst, m, n);
    let acc = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    matmul(out, acc, lhs, rhs, alpha, faer::Par::Seq);
}

/// Hidden-layer nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Activation {
    /// `max(0, x)` (TIGER's RQ-VAE).
    #[default]
    Relu,
    /// `x · σ(x)` (GRID / MiniOneRec variants).
    Silu,
}

impl Activation {
    /// Applies the activation to `x` in place.
    pub fn forward(self, x: &mut [f32]) {
        match self {
            Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Silu => x.iter_mut().for_each(|v| *v *= sigmoid(*v)),
        }
    }

    /// Writes the activation of `pre` into `out` (resized to match).
    pub fn forward_into(self, pre: &[f32], out: &mut Vec<f32>) {
        out.clear();
        match self {
            Activation::Relu => out.extend(pre.iter().map(|v| v.max(0.0))),
            Activation::Silu => out.extend(pre.iter().map(|&v| v * sigmoid(v))),
        }
    }

    /// Multiplies `grad` by the derivative at the pre-activation `pre`.
    pub fn backward(self, pre: &[f32], grad: &mut [f32]) {
        match self {
            Activation::Relu => {
                for (g, &p) in grad.iter_mut().zip(pre) {
                    *g = if p > 0.0 { *g } else { 0.0 };
                }
            }
            Activation::Silu => {
                for (g, &p) in grad.iter_mut().zip(pre) {
                    let s = sigmoid(p);
                    *g *= s * (1.0 + p * (1.0 - s));
                }
            }
        }
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A dense layer `y = x Wᵀ + b` with `W` of shape `out × in`.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Linear {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Weights, `outputs × inputs`, row-major.
    pub weight: Vec<f32>,
    /// Bias, `outputs`.
    pub bias: Vec<f32>,
}

impl Linear {
    /// A layer initialised like PyTorch's `nn.Linear`: weights and bias
    /// uniform in `±1/√inputs`, from the seeded generator.
    pub fn new(inputs: usize, outputs: usize, seed: u64, stream: u64) -> Result<Linear> {
        if inputs == 0 || outputs == 0 {
            return Err(invalid(
                "layer sizes",
                format!("{inputs} → {outputs}: every layer needs at least 1 unit"),
            ));
        }
        // 2^31 weights (8 GiB) per layer is far beyond what these models
        // need; refuse instead of overflowing or aborting on allocation.
        let Some(n_weights) = inputs.checked_mul(outputs).filter(|&n| n <= 1 << 31) else {
            return Err(invalid(
                "layer sizes",
                format!("{inputs} → {outputs}: more than 2^31 weights in one layer"),
            ));
        };
        let mut rng = Rng::new(seed, stream);
        let bound = 1.0 / (inputs as f64).sqrt();
        let mut u = || ((rng.next_f64() * 2.0 - 1.0) * bound) as f32;
        let weight = (0..n_weights).map(|_| u()).collect();
        let bias = (0..outputs).map(|_| u()).collect();
        Ok(Linear {
            inputs,
            outputs,
            weight,
            bias,
        })
    }

    /// Checks the layer's own shapes: sizes ≥ 1, `weight` of `outputs ×
    /// inputs`, `bias` of `outputs` (its fields are public).
    pub fn check(&self) -> Result<()> {
        if self.inputs == 0 || self.outputs == 0 {
            return Err(invalid(
                "layer sizes",
                format!(
                    "{} → {}: every layer needs at least 1 unit",
                    self.inputs, self.outputs
                ),
            ));
        }
        let want = self.inputs.checked_mul(self.outputs);
        if want != Some(self.weight.len()) {
            return Err(Error::Shape {
                what: "layer weights (outputs × inputs)",
                expected: want.unwrap_or(usize::MAX),
                got: self.weight.len(),
            });
        }
        expect("layer bias (outputs)", self.outputs, self.bias.len())
    }

    /// Rows of `x` for this layer's input width, or a shape error.
    fn rows_of(&self, x: &[f32]) -> Result<usize> {
        if !x.len().is_multiple_of(self.inputs) {
            return Err(Error::Shape {
                what: "layer input length (multiple of its input width)",
                expected: x.len().div_ceil(self.inputs) * self.inputs,
                got: x.len(),
            });
        }
        Ok(x.len() / self.inputs)
    }

    /// `y (n × out) = x (n × in) · Wᵀ + b`. Errors on inconsistent shapes.
    pub fn forward(&self, x: &[f32], y: &mut Vec<f32>) -> Result<()> {
        self.check()?;
        let n = self.rows_of(x)?;
        y.resize(n * self.outputs, 0.0);
        for row in y.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(&self.bias);
        }
        gemm(
            y,
            n,
            self.outputs,
            x,
            false,
            &self.weight,
            true,
            self.inputs,
            1.0,
            true,
        );
        Ok(())
    }

    /// Given the input `x` and the output gradient `dy`, adds the weight
    /// and bias gradients to `gw`/`gb` and, when `dx` is given, writes the
    /// input gradient. Errors on inconsistent shapes.
    pub fn backward(
        &self,
        x: &[f32],
        dy: &[f32],
        gw: &mut [f32],
        gb: &mut [f32],
        dx: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        self.backward_impl(x, dy, gw, gb, dx, true)
    }

    /// [`Linear::backward`], overwriting `gw`/`gb` instead of adding when
    /// `accumulate` is false (saves zeroing them first).
    fn backward_impl(
        &self,
        x: &[f32],
        dy: &[f32],
        gw: &mut [f32],
        gb: &mut [f32],
        dx: Option<&mut Vec<f32>>,
        accumulate: bool,
    ) -> Result<()> {
        self.check()?;
        let n = self.rows_of(x)?;
        expect(
            "output gradient length (rows × outputs)",
            n * self.outputs,
            dy.len(),
        )?;
        expect("weight gradient length", self.weight.len(), gw.len())?;
        expect("bias gradient length", self.outputs, gb.len())?;
        // gW (out × in) += dyᵀ (out × n) · x (n × in)
        gemm(
            gw,
            self.outputs,
            self.inputs,
            dy,
            true,
            x,
            false,
            n,
            1.0,
            accumulate,
        );
        if !accumulate {
            gb.fill(0.0);
        }
        for row in dy.chunks_exact(self.outputs) {
            for (g, &d) in gb.iter_mut().zip(row) {
                *g += d;
            }
        }
        if let Some(dx) = dx {
            dx.resize(n * self.inputs, 0.0);
            // dx (n × in) = dy (n × out) · W (out × in)
            gemm(
                dx,
                n,
                self.inputs,
                dy,
                false,
                &self.weight,
                false,
                self.outputs,
                1.0,
                false,
            );
        }
        Ok(())
    }

    /// Number of parameters.
    #[must_use]
    pub fn n_params(&self) -> usize {
        self.weight.len() + self.bias.len()
    }
}

/// A multi-layer perceptron: `Linear → act → … → Linear` (no activation
/// after the last layer).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Mlp {
    /// The layers, input first.
    pub layers: Vec<Linear>,
    /// Activation between layers.
    pub activation: Activation,
}

/// Activations an [`Mlp`] keeps for its backward pass.
#[derive(Clone, Debug, Default)]
pub struct MlpCache {
    /// Input of every layer (after the previous activation).
    inputs: Vec<Vec<f32>>,
    /// Pre-activation output of every hidden layer.
    pre: Vec<Vec<f32>>,
    /// Rows of the cached forward pass.
    rows: usize,
    grad: Vec<f32>,
    grad_next: Vec<f32>,
}

impl Mlp {
    /// An MLP with the given widths (`[in, h1, …, out]`, at least two),
    /// initialised from `seed`.
    pub fn new(widths: &[usize], activation: Activation, seed: u64) -> Result<Mlp> {
        if widths.len() < 2 {
            return Err(invalid(
                "widths",
                "needs at least an input and an output width",
            ));
        }
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| Linear::new(w[0], w[1], seed, 100 + i as u64))
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp { layers, activation })
    }

    /// Checks every layer and that widths chain (its fields are public).
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::Empty { what: "MLP layers" });
        }
        for (i, l) in self.layers.iter().enumerate() {
            l.check()?;
            if i > 0 && self.layers[i - 1].outputs != l.inputs {
                return Err(invalid(
                    "layers",
                    format!(
                        "layer {i} takes {} inputs but the previous layer gives {}",
                        l.inputs,
                        self.layers[i - 1].outputs
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Input width (0 for an MLP without layers).
    #[must_use]
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Output width (0 for an MLP without layers).
    #[must_use]
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// Forward pass of `x` (`n × inputs`) into `y`, keeping what backward
    /// needs in `cache`.
    pub fn forward(&self, x: &[f32], y: &mut Vec<f32>, cache: &mut MlpCache) -> Result<()> {
        self.validate()?;
        let nl = self.layers.len();
        cache.inputs.resize(nl, Vec::new());
        cache.pre.resize(nl, Vec::new());
        cache.inputs[0].clear();
        cache.inputs[0].extend_from_slice(x);
        for (i, layer) in self.layers.iter().enumerate() {
            if i + 1 == nl {
                layer.forward(&cache.inputs[i], y)?;
            } else {
                let mut pre = std::mem::take(&mut cache.pre[i]);
                layer.forward(&cache.inputs[i], &mut pre)?;
                self.activation.forward_into(&pre, &mut cache.inputs[i + 1]);
                cache.pre[i] = pre;
            }
        }
        cache.rows = x.len() / self.inputs();
        Ok(())
    }

    /// Forward pass without a cache (inference).
    pub fn infer(&self, x: &[f32], y: &mut Vec<f32>) -> Result<()> {
        self.validate()?;
        let mut cur = x.to_vec();
        for (i, layer) in self.layers.iter().enumerate() {
            layer.forward(&cur, y)?;
            if i + 1 < self.layers.len() {
                self.activation.forward(y);
                std::mem::swap(&mut cur, y);
            }
        }
        Ok(())
    }

    /// Backward pass from the output gradient `dy`: adds parameter
    /// gradients into `grads` (one [`Grads`] slot per layer) and writes the
    /// input gradient into `dx` when given.
    pub fn backward(
        &self,
        dy: &[f32],
        cache: &mut MlpCache,
        grads: &mut Grads,
        dx: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        self.backward_impl(dy, cache, grads, dx, true)
    }

    /// [`Mlp::backward`] that overwrites `grads` instead of adding to them.
    pub(crate) fn backward_into(
        &self,
        dy: &[f32],
        cache: &mut MlpCache,
        grads: &mut Grads,
        dx: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        self.backward_impl(dy, cache, grads, dx, false)
    }

    fn backward_impl(
        &self,
        dy: &[f32],
        cache: &mut MlpCache,
        grads: &mut Grads,
        dx: Option<&mut Vec<f32>>,
        accumulate: bool,
    ) -> Result<()> {
        self.validate()?;
        let nl = self.layers.len();
        if cache.inputs.len() != nl {
            return Err(invalid("cache", "does not hold a forward pass of this MLP"));
        }
        expect(
            "output gradient length (rows × outputs)",
            cache.rows * self.outputs(),
            dy.len(),
        )?;
        expect("gradient slots (one per layer)", nl, grads.layers.len())?;
        cache.grad.clear();
        cache.grad.extend_from_slice(dy);
        let mut dx = dx;
        for i in (0..nl).rev() {
            let layer = &self.layers[i];
            let (gw, gb) = grads.layer_mut(i);
            let want_dx = i > 0 || dx.is_some();
            let mut next = std::mem::take(&mut cache.grad_next);
            layer.backward_impl(
                &cache.inputs[i],
                &cache.grad,
                gw,
                gb,
                want_dx.then_some(&mut next),
                accumulate,
            )?;
            if i > 0 {
                self.activation.backward(&cache.pre[i - 1], &mut next);
                cache.grad_next = std::mem::replace(&mut cache.grad, next);
            } else {
                match dx.as_deref_mut() {
                    Some(d) => cache.grad_next = std::mem::replace(d, next),
                    None => cache.grad_next = next,
                }
            }
        }
        Ok(())
    }

    /// Zeroed gradients shaped like the parameters.
    #[must_use]
    pub fn zero_grads(&self) -> Grads {
        Grads {
            layers: self
                .layers
                .iter()
                .map(|l| (vec![0.0; l.weight.len()], vec![0.0; l.bias.len()]))
                .collect(),
        }
    }

    /// Parameter tensors, in a fixed order (weight, bias per layer).
    pub fn params_mut(&mut self) -> impl Iterator<Item = &mut Vec<f32>> {
        self.layers
            .iter_mut()
            .flat_map(|l| [&mut l.weight, &mut l.bias])
    }

    /// True if every parameter is finite.
    #[must_use]
    pub fn is_finite(&self) -> bool {
        self.layers
            .iter()
            .all(|l| l.weight.iter().chain(&l.bias).all(|v| v.is_finite()))
    }
}

/// Gradients of an [`Mlp`]'s parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Grads {
    layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Grads {
    fn layer_mut(&mut self, i: usize) -> (&mut [f32], &mut [f32]) {
        let (w, b) = &mut self.layers[i];
        (w, b)
    }

    /// Sets every gradient to 0.
    pub fn zero(&mut self) {
        for (w, b) in &mut self.layers {
            w.fill(0.0);
            b.fill(0.0);
        }
    }

    /// Gradient tensors in the order of [`Mlp::params_mut`].
    pub fn tensors(&self) -> impl Iterator<Item = &Vec<f32>> {
        self.layers.iter().flat_map(|(w, b)| [w, b])
    }

    /// Mutable gradient tensors in the order of [`Mlp::params_mut`].
    pub(crate) fn tensors_mut(&mut self) -> impl Iterator<Item = &mut Vec<f32>> {
        self.layers.iter_mut().flat_map(|(w, b)| [w, b])
    }
}

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

/// Optimizer settings.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OptimizerConfig {
    /// Adam / AdamW (decoupled weight decay, as PyTorch's `AdamW`).
    Adam {
        /// Learning rate (GRID / MiniOneRec: 1e-3).
        lr: f32,
        /// First-moment decay (0.9).
        beta1: f32,
        /// Second-moment decay (0.999).
        beta2: f32,
        /// Denominator epsilon (1e-8).
        eps: f32,
        /// Decoupled weight decay (0 for Adam).
        weight_decay: f32,
    },
    /// Adagrad (TIGER: lr 0.4), as PyTorch's `Adagrad` with no decay.
    Adagrad {
        /// Learning rate.
        lr: f32,
        /// Denominator epsilon (1e-10).
        eps: f32,
    },
}

impl OptimizerConfig {
    /// Adam with PyTorch's defaults and learning rate `lr`.
    #[must_use]
    pub fn adam(lr: f32) -> Self {
        OptimizerConfig::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// Adagrad with learning rate `lr`.
    #[must_use]
    pub fn adagrad(lr: f32) -> Self {
        OptimizerConfig::Adagrad { lr, eps: 1e-10 }
    }

    /// Errors on a learning rate ≤ 0 or non-finite, betas outside [0, 1),
    /// negative or non-finite eps / weight decay.
    pub fn validate(&self) -> Result<()> {
        let lr = match *self {
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(invalid(name, format!("is {b}; use [0, 1)")));
                    }
                }
                if !(eps.is_finite()
                    && eps >= 0.0
                    && weight_decay.is_finite()
                    && weight_decay >= 0.0)
                {
                    return Err(invalid("eps", "and weight_decay must be finite and ≥ 0"));
                }
                lr
            }
            OptimizerConfig::Adagrad { lr, eps } => {
                if !(eps.is_finite() && eps >= 0.0) {
                    return Err(invalid("eps", "must be finite and ≥ 0"));
                }
                lr
            }
        };
        if !(lr.is_finite() && lr > 0.0) {
            return Err(invalid("lr", format!("is {lr}; use a finite value > 0")));
        }
        Ok(())
    }
}

/// Optimizer state for a list of parameter tensors.
#[derive(Clone, Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    step: u32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Optimizer {
    /// State for tensors of the given lengths.
    pub fn new(config: OptimizerConfig, sizes: &[usize]) -> Result<Optimizer> {
        config.validate()?;
        Ok(Optimizer {
            config,
            step: 0,
            m: sizes.iter().map(|&s| vec![0.0; s]).collect(),
            v: sizes.iter().map(|&s| vec![0.0; s]).collect(),
        })
    }

    /// One update of `params` (in the order given at construction) from
    /// `grads`. Errors if the shapes differ from construction.
    pub fn step<'a>(
        &mut self,
        params: impl Iterator<Item = &'a mut Vec<f32>>,
        grads: impl Iterator<Item = &'a Vec<f32>>,
    ) -> Result<()> {
        self.step_par(params, grads, Par::Seq)
    }

    /// [`Optimizer::step`] on up to `par` threads. Every element's update
    /// is independent, so the result does not depend on the thread count.
    pub fn step_par<'a>(
        &mut self,
        params: impl Iterator<Item = &'a mut Vec<f32>>,
        grads: impl Iterator<Item = &'a Vec<f32>>,
        par: Par,
    ) -> Result<()> {
        const PIECE: usize = 1 << 14;
        let mut pieces = Vec::new();
        for (i, (p, g)) in params.zip(grads).enumerate() {
            if i >= self.m.len() || p.len() != self.m[i].len() || g.len() != p.len() {
                return Err(Error::Shape {
                    what: "optimizer parameter tensor",
                    expected: self.m.get(i).map_or(0, Vec::len),
                    got: p.len(),
                });
            }
            pieces.push((p, g, i));
        }
        self.step += 1;
        let t = self.step as i32;
        let config = self.config;
        let mut work: Vec<Piece<'_>> = Vec::new();
        let mut ms: Vec<Option<&mut Vec<f32>>> = self.m.iter_mut().map(Some).collect();
        let mut vs: Vec<Option<&mut Vec<f32>>> = self.v.iter_mut().map(Some).collect();
        for (p, g, i) in pieces {
            let (Some(m), Some(v)) = (ms[i].take(), vs[i].take()) else {
                return Err(invalid("params", "the same tensor was given twice"));
            };
            for (((pp, gp), mp), vp) in p
                .chunks_mut(PIECE)
                .zip(g.chunks(PIECE))
                .zip(m.chunks_mut(PIECE))
                .zip(v.chunks_mut(PIECE))
            {
                work.push((pp, gp, mp, vp));
            }
        }
        crate::par::for_each_item(par, &mut work, |_, (p, g, m, v)| {
            update(config, t, p, g, m, v);
        });
        Ok(())
    }
}

/// One slice of a tensor: parameters, gradient, first and second moments.
type Piece<'a> = (&'a mut [f32], &'a [f32], &'a mut [f32], &'a mut [f32]);

/// The optimizer's update of one parameter slice at step `t` (1-based).
fn update(config: OptimizerConfig, t: i32, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    match config {
        OptimizerConfig::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let bc1 = 1.0 - beta1.powi(t);
            let bc2 = 1.0 - beta2.powi(t);
            let step_size = lr / bc1;
            let bc2_sqrt = bc2.sqrt();
            let decay = 1.0 - lr * weight_decay;
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                if weight_decay > 0.0 {
                    *p *= decay;
                }
                *m = beta1 * *m + (1.0 - beta1) * g;
                *v = beta2 * *v + (1.0 - beta2) * g * g;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *p -= step_size * *m / denom;
            }
        }
        OptimizerConfig::Adagrad { lr, eps } => {
            for ((p, &g), s) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                *s += g * g;
                *p -= lr * g / (s.sqrt() + eps);
            }
        }
    }
}

/// A seeded permutation of `0..n` (Fisher–Yates) for mini-batching.
#[must_use]
pub fn shuffled(n: usize, seed: u64, epoch: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed, 1000 + epoch);
    let mut v: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

// ---- model file (format version 1; docs/FORMAT.md) ----

/// One stored [`Linear`] layer, as the autoencoders' payloads hold it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct LayerV1 {
    inputs: u64,
    outputs: u64,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Activation {
    /// The stored tag: 0 = ReLU, 1 = SiLU.
    pub(crate) fn tag(self) -> u8 {
        match self {
            Activation::Relu => 0,
            Activation::Silu => 1,
        }
    }

    /// The activation of a stored tag.
    pub(crate) fn from_tag(tag: u8) -> Result<Activation> {
        match tag {
            0 => Ok(Activation::Relu),
            1 => Ok(Activation::Silu),
            t => Err(invalid_payload(format!("unknown activation tag {t}"))),
        }
    }
}

impl Mlp {
    /// The stored layers.
    pub(crate) fn to_layers_v1(&self) -> Vec<LayerV1> {
        self.layers
            .iter()
            .map(|l| LayerV1 {
                inputs: l.inputs as u64,
                outputs: l.outputs as u64,
                weight: l.weight.clone(),
                bias: l.bias.clone(),
            })
            .collect()
    }

    /// Rebuilds an MLP from stored layers; the owning model's `from_parts`
    /// validates the shapes.
    pub(crate) fn from_layers_v1(v: Vec<LayerV1>, activation: Activation) -> Result<Mlp> {
        let layers = v
            .into_iter()
            .map(|l| {
                Ok(Linear {
                    inputs: stored_usize(l.inputs, "layer size")?,
                    outputs: stored_usize(l.outputs, "layer size")?,
                    weight: l.weight,
                    bias: l.bias,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp { layers, activation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_into_overwrites_what_backward_adds() {
        let m = Mlp::new(&[5, 7, 3], Activation::Silu, 3).unwrap();
        let x: Vec<f32> = (0..20).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut cache = MlpCache::default();
        let mut y = Vec::new();
        m.forward(&x, &mut y, &mut cache).unwrap();
        let dy: Vec<f32> = y.iter().map(|v| v * 0.5 - 0.1).collect();
        let (mut dx1, mut dx2) = (Vec::new(), Vec::new());
        let mut added = m.zero_grads();
        m.backward(&dy, &mut cache, &mut added, Some(&mut dx1))
            .unwrap();
        // Stale values in the gradients must be overwritten, not kept.
        let mut written = m.zero_grads();
        for t in written.tensors_mut() {
            t.fill(123.0);
        }
        m.backward_into(&dy, &mut cache, &mut written, Some(&mut dx2))
            .unwrap();
        assert_eq!(written, added);
        assert_eq!(dx1, dx2);
    }
}
