//! Explicit parallelism.
//!
//! Work is always cut into blocks whose size does not depend on the thread
//! count, and every reduction combines block results in block order, so the
//! same input gives bit-identical output with 1, 2 or 64 threads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// How much parallelism a call may use.
///
/// semid never reads environment variables or global switches: each fit and
/// encode takes a `Par` (in its config, or as an argument). `Par::Rayon(n)`
/// runs on the *current* rayon pool (wrap the call in
/// `ThreadPool::install` to pick another) using at most `n` of its threads;
/// `Par::Rayon(0)` uses all of them. Without the `rayon` feature every mode
/// runs sequentially.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Par {
    /// Run on the calling thread only.
    Seq,
    /// Run on up to this many threads of the current rayon pool (0 = all).
    Rayon(usize),
}

impl Default for Par {
    /// `Par::Rayon(0)` with the `rayon` feature, `Par::Seq` without.
    fn default() -> Self {
        if cfg!(feature = "rayon") {
            Par::Rayon(0)
        } else {
            Par::Seq
        }
    }
}

impl Par {
    /// Number of worker threads this mode stands for (at least 1).
    #[must_use]
    pub fn threads(self) -> usize {
        match self {
            Par::Seq => 1,
            #[cfg(feature = "rayon")]
            Par::Rayon(0) => rayon::current_num_threads().max(1),
            #[cfg(feature = "rayon")]
            Par::Rayon(n) => n,
            #[cfg(not(feature = "rayon"))]
            Par::Rayon(_) => 1,
        }
    }
}

/// What a block's closure returns: `()` when it cannot fail, or
/// `Result<()>`. The block runners return the matching [`Outcome::Total`].
pub(crate) trait Outcome: Sized {
    /// `()` for `()`, `Result<()>` for `Result<()>`.
    type Total;
    /// The block's error, if any.
    fn into_error(self) -> Option<Error>;
    /// The run's result from the error of the lowest failing block.
    fn total(first: Option<Error>) -> Self::Total;
}

impl Outcome for () {
    type Total = ();
    fn into_error(self) -> Option<Error> {
        None
    }
    fn total(_: Option<Error>) {}
}

impl Outcome for Result<()> {
    type Total = Result<()>;
    fn into_error(self) -> Option<Error> {
        self.err()
    }
    fn total(first: Option<Error>) -> Result<()> {
        first.map_or(Ok(()), Err)
    }
}

/// Runs `f(scratch, first_row, rows)` over consecutive blocks of `block`
/// rows of `out` (`out_stride` elements per row): [`for_each_block2`] with
/// one output.
pub(crate) fn for_each_block<A: Send, S, R: Outcome>(
    par: Par,
    n_rows: usize,
    block: usize,
    out: &mut [A],
    out_stride: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [A]) -> R + Sync,
) -> R::Total {
    let mut unit = vec![(); n_rows];
    let g = |s: &mut S, r, a: &mut [A], _: &mut [()]| f(s, r, a);
    for_each_block2(par, n_rows, block, out, out_stride, &mut unit, 1, init, g)
}

