//! The two trained models: [`SidModel`] (generative: emits semantic IDs,
//! decoded by a trie-constrained beam search) and [`ItemModel`] (SASRec:
//! a full softmax over item ids).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use candle_core::{D, Tensor};
use semid::SemanticIndex;
use semid::decode::{BeamSearch, Beams, ItemFilter, Scorer};
use semid::hits::NO_ITEM;
use semid::seq::LeaveOneOut;
use semid::sid::{TokenMap, Trie};

use crate::decoder::{Cache, Decoder, Shape, SharedHistory, masked_nll};
use crate::error::{Error, Result, config};
use crate::parallel::last_positions;
use crate::t5::{Encoded, T5, T5Cache, T5Config};
use crate::train::{
    EpochReport, Example, TrainConfig, TrainReport, batch_parts, fit, window_examples,
};
use crate::weights::{Weights, read_json, save, write_json};

/// The model description file of every saved model.
pub(crate) const META: &str = "semid-gen.json";
/// Its format version; a change of layout bumps it.
const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
pub(crate) struct Meta {
    format: String,
    version: u32,
    kind: String,
    pub(crate) config: ModelConfig,
    pub(crate) n_items: usize,
    content_dim: Option<usize>,
    /// [`crate::ParallelModel`] only: codebooks per item and codes per
    /// codebook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) code_shape: Option<(usize, usize)>,
}

impl Meta {
    pub(crate) fn new(
        kind: &str,
        cfg: &ModelConfig,
        n_items: usize,
        content_dim: Option<usize>,
    ) -> Meta {
        Meta {
            format: "semid-gen".into(),
            version: FORMAT_VERSION,
            kind: kind.into(),
            config: cfg.clone(),
            n_items,
            content_dim,
            code_shape: None,
        }
    }

    pub(crate) fn read(dir: &Path, kind: &str) -> Result<Meta> {
        let path = dir.join(META);
        let m: Meta = read_json(&path)?;
        let bad = |reason: String| Error::File {
            path: path.clone(),
            reason,
        };
        if m.format != "semid-gen" {
            return Err(bad(format!("format is {:?}, not \"semid-gen\"", m.format)));
        }
        if m.version > FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is newer than this build reads ({FORMAT_VERSION}); upgrade semid-gen",
                m.version
            )));
        }
        if m.kind != kind {
            return Err(bad(format!(
                "holds a {:?} model; load it with the matching type",
                m.kind
            )));
        }
        m.config.validate().map_err(|e| bad(e.to_string()))?;
        Ok(m)
    }
}

pub(crate) fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn check_content_dim(dir: &Path, saved: Option<usize>, given: Option<Content<'_>>) -> Result<()> {
    let given = given.map(|c| c.dim);
    if saved != given {
        return Err(Error::File {
            path: dir.join(META),
            reason: format!(
                "the model was trained with content embeddings of dimension {saved:?}; {given:?} were given"
            ),
        });
    }
    Ok(())
}

pub(crate) fn load_named(d: &Decoder, dir: &Path) -> Result<()> {
    let path = dir.join("model.safetensors");
    let w = Weights::read(&path)?;
    d.set_named(w.tensors())
        .map_err(|reason| Error::File { path, reason })
}

/// Users decoded together in one batched beam search.
pub(crate) const USERS_PER_SEARCH: usize = 128;

/// The generative model's architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    /// One causal stack over BOS, the history's ID tokens and the next
    /// ID's tokens (GPT-style; history encoded once per user, one KV cache).
    DecoderOnly,
    /// TIGER's T5: a bidirectional encoder reads the history's ID tokens,
    /// a decoder with relative attention bias emits the next ID.
    EncoderDecoder,
}

/// The transformer's shape. `Default` is the shape tuned on MovieLens-100K
/// validation (docs/GENREC.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Generative model only: the architecture (default
    /// [`Arch::DecoderOnly`]).
    pub arch: Arch,
    /// Width (default 128).
    pub d: usize,
    /// Attention heads (default 4; must divide `d`).
    pub heads: usize,
    /// Blocks (default 2).
    pub layers: usize,
    /// Feed-forward width (default 512).
    pub d_ff: usize,
    /// Items of history the model reads (default 20).
    pub max_history: usize,
    /// Generative model only: train with each position's softmax over the
    /// valid next codes of the trie (true, the default), or over all codes
    /// of its level (false, TIGER's). Decode with a [`BeamSearch`] whose
    /// `renormalize` matches.
    pub renormalize: bool,
    /// Output logits from the input token embeddings (SASRec's tying)
    /// rather than a separate head (default false).
    pub tied: bool,
    /// Decoder-only model: GPT-style inputs, each position its own token
    /// and absolute position (default false: each position reads the sum
    /// of its item's tokens so far, with level embeddings and a learned
    /// attention bias by items back).
    pub plain: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: Arch::DecoderOnly,
            d: 128,
            heads: 4,
            layers: 2,
            d_ff: 512,
            max_history: 20,
            renormalize: true,
            tied: false,
            plain: false,
        }
    }
}

