//! A small decoder-only transformer in candle, with a KV cache, used two
//! ways: over SID tokens (the generative recommender, [`SidModel`]) and
//! over item ids (the SASRec baseline, [`ItemModel`]).
//!
//! [`SidModel`]: crate::SidModel
//! [`ItemModel`]: crate::ItemModel
//!
//! Decoder-only rather than TIGER's encoder-decoder: the history and the
//! target ID are one token stream, so one causal model and one KV cache
//! serve both training (every position predicts the next token, i.e.
//! every prefix of the history is a training example) and decoding (the
//! history is encoded once per user; each beam step feeds one token per
//! beam). GRID and MiniOneRec also decode with decoder-only models.

use crate::batch::keep_rows;
use candle_core::{D, Device, IndexOp, Result, Tensor, Var};
use candle_nn::{AdamW, Embedding, LayerNorm, Linear, Module, Optimizer, ParamsAdamW};

/// Model shape.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Input and output vocabulary.
    pub vocab: usize,
    /// Longest token sequence (positions).
    pub max_len: usize,
    /// Tokens per item (`L`): position `p ≥ 1` is token `(p − 1) mod L` of
    /// item `(p − 1) / L`; position 0 is the BOS token.
    pub per_item: usize,
    /// Width.
    pub d: usize,
    /// Attention heads.
    pub heads: usize,
    /// Blocks.
    pub layers: usize,
    /// Width of the feed-forward layer.
    pub d_ff: usize,
    /// Output logits are the final state times the input token embeddings
    /// (SASRec's tying) instead of a separate head.
    pub tied: bool,
    /// GPT-style inputs: each position reads its own token and its
    /// absolute position; no item sums, level embeddings or recency bias.
    pub plain: bool,
}

impl Shape {
    /// The farthest item distance with its own attention bias (farther
    /// keys share it).
    fn max_back(&self) -> usize {
        (self.max_len - 1).div_ceil(self.per_item)
    }
}

/// A batch of model inputs for positions `start..start + t` of `rows`
/// sequences (see [`Decoder::inputs`]).
pub struct Inputs {
    /// What each position reads (see [`Tokens`]).
    tokens: Tokens,
    /// `(rows · t)`: the item whose content a position reads (0 if none).
    items: Tensor,
    /// `(rows, t, 1)`: 1 where a position reads its item's content.
    complete: Tensor,
    /// Training only: dropout rate and the seed of its masks.
    pub(crate) dropout: Option<(f32, u64)>,
    /// Training only: the flat positions (`row · t + i`) whose logits to
    /// return, as `(n, vocab)`, instead of all `(rows, t, vocab)`.
    pub(crate) rows_out: Option<Tensor>,
    /// Decoding one token per beam: the users' history keys and values,
    /// shared by their beams instead of copied per beam (the cache then
    /// holds only the generated tokens).
    pub(crate) shared: Option<SharedHistory>,
}

/// The token part of [`Inputs`].
enum Tokens {
    /// `ids` (`rows × t × L`, row-major): the tokens of each position's
    /// item up to its own; `present`: 1 where `ids` holds a real token. A
    /// position reads the sum of its present tokens' embeddings. Kept as
    /// plain vectors: inference sums them directly, training makes tensors.
    Ids {
        ids: Vec<u32>,
        present: Vec<f32>,
        shape: (usize, usize, usize),
    },
    /// `(rows, t, d)`: those sums, already made (see
    /// [`Decoder::token_sums`]).
    Summed(Tensor),
}

impl Tokens {
    /// Token ids with their presence, `shape` = `(rows, t, L)`.
    fn ids(ids: Vec<u32>, present: Vec<f32>, shape: (usize, usize, usize)) -> Result<Tokens> {
        let n = shape.0 * shape.1 * shape.2;
        if ids.len() != n || present.len() != n {
            return Err(candle_core::Error::Msg(format!(
                "{} ids and {} presence flags for {shape:?} positions × tokens",
                ids.len(),
                present.len()
            )));
        }
        Ok(Tokens::Ids {
            ids,
            present,
            shape,
        })
    }

