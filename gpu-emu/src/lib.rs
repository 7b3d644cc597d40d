//! semid's CUDA kernel sources run as C++ on the CPU (see `emu.h`): the
//! grid is a loop over blocks and threads. Tests compare each kernel with
//! its CPU twin on machines with no GPU. This checks the kernel logic, not
//! the device plumbing.

unsafe extern "C" {
    fn emu_semid_store_codes(
        grid: u32,
        block: u32,
        labels: *const u32,
        n: u32,
        levels: u32,
        level: u32,
        codes: *mut u16,
    );
    fn emu_semid_centroid_means(
        grid: u32,
        block: u32,
        x: *const f32,
        d: u32,
        perm: *const u32,
        start: *const u32,
        k: u32,
        chunk: u32,
        centroids: *mut f32,
    );
    fn emu_semid_residual(
        grid: u32,
        block: u32,
        x: *mut f32,
        c: *const f32,
        labels: *const u32,
        n: u32,
        d: u32,
    );
    fn emu_semid_beam_step(
        grid: u32,
        block: u32,
        n_queries: u32,
        cap: u32,
        qbeg: *const u32,
        order: *const u32,
        node: *const u32,
        bscore: *const f32,
        scores: *const f32,
        vocab: u32,
        coff: *const u32,
        ctok: *const u16,
        dense: u32,
        dchild: *const u32,
        out_key: *mut f32,
        out_parent: *mut u32,
        out_child: *mut u32,
        out_tok: *mut u16,
        out_count: *mut u32,
    );
    fn emu_semid_assign(
        grid: u32,
        block: u32,
        dots: *const f32,
        cnorm: *const f32,
        xnorm: *const f32,
        n: u32,
        k: u32,
        labels: *mut u32,
        dist: *mut f32,
    );
    fn emu_semid_fsq_indices(
        grid: u32,
        block: u32,
        z: *const f32,
        n: u32,
        d: u32,
        thresholds: *const f32,
        toff: *const u32,
        base: *const u32,
        basis: *const u32,
        out: *mut u16,
    );
}

/// A launch: `grid` blocks of `block` threads.
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    /// Blocks.
    pub grid: u32,
    /// Threads per block.
    pub block: u32,
}

/// `semid_assign` over `n` rows of `dots` (n × k, column-major: product
/// (i, j) at `j * n + i`).
///
/// # Panics
/// If a buffer is shorter than the kernel reads or writes, or if the grid
/// covers fewer than `n` rows.
#[allow(clippy::too_many_arguments)]
pub fn assign(
    l: Launch,
    dots: &[f32],
    cnorm: &[f32],
    xnorm: &[f32],
    n: usize,
    k: usize,
    labels: &mut [u32],
    dist: &mut [f32],
) {
    assert!(k >= 1 && dots.len() >= n * k && cnorm.len() >= k && xnorm.len() >= n);
    assert!(labels.len() >= n && dist.len() >= n);
    assert!(
        l.grid as usize * l.block as usize >= n,
        "the grid does not cover the rows"
    );
    // SAFETY: the buffers hold what the kernel touches for rows < n
    // (checked above); threads at or past n return at once.
    unsafe {
        emu_semid_assign(
            l.grid,
            l.block,
            dots.as_ptr(),
            cnorm.as_ptr(),
            xnorm.as_ptr(),
            n as u32,
            k as u32,
            labels.as_mut_ptr(),
            dist.as_mut_ptr(),
        );
    }
}

/// `semid_fsq_indices` over `n` rows of `z` (n × d).
///
/// # Panics
/// If a buffer is shorter than the kernel reads or writes, or if the grid
/// covers fewer than `n` rows.
#[allow(clippy::too_many_arguments)]
pub fn fsq_indices(
    l: Launch,
    z: &[f32],
    n: usize,
    d: usize,
    thresholds: &[f32],
    toff: &[u32],
    base: &[u32],
    basis: &[u32],
    out: &mut [u16],
) {
    assert!(z.len() >= n * d && toff.len() == d + 1 && base.len() >= d && basis.len() >= d);
    assert!(toff.iter().all(|&t| t as usize <= thresholds.len()) && out.len() >= n);
    assert!(
        l.grid as usize * l.block as usize >= n,
        "the grid does not cover the rows"
    );
    // SAFETY: as for `assign`; threshold ranges lie inside `thresholds`.
    unsafe {
        emu_semid_fsq_indices(
            l.grid,
            l.block,
            z.as_ptr(),
            n as u32,
            d as u32,
            thresholds.as_ptr(),
            toff.as_ptr(),
            base.as_ptr(),
            basis.as_ptr(),
            out.as_mut_ptr(),
        );
    }
}

/// The inputs of `semid_beam_step` (see src/gpu/kernels/beam.cu).
#[derive(Clone, Copy, Debug)]
pub struct BeamStep<'a> {
    /// Queries.
    pub n_queries: u32,
    /// Beams kept per query.
    pub cap: u32,
    /// Query q's beams are `order[qbeg[q]..qbeg[q + 1]]`.
    pub qbeg: &'a [u32],
    /// Beams in lexicographic order per query.
    pub order: &'a [u32],
    /// Trie node of every beam.
    pub node: &'a [u32],
    /// Beam scores.
    pub bscore: &'a [f32],
    /// Next-token scores, beams × vocab.
    pub scores: &'a [f32],
    /// Vocabulary.
    pub vocab: u32,
    /// Child offsets per node.
    pub coff: &'a [u32],
    /// Child tokens.
    pub ctok: &'a [u16],
    /// Dense layout: token `t` of node `n` is child `dchild[n * vocab + t]`
    /// (`u32::MAX`: not allowed); empty for the CSR layout.
    pub dchild: &'a [u32],
}

