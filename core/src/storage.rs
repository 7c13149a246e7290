//! Where a registry keeps its slots, index and wait lists: inline (capacity a const generic,
//! `const`-constructible, no allocator) or on the heap (capacity chosen at run time).

use core::{cell::UnsafeCell, fmt};

use crate::{
    list::{Bucket, Waiters},
    loom::AtomicU32,
    slot::Slot,
};

/// The storage of a [`Registry`](crate::Registry): [`Inline`] or [`Heap`].
///
/// A registry of capacity `n` has `n` slots (one per name, `""` included), an index of
/// `2 × n` positions, a wait list per slot and a wait bucket per index position. The trait is
/// sealed: code that works with any registry is generic over it,
///
/// ```
/// use dubbo_health_core::{FixedRegistry, Registry, ServingStatus, Storage};
///
/// fn serving<S: Storage>(registry: &Registry<S>, name: &str) -> bool {
///     registry.get(name) == Some(ServingStatus::Serving)
/// }
/// assert!(serving(&FixedRegistry::<4>::new(), ""));
/// ```
///
/// but only this crate implements it.
pub trait Storage: sealed::Sealed + Send + Sync {}

pub(crate) mod sealed {
    // A sealed trait and its helper type must be `pub` to appear in a public bound, even
    // though nothing outside this crate can name them.
    #![allow(unreachable_pub)]

    use super::*;

    /// The parts of a storage, as slices.
    #[allow(missing_debug_implementations)]
    pub struct Parts<'a> {
        pub(crate) slots: &'a [Slot],
        pub(crate) index: &'a [AtomicU32],
        /// Lock-protected.
        pub(crate) waiters: &'a [UnsafeCell<Waiters>],
        /// Lock-protected.
        pub(crate) buckets: &'a [UnsafeCell<Bucket>],
    }

    pub trait Sealed {
        /// The slots (`capacity`), index and buckets (`2 × capacity`) and slot wait lists
        /// (`capacity`). Always the same slices for the same storage.
        fn parts(&self) -> Parts<'_>;
    }
}

use sealed::{Parts, Sealed};

/// Storage for `N` names inside the registry itself: no allocator needed, and
/// [`FixedRegistry::new`](crate::FixedRegistry::new) is a `const fn`, so a registry can be a
/// `static`.
///
/// About `N × 290` bytes on 64-bit targets (see `docs/core.md`); a large `N` is better
/// served by [`Heap`] (or a `static`, which is not built on the stack).
pub struct Inline<const N: usize> {
    slots: [Slot; N],
    index: [[AtomicU32; 2]; N],
    waiters: [UnsafeCell<Waiters>; N],
    buckets: [[UnsafeCell<Bucket>; 2]; N],
}

impl<const N: usize> Inline<N> {
    crate::loom::loom_const_fn! {
        /// Empty storage, with `""` registered in slot 0 at index position `root_pos`.
        pub(crate) fn with_root(root_hash: u32, root_pos: usize, root_word: u32) -> Self {
            #[cfg(not(loom))]
            {
                let mut slots = [const { Slot::new() }; N];
                slots[0] = Slot::new_root(root_hash);
                let mut index = [const { [const { AtomicU32::new(0) }; 2] }; N];
                index[root_pos / 2][root_pos % 2] = AtomicU32::new(root_word);
                Self {
                    slots,
                    index,
                    waiters: [const { UnsafeCell::new(Waiters::new()) }; N],
                    buckets: [const { [const { UnsafeCell::new(Bucket::new()) }; 2] }; N],
                }
            }
            #[cfg(loom)]
            Self {
                slots: core::array::from_fn(|i| {
                    if i == 0 { Slot::new_root(root_hash) } else { Slot::new() }
                }),
                index: core::array::from_fn(|i| {
                    core::array::from_fn(|j| {
                        AtomicU32::new(if i * 2 + j == root_pos { root_word } else { 0 })
                    })
                }),
                waiters: core::array::from_fn(|_| UnsafeCell::new(Waiters::new())),
                buckets: core::array::from_fn(|_| {
                    core::array::from_fn(|_| UnsafeCell::new(Bucket::new()))
                }),
            }
        }
    }
}

impl<const N: usize> Sealed for Inline<N> {
    #[inline(always)]
    fn parts(&self) -> Parts<'_> {
        Parts {
            slots: &self.slots,
            index: self.index.as_flattened(),
            waiters: &self.waiters,
            buckets: self.buckets.as_flattened(),
        }
    }
}

impl<const N: usize> Storage for Inline<N> {}

// Safety: the `UnsafeCell`s (wait lists) are only reached through `Parts`, which only this
// crate can call, and only under the owning registry's lock; everything else is atomic.
unsafe impl<const N: usize> Sync for Inline<N> {}
// Safety: as above; the lists' pointers reach only `Send` data.
unsafe impl<const N: usize> Send for Inline<N> {}

impl<const N: usize> fmt::Debug for Inline<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inline")
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

