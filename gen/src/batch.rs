//! Row batches as the models see them: checking token ids, the causal
//! mask over cached positions, and keeping the rows a beam step chose.

use candle_core::{Device, Tensor};

use crate::error::{Result, config};

/// Checks that `ids` split into `rows` equal rows of tokens below `vocab`
/// and returns the row length. Errors (field `ids`) say which rule broke;
/// `what` names the ids in the message.
pub(crate) fn row_len(ids: &[u32], rows: usize, vocab: usize, what: &str) -> Result<usize> {
    if rows == 0 || ids.is_empty() || !ids.len().is_multiple_of(rows) {
        return Err(config(
            "ids",
            format!("{} {what} do not split into {rows} rows", ids.len()),
        ));
    }
    if let Some(&t) = ids.iter().find(|&&t| t as usize >= vocab) {
        return Err(config(
            "ids",
            format!("token {t} is outside the vocabulary 0..{vocab}"),
        ));
    }
    Ok(ids.len() / rows)
}

/// The additive causal bias `(1, 1, t, start + t)` of `t` new positions
/// after `start` cached ones: 0 where query `i` may see key `j`
/// (`j ≤ start + i`), `masked` elsewhere.
pub(crate) fn causal_bias(start: usize, t: usize, masked: f32) -> candle_core::Result<Tensor> {
    let keys = start + t;
    let mut bias = Vec::with_capacity(t * keys);
    for i in 0..t {
        bias.extend((0..keys).map(|j| if j <= start + i { 0f32 } else { masked }));
    }
    Tensor::from_vec(bias, (1, 1, t, keys), &Device::Cpu)
}

/// Keeps rows `parents` (dimension 0) of every tensor, in that order.
pub(crate) fn keep_rows<'a>(
    tensors: impl IntoIterator<Item = &'a mut Tensor>,
    parents: &[u32],
) -> candle_core::Result<()> {
    let mut idx = None;
    for t in tensors {
        let i = match &idx {
            Some(i) => i,
            None => idx.insert(Tensor::new(parents, t.device())?),
        };
        *t = t.index_select(i, 0)?;
    }
    Ok(())
}
