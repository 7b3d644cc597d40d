//! One shard of a training batch: its forward/backward scratch and
//! gradients. Shards are cut by rows whatever the thread count and their
//! gradients summed in shard order, so training does not depend on threads.

use super::RqVae;
use crate::error::Result;
use crate::nn::{Grads, MlpCache};
use crate::par::Par;

/// Scratch and gradients of one shard of a training batch.
pub(super) struct Shard {
    pub(super) z: Vec<f32>,
    pub(super) resid: Vec<f32>,
    pub(super) q: Vec<f32>,
    pub(super) xhat: Vec<f32>,
    pub(super) dxhat: Vec<f32>,
    pub(super) dq: Vec<f32>,
    pub(super) dz: Vec<f32>,
    pub(super) labels: Vec<u32>,
    pub(super) dists: Vec<f32>,
    pub(super) cur: Vec<f32>,
    pub(super) enc_cache: MlpCache,
    pub(super) dec_cache: MlpCache,
    pub(super) enc_grads: Grads,
    pub(super) dec_grads: Grads,
    pub(super) cb_grad: Vec<f32>,
    /// Rows of this shard in the current batch.
    pub(super) rows: usize,
    /// Unnormalised squared reconstruction error.
    pub(super) recon: f64,
    /// Codebook + β·commitment loss, normalised by the whole batch.
    pub(super) vq: f64,
    pub(super) status: Result<()>,
}

impl Shard {
    pub(super) fn new(m: &RqVae) -> Shard {
        Shard {
            z: Vec::new(),
            resid: Vec::new(),
            q: Vec::new(),
            xhat: Vec::new(),
            dxhat: Vec::new(),
            dq: Vec::new(),
            dz: Vec::new(),
            labels: Vec::new(),
            dists: Vec::new(),
            cur: Vec::new(),
            enc_cache: MlpCache::default(),
            dec_cache: MlpCache::default(),
            enc_grads: m.encoder.zero_grads(),
            dec_grads: m.decoder.zero_grads(),
            cb_grad: vec![0.0; m.codebooks.len()],
            rows: 0,
            recon: 0.0,
            vq: 0.0,
            status: Ok(()),
        }
    }

    /// Gradient tensors in optimizer order: encoder, decoder, codebooks.
    pub(super) fn grads_mut(&mut self) -> impl Iterator<Item = &mut Vec<f32>> {
        self.enc_grads
            .tensors_mut()
            .chain(self.dec_grads.tensors_mut())
            .chain(std::iter::once(&mut self.cb_grad))
    }
}

/// Adds every shard's gradients into the first shard's, in shard order
/// (element ranges run in parallel; each element's sum has a fixed order).
pub(super) fn reduce_grads(shards: &mut [Shard], par: Par) {
    let Some((first, rest)) = shards.split_first_mut() else {
        return;
    };
    let mut rest_tensors: Vec<Vec<&Vec<f32>>> = Vec::new();
    for sh in rest.iter_mut() {
        for (t, g) in sh.grads_mut().enumerate() {
            if rest_tensors.len() <= t {
                rest_tensors.push(Vec::new());
            }
            rest_tensors[t].push(&*g);
        }
    }
    const PIECE: usize = 1 << 14;
    let mut pieces: Vec<(&mut [f32], usize, usize)> = Vec::new();
    for (t, g) in first.grads_mut().enumerate() {
        for (j, piece) in g.chunks_mut(PIECE).enumerate() {
            pieces.push((piece, t, j * PIECE));
        }
    }
    crate::par::for_each_item(par, &mut pieces, |_, (dst, t, off)| {
        let srcs = rest_tensors.get(*t).map_or(&[][..], Vec::as_slice);
        for src in srcs {
            for (a, b) in dst.iter_mut().zip(&src[*off..]) {
                *a += b;
            }
        }
    });
}
