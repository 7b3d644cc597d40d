//! The host side of the batched, trie-constrained beam step
//! (`kernels/beam.cu`): the trie as per-depth tables (a dense child table
//! for the first depths, where nodes × vocab is small, CSR for the rest),
//! and a search loop that calls the scorer and hands each step to an
//! executor (the device, or the C++ emulation in tests). Same results as
//! [`BeamSearch`](crate::decode::BeamSearch) without `renormalize`.

use crate::decode::{Beams, Scorer};
use crate::error::{Error, Result, invalid};
use crate::hits::{Hits, NO_ITEM};
use crate::sid::{State, Trie};

/// Children of every node of one depth: node `n`'s tokens are
/// `tokens[offsets[n]..offsets[n + 1]]` (ascending) and its `i`-th child is
/// node `first[n] + i` of the next depth.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelTable {
    /// Start of each node's children, plus the end.
    pub offsets: Vec<u32>,
    /// Child tokens, node after node.
    pub tokens: Vec<u16>,
    /// Index (at the next depth) of each node's first child.
    pub first: Vec<u32>,
    /// The dense layout of the same children, or empty: token `t` of node
    /// `n` is child `dense[n * vocab + t]`, [`NOT_ALLOWED`] if `t` is not
    /// one. The kernel then checks one entry per token instead of walking
    /// the CSR lists.
    pub dense: Vec<u32>,
}

/// A token that is not a child, in [`LevelTable::dense`].
pub const NOT_ALLOWED: u32 = u32::MAX;

/// A [`Trie`] as one [`LevelTable`] per depth, the layout the beam-step
/// kernel reads.
#[derive(Clone, Debug, PartialEq)]
pub struct TrieTables {
    /// Tables of depths `0..depth`.
    pub levels: Vec<LevelTable>,
}

impl TrieTables {
    /// Most `nodes × vocab` entries of a depth that gets the dense layout
    /// in [`TrieTables::new`] (4 MiB of `u32`): with 256-token levels, the
    /// root and up to 4096 nodes below it.
    pub const DENSE_BUDGET: usize = 1 << 20;

    /// The tables of `trie` (time and memory linear in its nodes, plus the
    /// dense tables): dense for the leading depths whose `nodes × vocab` is
    /// within [`TrieTables::DENSE_BUDGET`], CSR from the first depth beyond.
    #[must_use]
    pub fn new(trie: &Trie) -> TrieTables {
        TrieTables::with_dense_budget(trie, TrieTables::DENSE_BUDGET)
    }

    /// [`TrieTables::new`] with another dense budget (0: CSR everywhere).
    /// The layout changes speed and memory, never results.
    #[must_use]
    pub fn with_dense_budget(trie: &Trie, budget: usize) -> TrieTables {
        let nodes = trie.stats().nodes_per_depth;
        let mut dense_on = true;
        let mut levels = Vec::with_capacity(trie.id_len());
        for (depth, &count) in nodes.iter().enumerate().take(trie.id_len()) {
            let vocab = trie.codebook_sizes()[depth];
            dense_on = dense_on && count.saturating_mul(vocab) <= budget;
            let mut t = LevelTable {
                offsets: Vec::with_capacity(count + 1),
                tokens: Vec::new(),
                first: Vec::with_capacity(count),
                dense: if dense_on {
                    vec![NOT_ALLOWED; count * vocab]
                } else {
                    Vec::new()
                },
            };
            t.offsets.push(0);
            for node in 0..count as u32 {
                let s = State {
                    depth: depth as u32,
                    node,
                };
                let allowed = trie.allowed(s);
                if dense_on {
                    for (i, &tok) in allowed.iter().enumerate() {
                        t.dense[node as usize * vocab + tok as usize] = i as u32;
                    }
                }
                t.tokens.extend_from_slice(allowed);
                t.offsets.push(t.tokens.len() as u32);
                t.first.push(trie.child(s, 0).map_or(0, |c| c.node));
            }
            levels.push(t);
        }
        TrieTables { levels }
    }
}

