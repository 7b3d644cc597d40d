//! GPT-2, as HuggingFace transformers' `GPT2LMHeadModel` computes it:
//! learned absolute positions, pre-LayerNorm blocks, `Conv1D` weights
//! stored `(in, out)`, attention scaled by `1/√head_dim`, `gelu_new`, and
//! the LM head tied to the token embeddings unless the checkpoint holds
//! `lm_head.weight`. Read-only: for serving checkpoints trained in PyTorch.

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::Module;
use serde::{Deserialize, Serialize};

use crate::batch::{causal_bias, keep_rows, row_len};
use crate::error::{Error, Result, config};
use crate::weights::{Weights, read_json};

/// A GPT-2 configuration with transformers' `config.json` field names
/// (unknown fields are ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    /// Token vocabulary.
    pub vocab_size: usize,
    /// Longest sequence (learned positions).
    pub n_positions: usize,
    /// Width.
    pub n_embd: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Feed-forward width (`None`: 4 × `n_embd`).
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// `gelu_new` (default), `gelu_pytorch_tanh`, `gelu` or `relu`.
    #[serde(default = "gelu_new")]
    pub activation_function: String,
    /// Epsilon of the layer norms.
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f64,
    /// Scale attention scores by `1/√head_dim` (default true).
    #[serde(default = "yes")]
    pub scale_attn_weights: bool,
    /// Beginning-of-sequence token.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token.
    #[serde(default)]
    pub eos_token_id: Option<u32>,
}

fn gelu_new() -> String {
    "gelu_new".into()
}
fn eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}

impl Gpt2Config {
    /// Checks the sizes and the activation.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
        ] {
            if v == 0 {
                return Err(config(field, "is 0; use at least 1"));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(config(
                "n_head",
                format!("{} does not divide n_embd = {}", self.n_head, self.n_embd),
            ));
        }
        if !["gelu_new", "gelu_pytorch_tanh", "gelu", "relu"]
            .contains(&self.activation_function.as_str())
        {
            return Err(config(
                "activation_function",
                format!(
                    "is {:?}; semid-gen reads gelu_new, gelu_pytorch_tanh, gelu and relu",
                    self.activation_function
                ),
            ));
        }
        Ok(())
    }
}

struct Block {
    ln_1: candle_nn::LayerNorm,
    c_attn: candle_nn::Linear,
    c_proj: candle_nn::Linear,
    ln_2: candle_nn::LayerNorm,
    c_fc: candle_nn::Linear,
    mlp_proj: candle_nn::Linear,
}

/// Per-layer keys and values `(rows, heads, positions, head_dim)` of the
/// positions seen so far.
#[derive(Default)]
pub struct Gpt2Cache {
    kv: Vec<(Tensor, Tensor)>,
    len: usize,
}

