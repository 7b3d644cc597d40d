//! Serving checkpoints trained elsewhere (PyTorch + transformers): a T5 or
//! GPT-2 checkpoint directory plus the SID ⇄ token layout it was trained
//! with (`tokens.json`, a [`TokenMap`]), as a [`Scorer`] for semid's
//! trie-constrained beam search.

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{D, Tensor};
use semid::decode::{Beams, Scorer};
use semid::sid::{TokenMap, Trie};

use crate::error::{Error, Result, config};
use crate::gpt2::{Gpt2, Gpt2Cache};
use crate::t5::{Encoded, T5, T5Cache};
use crate::weights::read_json;

enum Net {
    T5(T5),
    Gpt2(Gpt2),
}

/// A transformers checkpoint that emits semantic IDs: `config.json`,
/// `model.safetensors` and `tokens.json` in one directory.
///
/// `tokens.json` is a serialised [`TokenMap`] (`table`: each level's
/// token ids; `vocab_size`; `specials`), written once beside the
/// checkpoint by whoever trained it (tests/data/hf/make_fixtures.py shows
/// how from Python).
pub struct HfModel {
    net: Net,
    tokens: TokenMap,
    vocab: usize,
}

impl HfModel {
    /// Loads `dir`. The architecture comes from `config.json`'s
    /// `model_type` (`t5` or `gpt2`).
    pub fn load(dir: impl AsRef<Path>) -> Result<HfModel> {
        let dir = dir.as_ref();
        let cfg_path = dir.join("config.json");
        let raw: serde_json::Value = read_json(&cfg_path)?;
        let kind = raw
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let (net, vocab) = match kind.as_str() {
            "t5" => {
                let m = T5::load(dir)?;
                let v = m.config().vocab_size;
                (Net::T5(m), v)
            }
            "gpt2" => {
                let m = Gpt2::load(dir)?;
                let v = m.config().vocab_size;
                (Net::Gpt2(m), v)
            }
            other => {
                return Err(Error::File {
                    path: cfg_path,
                    reason: format!(
                        "model_type is {other:?}; semid-gen serves \"t5\" (T5ForConditionalGeneration) and \"gpt2\" (GPT2LMHeadModel)"
                    ),
                });
            }
        };
        let tok_path = dir.join("tokens.json");
        let tokens: TokenMap = read_json(&tok_path)?;
        if tokens.vocab_size() > vocab {
            return Err(Error::File {
                path: tok_path,
                reason: format!(
                    "maps codes into a vocabulary of {} tokens; the model has {vocab}",
                    tokens.vocab_size()
                ),
            });
        }
        Ok(HfModel { net, tokens, vocab })
    }

    /// The SID ⇄ token layout.
    pub fn tokens(&self) -> &TokenMap {
        &self.tokens
    }

    /// Checks that the token map covers `trie` (every code has a token).
    pub fn check(&self, trie: &Trie) -> Result<()> {
        Ok(self.tokens.check_covers(trie)?)
    }

    /// A [`Scorer`] whose query `q` is the prompt `prompts[q]` (model token
    /// ids: for instance each history item's ID tokens from
    /// [`TokenMap::encode`], with whatever separators the model was
    /// trained with). T5 takes prompts of any lengths; GPT-2 prompts of one
    /// length (batch users by prompt length).
    ///
    /// Each level's scores are the model's log-softmax over its whole
    /// vocabulary, read at that level's code tokens: renormalise them over
    /// the valid codes with [`semid::decode::BeamSearch::renormalize`].
    pub fn scorer<'a>(&'a self, prompts: &[&[u32]]) -> Result<HfScorer<'a>> {
        if prompts.is_empty() || prompts.iter().any(|p| p.is_empty()) {
            return Err(config("prompts", "need at least one non-empty prompt"));
        }
        if let Net::Gpt2(_) = self.net
            && let Some(p) = prompts.iter().find(|p| p.len() != prompts[0].len())
        {
            return Err(config(
                "prompts",
                format!(
                    "have {} and {} tokens; a GPT-2 scorer takes prompts of one length",
                    prompts[0].len(),
                    p.len()
                ),
            ));
        }
        if let Some(&t) = prompts
            .iter()
            .flat_map(|p| p.iter())
            .find(|&&t| t as usize >= self.vocab)
        {
            return Err(config(
                "prompts",
                format!(
                    "token {t} is outside the model's vocabulary 0..{}",
                    self.vocab
                ),
            ));
        }
        Ok(HfScorer {
            model: self,
            prompts: prompts.iter().map(|p| p.to_vec()).collect(),
            encoded: None,
            t5: T5Cache::default(),
            gpt2: Gpt2Cache::default(),
            model_time: Duration::ZERO,
        })
    }
}