/// Runs `f(scratch, first_row, a_rows, b_rows)` over consecutive blocks of
/// `block` rows. `a` has `a_stride` elements per row and `b` `b_stride`; the
/// slices passed to `f` hold exactly the block's rows. Each worker makes its
/// own scratch with `init`. Blocks do not depend on the thread count.
///
/// When `f` may fail, the run returns the error of the block with the lowest
/// first row, whatever the thread count (blocks above an error already seen
/// are skipped; blocks below it still run, so the lowest failing block
/// always reports).
#[allow(clippy::too_many_arguments)]
pub(crate) fn for_each_block2<A: Send, B: Send, S, R: Outcome>(
    par: Par,
    n_rows: usize,
    block: usize,
    a: &mut [A],
    a_stride: usize,
    b: &mut [B],
    b_stride: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [A], &mut [B]) -> R + Sync,
) -> R::Total {
    debug_assert!(block > 0 && a_stride > 0 && b_stride > 0);
    debug_assert_eq!(a.len(), n_rows * a_stride);
    debug_assert_eq!(b.len(), n_rows * b_stride);
    let first: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    // Set once any block failed, so that runs without errors never lock.
    let failed = AtomicBool::new(false);
    // A poisoned lock still holds a valid slot: take it as it is.
    let slot = || first.lock().unwrap_or_else(|p| p.into_inner());
    let run_block = |s: &mut S, row0: usize, ra: &mut [A], rb: &mut [B]| {
        if failed.load(Ordering::Relaxed) && slot().as_ref().is_some_and(|(r, _)| *r < row0) {
            return;
        }
        if let Some(e) = f(s, row0, ra, rb).into_error() {
            failed.store(true, Ordering::Relaxed);
            let mut g = slot();
            if g.as_ref().is_none_or(|(r, _)| row0 < *r) {
                *g = Some((row0, e));
            }
        }
    };
    let n_blocks = n_rows.div_ceil(block);
    let threads = par.threads().min(n_blocks);
    let run_group = |group_first_row: usize, ga: &mut [A], gb: &mut [B]| {
        let mut scratch = init();
        let rows = ga.len() / a_stride;
        let mut r = 0;
        while r < rows {
            let end = (r + block).min(rows);
            run_block(
                &mut scratch,
                group_first_row + r,
                &mut ga[r * a_stride..end * a_stride],
                &mut gb[r * b_stride..end * b_stride],
            );
            r = end;
        }
    };
    if threads <= 1 || cfg!(not(feature = "rayon")) {
        if n_rows > 0 {
            run_group(0, a, b);
        }
    } else {
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            let group_rows = n_blocks.div_ceil(threads) * block;
            a.par_chunks_mut(group_rows * a_stride)
                .zip(b.par_chunks_mut(group_rows * b_stride))
                .enumerate()
                .for_each(|(g, (ga, gb))| run_group(g * group_rows, ga, gb));
        }
    }
    R::total(
        first
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .map(|(_, e)| e),
    )
}

/// Runs `f(index, item)` on every item, the items cut into at most
/// `par.threads()` contiguous groups. What each call computes must not
/// depend on which thread runs it; callers reduce results in item order.
pub(crate) fn for_each_item<T, F>(par: Par, items: &mut [T], f: F)
where
    T: Send,
    F: Fn(usize, &mut T) + Sync,
{
    let threads = par.threads().min(items.len());
    if threads <= 1 {
        for (i, it) in items.iter_mut().enumerate() {
            f(i, it);
        }
        return;
    }
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        let group = items.len().div_ceil(threads);
        items
            .par_chunks_mut(group)
            .enumerate()
            .for_each(|(g, chunk)| {
                for (j, it) in chunk.iter_mut().enumerate() {
                    f(g * group + j, it);
                }
            });
    }
    #[cfg(not(feature = "rayon"))]
    for (i, it) in items.iter_mut().enumerate() {
        f(i, it);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lowest failing block reports, on any thread count, and every row
    /// below it is still written.
    #[test]
    #[cfg(feature = "rayon")]
    fn the_lowest_failing_block_reports() {
        let run = |par: Par| {
            let mut out = vec![0u32; 10_000];
            let r = for_each_block(
                par,
                10_000,
                100,
                &mut out,
                1,
                || (),
                |_, row0, o| {
                    for (i, v) in o.iter_mut().enumerate() {
                        *v = (row0 + i) as u32;
                    }
                    if row0 == 300 || row0 == 7_000 {
                        return Err(crate::error::invalid("block", row0.to_string()));
                    }
                    Ok(())
                },
            );
            let r = match r {
                Err(Error::InvalidConfig { reason, .. }) => reason,
                other => format!("{other:?}"),
            };
            (r, out[..300].to_vec())
        };
        let want: Vec<u32> = (0..300).collect();
        for par in [Par::Seq, Par::Rayon(1), Par::Rayon(2), Par::Rayon(8)] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(8)
                .build()
                .unwrap();
            let (r, head) = pool.install(|| run(par));
            assert_eq!(r, "300", "{par:?}");
            assert_eq!(head, want, "{par:?}");
        }
        let ok = for_each_block(Par::Seq, 5, 2, &mut [0u8; 5], 1, || (), |_, _, _| Ok(()));
        assert!(ok.is_ok());
    }
}
