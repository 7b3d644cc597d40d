//! Arrays that live in a file: read-only memory maps of index files, and
//! typed, shared views into them or into the heap.
//!
//! This is the one module outside `kernels/` and `gpu/` where `unsafe` is
//! allowed (docs/FORMAT.md, version 3). It has three blocks:
//!
//! - [`Region::map`] maps a file. A mapping is only sound while nobody
//!   changes the file; see the safety argument there.
//! - [`Shared`]'s `Deref` turns a pointer and a length that were checked
//!   once, when the view was made, into a slice.
//! - [`le_bytes`] views integers as their bytes, to write them, and a
//!   private twin fills an aligned heap buffer from a file.
//!
//! Everything else reads through these safe types: a view is made only
//! after its byte range has been checked against the region and its
//! alignment against the element type.
#![allow(unsafe_code)]

use std::any::Any;
use std::borrow::Cow;
use std::fs::File;
use std::ptr::NonNull;
use std::sync::Arc;

/// Element types read straight from file bytes: fixed-width unsigned
/// integers, of which every bit pattern is a value, with no padding.
pub(crate) trait Plain: Copy + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The value of `SIZE` little-endian bytes.
    fn from_le(b: &[u8]) -> Self;
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl Plain for $t {
            #[inline]
            fn from_le(b: &[u8]) -> Self {
                let mut a = [0u8; size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
plain!(u8, u16, u32, u64);

/// Bytes that stay where they are while any [`Shared`] view into them
/// lives: a read-only memory map of a file, or a heap copy aligned to 8
/// bytes.
pub(crate) struct Region {
    kind: RegionKind,
}

enum RegionKind {
    Map(memmap2::Mmap),
    /// `len` bytes at the start of the words.
    Heap(Vec<u64>, usize),
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            RegionKind::Map(_) => "mapped",
            RegionKind::Heap(..) => "heap",
        };
        write!(f, "Region({kind}, {} bytes)", self.bytes().len())
    }
}

impl Region {
    /// Maps `file` read-only.
    ///
    /// The file must not change while the region, or any view of it, is
    /// alive: semid's own saves never change a file in place (they write
    /// a new file and rename it over the old name, so a mapped file keeps
    /// its bytes), and [`SemanticIndex::open`](crate::SemanticIndex::open)
    /// asks the same of other writers.
    pub(crate) fn map(file: &File) -> std::io::Result<Region> {
        // SAFETY: the mapping is read-only and private to this process;
        // no Rust reference into it is ever written through. The remaining
        // hazard of any file mapping, another process truncating or
        // rewriting the file in place, is excluded by the documented
        // contract above (the one fst and ripgrep state for theirs):
        // semid writes files by rename, so it never rewrites a mapped file.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Region {
            kind: RegionKind::Map(map),
        })
    }

    /// A heap copy of `bytes`, aligned to 8 bytes.
    pub(crate) fn copy(bytes: &[u8]) -> Region {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        words_as_bytes_mut(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Region {
            kind: RegionKind::Heap(words, bytes.len()),
        }
    }

    /// Reads the whole of `file` (of `len` bytes) into an aligned heap
    /// buffer.
    pub(crate) fn read(file: &mut File, len: usize) -> std::io::Result<Region> {
        use std::io::Read;
        let mut words = vec![0u64; len.div_ceil(8)];
        file.read_exact(&mut words_as_bytes_mut(&mut words)[..len])?;
        Ok(Region {
            kind: RegionKind::Heap(words, len),
        })
    }

    /// The region's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.kind {
            RegionKind::Map(m) => m,
            RegionKind::Heap(w, len) => &le_bytes(w)[..*len],
        }
    }
}

/// An immutable slice shared between clones (a clone is a reference-count
/// increment), over a heap `Vec` or a checked range of a [`Region`]. Reads
/// cost what a `&[T]` costs: a pointer and a length, no branch.
pub(crate) struct Shared<T: Plain> {
    ptr: NonNull<T>,
    len: usize,
    /// Keeps the memory behind `ptr` alive and unchanged.
    _owner: Arc<dyn Any + Send + Sync>,
}

// SAFETY: a `Shared` only ever reads its elements (plain integers, `Send`
// and `Sync`), and its owner, which keeps them alive, is `Send + Sync`.
unsafe impl<T: Plain> Send for Shared<T> {}
// SAFETY: as above; no `&mut` to the elements exists while views do.
unsafe impl<T: Plain> Sync for Shared<T> {}

impl<T: Plain> Shared<T> {
    /// A view of `v` (no copy).
    pub(crate) fn from_vec(v: Vec<T>) -> Shared<T> {
        let len = v.len();
        // A Vec's pointer is never null (dangling and aligned when empty)
        // and its heap buffer does not move when the Vec itself moves into
        // the Arc below.
        let ptr = NonNull::new(v.as_ptr().cast_mut()).unwrap_or(NonNull::dangling());
        Shared {
            ptr,
            len,
            _owner: Arc::new(v),
        }
    }

    /// A view of `len` elements at byte `offset` of `region`, or `None`
    /// when the range does not fit the region or is not aligned for `T`.
    /// On a big-endian host the elements are copied and byte-swapped.
    pub(crate) fn from_region(
        region: &Arc<Region>,
        offset: usize,
        len: usize,
    ) -> Option<Shared<T>> {
        let size = size_of::<T>();
        let bytes = region.bytes();
        let end = len.checked_mul(size)?.checked_add(offset)?;
        let range = bytes.get(offset..end)?;
        if cfg!(target_endian = "big") {
            let v = range.chunks_exact(size).map(T::from_le).collect();
            return Some(Shared::from_vec(v));
        }
        let ptr = range.as_ptr();
        if !(ptr as usize).is_multiple_of(align_of::<T>()) {
            return None;
        }
        let owner: Arc<dyn Any + Send + Sync> = region.clone();
        Some(Shared {
            ptr: NonNull::new(ptr.cast::<T>().cast_mut())?,
            len,
            _owner: owner,
        })
    }

