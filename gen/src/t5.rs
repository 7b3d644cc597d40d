//! T5 (encoder-decoder with relative attention bias), as HuggingFace
//! transformers' `T5ForConditionalGeneration` computes it: RMS layer
//! norms without bias, unscaled dot-product attention, bucketed relative
//! positions (bidirectional in the encoder, causal in the decoder, from
//! block 0 and shared by every block), `relu` or `gated-gelu`
//! feed-forward, and the decoder output scaled by `d_model^-0.5` when the
//! LM head is the shared embedding.
//!
//! The same code serves checkpoints written by transformers
//! ([`T5::load`]) and TIGER models trained here ([`crate::SidModel`] with
//! [`crate::Arch::EncoderDecoder`]).

use std::path::Path;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::Module;
use serde::{Deserialize, Serialize};

use crate::batch::{causal_bias, keep_rows, row_len};
use crate::decoder::dropout;
use crate::error::{Error, Result, config};
use crate::weights::{Weights, read_json, save, write_json};

/// A T5 configuration with transformers' `config.json` field names
/// (unknown fields are ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct T5Config {
    /// Token vocabulary.
    pub vocab_size: usize,
    /// Width.
    pub d_model: usize,
    /// Width of one attention head.
    pub d_kv: usize,
    /// Feed-forward width.
    pub d_ff: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Decoder blocks (`None`: as the encoder).
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    /// Attention heads.
    pub num_heads: usize,
    /// Relative-position buckets.
    #[serde(default = "buckets")]
    pub relative_attention_num_buckets: usize,
    /// Distance beyond which relative positions share a bucket.
    #[serde(default = "max_distance")]
    pub relative_attention_max_distance: usize,
    /// Dropout rate in training.
    #[serde(default)]
    pub dropout_rate: f32,
    /// Epsilon of the RMS norms.
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f64,
    /// `"relu"` or `"gated-gelu"`.
    #[serde(default = "relu")]
    pub feed_forward_proj: String,
    /// transformers 4: whether the LM head is the shared embedding (and
    /// the decoder output is scaled by `d_model^-0.5`); absent means true.
    /// transformers 5 always writes true and says whether to scale in
    /// `scale_decoder_outputs`.
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// transformers 5: whether the decoder output is scaled by
    /// `d_model^-0.5` (absent: as `tie_word_embeddings`).
    #[serde(default)]
    pub scale_decoder_outputs: Option<bool>,
    /// Padding token.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// End-of-sequence token.
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    /// First decoder input (`None`: `pad_token_id`).
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
}

fn buckets() -> usize {
    32
}
fn max_distance() -> usize {
    128
}
fn eps() -> f64 {
    1e-6
}
fn relu() -> String {
    "relu".into()
}

impl T5Config {
    /// Checks the sizes and the feed-forward kind.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            (
                "relative_attention_num_buckets",
                self.relative_attention_num_buckets,
            ),
            (
                "relative_attention_max_distance",
                self.relative_attention_max_distance,
            ),
        ] {
            if v == 0 {
                return Err(config(field, "is 0; use at least 1"));
            }
        }
        if self.relative_attention_num_buckets < 4 {
            return Err(config(
                "relative_attention_num_buckets",
                "is below 4; T5 splits the buckets four ways",
            ));
        }
        if !["relu", "gated-gelu"].contains(&self.feed_forward_proj.as_str()) {
            return Err(config(
                "feed_forward_proj",
                format!(
                    "is {:?}; semid-gen reads \"relu\" and \"gated-gelu\"",
                    self.feed_forward_proj
                ),
            ));
        }
        if self.num_decoder_layers == Some(0) {
            return Err(config("num_decoder_layers", "is 0; use at least 1"));
        }
        Ok(())
    }

    /// The decoder's first input token.
    pub fn decoder_start(&self) -> u32 {
        self.decoder_start_token_id
            .or(self.pad_token_id)
            .unwrap_or(0)
    }

    fn tied(&self) -> bool {
        self.tie_word_embeddings != Some(false)
    }

    fn scaled(&self) -> bool {
        self.scale_decoder_outputs.unwrap_or_else(|| self.tied())
    }
}