/// What one beam step reads (the arguments of `semid_beam_step`).
#[derive(Clone, Copy, Debug)]
pub struct StepInput<'a> {
    /// Depth of this step (an executor may keep the tables of every depth
    /// on its device and pick them by it).
    pub level: u32,
    /// Queries in the batch.
    pub n_queries: u32,
    /// Beams kept per query.
    pub cap: u32,
    /// Query `q`'s beams are `order[qbeg[q]..qbeg[q + 1]]`.
    pub qbeg: &'a [u32],
    /// Beams of each query in lexicographic order of their prefixes.
    pub order: &'a [u32],
    /// Trie node (at this depth) of every beam.
    pub node: &'a [u32],
    /// Score of every beam.
    pub bscore: &'a [f32],
    /// Next-token scores, beams × vocab.
    pub scores: &'a [f32],
    /// Vocabulary at this depth.
    pub vocab: u32,
    /// This depth's [`LevelTable::offsets`].
    pub coff: &'a [u32],
    /// This depth's [`LevelTable::tokens`].
    pub ctok: &'a [u16],
    /// This depth's [`LevelTable::dense`] (empty: use the CSR lists).
    pub dense: &'a [u32],
}

/// What one beam step writes: per query, `count[q]` kept candidates at
/// `q * cap ..`, best first, as (−score, parent beam, child index, token).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepOutput {
    /// −score of each kept candidate.
    pub key: Vec<f32>,
    /// Parent beam.
    pub parent: Vec<u32>,
    /// Index of the token among the parent's children.
    pub child: Vec<u32>,
    /// Token.
    pub token: Vec<u16>,
    /// Candidates kept per query.
    pub count: Vec<u32>,
}

impl StepOutput {
    fn reset(&mut self, n_queries: usize, cap: usize) {
        let n = n_queries * cap;
        self.key.clear();
        self.key.resize(n, 0.0);
        self.parent.clear();
        self.parent.resize(n, 0);
        self.child.clear();
        self.child.resize(n, 0);
        self.token.clear();
        self.token.resize(n, 0);
        self.count.clear();
        self.count.resize(n_queries, 0);
    }
}