impl ModelConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if self.d == 0 || self.heads == 0 || !self.d.is_multiple_of(self.heads) {
            return Err(config(
                "heads",
                format!(
                    "is {} with d = {}; d must be a positive multiple of heads",
                    self.heads, self.d
                ),
            ));
        }
        if self.layers == 0 {
            return Err(config("layers", "is 0; use at least 1"));
        }
        if self.d_ff == 0 {
            return Err(config("d_ff", "is 0; use at least 1"));
        }
        if self.max_history == 0 {
            return Err(config("max_history", "is 0; read at least 1 item"));
        }
        Ok(())
    }

    pub(crate) fn shape(&self, vocab: usize, per_item: usize) -> Shape {
        Shape {
            vocab,
            max_len: 1 + (self.max_history + 1) * per_item,
            per_item,
            d: self.d,
            heads: self.heads,
            layers: self.layers,
            d_ff: self.d_ff,
            tied: self.tied,
            plain: self.plain,
        }
    }

    fn t5(&self, vocab: usize, start: u32) -> T5Config {
        T5Config {
            vocab_size: vocab,
            d_model: self.d,
            d_kv: self.d / self.heads,
            d_ff: self.d_ff,
            num_layers: self.layers,
            num_decoder_layers: None,
            num_heads: self.heads,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            dropout_rate: 0.0,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: "relu".into(),
            tie_word_embeddings: Some(self.tied),
            scale_decoder_outputs: Some(self.tied),
            pad_token_id: Some(start),
            eos_token_id: None,
            decoder_start_token_id: Some(start),
        }
    }
}

/// Item content embeddings (row-major `items × dim`) that the model reads
/// at each complete item, through a trained projection.
#[derive(Clone, Copy, Debug)]
pub struct Content<'a> {
    /// `items × dim`, row-major.
    pub rows: &'a [f32],
    /// Columns.
    pub dim: usize,
}

fn check_content(content: Option<Content<'_>>, n_items: usize) -> Result<Option<(&[f32], usize)>> {
    let Some(c) = content else {
        return Ok(None);
    };
    if c.dim == 0 || c.rows.len() != n_items * c.dim {
        return Err(config(
            "content",
            format!(
                "has {} values; {n_items} items × dim {} were expected",
                c.rows.len(),
                c.dim
            ),
        ));
    }
    if let Some(i) = c.rows.iter().position(|v| !v.is_finite()) {
        return Err(Error::Semid(semid::Error::NonFinite {
            what: "content embeddings",
            row: i / c.dim,
            col: i % c.dim,
        }));
    }
    Ok(Some((c.rows, c.dim)))
}

pub(crate) fn check_items(items: &[u32], n_items: usize) -> Result<()> {
    match items.iter().find(|&&i| i as usize >= n_items) {
        Some(&item) => Err(Error::UnknownItem { item, n_items }),
        None => Ok(()),
    }
}

/// Decoding figures of [`SidModel::recommend`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodeStats {
    /// Result slots without an item (no valid ID reached): 0 with a trie.
    pub invalid: usize,
    /// Time in the model's forward passes.
    pub model: Duration,
    /// Total decoding time (model + search).
    pub total: Duration,
}

enum Net {
    Decoder(Decoder),
    T5(T5),
}

/// The generative recommender: a transformer over semantic-ID tokens that
/// reads a user's history as ID tokens and emits the next item's ID token
/// by token ([`Arch`]).
pub struct SidModel {
    net: Net,
    tokens: TokenMap,
    /// The ID of every item, `n_items × levels`.
    ids: Vec<u16>,
    cfg: ModelConfig,
    /// Columns of the content embeddings read, if any.
    content_dim: Option<usize>,
}

impl SidModel {
    /// A fresh model for the items of `index` (items `0..n_items`, each
    /// with an ID). `room` extra codes are reserved at the last level, for
    /// items inserted after training. `content`, when given, has a row for
    /// every item (inserted ones too).
    pub fn new(
        cfg: &ModelConfig,
        index: &SemanticIndex,
        n_items: usize,
        room: usize,
        content: Option<Content<'_>>,
        seed: u64,
    ) -> Result<SidModel> {
        cfg.validate()?;
        let mut sizes = index.trie().codebook_sizes().to_vec();
        *sizes.last_mut().ok_or(config("index", "has no levels"))? += room;
        let tokens = TokenMap::contiguous(&sizes, true, false)?;
        SidModel::with_tokens(cfg, tokens, index, n_items, content, seed)
    }

