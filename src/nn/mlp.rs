//! Multi-layer perceptrons, their backward pass and gradients, and their
//! stored form in model files.

use super::linear::{Activation, GradMode, Linear};
use crate::error::{Error, Result, expect_len as expect, invalid};
use crate::format::stored_usize;

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
        self.backward_as(GradMode::Add, dy, cache, grads, dx)
    }

    /// [`Mlp::backward`], adding to `grads` or overwriting them.
    pub(crate) fn backward_as(
        &self,
        mode: GradMode,
        dy: &[f32],
        cache: &mut MlpCache,
        grads: &mut Grads,
        dx: Option<&mut Vec<f32>>,
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
            layer.backward_as(
                mode,
                &cache.inputs[i],
                &cache.grad,
                (gw, gb),
                want_dx.then_some(&mut next),
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

/// One stored [`Linear`] layer, as the autoencoders' payloads hold it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct LayerV1 {
    inputs: u64,
    outputs: u64,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

/// An encoder/decoder pair as the autoencoders' payloads store it: the
/// activation tag, then each network's layers.
pub(crate) type PairV1 = (u8, Vec<LayerV1>, Vec<LayerV1>);

/// The stored form of an encoder/decoder pair (they share the activation).
pub(crate) fn pair_to_v1((enc, dec): (&Mlp, &Mlp)) -> PairV1 {
    let layers = |m: &Mlp| {
        m.layers
            .iter()
            .map(|l| LayerV1 {
                inputs: l.inputs as u64,
                outputs: l.outputs as u64,
                weight: l.weight.clone(),
                bias: l.bias.clone(),
            })
            .collect()
    };
    (enc.activation.tag(), layers(enc), layers(dec))
}

/// Rebuilds an encoder/decoder pair from its stored form; the owning
/// model's `from_parts` validates the shapes.
pub(crate) fn pair_from_v1((act, enc, dec): PairV1) -> Result<(Mlp, Mlp)> {
    let activation = Activation::from_tag(act)?;
    let mlp = |v: Vec<LayerV1>| -> Result<Mlp> {
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
    };
    Ok((mlp(enc)?, mlp(dec)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwriting_gives_what_adding_to_zeros_gives() {
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
        m.backward_as(
            GradMode::Overwrite,
            &dy,
            &mut cache,
            &mut written,
            Some(&mut dx2),
        )
        .unwrap();
        assert_eq!(written, added);
        assert_eq!(dx1, dx2);
    }
}
