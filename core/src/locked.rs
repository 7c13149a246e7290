//! What the registry lock protects, and the view of it a critical section works through.

use core::{ptr::NonNull, task::Waker};

use crate::{
    hash::Hash,
    index::{self, Index},
    list::{filter_bit, Bucket, Link, List, Node, Unknown, Waiters},
    loom::{AtomicU32, Ordering},
    storage::sealed::Parts,
    Error, ServingStatus,
};

/// The registry-wide state behind the lock.
#[derive(Debug)]
pub(crate) struct Header {
    /// Bumped by every writer that wakes watchers; a node records it when it is linked.
    pub(crate) epoch: u64,
    /// Bumped by [`Registry::end_watches`](crate::Registry::end_watches); a watch created at
    /// an older value ends.
    pub(crate) end_epoch: u32,
    /// The first free slot + 1, or 0: a LIFO list threaded through free slots.
    free: u32,
    /// Every node parked in a bucket, in park order.
    pub(crate) unknown: List<Unknown>,
    /// How many names `""` requires (see `ties.rs`).
    pub(crate) required: u32,
    /// How many of them are registered and `SERVING`.
    pub(crate) required_serving: u32,
    /// Slots held by placeholders: names in the index that are not registered.
    pub(crate) placeholders: u32,
}

impl Header {
    pub(crate) const fn new() -> Self {
        Self {
            epoch: 0,
            end_epoch: 0,
            free: 0,
            unknown: List::new(),
            required: 0,
            required_serving: 0,
            placeholders: 0,
        }
    }
}

/// A critical section's view of the registry: the header and the lock-protected parts of the
/// storage. It exists only inside [`Registry::locked`](crate::Registry), so holding a
/// `&mut Locked` is proof that the lock is held.
pub(crate) struct Locked<'a> {
    pub(crate) header: &'a mut Header,
    pub(crate) parts: Parts<'a>,
    pub(crate) high_water: &'a AtomicU32,
}

impl Locked<'_> {
    #[inline]
    pub(crate) fn index(&self) -> Index<'_> {
        Index {
            words: self.parts.index,
            slots: self.parts.slots,
        }
    }

    /// Slots in use or used before: every live slot is below this.
    #[inline]
    pub(crate) fn high_water(&self) -> usize {
        self.high_water.load(Ordering::Relaxed) as usize
    }

    /// Slot `slot`'s wait list.
    #[inline]
    pub(crate) fn waiters(&mut self, slot: usize) -> &mut Waiters {
        // Safety: the lock is held (`Locked` exists only inside it), and the `&mut self`
        // borrow keeps this the only reference into the lock-protected parts meanwhile.
        unsafe { &mut *self.parts.waiters[slot].get() }
    }

    /// Bucket `bucket`.
    #[inline]
    pub(crate) fn bucket(&mut self, bucket: usize) -> &mut Bucket {
        // Safety: as for `waiters`.
        unsafe { &mut *self.parts.buckets[bucket].get() }
    }

    /// Takes a free slot: the most recently freed one, else the next never used one, so the
    /// memory in use grows with the most names registered at once.
    pub(crate) fn alloc(&mut self) -> Result<usize, Error> {
        if let Some(slot) = self.header.free.checked_sub(1) {
            let slot = slot as usize;
            self.header.free = self.parts.slots[slot].next_free();
            return Ok(slot);
        }
        let high = self.high_water();
        if high < self.parts.slots.len() {
            self.high_water.store(high as u32 + 1, Ordering::Release);
            return Ok(high);
        }
        Err(Error::Full)
    }

    /// Puts a slot (already out of the index) back on the free list.
    pub(crate) fn release(&mut self, slot: usize) {
        self.parts.slots[slot].free(self.header.free);
        self.header.free = slot as u32 + 1;
    }

    /// The status of `name`, looked up at slot `bound` first (where it was last found), and
    /// where it is now.
    #[inline]
    pub(crate) fn status(
        &self,
        name: &[u8],
        hash: Hash,
        bound: Option<u32>,
    ) -> (ServingStatus, Option<u32>) {
        // The name is compared, not just the slot: a slot freed and reused by another name
        // can never pass for this one, however often that happens.
        if let Some(status) = bound
            .and_then(|slot| self.parts.slots.get(slot as usize))
            .and_then(|slot| slot.locked_status_of(name, hash.hi()))
        {
            return (status, bound);
        }
        match self.index().find_locked(name, hash) {
            Some((_, slot)) => (
                self.parts.slots[slot]
                    .locked_status_of(name, hash.hi())
                    .unwrap_or(ServingStatus::ServiceUnknown),
                Some(slot as u32),
            ),
            None => (ServingStatus::ServiceUnknown, None),
        }
    }

    /// Where a watcher of a name with hash `hash`, found at `bound`, parks.
    #[inline]
    pub(crate) fn park_link(&self, hash: Hash, bound: Option<u32>) -> Link {
        match bound {
            Some(slot) => Link::Waiters(slot),
            None => Link::Bucket(index::home(hash.hi(), self.parts.buckets.len()) as u32),
        }
    }

    /// Links `node` into `link` at the current epoch.
    ///
    /// # Safety
    ///
    /// `node` is valid, pinned, and in no list.
    pub(crate) unsafe fn link(&mut self, node: NonNull<Node>, link: Link, hash: u32) {
        let epoch = self.header.epoch;
        // Safety: `node` is valid (the caller's contract) and the lock is held; a place
        // expression, so no reference to the node is kept.
        unsafe {
            let n = node.as_ptr();
            debug_assert_eq!((*n).linked, Link::None);
            (*n).epoch = epoch;
            (*n).hash = hash;
            (*n).linked = link;
        }
        match link {
            Link::None => {}
            // Safety: `node` is in no list (the caller's contract).
            Link::Waiters(slot) => unsafe { self.waiters(slot as usize).push_back(node) },
            Link::Bucket(bucket) => {
                let bucket = self.bucket(bucket as usize);
                bucket.filter |= filter_bit(hash);
                // Safety: as above.
                unsafe { bucket.list.push_back(node) };
                // Safety: as above; a node is in the unknown list exactly while in a bucket.
                unsafe { self.header.unknown.push_back(node) };
            }
        }
    }

    /// Unlinks `node` from whichever lists hold it.
    ///
    /// # Safety
    ///
    /// `node` is valid, and in no list or in the one its `linked` names.
    pub(crate) unsafe fn unlink(&mut self, node: NonNull<Node>) {
        // Safety: the caller's contract; a place expression.
        let link = unsafe { (*node.as_ptr()).linked };
        match link {
            Link::None => return,
            // Safety: `linked` names the list the node is in.
            Link::Waiters(slot) => unsafe { self.waiters(slot as usize).remove(node) },
            Link::Bucket(bucket) => {
                let bucket = self.bucket(bucket as usize);
                // Safety: as above.
                unsafe { bucket.list.remove(node) };
                if bucket.list.is_empty() {
                    bucket.filter = 0;
                }
                // Safety: a node in a bucket is in the unknown list too.
                unsafe { self.header.unknown.remove(node) };
            }
        }
        // Safety: the node is valid; a place expression.
        unsafe { (*node.as_ptr()).linked = Link::None };
    }

    /// Unlinks `node` and takes its waker, to be dropped after the lock is released.
    ///
    /// # Safety
    ///
    /// As for [`unlink`](Self::unlink).
    pub(crate) unsafe fn detach(&mut self, node: NonNull<Node>) -> Option<Waker> {
        // Safety: the caller's contract.
        unsafe {
            self.unlink(node);
            (*node.as_ptr()).waker.take()
        }
    }
}