    fn with_tokens(
        cfg: &ModelConfig,
        tokens: TokenMap,
        index: &SemanticIndex,
        n_items: usize,
        content: Option<Content<'_>>,
        seed: u64,
    ) -> Result<SidModel> {
        cfg.validate()?;
        let levels = tokens.levels();
        if tokens.specials().bos.is_none() || (0..levels).any(|l| tokens.level_offset(l).is_none())
        {
            return Err(config(
                "tokens",
                "must be a contiguous map with a BOS token (TokenMap::contiguous)",
            ));
        }
        let shape = cfg.shape(tokens.vocab_size(), levels);
        let content_rows = content.map(|c| c.rows.len() / c.dim.max(1));
        let content = check_content(content, content_rows.unwrap_or(n_items).max(n_items))?;
        let net = match cfg.arch {
            Arch::DecoderOnly => Net::Decoder(Decoder::new(shape, content, seed)?),
            Arch::EncoderDecoder => {
                if content.is_some() {
                    return Err(config(
                        "content",
                        "is for the decoder-only model; the encoder-decoder reads ID tokens only",
                    ));
                }
                let start = tokens.specials().bos.unwrap_or(0);
                Net::T5(T5::fresh(cfg.t5(tokens.vocab_size(), start), seed)?)
            }
        };
        let content_dim = content.map(|c| c.1);
        let mut model = SidModel {
            net,
            tokens,
            ids: Vec::new(),
            cfg: cfg.clone(),
            content_dim,
        };
        model.sync_ids(index, n_items)?;
        Ok(model)
    }

