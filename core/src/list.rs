//! The intrusive wait list: one per registry slot plus one for watchers of unregistered names.
//!
//! Nodes live inside the [`Watch`](crate::Watch) streams that own them, so parking a waiter
//! allocates nothing. A node is linked only while its watch is parked, and every access to a
//! node or a list happens with the registry's lock held.
//!
//! Each list carries an `epoch`, bumped by every writer that must wake it. A node records the
//! epoch of the list when it is linked; nodes are only ever appended, so epochs never decrease
//! from head to tail. A writer wakes the nodes whose epoch is older than the one it bumped to,
//! from the head, and stops at the first newer node: watchers that re-park while it works are
//! not woken again, so waking always ends.

use core::{ptr::NonNull, task::Waker};

/// Which list a node is linked into: a slot index, or [`UNKNOWN_LIST`].
pub(crate) type ListId = u32;

/// The list of watchers whose name is not registered.
pub(crate) const UNKNOWN_LIST: ListId = u32::MAX;

/// A parked watcher, owned by its `Watch`.
///
/// States:
/// - `linked == None`: not in any list; only the owning watch refers to it; dropping it needs
///   no lock.
/// - `linked == Some(id)`: in list `id`, reachable from that list's head; its neighbours and the
///   list hold pointers to it, so it may only be touched, unlinked or dropped under the lock.
#[derive(Debug, Default)]
pub(crate) struct Node {
    prev: Option<NonNull<Node>>,
    next: Option<NonNull<Node>>,
    /// Woken (and taken) by the writer that unlinks the node.
    pub(crate) waker: Option<Waker>,
    /// The list's epoch when the node was linked.
    pub(crate) epoch: u32,
    /// The list the node is in, if any.
    pub(crate) linked: Option<ListId>,
}

/// A doubly linked list of [`Node`]s.
///
/// # Safety
///
/// Every method must be called with the registry lock held, and every node in the list must
/// stay valid (not moved, not dropped) until it is removed: `Watch` guarantees both, because it
/// is pinned while linked and removes its node under the lock in `Drop`.
#[derive(Debug)]
pub(crate) struct List {
    head: Option<NonNull<Node>>,
    tail: Option<NonNull<Node>>,
    /// Bumped by every writer that will wake this list.
    pub(crate) epoch: u32,
}

// Safety: the raw pointers are only followed under the registry lock (see `List`).
unsafe impl Send for List {}

impl List {
    pub(crate) const fn new() -> Self {
        Self {
            head: None,
            tail: None,
            epoch: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Starts a wake-up round: every node linked before this call is older than the returned
    /// epoch, every node linked after it is not.
    pub(crate) fn bump(&mut self) -> u32 {
        self.epoch = self.epoch.wrapping_add(1);
        self.epoch
    }

    /// Appends `node`, recording it as linked into `id` at the current epoch.
    ///
    /// # Safety
    ///
    /// Lock held; `node` is valid, pinned and not linked into any list.
    pub(crate) unsafe fn push_back(&mut self, id: ListId, mut node: NonNull<Node>) {
        // Safety: the caller guarantees `node` is valid and unlinked, and we hold the lock.
        let n = unsafe { node.as_mut() };
        debug_assert!(n.linked.is_none());
        n.prev = self.tail;
        n.next = None;
        n.epoch = self.epoch;
        n.linked = Some(id);
        match self.tail {
            // Safety: the tail is a valid node of this list (list invariant, lock held).
            Some(mut tail) => unsafe { tail.as_mut().next = Some(node) },
            None => self.head = Some(node),
        }
        self.tail = Some(node);
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    ///
    /// Lock held; `node` is valid and linked into this list.
    pub(crate) unsafe fn remove(&mut self, mut node: NonNull<Node>) {
        // Safety: the caller guarantees `node` is a valid member of this list.
        let n = unsafe { node.as_mut() };
        match n.prev {
            // Safety: neighbours of a member are members (list invariant, lock held).
            Some(mut prev) => unsafe { prev.as_mut().next = n.next },
            None => self.head = n.next,
        }
        match n.next {
            // Safety: as above.
            Some(mut next) => unsafe { next.as_mut().prev = n.prev },
            None => self.tail = n.prev,
        }
        n.prev = None;
        n.next = None;
        n.linked = None;
    }

    /// Unlinks the head if it was linked before epoch `target`, and returns its waker.
    /// `Err(())` means there is nothing left to wake for this round.
    pub(crate) fn pop_older_than(&mut self, target: u32) -> Result<Option<Waker>, ()> {
        let Some(mut head) = self.head else {
            return Err(());
        };
        // Safety: the head is a valid member (list invariant, lock held by the caller, which
        // has `&mut List` only inside the lock).
        let n = unsafe { head.as_mut() };
        if !epoch_before(n.epoch, target) {
            return Err(());
        }
        let waker = n.waker.take();
        // Safety: `head` is a member of this list.
        unsafe { self.remove(head) };
        Ok(waker)
    }
}

/// `a` is older than `b`, in wrapping order.
#[inline]
pub(crate) fn epoch_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Wakers moved out of a list under the lock and woken after it is released.
pub(crate) struct WakeBatch {
    wakers: [Option<Waker>; crate::lock::WAKE_BATCH],
    len: usize,
}

impl WakeBatch {
    pub(crate) const fn new() -> Self {
        Self {
            wakers: [const { None }; crate::lock::WAKE_BATCH],
            len: 0,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == self.wakers.len()
    }

    pub(crate) fn push(&mut self, waker: Waker) {
        self.wakers[self.len] = Some(waker);
        self.len += 1;
    }

    pub(crate) fn wake_all(&mut self) {
        for slot in &mut self.wakers[..self.len] {
            if let Some(waker) = slot.take() {
                waker.wake();
            }
        }
        self.len = 0;
    }
}

impl Drop for WakeBatch {
    fn drop(&mut self) {
        self.wake_all();
    }
}
