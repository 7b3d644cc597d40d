//! Dense layers and activations.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef};

use crate::error::{Error, Result, expect_len as expect, invalid};
use crate::format::invalid_payload;
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

/// What a backward pass does with the parameter gradients it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GradMode {
    /// Add into them (as PyTorch accumulates `.grad`).
    Add,
    /// Overwrite them (saves zeroing them before each step).
    Overwrite,
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
        self.backward_as(GradMode::Add, x, dy, (gw, gb), dx)
    }

    /// [`Linear::backward`], adding to the parameter gradients or
    /// overwriting them.
    pub(crate) fn backward_as(
        &self,
        mode: GradMode,
        x: &[f32],
        dy: &[f32],
        (gw, gb): (&mut [f32], &mut [f32]),
        dx: Option<&mut Vec<f32>>,
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
            mode == GradMode::Add,
        );
        if mode == GradMode::Overwrite {
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