    /// Writes the model into `dir` (created if needed): `semid-gen.json`
    /// (kind, format version, [`ModelConfig`], content dimension),
    /// `tokens.json` (the [`TokenMap`]) and the weights. An encoder-decoder
    /// is written as transformers' `T5ForConditionalGeneration`
    /// (`config.json` + `model.safetensors`), so PyTorch loads it too.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        mkdir(dir)?;
        let meta = Meta::new("sid", &self.cfg, self.n_items(), self.content_dim);
        write_json(&meta, &dir.join(META))?;
        write_json(&self.tokens, &dir.join("tokens.json"))?;
        match &self.net {
            Net::Decoder(d) => save(&d.named(), &dir.join("model.safetensors")),
            Net::T5(t) => t.save(dir),
        }
    }

    /// Reads a model [`SidModel::save`] wrote, for the items of `index`
    /// (`0..n_items`, as when it was saved or after inserts the token map
    /// covers); `content` as at training (same dimension). Every file is
    /// checked: kind, version, shapes, names, and that the token map covers
    /// the index.
    pub fn load(
        dir: impl AsRef<Path>,
        index: &SemanticIndex,
        n_items: usize,
        content: Option<Content<'_>>,
    ) -> Result<SidModel> {
        let dir = dir.as_ref();
        let meta = Meta::read(dir, "sid")?;
        check_content_dim(dir, meta.content_dim, content)?;
        let tokens: TokenMap = read_json(&dir.join("tokens.json"))?;
        let cfg = meta.config;
        match cfg.arch {
            Arch::DecoderOnly => {
                let m = SidModel::with_tokens(&cfg, tokens, index, n_items, content, 0)?;
                if let Net::Decoder(d) = &m.net {
                    load_named(d, dir)?;
                }
                Ok(m)
            }
            Arch::EncoderDecoder => {
                let t5 = T5::load(dir)?;
                if t5.config().vocab_size != tokens.vocab_size() {
                    return Err(Error::File {
                        path: dir.join("config.json"),
                        reason: format!(
                            "vocab_size {} disagrees with tokens.json ({} tokens)",
                            t5.config().vocab_size,
                            tokens.vocab_size()
                        ),
                    });
                }
                let mut m = SidModel {
                    net: Net::T5(t5),
                    tokens,
                    ids: Vec::new(),
                    cfg,
                    content_dim: None,
                };
                m.sync_ids(index, n_items)?;
                Ok(m)
            }
        }
    }

    /// Re-reads every item's ID from `index` (after
    /// [`SemanticIndex::insert`]): items `0..n_items` must all have IDs
    /// that the model's token map covers.
    pub fn sync_ids(&mut self, index: &SemanticIndex, n_items: usize) -> Result<()> {
        self.tokens.check_covers(index.trie())?;
        let l = self.tokens.levels();
        let mut ids = Vec::with_capacity(n_items * l);
        for i in 0..n_items as u32 {
            let id = index.id_of(i).ok_or_else(|| {
                config(
                    "index",
                    format!("has no ID for item {i}; every item 0..{n_items} needs one"),
                )
            })?;
            ids.extend_from_slice(id);
        }
        self.ids = ids;
        Ok(())
    }

    /// Items the model knows.
    pub fn n_items(&self) -> usize {
        self.ids.len() / self.tokens.levels()
    }

    /// The model's SID ⇄ token map.
    pub fn tokens(&self) -> &TokenMap {
        &self.tokens
    }

    /// The shape.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// BOS, then every item's ID tokens.
    /// The model tokens of level `j`'s codes.
    fn level_tokens(&self, j: usize) -> Result<&[u32]> {
        self.tokens
            .level_tokens(j)
            .ok_or_else(|| config("tokens", format!("the token map has no level {j}")))
    }

    fn sequence(&self, items: &[u32]) -> Result<Vec<u32>> {
        check_items(items, self.n_items())?;
        let l = self.tokens.levels();
        let bos = self.tokens.specials().bos.unwrap_or(0);
        let mut out = Vec::with_capacity(1 + items.len() * l);
        out.push(bos);
        for &i in items {
            self.tokens
                .encode_into(&self.ids[i as usize * l..(i as usize + 1) * l], &mut out)?;
        }
        Ok(out)
    }

    /// Trains on the training part of `split` (see [`TrainConfig`]), with
    /// the valid-ID mask of `trie` when [`ModelConfig::renormalize`] is on.
    /// `validate` scores the model after each epoch (higher is better);
    /// `on_epoch` reports progress. Ends with the best epoch's weights.
    pub fn train(
        &self,
        split: &LeaveOneOut,
        trie: &Trie,
        cfg: &TrainConfig,
        mut validate: impl FnMut(&SidModel) -> Result<f64>,
        mut on_epoch: impl FnMut(&EpochReport),
    ) -> Result<TrainReport> {
        cfg.validate()?;
        self.tokens.check_covers(trie)?;
        let seqs = split.sequences();
        let l = self.tokens.levels();
        let vocab = self.tokens.vocab_size();
        let renorm = self.cfg.renormalize;
        // The mask of one position predicting level j of `item`: the
        // valid next codes (renormalised), or every code of level j.
        let mask_row = |item: u32, j: usize, row: &mut [f32]| -> Result<()> {
            let i = item as usize;
            if renorm {
                return Ok(self
                    .tokens
                    .mask_into(trie, &self.ids[i * l..i * l + j], row)?);
            }
            row.fill(f32::NEG_INFINITY);
            for &t in self.level_tokens(j)? {
                row[t as usize] = 0.0;
            }
            Ok(())
        };
        match &self.net {
            Net::Decoder(dec) => {
                let examples =
                    window_examples(seqs, self.cfg.max_history, cfg.stride, l, |items| {
                        self.sequence(items)
                    })?;
                let mut loss = |batch: &[&Example], drop| {
                    let (toks, items, from) = batch_parts(batch);
                    let allowed = {
                        let n: usize = batch.iter().map(|e| e.tokens.len() - 1 - e.from).sum();
                        let mut out = vec![0f32; n * vocab];
                        let mut rows = out.chunks_exact_mut(vocab);
                        for e in batch {
                            // Position i predicts token i mod L of item i / L.
                            for i in e.from..e.tokens.len() - 1 {
                                let row =
                                    rows.next().ok_or_else(|| config("batch", "mask rows"))?;
                                mask_row(e.items[i / l], i % l, row)?;
                            }
                        }
                        Some(out)
                    };
                    Ok(dec.loss(&toks, &items, &from, allowed, drop)?)
                };
                fit(
                    dec.vars(),
                    &examples,
                    cfg,
                    &mut loss,
                    &mut || validate(self),
                    &mut on_epoch,
                )
            }
            Net::T5(t5) => {
                // Every training target once, with its last max_history items.
                let h = self.cfg.max_history;
                let mut examples = Vec::new();
                for u in 0..seqs.len() {
                    let s = seqs.items(u);
                    let part = &s[..s.len().saturating_sub(2)];
                    for t in 1..part.len() {
                        let hist = &part[t.saturating_sub(h)..t];
                        let tokens = self.sequence(hist)?[1..].to_vec();
                        examples.push(Example {
                            tokens,
                            items: vec![part[t]],
                            from: 0,
                        });
                    }
                }
                let start = t5.config().decoder_start();
                let mut loss = |batch: &[&Example], drop| {
                    let len = batch.iter().map(|e| e.tokens.len()).max().unwrap_or(1);
                    let mut enc = Vec::with_capacity(batch.len() * len);
                    let mut lens = Vec::with_capacity(batch.len());
                    let (mut dec, mut tgt) = (Vec::new(), Vec::new());
                    for e in batch {
                        enc.extend_from_slice(&e.tokens);
                        enc.extend(std::iter::repeat_n(start, len - e.tokens.len()));
                        lens.push(e.tokens.len());
                        let i = e.items[0] as usize;
                        let id = self.tokens.encode(&self.ids[i * l..(i + 1) * l])?;
                        dec.push(start);
                        dec.extend_from_slice(&id[..l - 1]);
                        tgt.extend_from_slice(&id);
                    }
                    let encoded = t5.encode(&enc, &lens, drop)?;
                    let logits = t5
                        .decode(&dec, &encoded, &mut T5Cache::default(), drop)?
                        .reshape((batch.len() * l, vocab))?;
                    let allowed = {
                        let mut out = vec![0f32; batch.len() * l * vocab];
                        for (r, e) in batch.iter().enumerate() {
                            for j in 0..l {
                                let row = &mut out[(r * l + j) * vocab..(r * l + j + 1) * vocab];
                                mask_row(e.items[0], j, row)?;
                            }
                        }
                        Some(out)
                    };
                    let w = vec![1f32; tgt.len()];
                    Ok(masked_nll(logits, tgt, w, allowed)?)
                };
                fit(
                    t5.vars(),
                    &examples,
                    cfg,
                    &mut loss,
                    &mut || validate(self),
                    &mut on_epoch,
                )
            }
        }
    }

    /// The logits `(1, L, vocab)` of the positions that predict `item`'s
    /// ID tokens after `history` (already cut), teacher-forced, no cache.
    fn id_logits(&self, history: &[u32], item: u32) -> Result<Tensor> {
        let l = self.tokens.levels();
        match &self.net {
            Net::Decoder(dec) => {
                let n = self.sequence(history)?.len();
                let mut all = history.to_vec();
                all.push(item);
                let seq = self.sequence(&all)?;
                let inputs = dec.inputs(&[&seq], &[&all], 0, seq.len() - 1)?;
                let logits = dec.forward(&inputs, 0, &mut Vec::new())?;
                Ok(logits.narrow(1, n - 1, l)?)
            }
            Net::T5(t5) => {
                let enc_toks = self.sequence(history)?[1..].to_vec();
                let enc = t5.encode(&enc_toks, &[enc_toks.len()], None)?;
                let i = item as usize;
                let id = self.tokens.encode(&self.ids[i * l..(i + 1) * l])?;
                let mut dec = vec![t5.config().decoder_start()];
                dec.extend_from_slice(&id[..l - 1]);
                t5.decode(&dec, &enc, &mut T5Cache::default(), None)
            }
        }
    }

    /// Teacher-forced log-probability of each of `items` after `history`
    /// (its last `max_history` items), without a cache: the sum over
    /// levels of the model's log-softmax over that level's codes of
    /// `trie`, taken over the trie's allowed codes only when
    /// `renormalize`. This is the score [`SidModel::recommend`] gives an
    /// item with a search that renormalises likewise, so it checks the
    /// KV-cache path and re-ranks a few candidates. Cost: one forward pass
    /// of `history + 1` items per item.
    pub fn log_prob(
        &self,
        trie: &Trie,
        history: &[u32],
        items: &[u32],
        renormalize: bool,
    ) -> Result<Vec<f32>> {
        self.tokens.check_covers(trie)?;
        check_items(items, self.n_items())?;
        let h = &history[history.len().saturating_sub(self.cfg.max_history)..];
        let l = self.tokens.levels();
        if h.is_empty() {
            return Err(config("history", "is empty; give at least one item"));
        }
        let mut out = Vec::with_capacity(items.len());
        for &item in items {
            let logits = self.id_logits(h, item)?;
            let id = &self.ids[item as usize * l..(item as usize + 1) * l];
            let mut total = 0f32;
            for (j, &code) in id.iter().enumerate() {
                let off = self.level_tokens(j)?[0] as usize;
                let v = trie.codebook_sizes()[j];
                let row: Vec<f32> = logits.get(0)?.get(j)?.narrow(0, off, v)?.to_vec1()?;
                let allowed: Vec<usize> = if renormalize {
                    let s = trie.walk(&id[..j]).ok_or_else(|| {
                        config("items", format!("item {item}'s ID is not in the trie"))
                    })?;
                    trie.allowed(s).iter().map(|&c| c as usize).collect()
                } else {
                    (0..v).collect()
                };
                let max = allowed
                    .iter()
                    .map(|&c| row[c])
                    .fold(f32::NEG_INFINITY, f32::max);
                let lse = max
                    + allowed
                        .iter()
                        .map(|&c| (row[c] - max).exp())
                        .sum::<f32>()
                        .ln();
                total += row[code as usize] - lse;
            }
            out.push(total);
        }
        Ok(out)
    }

    /// A [`Scorer`] for a batch of users whose histories have the same
    /// length (the last `max_history` items are read): query `q` of the
    /// search is `histories[q]`.
    pub fn scorer<'a>(&'a self, histories: &[&'a [u32]]) -> Result<SidScorer<'a>> {
        let h = self.cfg.max_history;
        let cut: Vec<&[u32]> = histories
            .iter()
            .map(|s| &s[s.len().saturating_sub(h)..])
            .collect();
        if let Some(s) = cut.iter().find(|s| s.len() != cut[0].len() || s.is_empty()) {
            return Err(config(
                "histories",
                format!(
                    "have {} and {} items (last {h} read); one scorer takes histories of one non-zero length: batch users by history length",
                    cut[0].len(),
                    s.len()
                ),
            ));
        }
        Ok(SidScorer {
            model: self,
            histories: cut
                .iter()
                .map(|s| self.sequence(s))
                .collect::<Result<_>>()?,
            items: cut,
            cache: Vec::new(),
            history: Vec::new(),
            encoded: None,
            t5: T5Cache::default(),
            model_time: Duration::ZERO,
        })
    }

    /// The top `search.k()` items for each history, by trie-constrained
    /// beam search over `index` (users with equally long histories decoded
    /// together), with decoding figures.
    pub fn recommend(
        &self,
        index: &SemanticIndex,
        histories: &[&[u32]],
        search: &mut BeamSearch,
    ) -> Result<(Vec<Vec<u32>>, DecodeStats)> {
        self.recommend_filtered(index, histories, search, None)
    }

    /// [`SidModel::recommend`] where history `i` may only receive the
    /// items `filter` allows query `i` (e.g.
    /// [`ItemLists::deny`](semid::decode::ItemLists::deny) of what
    /// each user has seen), applied inside the search
    /// ([`BeamSearch::search_filtered`]).
    pub fn recommend_filtered(
        &self,
        index: &SemanticIndex,
        histories: &[&[u32]],
        search: &mut BeamSearch,
        filter: Option<&dyn ItemFilter>,
    ) -> Result<(Vec<Vec<u32>>, DecodeStats)> {
        self.tokens.check_covers(index.trie())?;
        if let Some(n) = filter.and_then(|f| f.n_queries())
            && n != histories.len()
        {
            return Err(config(
                "filter",
                format!("has {n} lists for {} histories", histories.len()),
            ));
        }
        let h = self.cfg.max_history;
        let len = |i: usize| histories[i].len().min(h);
        let mut lists = vec![Vec::new(); histories.len()];
        let mut stats = DecodeStats::default();
        let t0 = Instant::now();
        let mut order: Vec<usize> = (0..histories.len()).collect();
        order.sort_by_key(|&i| (len(i), i));
        for group in order.chunk_by(|&a, &b| len(a) == len(b)) {
            for batch in group.chunks(USERS_PER_SEARCH) {
                let hs: Vec<&[u32]> = batch.iter().map(|&i| histories[i]).collect();
                let mut scorer = self.scorer(&hs)?;
                let hits = match filter {
                    None => index.search(&mut scorer, batch.len(), search)?,
                    Some(f) => {
                        // Query q of this batch is history batch[q].
                        let mapped = |q: usize, item: u32| f.allows(batch[q], item);
                        search.search_filtered(index.trie(), &mut scorer, batch.len(), &mapped)?
                    }
                };
                stats.model += scorer.model_time;
                for (q, &i) in batch.iter().enumerate() {
                    let items = hits.query(q).items.to_vec();
                    stats.invalid += items.iter().filter(|&&i| i == NO_ITEM).count();
                    lists[i] = items;
                }
            }
        }
        stats.total = t0.elapsed();
        Ok((lists, stats))
    }
}