/// transformers' `_relative_position_bucket`, in f32 as PyTorch computes
/// it: `relative` is key position − query position.
pub fn relative_bucket(
    relative: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> u32 {
    let mut nb = num_buckets as i64;
    let mut bucket = 0i64;
    let mut rp = relative;
    if bidirectional {
        nb /= 2;
        if rp > 0 {
            bucket += nb;
        }
        rp = rp.abs();
    } else {
        rp = -rp.min(0);
    }
    let max_exact = nb / 2;
    if rp < max_exact {
        bucket += rp;
    } else {
        let scale = (max_distance as f64 / max_exact as f64).ln() as f32;
        let large = max_exact
            + ((rp as f32 / max_exact as f32).ln() / scale * (nb - max_exact) as f32) as i64;
        bucket += large.min(nb - 1);
    }
    bucket as u32
}

struct Attention {
    q: candle_nn::Linear,
    k: candle_nn::Linear,
    v: candle_nn::Linear,
    o: candle_nn::Linear,
    /// `(buckets, heads)` in block 0 of each stack's self-attention.
    relative: Option<Tensor>,
}

enum FeedForward {
    Relu {
        wi: candle_nn::Linear,
        wo: candle_nn::Linear,
    },
    GatedGelu {
        wi_0: candle_nn::Linear,
        wi_1: candle_nn::Linear,
        wo: candle_nn::Linear,
    },
}

struct Block {
    ln_self: Tensor,
    attn: Attention,
    /// Decoder blocks: the cross-attention and its norm.
    cross: Option<(Tensor, Attention)>,
    ln_ff: Tensor,
    ff: FeedForward,
}

struct Stack {
    blocks: Vec<Block>,
    final_ln: Tensor,
}

/// Per-layer keys and values of a decoder: self-attention (grows by one
/// position per step) and cross-attention (the encoder output's, computed
/// at the first step), `(rows, heads, positions, d_kv)` each, plus the
/// encoder's padding bias `(rows, 1, 1, source)`.
#[derive(Default)]
pub struct T5Cache {
    self_kv: Vec<(Tensor, Tensor)>,
    cross_kv: Vec<(Tensor, Tensor)>,
    /// The encoder's padding bias, one row per decoder row.
    cross_bias: Option<Tensor>,
    /// Decoder positions held.
    len: usize,
}

impl T5Cache {
    /// Keeps the rows of `parents` (a beam step's reordering).
    pub fn reorder(&mut self, parents: &[u32]) -> Result<()> {
        let kv = self.self_kv.iter_mut().chain(self.cross_kv.iter_mut());
        Ok(keep_rows(
            kv.flat_map(|(k, v)| [k, v]).chain(self.cross_bias.as_mut()),
            parents,
        )?)
    }

    /// Decoder positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first step.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The encoder's output for a batch: hidden states `(rows, source, d)` and
/// the additive padding bias `(rows, 1, 1, source)`.
#[derive(Clone)]
pub struct Encoded {
    hidden: Tensor,
    bias: Tensor,
}

impl Encoded {
    /// Keeps the rows `rows` (one per beam, by query).
    pub fn select(&self, rows: &[u32]) -> Result<Encoded> {
        let (mut hidden, mut bias) = (self.hidden.clone(), self.bias.clone());
        keep_rows([&mut hidden, &mut bias], rows)?;
        Ok(Encoded { hidden, bias })
    }
}

/// A T5 encoder-decoder (see the module docs).
pub struct T5 {
    cfg: T5Config,
    shared: candle_nn::Embedding,
    encoder: Stack,
    decoder: Stack,
    lm_head: candle_nn::Linear,
    /// `d_model^-0.5` when the config scales the decoder output.
    scale: Option<f64>,
    named: Vec<(String, Tensor)>,
    vars: Vec<Var>,
}

fn linear(
    w: &mut Weights,
    name: &str,
    out: usize,
    inp: usize,
    std: f32,
) -> Result<candle_nn::Linear> {
    Ok(candle_nn::Linear::new(
        w.get(&format!("{name}.weight"), &[out, inp], Some(std))?,
        None,
    ))
}

fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let var = x.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(x.broadcast_div(&(var + eps)?.sqrt()?)?.broadcast_mul(w)?)
}

impl T5 {
    /// Loads a transformers checkpoint directory: `config.json` and
    /// `model.safetensors` (any float dtype; computed in f32). A missing
    /// or misshapen tensor is an error naming it.
    pub fn load(dir: impl AsRef<Path>) -> Result<T5> {
        let dir = dir.as_ref();
        let cfg: T5Config = read_json(&dir.join("config.json"))?;
        let path = dir.join("model.safetensors");
        let mut w = Weights::read(&path)?;
        cfg.validate().map_err(|e| Error::File {
            path: dir.join("config.json"),
            reason: e.to_string(),
        })?;
        T5::build(cfg, &mut w)
    }

    /// A fresh, trainable model from `seed` (normal-like weights of the
    /// standard deviations transformers' `_init_weights` uses).
    pub fn fresh(cfg: T5Config, seed: u64) -> Result<T5> {
        cfg.validate()?;
        T5::build(cfg, &mut Weights::fresh(seed))
    }

    fn build(cfg: T5Config, w: &mut Weights) -> Result<T5> {
        let (d, dkv, h, ff) = (cfg.d_model, cfg.d_kv, cfg.num_heads, cfg.d_ff);
        let inner = h * dkv;
        let shared_t = w.get("shared.weight", &[cfg.vocab_size, d], Some(1.0))?;
        let shared = candle_nn::Embedding::new(shared_t.clone(), d);
        let attention = |w: &mut Weights, p: &str, rel: bool| -> Result<Attention> {
            Ok(Attention {
                q: linear(
                    w,
                    &format!("{p}.q"),
                    inner,
                    d,
                    ((d * dkv) as f32).powf(-0.5),
                )?,
                k: linear(w, &format!("{p}.k"), inner, d, (d as f32).powf(-0.5))?,
                v: linear(w, &format!("{p}.v"), inner, d, (d as f32).powf(-0.5))?,
                o: linear(w, &format!("{p}.o"), d, inner, (inner as f32).powf(-0.5))?,
                relative: if rel {
                    Some(w.get(
                        &format!("{p}.relative_attention_bias.weight"),
                        &[cfg.relative_attention_num_buckets, h],
                        Some((d as f32).powf(-0.5)),
                    )?)
                } else {
                    None
                },
            })
        };
        let feed = |w: &mut Weights, p: &str| -> Result<FeedForward> {
            let (si, so) = ((d as f32).powf(-0.5), (ff as f32).powf(-0.5));
            Ok(if cfg.feed_forward_proj == "gated-gelu" {
                FeedForward::GatedGelu {
                    wi_0: linear(w, &format!("{p}.wi_0"), ff, d, si)?,
                    wi_1: linear(w, &format!("{p}.wi_1"), ff, d, si)?,
                    wo: linear(w, &format!("{p}.wo"), d, ff, so)?,
                }
            } else {
                FeedForward::Relu {
                    wi: linear(w, &format!("{p}.wi"), ff, d, si)?,
                    wo: linear(w, &format!("{p}.wo"), d, ff, so)?,
                }
            })
        };
        let stack = |w: &mut Weights, name: &str, layers: usize, dec: bool| -> Result<Stack> {
            let mut blocks = Vec::with_capacity(layers);
            for i in 0..layers {
                let p = format!("{name}.block.{i}.layer");
                let ln_self = w.get(&format!("{p}.0.layer_norm.weight"), &[d], None)?;
                let attn = attention(w, &format!("{p}.0.SelfAttention"), i == 0)?;
                let (cross, f) = if dec {
                    let ln = w.get(&format!("{p}.1.layer_norm.weight"), &[d], None)?;
                    let a = attention(w, &format!("{p}.1.EncDecAttention"), false)?;
                    (Some((ln, a)), 2)
                } else {
                    (None, 1)
                };
                let ln_ff = w.get(&format!("{p}.{f}.layer_norm.weight"), &[d], None)?;
                let ff = feed(w, &format!("{p}.{f}.DenseReluDense"))?;
                blocks.push(Block {
                    ln_self,
                    attn,
                    cross,
                    ln_ff,
                    ff,
                });
            }
            let final_ln = w.get(&format!("{name}.final_layer_norm.weight"), &[d], None)?;
            Ok(Stack { blocks, final_ln })
        };
        let encoder = stack(w, "encoder", cfg.num_layers, false)?;
        let dec_layers = cfg.num_decoder_layers.unwrap_or(cfg.num_layers);
        let decoder = stack(w, "decoder", dec_layers, true)?;
        // A checkpoint that holds lm_head.weight uses it (transformers 4,
        // untied); otherwise the head is the shared embedding. Scaling
        // follows the config (see `T5Config::scale_decoder_outputs`).
        let head = if w.has("lm_head.weight") && !(w.is_fresh() && cfg.tied()) {
            w.get("lm_head.weight", &[cfg.vocab_size, d], Some(1.0))?
        } else if cfg.tied() {
            shared_t.clone()
        } else {
            return Err(config(
                "tie_word_embeddings",
                "is false but the checkpoint has no lm_head.weight",
            ));
        };
        let scale = cfg.scaled().then(|| (d as f64).powf(-0.5));
        if let Some(extra) = w.unused().first() {
            return Err(config(
                "checkpoint",
                format!(
                    "holds tensor {extra:?}, which a T5ForConditionalGeneration of this config.json does not have"
                ),
            ));
        }
        Ok(T5 {
            lm_head: candle_nn::Linear::new(head, None),
            scale,
            shared,
            encoder,
            decoder,
            named: std::mem::take(&mut w.named),
            vars: std::mem::take(&mut w.vars),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &T5Config {
        &self.cfg
    }

    pub(crate) fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Writes `config.json` and `model.safetensors` (transformers' names)
    /// into `dir`, which is created if needed.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        write_json(&self.cfg, &dir.join("config.json"))?;
        save(&self.named, &dir.join("model.safetensors"))
    }

    /// The relative-position bias `(1, heads, q, k)` of queries at
    /// `q_start..q_start + q` over keys `0..k`.
    fn position_bias(
        &self,
        table: &Tensor,
        q_start: usize,
        q: usize,
        k: usize,
        bidirectional: bool,
    ) -> Result<Tensor> {
        let mut ids = Vec::with_capacity(q * k);
        for i in 0..q {
            for j in 0..k {
                let rel = j as i64 - (q_start + i) as i64;
                ids.push(relative_bucket(
                    rel,
                    bidirectional,
                    self.cfg.relative_attention_num_buckets,
                    self.cfg.relative_attention_max_distance,
                ));
            }
        }
        let ids = Tensor::from_vec(ids, q * k, &Device::Cpu)?;
        let h = self.cfg.num_heads;
        Ok(table
            .index_select(&ids, 0)?
            .reshape((q, k, h))?
            .permute((2, 0, 1))?
            .unsqueeze(0)?)
    }

    fn heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.cfg.num_heads, self.cfg.d_kv))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    fn attend(
        &self,
        a: &Attention,
        x: &Tensor,
        k: &Tensor,
        v: &Tensor,
        bias: &Tensor,
        (drop, site): (Option<(f32, u64)>, u64),
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let q = self.heads(&a.q.forward(x)?)?;
        let s = q.matmul(&k.t()?)?.broadcast_add(bias)?;
        let p = crate::decoder::softmax(&s, drop.is_some())?;
        let p = dropout(&p, drop, site)?;
        let y =
            p.matmul(v)?
                .transpose(1, 2)?
                .reshape((b, t, self.cfg.num_heads * self.cfg.d_kv))?;
        Ok(a.o.forward(&y)?)
    }

    fn feed_forward(
        &self,
        ff: &FeedForward,
        x: &Tensor,
        drop: Option<(f32, u64)>,
        site: u64,
    ) -> Result<Tensor> {
        Ok(match ff {
            FeedForward::Relu { wi, wo } => {
                wo.forward(&dropout(&wi.forward(x)?.relu()?, drop, site)?)?
            }
            FeedForward::GatedGelu { wi_0, wi_1, wo } => {
                let g = (wi_0.forward(x)?.gelu()? * wi_1.forward(x)?)?;
                wo.forward(&dropout(&g, drop, site)?)?
            }
        })
    }

    /// Encodes `ids` (row-major `rows × len`; rows shorter than `len` are
    /// padded by the caller, `lens[r]` real tokens from the left).
    pub fn encode(&self, ids: &[u32], lens: &[usize], drop: Option<(f32, u64)>) -> Result<Encoded> {
        let rows = lens.len();
        let len = row_len(ids, rows, self.cfg.vocab_size, "ids")?;
        if lens.iter().any(|&l| l == 0 || l > len) {
            return Err(config("lens", "each row needs 1..=len real tokens"));
        }
        let mut mask = Vec::with_capacity(rows * len);
        for &l in lens {
            mask.extend((0..len).map(|j| if j < l { 0f32 } else { -1e30 }));
        }
        let bias = Tensor::from_vec(mask, (rows, 1, 1, len), &Device::Cpu)?;
        let ids = Tensor::from_vec(ids.to_vec(), (rows, len), &Device::Cpu)?;
        let mut x = dropout(&self.shared.forward(&ids)?, drop, 100)?;
        let rel = self.encoder.blocks[0]
            .attn
            .relative
            .as_ref()
            .ok_or_else(|| config("encoder", "block 0 has no relative attention bias"))?;
        let full = self
            .position_bias(rel, 0, len, len, true)?
            .broadcast_add(&bias)?;
        let eps = self.cfg.layer_norm_epsilon;
        for (i, b) in self.encoder.blocks.iter().enumerate() {
            let site = 101 + 3 * i as u64;
            let a = rms_norm(&x, &b.ln_self, eps)?;
            let k = self.heads(&b.attn.k.forward(&a)?)?;
            let v = self.heads(&b.attn.v.forward(&a)?)?;
            let y = self.attend(&b.attn, &a, &k, &v, &full, (drop, site))?;
            x = (x + dropout(&y, drop, site + 1)?)?;
            let f = self.feed_forward(&b.ff, &rms_norm(&x, &b.ln_ff, eps)?, drop, site + 2)?;
            x = (x + dropout(&f, drop, site + 3000)?)?;
        }
        let hidden = dropout(&rms_norm(&x, &self.encoder.final_ln, eps)?, drop, 99)?;
        Ok(Encoded { hidden, bias })
    }

    /// Logits `(rows, t, vocab)` of decoder inputs `ids` (row-major `rows ×
    /// t`) at positions `cache.len()..`, attending to the cached positions
    /// and to the encoder output: `enc` (one row per decoder row) at the
    /// first step, the cache's copy (reordered with it) after. The cache
    /// grows by `t`.
    pub fn decode(
        &self,
        ids: &[u32],
        enc: &Encoded,
        cache: &mut T5Cache,
        drop: Option<(f32, u64)>,
    ) -> Result<Tensor> {
        let rows = match cache.self_kv.first() {
            Some((k, _)) => k.dim(0)?,
            None => enc.hidden.dim(0)?,
        };
        let t = row_len(ids, rows, self.cfg.vocab_size, "decoder ids")?;
        let start = cache.len;
        let keys = start + t;
        let ids = Tensor::from_vec(ids.to_vec(), (rows, t), &Device::Cpu)?;
        let mut x = dropout(&self.shared.forward(&ids)?, drop, 200)?;
        let rel = self.decoder.blocks[0]
            .attn
            .relative
            .as_ref()
            .ok_or_else(|| config("decoder", "block 0 has no relative attention bias"))?;
        let causal = causal_bias(start, t, -1e30)?;
        let self_bias = self
            .position_bias(rel, start, t, keys, false)?
            .broadcast_add(&causal)?;
        let fresh = cache.self_kv.is_empty();
        let eps = self.cfg.layer_norm_epsilon;
        for (i, b) in self.decoder.blocks.iter().enumerate() {
            let site = 201 + 5 * i as u64;
            let a = rms_norm(&x, &b.ln_self, eps)?;
            let (k, v) = (
                self.heads(&b.attn.k.forward(&a)?)?,
                self.heads(&b.attn.v.forward(&a)?)?,
            );
            let (k, v) = if fresh {
                (k, v)
            } else {
                let (pk, pv) = &cache.self_kv[i];
                (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?)
            };
            let y = self.attend(&b.attn, &a, &k, &v, &self_bias, (drop, site))?;
            if fresh {
                cache.self_kv.push((k, v));
            } else {
                cache.self_kv[i] = (k, v);
            }
            x = (x + dropout(&y, drop, site + 1)?)?;
            let (ln, ca) = b
                .cross
                .as_ref()
                .ok_or_else(|| config("decoder", "a block has no cross-attention"))?;
            let a = rms_norm(&x, ln, eps)?;
            if cache.cross_kv.len() <= i {
                let k = self.heads(&ca.k.forward(&enc.hidden)?)?;
                let v = self.heads(&ca.v.forward(&enc.hidden)?)?;
                cache.cross_kv.push((k, v));
                cache.cross_bias = Some(enc.bias.clone());
            }
            let (ck, cv) = &cache.cross_kv[i];
            let cb = cache.cross_bias.as_ref().unwrap_or(&enc.bias);
            let y = self.attend(ca, &a, ck, cv, cb, (drop, site + 2))?;
            x = (x + dropout(&y, drop, site + 3)?)?;
            let f = self.feed_forward(&b.ff, &rms_norm(&x, &b.ln_ff, eps)?, drop, site + 4)?;
            x = (x + dropout(&f, drop, site + 3000)?)?;
        }
        cache.len = keys;
        let mut y = dropout(&rms_norm(&x, &self.decoder.final_ln, eps)?, drop, 199)?;
        if let Some(s) = self.scale {
            y = (y * s)?;
        }
        Ok(self.lm_head.forward(&y)?)
    }

    /// The dtype of every weight (f32).
    pub fn dtype(&self) -> DType {
        DType::F32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every weight of a fresh T5 gets a non-zero gradient (see
    /// `decoder::tests::every_weight_gets_a_gradient`).
    #[test]
    fn every_weight_gets_a_gradient() {
        for (ff, tied) in [("relu", false), ("gated-gelu", true)] {
            let cfg = T5Config {
                vocab_size: 20,
                d_model: 8,
                d_kv: 4,
                d_ff: 16,
                num_layers: 2,
                num_decoder_layers: Some(1),
                num_heads: 2,
                relative_attention_num_buckets: 8,
                relative_attention_max_distance: 16,
                dropout_rate: 0.0,
                layer_norm_epsilon: 1e-6,
                feed_forward_proj: ff.into(),
                tie_word_embeddings: Some(tied),
                scale_decoder_outputs: Some(tied),
                pad_token_id: Some(0),
                eos_token_id: None,
                decoder_start_token_id: Some(0),
            };
            let m = T5::fresh(cfg, 5).unwrap();
            let drop = Some((0.1, 3));
            let enc = m.encode(&[3, 4, 5, 6, 7, 8, 0, 0], &[4, 2], drop).unwrap();
            let logits = m
                .decode(&[0, 9, 0, 11], &enc, &mut T5Cache::default(), drop)
                .unwrap()
                .reshape((4, 20))
                .unwrap();
            let (loss, _) =
                crate::decoder::masked_nll(logits, vec![9, 10, 11, 12], vec![1.0; 4], None)
                    .unwrap();
            crate::decoder::tests::assert_every_var_learns(m.vars(), &loss, ff);
        }
    }
}