/// [`HfModel`] as a [`Scorer`], with its KV cache reordered by the beams'
/// parents.
pub struct HfScorer<'a> {
    model: &'a HfModel,
    prompts: Vec<Vec<u32>>,
    encoded: Option<Encoded>,
    t5: T5Cache,
    gpt2: Gpt2Cache,
    model_time: Duration,
}

impl HfScorer<'_> {
    /// Time spent in the model so far.
    pub fn model_time(&self) -> Duration {
        self.model_time
    }

    fn step(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> Result<()> {
        let level = beams.level;
        let map = &self.model.tokens;
        // Codes the map holds at this level; the search reads `beams.codebook_size`.
        let per = match map.level_tokens(level) {
            Some(t) if beams.codebook_size <= t.len() => t.len(),
            _ => {
                return Err(config(
                    "tokens",
                    format!(
                        "tokens.json maps {:?} codes per level; the search asks for {} codes at level {level}: build the trie and the map from the same IDs",
                        map.codebook_sizes(),
                        beams.codebook_size
                    ),
                ));
            }
        };
        if level == 0 && beams.len() != self.prompts.len() {
            return Err(config(
                "prompts",
                format!(
                    "hold {} queries; the search asked for {}",
                    self.prompts.len(),
                    beams.len()
                ),
            ));
        }
        let last_tokens = || -> Result<Vec<u32>> {
            (0..beams.len())
                .map(|b| Ok(map.token(level - 1, beams.prefix(b)[level - 1])?))
                .collect()
        };
        let logits: Tensor = match (&self.model.net, level) {
            (Net::T5(m), 0) => {
                let len = self.prompts.iter().map(Vec::len).max().unwrap_or(1);
                let pad = m.config().pad_token_id.unwrap_or(0);
                let mut ids = Vec::with_capacity(self.prompts.len() * len);
                for p in &self.prompts {
                    ids.extend_from_slice(p);
                    ids.extend(std::iter::repeat_n(pad, len - p.len()));
                }
                let lens: Vec<usize> = self.prompts.iter().map(Vec::len).collect();
                let enc = m.encode(&ids, &lens, None)?;
                self.t5 = T5Cache::default();
                let start = vec![m.config().decoder_start(); self.prompts.len()];
                let l = m.decode(&start, &enc, &mut self.t5, None)?;
                self.encoded = Some(enc);
                l
            }
            (Net::T5(m), _) => {
                self.t5.reorder(beams.parents)?;
                let enc = self
                    .encoded
                    .as_ref()
                    .ok_or_else(|| config("search", "started above level 0"))?;
                m.decode(&last_tokens()?, enc, &mut self.t5, None)?
            }
            (Net::Gpt2(m), 0) => {
                self.gpt2 = Gpt2Cache::default();
                let n = self.prompts[0].len();
                let ids: Vec<u32> = self.prompts.concat();
                m.forward(&ids, self.prompts.len(), &mut self.gpt2)?
                    .narrow(1, n - 1, 1)?
            }
            (Net::Gpt2(m), _) => {
                self.gpt2.reorder(beams.parents)?;
                m.forward(&last_tokens()?, beams.len(), &mut self.gpt2)?
            }
        };
        let lp = candle_nn::ops::log_softmax(&logits.squeeze(1)?, D::Minus1)?;
        let rows: Vec<f32> = lp.flatten_all()?.to_vec1()?;
        let v = self.model.vocab;
        let start = out.len();
        for r in 0..beams.len() {
            map.gather_level(level, &rows[r * v..(r + 1) * v], out)?;
        }
        if per != beams.codebook_size {
            let kept: Vec<f32> = out[start..]
                .chunks(per)
                .flat_map(|c| c[..beams.codebook_size].to_vec())
                .collect();
            out.truncate(start);
            out.extend(kept);
        }
        Ok(())
    }
}

impl Scorer for HfScorer<'_> {
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> semid::Result<()> {
        let t0 = Instant::now();
        let r = beams
            .check()
            .map_err(Error::from)
            .and_then(|()| self.step(beams, out));
        self.model_time += t0.elapsed();
        r.map_err(|e| semid::Error::Scorer {
            reason: e.to_string(),
        })
    }
}