/// [`SidModel`] as a [`Scorer`], with a KV cache: the histories are
/// encoded once (level 0); each later level reorders the cache by
/// `Beams::parents` and feeds one token per beam.
pub struct SidScorer<'a> {
    model: &'a SidModel,
    /// Each user's BOS + history tokens, all of one length.
    histories: Vec<Vec<u32>>,
    /// Each user's history items (for their content embeddings).
    items: Vec<&'a [u32]>,
    cache: Cache,
    /// Decoder-only: the histories' keys and values, one row per user.
    history: Cache,
    /// Encoder-decoder: the encoded histories and the decoder's cache.
    encoded: Option<Encoded>,
    t5: T5Cache,
    model_time: Duration,
}

impl SidScorer<'_> {
    /// Time spent in the model so far.
    pub fn model_time(&self) -> Duration {
        self.model_time
    }

    fn step(&mut self, beams: &Beams<'_>, v: usize, out: &mut Vec<f32>) -> Result<()> {
        let level = beams.level;
        let map = &self.model.tokens;
        if level >= map.levels() {
            return Err(config(
                "tokens",
                format!(
                    "have {} levels; the search asked for level {level}",
                    map.levels()
                ),
            ));
        }
        let off = map.level_offset(level).ok_or_else(|| {
            config(
                "tokens",
                format!("level {level} is not contiguous; the model's own maps are"),
            )
        })? as usize;
        if map.level_tokens(level).is_none_or(|t| v > t.len()) {
            return Err(config(
                "tokens",
                format!("level {level} has fewer codes than the search's {v}"),
            ));
        }
        if level == 0 && beams.len() != self.histories.len() {
            return Err(config(
                "histories",
                format!(
                    "hold {} users; the search asked for {}",
                    self.histories.len(),
                    beams.len()
                ),
            ));
        }
        let n = self.histories[0].len();
        let logits = match (&self.model.net, level) {
            (Net::Decoder(model), 0) => {
                self.cache.clear();
                let refs: Vec<&[u32]> = self.histories.iter().map(Vec::as_slice).collect();
                let mut inputs = model.inputs(&refs, &self.items, 0, n)?;
                // The output layer at the last history position only.
                inputs.rows_out = Some(last_positions(refs.len(), n)?);
                let last = model.forward(&inputs, 0, &mut self.cache)?;
                // The histories' keys and values stay one row per user; the
                // cache from here on holds each beam's generated tokens.
                self.history = std::mem::take(&mut self.cache);
                last.unsqueeze(1)?
            }
            (Net::Decoder(model), _) => {
                Decoder::reorder(&mut self.cache, beams.parents)?;
                // Each beam's sequence: its user's history, then its ID prefix.
                let mut seqs = Vec::with_capacity(beams.len());
                for b in 0..beams.len() {
                    let q = beams.queries[b] as usize;
                    let mut s = self.histories.get(q).cloned().ok_or_else(|| {
                        config("histories", format!("hold no query {q}; one per query"))
                    })?;
                    map.encode_into(beams.prefix(b), &mut s)?;
                    seqs.push(s);
                }
                let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
                let start = n + level - 1;
                // Target items are incomplete: no content to read.
                let none: Vec<&[u32]> = vec![&[]; refs.len()];
                let mut inputs = model.inputs(&refs, &none, start, 1)?;
                inputs.shared = Some(SharedHistory::new(
                    self.history.clone(),
                    beams.queries,
                    self.histories.len(),
                )?);
                model.forward(&inputs, start, &mut self.cache)?
            }
            (Net::T5(t5), 0) => {
                // Histories without BOS into the encoder, once per user.
                let rows = self.histories.len();
                let toks: Vec<u32> = self
                    .histories
                    .iter()
                    .flat_map(|h| h[1..].to_vec())
                    .collect();
                let enc = t5.encode(&toks, &vec![n - 1; rows], None)?;
                self.t5 = T5Cache::default();
                let start = vec![t5.config().decoder_start(); rows];
                let logits = t5.decode(&start, &enc, &mut self.t5, None)?;
                self.encoded = Some(enc);
                logits
            }
            (Net::T5(t5), _) => {
                self.t5.reorder(beams.parents)?;
                let mut last = Vec::with_capacity(beams.len());
                for b in 0..beams.len() {
                    let p = beams.prefix(b);
                    last.push(map.token(level - 1, p[level - 1])?);
                }
                let enc = self
                    .encoded
                    .as_ref()
                    .ok_or_else(|| config("search", "started above level 0"))?;
                t5.decode(&last, enc, &mut self.t5, None)?
            }
        };
        let lp = candle_nn::ops::log_softmax(&logits.narrow(2, off, v)?.squeeze(1)?, D::Minus1)?;
        out.extend(lp.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }
}