impl Gpt2Cache {
    /// Keeps the rows of `parents` (a beam step's reordering).
    pub fn reorder(&mut self, parents: &[u32]) -> Result<()> {
        Ok(keep_rows(
            self.kv.iter_mut().flat_map(|(k, v)| [k, v]),
            parents,
        )?)
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first call.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A GPT-2 language model (see the module docs).
pub struct Gpt2 {
    cfg: Gpt2Config,
    wte: candle_nn::Embedding,
    wpe: candle_nn::Embedding,
    blocks: Vec<Block>,
    ln_f: candle_nn::LayerNorm,
    head: candle_nn::Linear,
}

impl Gpt2 {
    /// Loads a transformers checkpoint directory: `config.json` and
    /// `model.safetensors` (names with or without the `transformer.`
    /// prefix). A missing or misshapen tensor is an error naming it.
    pub fn load(dir: impl AsRef<Path>) -> Result<Gpt2> {
        let dir = dir.as_ref();
        let cfg: Gpt2Config = read_json(&dir.join("config.json"))?;
        cfg.validate().map_err(|e| Error::File {
            path: dir.join("config.json"),
            reason: e.to_string(),
        })?;
        let mut w = Weights::read(&dir.join("model.safetensors"))?;
        let p = if w.has("transformer.wte.weight") {
            "transformer."
        } else {
            ""
        };
        let d = cfg.n_embd;
        let inner = cfg.n_inner.unwrap_or(4 * d);
        // Conv1D holds (in, out); a Linear holds (out, in).
        let conv = |w: &mut Weights, name: &str, i: usize, o: usize| -> Result<candle_nn::Linear> {
            let wt = w
                .get(&format!("{name}.weight"), &[i, o], None)?
                .t()?
                .contiguous()?;
            let b = w.get(&format!("{name}.bias"), &[o], None)?;
            Ok(candle_nn::Linear::new(wt, Some(b)))
        };
        let ln = |w: &mut Weights, name: &str| -> Result<candle_nn::LayerNorm> {
            Ok(candle_nn::LayerNorm::new(
                w.get(&format!("{name}.weight"), &[d], None)?,
                w.get(&format!("{name}.bias"), &[d], None)?,
                cfg.layer_norm_epsilon,
            ))
        };
        let wte_t = w.get(&format!("{p}wte.weight"), &[cfg.vocab_size, d], None)?;
        let wpe = w.get(&format!("{p}wpe.weight"), &[cfg.n_positions, d], None)?;
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let b = format!("{p}h.{i}");
            blocks.push(Block {
                ln_1: ln(&mut w, &format!("{b}.ln_1"))?,
                c_attn: conv(&mut w, &format!("{b}.attn.c_attn"), d, 3 * d)?,
                c_proj: conv(&mut w, &format!("{b}.attn.c_proj"), d, d)?,
                ln_2: ln(&mut w, &format!("{b}.ln_2"))?,
                c_fc: conv(&mut w, &format!("{b}.mlp.c_fc"), d, inner)?,
                mlp_proj: conv(&mut w, &format!("{b}.mlp.c_proj"), inner, d)?,
            });
        }
        let ln_f = ln(&mut w, &format!("{p}ln_f"))?;
        let head = if w.has("lm_head.weight") {
            w.get("lm_head.weight", &[cfg.vocab_size, d], None)?
        } else {
            wte_t.clone()
        };
        // Buffers some transformers versions save (attention masks).
        if let Some(extra) = w
            .unused()
            .into_iter()
            .find(|n| !n.ends_with(".attn.bias") && !n.ends_with(".attn.masked_bias"))
        {
            return Err(Error::File {
                path: dir.join("model.safetensors"),
                reason: format!(
                    "holds tensor {extra:?}, which a GPT2LMHeadModel of this config.json does not have"
                ),
            });
        }
        Ok(Gpt2 {
            wte: candle_nn::Embedding::new(wte_t, d),
            wpe: candle_nn::Embedding::new(wpe, d),
            blocks,
            ln_f,
            head: candle_nn::Linear::new(head, None),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Gpt2Config {
        &self.cfg
    }

    fn act(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self.cfg.activation_function.as_str() {
            "gelu" => x.gelu_erf()?,
            "relu" => x.relu()?,
            _ => x.gelu()?,
        })
    }

    /// Logits `(rows, t, vocab)` of `ids` (row-major `rows × t`) at
    /// positions `cache.len()..`, attending causally to the cached
    /// positions. The cache grows by `t`.
    pub fn forward(&self, ids: &[u32], rows: usize, cache: &mut Gpt2Cache) -> Result<Tensor> {
        let t = row_len(ids, rows, self.cfg.vocab_size, "ids")?;
        let start = cache.len;
        let keys = start + t;
        if keys > self.cfg.n_positions {
            return Err(config(
                "ids",
                format!(
                    "reach position {keys}; the model has {} positions",
                    self.cfg.n_positions
                ),
            ));
        }
        let (d, h) = (self.cfg.n_embd, self.cfg.n_head);
        let dh = d / h;
        let ids = Tensor::from_vec(ids.to_vec(), (rows, t), &Device::Cpu)?;
        let pos = Tensor::from_vec((start as u32..keys as u32).collect(), t, &Device::Cpu)?;
        let mut x = self
            .wte
            .forward(&ids)?
            .broadcast_add(&self.wpe.forward(&pos)?)?;
        let causal = causal_bias(start, t, f32::NEG_INFINITY)?;
        let scale = if self.cfg.scale_attn_weights {
            (dh as f64).powf(-0.5)
        } else {
            1.0
        };
        for (l, b) in self.blocks.iter().enumerate() {
            let a = b.ln_1.forward(&x)?;
            let qkv = b.c_attn.forward(&a)?.reshape((rows, t, 3, h, dh))?;
            let q = qkv
                .narrow(2, 0, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()?;
            let k = qkv
                .narrow(2, 1, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()?;
            let v = qkv
                .narrow(2, 2, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()?;
            let (k, v) = match cache.kv.get(l) {
                Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
                None => (k, v),
            };
            let s = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&causal)?;
            let p = candle_nn::ops::softmax_last_dim(&s)?;
            let y = p.matmul(&v)?.transpose(1, 2)?.reshape((rows, t, d))?;
            if cache.kv.len() > l {
                cache.kv[l] = (k, v);
            } else {
                cache.kv.push((k, v));
            }
            x = (x + b.c_proj.forward(&y)?)?;
            let f = b
                .mlp_proj
                .forward(&self.act(&b.c_fc.forward(&b.ln_2.forward(&x)?)?)?)?;
            x = (x + f)?;
        }
        cache.len = keys;
        Ok(self.head.forward(&self.ln_f.forward(&x)?)?)
    }
}
