//! semid's CUDA kernel sources run as C++ on the CPU (see `emu.h`): the
//! grid is a loop over blocks and threads. Tests compare each kernel with
//! its CPU twin on machines with no GPU. This checks the kernel logic, not
//! the device plumbing.

unsafe extern "C" {
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

/// `semid_assign` over `n` rows of `dots` (n × k).
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