    /// True when both views are the same memory.
    fn same(&self, other: &Shared<T>) -> bool {
        self.ptr == other.ptr && self.len == other.len
    }
}

impl<T: Plain> std::ops::Deref for Shared<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points at `len` initialised, aligned `T`s: the
        // whole of a Vec, or a range of a region checked in `from_region`
        // (inside the region's bytes, aligned for `T`; every bit pattern
        // is a `T`). `_owner` keeps that memory alive and nothing writes
        // to it while this view exists.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Plain> Clone for Shared<T> {
    fn clone(&self) -> Shared<T> {
        Shared {
            ptr: self.ptr,
            len: self.len,
            _owner: self._owner.clone(),
        }
    }
}

impl<T: Plain> Default for Shared<T> {
    fn default() -> Shared<T> {
        Shared::from_vec(Vec::new())
    }
}

impl<T: Plain> PartialEq for Shared<T> {
    fn eq(&self, other: &Shared<T>) -> bool {
        self.same(other) || **self == **other
    }
}

impl<T: Plain> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// A growable array, or a [`Shared`] view that becomes one (a copy) when
/// it is first changed: the parts of a `SidMap`, whose base may live in a
/// file while its delta grows.
#[derive(Clone, Debug)]
pub(crate) enum Buf<T: Plain> {
    /// Owned, growable.
    Heap(Vec<T>),
    /// Shared, read-only.
    Shared(Shared<T>),
}

impl<T: Plain> Buf<T> {
    /// The elements as a growable `Vec`, copying a shared view first.
    pub(crate) fn to_mut(&mut self) -> &mut Vec<T> {
        if let Buf::Shared(s) = self {
            *self = Buf::Heap(s.to_vec());
        }
        match self {
            Buf::Heap(v) => v,
            Buf::Shared(_) => unreachable!("made owned above"),
        }
    }

    /// The elements as a `Vec` (a copy for a shared view).
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            Buf::Heap(v) => v,
            Buf::Shared(s) => s.to_vec(),
        }
    }

    /// Bytes held on the heap (a shared view counts as 0: it is a file's,
    /// or counted where it was made).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Buf::Heap(v) => v.capacity() * size_of::<T>(),
            Buf::Shared(_) => 0,
        }
    }
}

impl<T: Plain> PartialEq for Buf<T> {
    fn eq(&self, other: &Buf<T>) -> bool {
        **self == **other
    }
}

impl<T: Plain> Default for Buf<T> {
    fn default() -> Buf<T> {
        Buf::Heap(Vec::new())
    }
}

impl<T: Plain> From<Vec<T>> for Buf<T> {
    fn from(v: Vec<T>) -> Buf<T> {
        Buf::Heap(v)
    }
}

impl<T: Plain> std::ops::Deref for Buf<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            Buf::Heap(v) => v,
            Buf::Shared(s) => s,
        }
    }
}

/// The little-endian bytes of `v`: a view on a little-endian host, a copy
/// elsewhere.
pub(crate) fn le_bytes<T: Plain>(v: &[T]) -> &[u8] {
    // SAFETY: `T` is a plain integer (no padding, every byte initialised);
    // `u8` has alignment 1, and the byte length is the slice's size in
    // bytes, which `size_of_val` gives without overflow.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), size_of_val(v)) }
}

/// The bytes of `words`, to fill them.
fn words_as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: a `u64` has no padding and every byte pattern is a `u64`, so
    // any bytes written through the view leave valid words; `u8` has
    // alignment 1, and the view borrows `words` mutably for its lifetime.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), size_of_val(words)) }
}

/// The little-endian file bytes of `v`, whatever the host's order.
pub(crate) fn to_le_bytes<T: Plain>(v: &[T]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        return Cow::Borrowed(le_bytes(v));
    }
    let size = size_of::<T>();
    let mut out = le_bytes(v).to_vec();
    for c in out.chunks_exact_mut(size) {
        c.reverse();
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_check_range_and_alignment() {
        let bytes: Vec<u8> = (0..64u8).collect();
        let r = Arc::new(Region::copy(&bytes));
        let v = Shared::<u32>::from_region(&r, 8, 4).unwrap();
        assert_eq!(v[0], u32::from_le_bytes([8, 9, 10, 11]));
        assert_eq!(v.len(), 4);
        // Misaligned, past the end, overflowing: refused.
        assert!(Shared::<u32>::from_region(&r, 2, 1).is_none());
        assert!(Shared::<u32>::from_region(&r, 60, 2).is_none());
        assert!(Shared::<u64>::from_region(&r, 8, usize::MAX / 4).is_none());
        // An empty view at the end is fine.
        assert!(Shared::<u16>::from_region(&r, 64, 0).is_some());
        // The view outlives the caller's handle on the region.
        drop(r);
        assert_eq!(v[3], u32::from_le_bytes([20, 21, 22, 23]));
        let w = v.clone();
        assert_eq!(v, w);
        assert_eq!(&*to_le_bytes(&w[..1]), &[8, 9, 10, 11]);
    }

    #[test]
    fn a_shared_buffer_copies_on_first_change() {
        let s = Shared::from_vec(vec![1u16, 2, 3]);
        let mut b = Buf::Shared(s.clone());
        assert_eq!(b.heap_bytes(), 0);
        b.to_mut().push(4);
        assert_eq!(&*b, &[1, 2, 3, 4]);
        assert_eq!(&*s, &[1, 2, 3]);
    }
}