impl Scorer for SidScorer<'_> {
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> semid::Result<()> {
        let t0 = Instant::now();
        let r = beams
            .check()
            .map_err(Error::from)
            .and_then(|()| self.step(beams, beams.codebook_size, out));
        self.model_time += t0.elapsed();
        r.map_err(|e| semid::Error::Scorer {
            reason: e.to_string(),
        })
    }
}

/// The SASRec baseline: the same transformer over item ids (BOS, then the
/// history's items), trained with a full softmax over the catalog.
pub struct ItemModel {
    decoder: Decoder,
    n_items: usize,
    cfg: ModelConfig,
    content_dim: Option<usize>,
}

impl ItemModel {
    /// A fresh model over items `0..n_items`; `content` as in
    /// [`SidModel::new`].
    pub fn new(
        cfg: &ModelConfig,
        n_items: usize,
        content: Option<Content<'_>>,
        seed: u64,
    ) -> Result<ItemModel> {
        cfg.validate()?;
        if n_items == 0 {
            return Err(config("n_items", "is 0; the catalog needs items"));
        }
        let content_rows = content.map(|c| c.rows.len() / c.dim.max(1));
        let content = check_content(content, content_rows.unwrap_or(n_items).max(n_items))?;
        Ok(ItemModel {
            decoder: Decoder::new(cfg.shape(n_items + 1, 1), content, seed)?,
            n_items,
            cfg: cfg.clone(),
            content_dim: content.map(|c| c.1),
        })
    }

