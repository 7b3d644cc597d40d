//! Optimizers: Adam(W) and Adagrad, as PyTorch computes them.

use crate::error::{Error, Result, invalid};
use crate::par::Par;

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
        let (lr, eps) = match *self {
            OptimizerConfig::Adam { lr, eps, .. } | OptimizerConfig::Adagrad { lr, eps } => {
                (lr, eps)
            }
        };
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(invalid("eps", format!("is {eps}; use a finite value ≥ 0")));
        }
        if let OptimizerConfig::Adam {
            beta1,
            beta2,
            weight_decay,
            ..
        } = *self
        {
            for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
                if !(0.0..1.0).contains(&b) {
                    return Err(invalid(name, format!("is {b}; use [0, 1)")));
                }
            }
            if !(weight_decay.is_finite() && weight_decay >= 0.0) {
                return Err(invalid(
                    "weight_decay",
                    format!("is {weight_decay}; use a finite value ≥ 0"),
                ));
            }
        }
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