    /// Rows and positions per row.
    fn rows_t(&self) -> Result<(usize, usize)> {
        match self {
            Tokens::Ids { shape, .. } => Ok((shape.0, shape.1)),
            Tokens::Summed(x) => x.dims3().map(|(r, t, _)| (r, t)),
        }
    }
}

/// The history part of a beam search's KV cache, one row per user, and
/// how beams map onto users (see [`Inputs::shared`]).
#[derive(Clone)]
pub(crate) struct SharedHistory {
    /// Per layer: keys and values `(users, heads, n, d / heads)`.
    pub kv: Cache,
    /// `users · per_user` rows: the beam in each user's slot (padding: 0).
    pub to_padded: Tensor,
    /// Per beam: its row among `users · per_user`.
    pub from_padded: Tensor,
    pub users: usize,
    pub per_user: usize,
}

impl SharedHistory {
    /// The layout of beams whose users are `queries` (ascending, beams of
    /// one user contiguous) over `kv` of `users` rows.
    pub(crate) fn new(kv: Cache, queries: &[u32], users: usize) -> Result<SharedHistory> {
        let mut count = vec![0usize; users];
        for &q in queries {
            count[q as usize] += 1;
        }
        let per_user = count.iter().copied().max().unwrap_or(1).max(1);
        let mut to = vec![0u32; users * per_user];
        let mut from = Vec::with_capacity(queries.len());
        let mut seen = vec![0usize; users];
        for (b, &q) in queries.iter().enumerate() {
            let q = q as usize;
            let slot = q * per_user + seen[q];
            seen[q] += 1;
            to[slot] = b as u32;
            from.push(slot as u32);
        }
        Ok(SharedHistory {
            kv,
            to_padded: Tensor::from_vec(to, users * per_user, &Device::Cpu)?,
            from_padded: Tensor::from_vec(from, queries.len(), &Device::Cpu)?,
            users,
            per_user,
        })
    }

    /// Per-beam rows `(beams, …)` → the padded per-user layout
    /// `(users, heads, per_user, last)`; `x` is `(beams, heads, last)`.
    fn to_users(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h, last) = x.dims3()?;
        x.index_select(&self.to_padded, 0)?
            .reshape((self.users, self.per_user, h, last))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// The padded per-user layout `(users, heads, per_user, last)` → per
    /// beam `(beams, heads, 1, last)`.
    fn to_beams(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h, _, last) = x.dims4()?;
        x.transpose(1, 2)?
            .reshape((self.users * self.per_user, h, last))?
            .index_select(&self.from_padded, 0)?
            .unsqueeze(2)
    }
}