/// Storage on the heap, of a capacity chosen at run time: what
/// [`HeapRegistry::with_capacity`](crate::HeapRegistry::with_capacity) builds.
///
/// The registry value itself stays small (four boxed slices), so it can be moved into an
/// `Arc` freely. The slices are allocated zeroed, so memory the registry never touches —
/// capacity beyond the names ever registered at once — is not resident.
#[cfg(feature = "std")]
pub struct Heap {
    slots: Box<[Slot]>,
    index: Box<[AtomicU32]>,
    waiters: Box<[UnsafeCell<Waiters>]>,
    buckets: Box<[UnsafeCell<Bucket>]>,
}

#[cfg(feature = "std")]
impl Heap {
    /// Empty storage for `capacity` names; `capacity` is already checked.
    pub(crate) fn new(capacity: usize) -> Result<Self, crate::CapacityError> {
        Ok(Self {
            slots: zeroed::<Slot>(capacity)?,
            index: zeroed::<AtomicU32>(2 * capacity)?,
            waiters: zeroed::<UnsafeCell<Waiters>>(capacity)?,
            buckets: zeroed::<UnsafeCell<Bucket>>(2 * capacity)?,
        })
    }

    /// Bytes of address space `capacity` names take (resident only once touched).
    pub(crate) const fn bytes(capacity: usize) -> usize {
        capacity
            * (size_of::<Slot>()
                + 2 * size_of::<AtomicU32>()
                + size_of::<Waiters>()
                + 2 * size_of::<Bucket>())
    }
}

#[cfg(feature = "std")]
impl Sealed for Heap {
    #[inline(always)]
    fn parts(&self) -> Parts<'_> {
        Parts {
            slots: &self.slots,
            index: &self.index,
            waiters: &self.waiters,
            buckets: &self.buckets,
        }
    }
}

#[cfg(feature = "std")]
impl Storage for Heap {}

// Safety: as for `Inline`.
#[cfg(feature = "std")]
unsafe impl Sync for Heap {}
// Safety: as for `Inline`.
#[cfg(feature = "std")]
unsafe impl Send for Heap {}

#[cfg(feature = "std")]
impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heap")
            .field("capacity", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Types for which all-zero bytes are a valid, empty value.
///
/// # Safety
///
/// Implementors promise exactly that.
#[cfg(all(feature = "std", not(loom)))]
unsafe trait Zeroable {}
// Safety: every field of a slot is an atomic integer (or an array of them); zero is a free
// slot.
#[cfg(all(feature = "std", not(loom)))]
unsafe impl Zeroable for Slot {}
// Safety: an atomic integer.
#[cfg(all(feature = "std", not(loom)))]
unsafe impl Zeroable for AtomicU32 {}
// Safety: `Option<NonNull<_>>` pointers (zero is `None`) and a `PhantomData`: an empty list.
#[cfg(all(feature = "std", not(loom)))]
unsafe impl Zeroable for UnsafeCell<Waiters> {}
// Safety: an empty list (as above) and an integer.
#[cfg(all(feature = "std", not(loom)))]
unsafe impl Zeroable for UnsafeCell<Bucket> {}

/// A boxed slice of `n` zeroed `T`s, straight from the allocator (`calloc`), so pages the
/// registry never writes are never made resident.
#[cfg(all(feature = "std", not(loom)))]
fn zeroed<T: Zeroable>(n: usize) -> Result<Box<[T]>, crate::CapacityError> {
    use std::alloc::{alloc_zeroed, Layout};
    let layout = Layout::array::<T>(n)
        .map_err(|_| crate::CapacityError::OutOfMemory { bytes: usize::MAX })?;
    if layout.size() == 0 {
        // Only for `n == 0`, which capacity checks rule out; an empty box needs no memory.
        return Ok(Box::default());
    }
    // Safety: the layout has a non-zero size.
    let ptr = unsafe { alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(crate::CapacityError::OutOfMemory {
            bytes: layout.size(),
        });
    }
    // Safety: `ptr` is a fresh allocation of `Layout::array::<T>(n)` from the global
    // allocator, as `Box<[T]>` requires, and zeroed bytes are `n` valid `T`s (`Zeroable`).
    Ok(unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(ptr, n)) })
}

/// Under loom the atomics carry model state, so they are built one by one.
#[cfg(all(feature = "std", loom))]
fn zeroed<T: LoomNew>(n: usize) -> Result<Box<[T]>, crate::CapacityError> {
    Ok((0..n).map(|_| T::loom_new()).collect())
}

#[cfg(all(feature = "std", loom))]
trait LoomNew {
    fn loom_new() -> Self;
}
#[cfg(all(feature = "std", loom))]
impl LoomNew for Slot {
    fn loom_new() -> Self {
        Slot::new()
    }
}
#[cfg(all(feature = "std", loom))]
impl LoomNew for AtomicU32 {
    fn loom_new() -> Self {
        AtomicU32::new(0)
    }
}
#[cfg(all(feature = "std", loom))]
impl LoomNew for UnsafeCell<Waiters> {
    fn loom_new() -> Self {
        UnsafeCell::new(Waiters::new())
    }
}
#[cfg(all(feature = "std", loom))]
impl LoomNew for UnsafeCell<Bucket> {
    fn loom_new() -> Self {
        UnsafeCell::new(Bucket::new())
    }
}