/// `semid_beam_step`; the outputs hold `n_queries × cap` slots and
/// `n_queries` counts.
///
/// # Panics
/// If an input is shorter than the kernel reads (beams, nodes, scores,
/// children) or an output shorter than it writes.
#[allow(clippy::too_many_arguments)]
pub fn beam_step(
    l: Launch,
    s: &BeamStep<'_>,
    key: &mut [f32],
    parent: &mut [u32],
    child: &mut [u32],
    token: &mut [u16],
    count: &mut [u32],
) {
    let (nq, cap) = (s.n_queries as usize, s.cap as usize);
    assert!(s.qbeg.len() == nq + 1 && s.qbeg[nq] as usize <= s.order.len());
    let beams = s.node.len();
    assert!(s.order.iter().all(|&b| (b as usize) < beams) && s.bscore.len() >= beams);
    assert!(s.scores.len() >= beams * s.vocab as usize);
    assert!(s.node.iter().all(|&n| (n as usize) + 1 < s.coff.len()));
    assert!(s.coff.iter().all(|&c| c as usize <= s.ctok.len()));
    assert!(s.dchild.is_empty() || s.dchild.len() >= (s.coff.len() - 1) * s.vocab as usize);
    assert!(key.len() >= nq * cap && parent.len() >= nq * cap && child.len() >= nq * cap);
    assert!(token.len() >= nq * cap && count.len() >= nq && cap >= 1);
    assert!(
        l.grid as usize * l.block as usize >= nq,
        "the grid does not cover the queries"
    );
    // SAFETY: every index the kernel forms is inside the buffers, as the
    // assertions above check; threads at or past n_queries return at once.
    unsafe {
        emu_semid_beam_step(
            l.grid,
            l.block,
            s.n_queries,
            s.cap,
            s.qbeg.as_ptr(),
            s.order.as_ptr(),
            s.node.as_ptr(),
            s.bscore.as_ptr(),
            s.scores.as_ptr(),
            s.vocab,
            s.coff.as_ptr(),
            s.ctok.as_ptr(),
            u32::from(!s.dchild.is_empty()),
            s.dchild.as_ptr(),
            key.as_mut_ptr(),
            parent.as_mut_ptr(),
            child.as_mut_ptr(),
            token.as_mut_ptr(),
            count.as_mut_ptr(),
        );
    }
}

/// `semid_residual` over `n` rows of `x` (n × d) with codebook `c`.
///
/// # Panics
/// If a buffer is too short, a label is outside the codebook, or the grid
/// covers fewer than `n × d` elements.
pub fn residual(l: Launch, x: &mut [f32], c: &[f32], labels: &[u32], n: usize, d: usize) {
    assert!(x.len() >= n * d && labels.len() >= n && d >= 1);
    assert!(labels[..n].iter().all(|&t| (t as usize + 1) * d <= c.len()));
    assert!(
        l.grid as usize * l.block as usize >= n * d,
        "the grid does not cover the elements"
    );
    // SAFETY: every element and codeword index is in bounds (checked above).
    unsafe {
        emu_semid_residual(
            l.grid,
            l.block,
            x.as_mut_ptr(),
            c.as_ptr(),
            labels.as_ptr(),
            n as u32,
            d as u32,
        )
    }
}

/// `semid_centroid_means`: the means of `k` clusters of rows of `x`
/// (· × d) whose members are `perm[start[j]..start[j + 1]]`, written into
/// `centroids` (k × d) for clusters with members.
///
/// # Panics
/// If `start` does not have `k + 1` non-decreasing entries within `perm`,
/// a row of `perm` is outside `x`, `chunk` is 0, or the grid covers fewer
/// than `k × d` elements.
#[allow(clippy::too_many_arguments)]
pub fn centroid_means(
    l: Launch,
    x: &[f32],
    d: usize,
    perm: &[u32],
    start: &[u32],
    k: usize,
    chunk: usize,
    centroids: &mut [f32],
) {
    assert!(d >= 1 && chunk >= 1 && start.len() == k + 1 && centroids.len() >= k * d);
    assert!(start.windows(2).all(|w| w[0] <= w[1]) && start[k] as usize <= perm.len());
    assert!(perm.iter().all(|&r| (r as usize + 1) * d <= x.len()));
    assert!(
        l.grid as usize * l.block as usize >= k * d,
        "the grid does not cover the elements"
    );
    // SAFETY: every row and cluster index the kernel forms is in bounds
    // (checked above); threads at or past k × d return at once.
    unsafe {
        emu_semid_centroid_means(
            l.grid,
            l.block,
            x.as_ptr(),
            d as u32,
            perm.as_ptr(),
            start.as_ptr(),
            k as u32,
            chunk as u32,
            centroids.as_mut_ptr(),
        )
    }
}

/// `semid_store_codes`: `codes[i * levels + level] = labels[i]` for the
/// first `n` rows.
///
/// # Panics
/// If `level >= levels`, a buffer is too short, or the grid covers fewer
/// than `n` rows.
pub fn store_codes(
    l: Launch,
    labels: &[u32],
    n: usize,
    levels: usize,
    level: usize,
    codes: &mut [u16],
) {
    assert!(level < levels && labels.len() >= n && codes.len() >= n * levels);
    assert!(
        l.grid as usize * l.block as usize >= n,
        "the grid does not cover the rows"
    );
    // SAFETY: every index the kernel forms is below n × levels (checked).
    unsafe {
        emu_semid_store_codes(
            l.grid,
            l.block,
            labels.as_ptr(),
            n as u32,
            levels as u32,
            level as u32,
            codes.as_mut_ptr(),
        )
    }
}