/// Layer norm: candle's fused kernel at inference; in training, plain
/// tensor operations, because the fused kernel has no backward pass
/// (`apply_op3_no_bwd`): gradients would stop at every norm.
pub(crate) fn norm(ln: &LayerNorm, x: &Tensor, train: bool) -> Result<Tensor> {
    if !train {
        return ln.forward(x);
    }
    let d = x.dim(D::Minus1)? as f64;
    let mean = (x.sum_keepdim(D::Minus1)? / d)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = (xc.sqr()?.sum_keepdim(D::Minus1)? / d)?;
    let xn = xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
    let y = xn.broadcast_mul(ln.weight())?;
    match ln.bias() {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// Softmax over the last axis: candle's fused kernel at inference; in
/// training the differentiable one (the fused kernel has no backward
/// pass: gradients would never reach the queries and keys).
pub(crate) fn softmax(x: &Tensor, train: bool) -> Result<Tensor> {
    if train {
        candle_nn::ops::softmax(x, D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

/// Inverted dropout with masks from semid's seeded generator (candle's
/// own dropout draws from an unseedable generator): site `site` of a step.
pub(crate) fn dropout(x: &Tensor, drop: Option<(f32, u64)>, site: u64) -> Result<Tensor> {
    match drop {
        Some((p, seed)) if p > 0.0 => {
            let u = semid::synthetic::uniform(x.elem_count(), 0.0, 1.0, seed.wrapping_add(site));
            let keep = 1.0 / (1.0 - p);
            let m: Vec<f32> = u.iter().map(|&v| if v < p { 0.0 } else { keep }).collect();
            x.mul(&Tensor::from_vec(m, x.shape(), x.device())?)
        }
        _ => Ok(x.clone()),
    }
}

struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    ln2: LayerNorm,
    ff1: Linear,
    ff2: Linear,
}

/// Per-layer keys and values of the tokens seen so far:
/// `(rows, heads, tokens, d / heads)` each.
pub type Cache = Vec<(Tensor, Tensor)>;

/// The transformer.
pub struct Decoder {
    /// Its shape.
    pub shape: Shape,
    tok: Embedding,
    /// Item index of a position (BOS: 0).
    pos: Embedding,
    /// Token level of a position (BOS: `L`); not in plain mode.
    level: Option<Embedding>,
    /// Attention bias `(items back, heads)`.
    recency: Option<Embedding>,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    head: Linear,
    /// Item content embeddings `(items, dim)` (not trained) and their
    /// projection to the model width.
    content: Option<(Tensor, Linear)>,
    vars: Vec<Var>,
    /// The name of every var (for model files).
    names: Vec<String>,
}

impl Decoder {
    /// Seeded initialisation (from semid's generator): uniform weights of
    /// standard deviation 0.02, zero biases, unit layer-norm gains.
    /// `content` (row-major `items × dim`), when given, is each item's
    /// content embedding: the last position of every complete item reads it
    /// through a trained projection.
    pub fn new(shape: Shape, content: Option<(&[f32], usize)>, seed: u64) -> Result<Decoder> {
        let mut init = Init {
            vars: Vec::new(),
            names: Vec::new(),
            stream: seed.wrapping_mul(1000),
        };
        let d = shape.d;
        let tok = Embedding::new(init.weight("tok", &[shape.vocab, d])?, d);
        let items = if shape.plain {
            shape.max_len
        } else {
            (shape.max_len - 1).div_ceil(shape.per_item) + 1
        };
        let pos = Embedding::new(init.weight("pos", &[items, d])?, d);
        let (level, recency) = if shape.plain {
            (None, None)
        } else {
            (
                Some(Embedding::new(
                    init.weight("level", &[shape.per_item + 1, d])?,
                    d,
                )),
                Some(Embedding::new(
                    init.weight("recency", &[shape.max_back() + 1, shape.heads])?,
                    shape.heads,
                )),
            )
        };
        let mut blocks = Vec::new();
        for i in 0..shape.layers {
            let b = |n: &str| format!("blocks.{i}.{n}");
            blocks.push(Block {
                ln1: init.layer_norm(&b("ln1"), d)?,
                qkv: init.linear(&b("qkv"), d, 3 * d)?,
                proj: init.linear(&b("proj"), d, d)?,
                ln2: init.layer_norm(&b("ln2"), d)?,
                ff1: init.linear(&b("ff1"), d, shape.d_ff)?,
                ff2: init.linear(&b("ff2"), shape.d_ff, d)?,
            });
        }
        let ln_f = init.layer_norm("ln_f", d)?;
        let head = if shape.tied {
            Linear::new(tok.embeddings().clone(), None)
        } else {
            init.linear("head", d, shape.vocab)?
        };
        let content = match content {
            Some((emb, dim)) => {
                let table = Tensor::from_slice(emb, (emb.len() / dim, dim), &Device::Cpu)?;
                Some((table, init.linear("content", dim, d)?))
            }
            None => None,
        };
        Ok(Decoder {
            shape,
            tok,
            pos,
            level,
            recency,
            blocks,
            ln_f,
            head,
            content,
            vars: init.vars,
            names: init.names,
        })
    }

    /// The trainable tensors.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Every weight by name.
    pub(crate) fn named(&self) -> Vec<(String, Tensor)> {
        self.names
            .iter()
            .cloned()
            .zip(self.vars.iter().map(|v| v.as_tensor().clone()))
            .collect()
    }

    /// Sets every weight from `tensors` by name; a missing or misshapen
    /// tensor is named in the error (`String`).
    pub(crate) fn set_named(
        &self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> std::result::Result<(), String> {
        for (name, var) in self.names.iter().zip(&self.vars) {
            let t = tensors
                .get(name)
                .ok_or_else(|| format!("tensor {name:?} is missing (expected {:?})", var.dims()))?;
            if t.dims() != var.dims() {
                return Err(format!(
                    "tensor {name:?} has shape {:?}; the config asks for {:?}",
                    t.dims(),
                    var.dims()
                ));
            }
            var.set(t).map_err(|e| e.to_string())?;
        }
        if let Some(extra) = tensors.keys().find(|k| !self.names.contains(k)) {
            return Err(format!(
                "holds tensor {extra:?}, which this model does not have"
            ));
        }
        Ok(())
    }

    /// The inputs of positions `start..start + t` of token sequences
    /// `seqs` (each from position 0; shorter ones are padded): at every
    /// position, the tokens of its item up to and including its own, so
    /// that an item's last position sees the whole item (as an item-id
    /// model sees its item) and a partly generated item its prefix.
    /// `items[r]` lists the items of `seqs[r]` (the complete ones at
    /// least); an item's last position also reads its content embedding.
    pub fn inputs(
        &self,
        seqs: &[&[u32]],
        items: &[&[u32]],
        start: usize,
        t: usize,
    ) -> Result<Inputs> {
        let l = self.shape.per_item;
        let (mut ids, mut present) = (Vec::new(), Vec::new());
        let (mut which, mut complete) = (Vec::new(), Vec::new());
        for (s, its) in seqs.iter().zip(items) {
            for p in start..start + t {
                let first = if p == 0 || self.shape.plain {
                    p
                } else {
                    1 + (p - 1) / l * l
                };
                for j in 0..l {
                    let q = first + j;
                    let real = q <= p && q < s.len();
                    ids.push(if real { s[q] } else { 0 });
                    present.push(if real { 1f32 } else { 0.0 });
                }
                // Position p ≥ 1 is token (p − 1) mod L of item (p − 1) / L.
                let item = (p >= 1 && (p - 1) % l == l - 1 && p < s.len())
                    .then(|| its.get((p - 1) / l))
                    .flatten();
                which.push(item.copied().unwrap_or(0));
                complete.push(if item.is_some() { 1f32 } else { 0.0 });
            }
        }
        let (dev, rows) = (Device::Cpu, seqs.len());
        Ok(Inputs {
            tokens: Tokens::ids(ids, present, (rows, t, l))?,
            items: Tensor::from_vec(which, rows * t, &dev)?,
            complete: Tensor::from_vec(complete, (rows, t, 1), &dev)?,
            dropout: None,
            rows_out: None,
            shared: None,
        })
    }

    /// Inputs of `t` positions per row where each position reads up to
    /// `width` tokens at once (their embeddings summed): `ids` and
    /// `present` (1 for a real token) are `rows × t × width`, row-major.
    /// No content embeddings. Used by [`crate::ParallelModel`], whose
    /// positions are items read as their whole code tuples.
    pub(crate) fn inputs_of(
        &self,
        ids: Vec<u32>,
        present: Vec<f32>,
        shape: (usize, usize, usize),
    ) -> Result<Inputs> {
        Self::inputs_from(Tokens::ids(ids, present, shape)?)
    }

    /// Each row's summed token embeddings, `(n, d)`, for `ids` and
    /// `present` of `n × width` (row-major) as in [`Decoder::inputs_of`]:
    /// made once per item, then read by [`Decoder::inputs_summed`]
    /// instead of summing every position's tokens again.
    pub(crate) fn token_sums(&self, ids: &[u32], present: &[f32], width: usize) -> Result<Tensor> {
        // A plain loop: candle's gather, multiply and sum over `(n, width,
        // d)` takes ~15× longer here.
        let d = self.shape.d;
        let table = self.tok.embeddings().flatten_all()?.to_vec1::<f32>()?;
        let vocab = table.len() / d;
        let n = ids.len() / width.max(1);
        let mut out = vec![0f32; n * d];
        for ((o, ids), present) in out
            .chunks_exact_mut(d)
            .zip(ids.chunks_exact(width))
            .zip(present.chunks_exact(width))
        {
            for (&id, &w) in ids.iter().zip(present) {
                let id = id as usize;
                if id >= vocab {
                    return Err(candle_core::Error::Msg(format!(
                        "token {id} ≥ vocabulary {vocab}"
                    )));
                }
                let row = &table[id * d..(id + 1) * d];
                for (o, &e) in o.iter_mut().zip(row) {
                    *o += w * e;
                }
            }
        }
        Tensor::from_vec(out, (n, d), &Device::Cpu)
    }

    /// Inputs whose positions read `sums` `(rows, t, d)`, rows of
    /// [`Decoder::token_sums`]. No content embeddings.
    pub(crate) fn inputs_summed(&self, sums: Tensor) -> Result<Inputs> {
        Self::inputs_from(Tokens::Summed(sums))
    }

    /// Inputs of `tokens`, without content embeddings.
    fn inputs_from(tokens: Tokens) -> Result<Inputs> {
        let dev = Device::Cpu;
        let (rows, t) = tokens.rows_t()?;
        Ok(Inputs {
            tokens,
            items: Tensor::zeros(rows * t, candle_core::DType::U32, &dev)?,
            complete: Tensor::zeros((rows, t, 1), candle_core::DType::F32, &dev)?,
            dropout: None,
            rows_out: None,
            shared: None,
        })
    }

    /// Logits `(rows, t, vocab)` of the [`Decoder::inputs`] of positions
    /// `start..start + t`, after the positions held in `cache` (which grows
    /// by `t`). Attention is causal.
    pub fn forward(&self, inputs: &Inputs, start: usize, cache: &mut Cache) -> Result<Tensor> {
        let (rows, t) = inputs.tokens.rows_t()?;
        let dev = Device::Cpu;
        let (d, h) = (self.shape.d, self.shape.heads);
        let dh = d / h;
        let l = self.shape.per_item;
        let (mut item, mut lev) = (Vec::with_capacity(t), Vec::with_capacity(t));
        for p in start..start + t {
            item.push(if self.shape.plain {
                p as u32
            } else if p == 0 {
                0
            } else {
                ((p - 1) / l) as u32
            });
            lev.push(if p == 0 {
                l as u32
            } else {
                ((p - 1) % l) as u32
            });
        }
        let item = Tensor::from_vec(item, t, &dev)?;
        let lev = Tensor::from_vec(lev, t, &dev)?;
        let where_ = if self.shape.plain {
            self.pos.forward(&item)?
        } else {
            match &self.level {
                Some(level) => (self.pos.forward(&item)? + level.forward(&lev)?)?,
                None => self.pos.forward(&item)?,
            }
        };
        let drop = inputs.dropout;
        let train = drop.is_some();
        let mut tok = match &inputs.tokens {
            Tokens::Ids {
                ids,
                present,
                shape,
            } if train => {
                let (r, t, w) = *shape;
                let ids = Tensor::from_slice(ids, *shape, &dev)?;
                let present = Tensor::from_slice(present, (r, t, w, 1), &dev)?;
                self.tok.forward(&ids)?.broadcast_mul(&present)?.sum(2)?
            }
            // Inference: the same sums without a graph, much faster.
            Tokens::Ids {
                ids,
                present,
                shape,
            } => self
                .token_sums(ids, present, shape.2)?
                .reshape((rows, t, self.shape.d))?,
            Tokens::Summed(x) => x.clone(),
        };
        if let Some((table, proj)) = &self.content {
            let rowsc = table.index_select(&inputs.items, 0)?;
            let c = proj.forward(&rowsc)?.reshape((rows, t, d))?;
            tok = (tok + c.broadcast_mul(&inputs.complete)?)?;
        }
        let mut x = dropout(&tok.broadcast_add(&where_)?, drop, 0)?;
        // Token i (absolute start + i) sees keys 0..=start + i, with a
        // learned per-head bias by how many items back the key is
        // (T5-style relative attention: "the last item", "the one before").
        let keys = start + t;
        let slot = |p: usize| if p == 0 { 0 } else { (p - 1) / l + 1 };
        let (mut dist, mut causal) = (Vec::with_capacity(t * keys), Vec::with_capacity(t * keys));
        for i in 0..t {
            let q = start + i;
            for j in 0..keys {
                let back = if self.shape.plain {
                    0
                } else {
                    slot(q).saturating_sub(slot(j)).min(self.shape.max_back())
                };
                dist.push(back as u32);
                causal.push(if j <= q { 0f32 } else { f32::NEG_INFINITY });
            }
        }
        let dist = Tensor::from_vec(dist, t * keys, &dev)?;
        let causal = Tensor::from_vec(causal, (t, keys), &dev)?;
        let bias = match &self.recency {
            Some(r) => r
                .forward(&dist)?
                .reshape((t, keys, h))?
                .permute((2, 0, 1))?
                .broadcast_add(&causal)?
                .contiguous()?,
            None => causal.unsqueeze(0)?,
        };
        if cache.len() < self.blocks.len() {
            cache.clear();
        }
        for (l, b) in self.blocks.iter().enumerate() {
            let a = norm(&b.ln1, &x, train)?;
            let qkv = b.qkv.forward(&a)?.reshape((rows, t, 3, h, dh))?;
            let q = qkv.i((.., .., 0))?.transpose(1, 2)?.contiguous()?;
            let k = qkv.i((.., .., 1))?.transpose(1, 2)?.contiguous()?;
            let v = qkv.i((.., .., 2))?.transpose(1, 2)?.contiguous()?;
            let (k, v) = if cache.len() > l {
                let (pk, pv) = &cache[l];
                (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?)
            } else {
                (k, v)
            };
            let y = match &inputs.shared {
                None => {
                    let att = (q.matmul(&k.t()?)? / (dh as f64).sqrt())?.broadcast_add(&bias)?;
                    let att = softmax(&att, train)?;
                    att.matmul(&v)?
                }
                Some(sh) => {
                    // One query token per beam: scores against its user's
                    // history (shared) and its own generated tokens.
                    let (hk, hv) = &sh.kv[l];
                    let n = hk.dim(2)?;
                    let q = (q / (dh as f64).sqrt())?;
                    let qu = sh.to_users(&q.squeeze(2)?)?;
                    let s_hist = sh.to_beams(&qu.matmul(&hk.t()?)?)?;
                    let s_gen = q.matmul(&k.t()?)?;
                    let att = Tensor::cat(&[s_hist, s_gen], 3)?.broadcast_add(&bias)?;
                    let att = softmax(&att, train)?;
                    let p_hist = sh.to_users(&att.narrow(3, 0, n)?.squeeze(2)?.contiguous()?)?;
                    let y_hist = sh.to_beams(&p_hist.matmul(hv)?)?;
                    let k_len = k.dim(2)?;
                    (y_hist + att.narrow(3, n, k_len)?.contiguous()?.matmul(&v)?)?
                }
            };
            let y = y.transpose(1, 2)?.reshape((rows, t, d))?;
            if cache.len() > l {
                cache[l] = (k, v);
            } else {
                cache.push((k, v));
            }
            x = (x + dropout(&b.proj.forward(&y)?, drop, 2 * l as u64 + 1)?)?;
            let f = b
                .ff2
                .forward(&b.ff1.forward(&norm(&b.ln2, &x, train)?)?.gelu_erf()?)?;
            x = (x + dropout(&f, drop, 2 * l as u64 + 2)?)?;
        }
        let h = norm(&self.ln_f, &x, train)?;
        match inputs.rows_out.as_ref() {
            // Training: the head only at the predicted positions.
            Some(idx) => self
                .head
                .forward(&h.reshape((rows * t, d))?.index_select(idx, 0)?),
            None => self.head.forward(&h),
        }
    }

    /// Keeps the cache rows of `parents` (a beam step's reordering).
    pub fn reorder(cache: &mut Cache, parents: &[u32]) -> Result<()> {
        keep_rows(cache.iter_mut().flat_map(|(k, v)| [k, v]), parents)
    }
}

/// Seeded parameters (candle's CPU generator cannot be seeded).
struct Init {
    vars: Vec<Var>,
    names: Vec<String>,
    stream: u64,
}

impl Init {
    fn var(&mut self, name: String, t: Tensor) -> Result<Tensor> {
        let var = Var::from_tensor(&t)?;
        self.vars.push(var.clone());
        self.names.push(name);
        Ok(var.as_tensor().clone())
    }

    /// Uniform weights of standard deviation 0.02.
    fn weight(&mut self, name: &str, dims: &[usize]) -> Result<Tensor> {
        self.stream += 1;
        let a = 0.02 * 3f32.sqrt();
        let v = semid::synthetic::uniform(dims.iter().product(), -a, a, self.stream);
        self.var(name.into(), Tensor::from_vec(v, dims, &Device::Cpu)?)
    }

    fn full(&mut self, name: String, n: usize, v: f32) -> Result<Tensor> {
        self.var(name, Tensor::full(v, n, &Device::Cpu)?)
    }

    fn linear(&mut self, name: &str, i: usize, o: usize) -> Result<Linear> {
        let w = self.weight(&format!("{name}.weight"), &[o, i])?;
        let b = self.full(format!("{name}.bias"), o, 0.0)?;
        Ok(Linear::new(w, Some(b)))
    }

    fn layer_norm(&mut self, name: &str, d: usize) -> Result<LayerNorm> {
        let w = self.full(format!("{name}.weight"), d, 1.0)?;
        let b = self.full(format!("{name}.bias"), d, 0.0)?;
        Ok(LayerNorm::new(w, b, 1e-5))
    }
}

/// Mean negative log-likelihood of `targets` under `logits` `(n, vocab)`
/// over the rows where `weights` is 1, with `allowed` (0 or −∞ per row and
/// token) added to the logits first when given. Returns the loss and the
/// count of weighted rows.
pub(crate) fn masked_nll(
    logits: Tensor,
    targets: Vec<u32>,
    weights: Vec<f32>,
    allowed: Option<Vec<f32>>,
) -> Result<(Tensor, usize)> {
    let (n, vocab) = logits.dims2()?;
    let dev = Device::Cpu;
    let count = weights.iter().filter(|&&w| w > 0.0).count();
    let logits = match allowed {
        Some(a) => (logits + Tensor::from_vec(a, (n, vocab), &dev)?)?,
        None => logits,
    };
    let lp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let picked = lp
        .gather(&Tensor::from_vec(targets, (n, 1), &dev)?, 1)?
        .squeeze(1)?;
    let w = Tensor::from_vec(weights, n, &dev)?;
    let loss = (picked.mul(&w)?.sum_all()?.neg()? / count.max(1) as f64)?;
    Ok((loss, count))
}

impl Decoder {
    /// Teacher-forced loss on a batch of token sequences (and the items of
    /// each, see [`Decoder::inputs`]): position `i` of row `r` predicts
    /// token `i + 1` when `i ≥ from[r]`; only those positions go through
    /// the output layer. `allowed`, when given, is the additive mask of
    /// those positions in order (row by row, `i` ascending), `vocab` each.
    pub(crate) fn loss(
        &self,
        batch: &[&[u32]],
        items: &[&[u32]],
        from: &[usize],
        allowed: Option<Vec<f32>>,
        drop: Option<(f32, u64)>,
    ) -> Result<(Tensor, usize)> {
        let t = batch.iter().map(|s| s.len()).max().unwrap_or(1) - 1;
        let (mut tgt, mut at) = (Vec::new(), Vec::new());
        for (r, (s, &f)) in batch.iter().zip(from).enumerate() {
            for i in f..s.len().saturating_sub(1) {
                tgt.push(s[i + 1]);
                at.push((r * t + i) as u32);
            }
        }
        let n = tgt.len();
        let mut inputs = self.inputs(batch, items, 0, t)?;
        inputs.dropout = drop;
        inputs.rows_out = Some(Tensor::from_vec(at, n, &Device::Cpu)?);
        let logits = self.forward(&inputs, 0, &mut Vec::new())?;
        masked_nll(logits, tgt, vec![1.0; n], allowed)
    }
}

/// AdamW over a model's variables, with a seeded dropout stream per step.
pub(crate) struct Trainer {
    opt: AdamW,
    dropout: f32,
    steps: u64,
    seed: u64,
}

impl Trainer {
    /// AdamW (decoupled weight decay on every weight) over `vars`.
    pub fn new(
        vars: &[Var],
        lr: f64,
        weight_decay: f64,
        dropout: f32,
        seed: u64,
    ) -> Result<Trainer> {
        let params = ParamsAdamW {
            lr,
            weight_decay,
            ..ParamsAdamW::default()
        };
        Ok(Trainer {
            opt: AdamW::new(vars.to_vec(), params)?,
            dropout,
            steps: 0,
            seed,
        })
    }

    /// Sets the learning rate (a schedule).
    pub fn set_lr(&mut self, lr: f64) {
        self.opt.set_learning_rate(lr);
    }

    /// The dropout rate and mask seed of the next step.
    pub fn next_dropout(&mut self) -> Option<(f32, u64)> {
        self.steps += 1;
        Some((self.dropout, (self.seed << 32) ^ (self.steps << 8)))
    }

    /// Back-propagates `loss` and updates the weights.
    pub fn step(&mut self, loss: &Tensor) -> Result<f32> {
        self.opt.backward_step(loss)?;
        loss.to_scalar::<f32>()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 12-token, 2-tokens-per-item, width-8 decoder's shape.
    fn tiny(plain: bool) -> Shape {
        Shape {
            vocab: 12,
            max_len: 9,
            per_item: 2,
            d: 8,
            heads: 2,
            layers: 2,
            d_ff: 16,
            tied: false,
            plain,
        }
    }

    /// Every weight gets a non-zero gradient (candle's fused layer norm
    /// and softmax have no backward pass; training once ran through them
    /// and only the output layer learned).
    #[test]
    fn every_weight_gets_a_gradient() {
        for plain in [false, true] {
            let shape = tiny(plain);
            let content: Vec<f32> = (0..5 * 3).map(|i| (i as f32 * 0.37).sin()).collect();
            let m = Decoder::new(shape, Some((&content, 3)), 3).unwrap();
            let seqs: Vec<&[u32]> = vec![&[11, 0, 5, 1, 6, 2, 7], &[11, 3, 8, 4, 9]];
            let items: Vec<&[u32]> = vec![&[0, 1, 2], &[3, 4]];
            let (loss, n) = m
                .loss(&seqs, &items, &[0, 2], None, Some((0.1, 9)))
                .unwrap();
            assert_eq!(n, 6 + 2);
            assert_every_var_learns(m.vars(), &loss, &format!("plain {plain}"));
        }
    }

    /// Inference reads the token sums without a graph and uses the fused
    /// norm and softmax; training builds them with differentiable ops. Both
    /// give the same logits.
    #[test]
    fn inference_path_equals_the_training_graph() {
        let m = Decoder::new(tiny(false), None, 5).unwrap();
        let seqs: Vec<&[u32]> = vec![&[11, 0, 5, 1, 6, 2, 7], &[11, 3, 8, 4, 9, 0, 5]];
        let items: Vec<&[u32]> = vec![&[0, 1, 2], &[3, 4, 0]];
        let mut x = m.inputs(&seqs, &items, 0, 7).unwrap();
        let served = m.forward(&x, 0, &mut Vec::new()).unwrap();
        x.dropout = Some((0.0, 1));
        let trained = m.forward(&x, 0, &mut Vec::new()).unwrap();
        let diff = (served - trained)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "largest difference {diff}");
        // Sums made once (what ParallelModel does) read the same.
        let sums = m
            .token_sums(&[11, 0, 0, 5, 7, 8], &[1.0, 0.0, 1.0, 1.0, 1.0, 0.5], 2)
            .unwrap();
        let e = m.tok.embeddings();
        let want = Tensor::stack(
            &[
                e.get(11).unwrap(),
                (e.get(0).unwrap() + e.get(5).unwrap()).unwrap(),
                (e.get(7).unwrap() + (e.get(8).unwrap() * 0.5).unwrap()).unwrap(),
            ],
            0,
        )
        .unwrap();
        let diff = (sums - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
        assert!(m.token_sums(&[12, 0], &[1.0, 1.0], 2).is_err());
    }

    /// Panics naming the first of `vars` that gets no gradient, or a zero
    /// one, from `loss`.
    pub(crate) fn assert_every_var_learns(vars: &[Var], loss: &Tensor, label: &str) {
        let grads = loss.backward().unwrap();
        for (i, v) in vars.iter().enumerate() {
            let g = grads
                .get(v)
                .unwrap_or_else(|| panic!("{label}: var {i} has no gradient"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0,
                "{label}: var {i} {:?} has a zero gradient",
                v.dims()
            );
        }
    }
}
