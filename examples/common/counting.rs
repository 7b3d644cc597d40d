//! A global allocator that counts allocation calls, for the benches and
//! tests that check a path allocates nothing after warm-up. A binary
//! installs it with `#[global_allocator] static GLOBAL: Counting = Counting;`
//! and reads [`ALLOCS`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Allocation calls so far (in the binary that installed [`Counting`]).
pub static ALLOCS: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting calls to `alloc` in [`ALLOCS`].
pub struct Counting;

// SAFETY: forwards to the system allocator and only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
    }
}