/// Runs a trie-constrained beam search whose per-level selection is done
/// by `step` (the device kernel, or its emulation): the top `k` items of
/// each of `n_queries` queries, equal to
/// [`BeamSearch::search`](crate::decode::BeamSearch::search) with the same
/// beam and k (without `renormalize`).
///
/// Errors: `beam` or `k` of 0, no queries, a scorer error or a scorer that
/// writes the wrong number of scores, an executor error, or an executor
/// output that points outside the beams.
#[allow(clippy::too_many_lines)]
pub fn search_with_step<S: Scorer + ?Sized>(
    trie: &Trie,
    tables: &TrieTables,
    scorer: &mut S,
    n_queries: usize,
    beam: usize,
    k: usize,
    step: &mut dyn FnMut(&StepInput<'_>, &mut StepOutput) -> Result<()>,
) -> Result<Hits> {
    if beam == 0 || beam > u32::MAX as usize / 2 {
        return Err(invalid("beam", format!("is {beam}; it must be in 1..2^31")));
    }
    if k == 0 {
        return Err(invalid("k", "is 0; ask for at least 1 item"));
    }
    if n_queries == 0 {
        return Err(Error::Empty {
            what: "query batch",
        });
    }
    let nq = u32::try_from(n_queries).map_err(|_| invalid("n_queries", "above u32::MAX"))?;
    let depth = trie.id_len();
    let nodes = trie.stats().nodes_per_depth;
    let fits = tables.levels.len() == depth
        && tables.levels.iter().enumerate().all(|(l, t)| {
            let count = nodes[l];
            t.offsets.len() == count + 1
                && t.first.len() == count
                && t.offsets
                    .last()
                    .is_some_and(|&e| e as usize == t.tokens.len())
                && (t.dense.is_empty() || t.dense.len() == count * trie.codebook_sizes()[l])
        });
    if !fits {
        return Err(invalid("tables", "were built from another trie"));
    }
    let mut prefix: Vec<u16> = Vec::new();
    let mut node: Vec<u32> = vec![0; n_queries];
    let mut score: Vec<f32> = vec![0.0; n_queries];
    let mut query: Vec<u32> = (0..nq).collect();
    let mut parent: Vec<u32> = Vec::new();
    let mut scores = Vec::new();
    let mut out = StepOutput::default();
    let (mut qbeg, mut order) = (Vec::new(), Vec::new());
    for level in 0..depth {
        let vocab = trie.codebook_sizes()[level];
        scores.clear();
        if !query.is_empty() {
            let beams = Beams {
                level,
                codebook_size: vocab,
                n_queries,
                prefixes: &prefix,
                queries: &query,
                parents: &parent,
            };
            scorer.score(&beams, &mut scores)?;
            if scores.len() != query.len() * vocab {
                return Err(Error::Shape {
                    what: "scores written by the scorer (beams × vocab)",
                    expected: query.len() * vocab,
                    got: scores.len(),
                });
            }
        }
        // Each query's beams in lexicographic order of their prefixes.
        qbeg.clear();
        order.clear();
        let mut b = 0;
        for q in 0..nq {
            qbeg.push(order.len() as u32);
            let start = order.len();
            while b < query.len() && query[b] == q {
                order.push(b as u32);
                b += 1;
            }
            if level > 0 {
                order[start..].sort_unstable_by(|&x, &y| {
                    let (x, y) = (x as usize * level, y as usize * level);
                    prefix[x..x + level].cmp(&prefix[y..y + level])
                });
            }
        }
        qbeg.push(order.len() as u32);
        let t = &tables.levels[level];
        let cap = beam as u32;
        out.reset(n_queries, beam);
        let input = StepInput {
            level: level as u32,
            n_queries: nq,
            cap,
            qbeg: &qbeg,
            order: &order,
            node: &node,
            bscore: &score,
            scores: &scores,
            vocab: vocab as u32,
            coff: &t.offsets,
            ctok: &t.tokens,
            dense: &t.dense,
        };
        step(&input, &mut out)?;
        let slots = n_queries * beam;
        if out.count.len() < n_queries
            || [
                out.key.len(),
                out.parent.len(),
                out.child.len(),
                out.token.len(),
            ]
            .iter()
            .any(|&l| l < slots)
        {
            return Err(invalid(
                "step",
                "the executor returned fewer slots than queries × beam",
            ));
        }
        let (mut next_prefix, mut next_node, mut next_score) = (Vec::new(), Vec::new(), Vec::new());
        let (mut next_query, mut next_parent) = (Vec::new(), Vec::new());
        for q in 0..n_queries {
            let count = (out.count[q] as usize).min(beam);
            for j in q * beam..q * beam + count {
                let p = out.parent[j] as usize;
                let bad = || {
                    invalid(
                        "step",
                        "the executor returned a candidate outside the beams",
                    )
                };
                if p >= query.len() || query[p] as usize != q {
                    return Err(bad());
                }
                let n = node[p] as usize;
                let children = t.offsets[n + 1] - t.offsets[n];
                if out.child[j] >= children {
                    return Err(bad());
                }
                next_prefix.extend_from_slice(&prefix[p * level..(p + 1) * level]);
                next_prefix.push(out.token[j]);
                next_node.push(t.first[n] + out.child[j]);
                next_score.push(-out.key[j]);
                next_query.push(q as u32);
                next_parent.push(p as u32);
            }
        }
        prefix = next_prefix;
        node = next_node;
        score = next_score;
        query = next_query;
        parent = next_parent;
    }
    let mut hits = Hits::new();
    hits.clear(depth);
    let mut b = 0;
    for q in 0..nq {
        let mut n = 0;
        while b < query.len() && query[b] == q {
            if n < k {
                let id = &prefix[b * depth..(b + 1) * depth];
                let items = trie.items(State {
                    depth: depth as u32,
                    node: node[b],
                });
                if items.is_empty() {
                    hits.push(NO_ITEM, score[b], id);
                    n += 1;
                }
                for &it in items.iter().take(k - n) {
                    hits.push(it, score[b], id);
                    n += 1;
                }
            }
            b += 1;
        }
        hits.end_query();
    }
    Ok(hits)
}