    /// Writes `semid-gen.json` and `model.safetensors` into `dir`.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        mkdir(dir)?;
        let meta = Meta::new("item", &self.cfg, self.n_items, self.content_dim);
        write_json(&meta, &dir.join(META))?;
        save(&self.decoder.named(), &dir.join("model.safetensors"))
    }

    /// Reads a model [`ItemModel::save`] wrote; `content` as at training.
    pub fn load(dir: impl AsRef<Path>, content: Option<Content<'_>>) -> Result<ItemModel> {
        let dir = dir.as_ref();
        let meta = Meta::read(dir, "item")?;
        check_content_dim(dir, meta.content_dim, content)?;
        let m = ItemModel::new(&meta.config, meta.n_items, content, 0)?;
        load_named(&m.decoder, dir)?;
        Ok(m)
    }

    fn sequence(&self, items: &[u32]) -> Result<Vec<u32>> {
        check_items(items, self.n_items)?;
        Ok(std::iter::once(self.n_items as u32)
            .chain(items.iter().copied())
            .collect())
    }

    /// Trains on the training part of `split`; as [`SidModel::train`].
    pub fn train(
        &self,
        split: &LeaveOneOut,
        cfg: &TrainConfig,
        mut validate: impl FnMut(&ItemModel) -> Result<f64>,
        mut on_epoch: impl FnMut(&EpochReport),
    ) -> Result<TrainReport> {
        cfg.validate()?;
        let seqs = split.sequences();
        let examples = window_examples(seqs, self.cfg.max_history, cfg.stride, 1, |items| {
            self.sequence(items)
        })?;
        let mut loss = |batch: &[&Example], drop| {
            let (toks, items, from) = batch_parts(batch);
            Ok(self.decoder.loss(&toks, &items, &from, None, drop)?)
        };
        fit(
            self.decoder.vars(),
            &examples,
            cfg,
            &mut loss,
            &mut || validate(self),
            &mut on_epoch,
        )
    }

    /// The `k` highest-scored items after each history (its last
    /// `max_history` items), best first, ties by item id; users with
    /// equally long histories scored together.
    pub fn recommend(&self, histories: &[&[u32]], k: usize) -> Result<Vec<Vec<u32>>> {
        let n = self.n_items;
        let k = k.min(n);
        let (cut, batches) = length_batches(histories, self.cfg.max_history);
        let mut lists = vec![Vec::new(); histories.len()];
        for batch in &batches {
            let seqs: Vec<Vec<u32>> = batch
                .iter()
                .map(|&i| self.sequence(cut[i]))
                .collect::<Result<_>>()?;
            let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
            let items: Vec<&[u32]> = batch.iter().map(|&i| cut[i]).collect();
            let len = refs[0].len();
            let mut inputs = self.decoder.inputs(&refs, &items, 0, len)?;
            // The output layer at each row's last position only.
            inputs.rows_out = Some(last_positions(refs.len(), len)?);
            let logits = self.decoder.forward(&inputs, 0, &mut Vec::new())?;
            let last: Tensor = logits.narrow(1, 0, n)?;
            let scores = last.flatten_all()?.to_vec1::<f32>()?;
            for (r, &i) in batch.iter().enumerate() {
                lists[i] = top_k(&scores[r * n..(r + 1) * n], k);
            }
        }
        Ok(lists)
    }
}

/// Each history's last `max_history` items, and the users in batches of
/// equally long cut histories (shortest first, at most
/// `2 · USERS_PER_SEARCH` users each), for one forward pass per batch.
pub(crate) fn length_batches<'a>(
    histories: &[&'a [u32]],
    max_history: usize,
) -> (Vec<&'a [u32]>, Vec<Vec<usize>>) {
    let cut: Vec<&[u32]> = histories
        .iter()
        .map(|s| &s[s.len().saturating_sub(max_history)..])
        .collect();
    let mut order: Vec<usize> = (0..cut.len()).collect();
    order.sort_by_key(|&i| (cut[i].len(), i));
    let batches = order
        .chunk_by(|&a, &b| cut[a].len() == cut[b].len())
        .flat_map(|g| g.chunks(USERS_PER_SEARCH * 2).map(<[usize]>::to_vec))
        .collect();
    (cut, batches)
}

/// Indices of the `k` largest scores, best first, ties by index.
pub(crate) fn top_k(scores: &[f32], k: usize) -> Vec<u32> {
    if k == 0 {
        return Vec::new();
    }
    let mut top: Vec<u32> = (0..scores.len() as u32).collect();
    let cmp = |a: &u32, b: &u32| {
        scores[*b as usize]
            .total_cmp(&scores[*a as usize])
            .then(a.cmp(b))
    };
    top.select_nth_unstable_by(k - 1, cmp);
    top.truncate(k);
    top.sort_by(cmp);
    top
}
