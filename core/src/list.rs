//! The intrusive wait lists: one per slot (watchers of a registered name), one per index
//! position (a *bucket*: watchers of unregistered names whose home is that position), and one
//! registry-wide list threading every bucket's nodes in park order (what `end_watches`
//! walks).
//!
//! Nodes live inside the [`Watch`](crate::Watch) streams that own them, so parking a waiter
//! allocates nothing. A node is linked only while its watch is parked, and every access to a
//! node or a list happens with the registry's lock held.
//!
//! Each node records the registry's wake epoch when it is linked. A writer bumps the epoch
//! and wakes the nodes recorded before its bump; nodes are only ever appended, so epochs
//! never decrease from head to tail, and the writer stops at the first newer node: watchers
//! that re-park while it works are not woken again, so waking always ends.

use core::{marker::PhantomData, ptr::NonNull, task::Waker};

/// Where a node is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Link {
    /// In no list.
    #[default]
    None,
    /// In slot `n`'s list.
    Waiters(u32),
    /// In bucket `n` (and in the registry-wide unknown-names list).
    Bucket(u32),
}

/// A pair of list pointers.
#[derive(Debug, Default)]
pub(crate) struct Links {
    prev: Option<NonNull<Node>>,
    next: Option<NonNull<Node>>,
}

/// A parked watcher, owned by its `Watch`.
///
/// States:
/// - `linked == Link::None`: not in any list; only the owning watch refers to it; dropping it
///   needs no lock.
/// - `linked == Link::Waiters(n)` or `Link::Bucket(n)`: in that list (and, for a bucket, in
///   the registry's unknown-names list), reachable from the list heads; its neighbours and the
///   lists hold pointers to it, so it may only be touched, unlinked or dropped under the lock.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// In a slot's list or a bucket.
    links: Links,
    /// In the registry-wide unknown-names list (only while in a bucket).
    unknown: Links,
    /// Woken (and taken) by the writer that unlinks the node.
    pub(crate) waker: Option<Waker>,
    /// The registry's wake epoch when the node was linked.
    pub(crate) epoch: u64,
    /// The watched name's [`Hash::hi`](crate::hash::Hash::hi): a bucket holds the watchers of
    /// several names, and a registration wakes only those with its hash.
    pub(crate) hash: u32,
    /// The list the node is in, if any.
    pub(crate) linked: Link,
    /// A writer's place-holder in a bucket (see `wake.rs`), not a watcher: never woken,
    /// skipped by other writers.
    pub(crate) marker: bool,
}

/// Which pair of a node's pointers a list threads through.
pub(crate) trait Linkage {
    /// The pointers of `node`.
    ///
    /// # Safety
    ///
    /// `node` is valid.
    unsafe fn links(node: NonNull<Node>) -> *mut Links;
}

/// Through [`Node::links`]: slot lists and buckets.
#[derive(Debug)]
pub(crate) enum Primary {}
/// Through [`Node::unknown`]: the unknown-names list.
#[derive(Debug)]
pub(crate) enum Unknown {}

impl Linkage for Primary {
    unsafe fn links(node: NonNull<Node>) -> *mut Links {
        // Safety: `node` is valid (the caller's contract); no reference is created.
        unsafe { &raw mut (*node.as_ptr()).links }
    }
}

impl Linkage for Unknown {
    unsafe fn links(node: NonNull<Node>) -> *mut Links {
        // Safety: as above.
        unsafe { &raw mut (*node.as_ptr()).unknown }
    }
}

/// A doubly linked list of [`Node`]s, in the order they were appended.
///
/// # Safety
///
/// Every method must be called with the registry lock held, and every node in the list must
/// stay valid (not moved, not dropped) until it is removed: `Watch` guarantees both, because it
/// is pinned while linked and removes its node under the lock in `Drop`.
///
/// These methods write nodes owned by other threads' watches, whose owners may hold a
/// `Pin<&mut Watch>` meanwhile. Besides the lock, that relies on the watch being `!Unpin`
/// (`PhantomPinned`), which exempts `&mut` references to it from the uniqueness guarantee, and
/// on the node living in an `UnsafeCell`; a writer's marker node is reached only through a
/// shared reference to its `UnsafeCell`.
///
/// All-zero bits are an empty list (a zeroed allocation is a valid array of them).
#[derive(Debug)]
pub(crate) struct List<L> {
    head: Option<NonNull<Node>>,
    tail: Option<NonNull<Node>>,
    _linkage: PhantomData<L>,
}

// Safety: the raw pointers are only followed under the registry lock (see `List`), and the
// nodes they reach hold only `Send + Sync` data (a `Waker`, integers, more such pointers).
unsafe impl<L> Send for List<L> {}

impl<L: Linkage> List<L> {
    pub(crate) const fn new() -> Self {
        Self {
            head: None,
            tail: None,
            _linkage: PhantomData,
        }
    }

    pub(crate) fn head(&self) -> Option<NonNull<Node>> {
        self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Appends `node`.
    ///
    /// # Safety
    ///
    /// Lock held; `node` is valid, pinned and not in a list of this linkage.
    pub(crate) unsafe fn push_back(&mut self, node: NonNull<Node>) {
        // Safety: `node` is valid (the caller's contract). Writes go through raw pointers, so
        // no reference to a node outlives one statement.
        unsafe {
            let links = L::links(node);
            (*links).prev = self.tail;
            (*links).next = None;
            match self.tail {
                // The tail is a valid member of this list (list invariant, lock held).
                Some(tail) => (*L::links(tail)).next = Some(node),
                None => self.head = Some(node),
            }
        }
        self.tail = Some(node);
    }

    /// Links `node` just before `at`.
    ///
    /// # Safety
    ///
    /// Lock held; `at` is valid and in this list; `node` is valid, pinned and not in a list of
    /// this linkage.
    pub(crate) unsafe fn insert_before(&mut self, at: NonNull<Node>, node: NonNull<Node>) {
        // Safety: `at` and its neighbours are valid members (list invariant, lock held), and
        // `node` is valid (the caller's contract).
        unsafe {
            let prev = (*L::links(at)).prev;
            let links = L::links(node);
            (*links).prev = prev;
            (*links).next = Some(at);
            (*L::links(at)).prev = Some(node);
            match prev {
                Some(prev) => (*L::links(prev)).next = Some(node),
                None => self.head = Some(node),
            }
        }
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    ///
    /// Lock held; `node` is valid and in this list.
    pub(crate) unsafe fn remove(&mut self, node: NonNull<Node>) {
        // Safety: `node` is a valid member of this list, and so are its neighbours (list
        // invariant, lock held).
        unsafe {
            let links = L::links(node);
            let (prev, next) = ((*links).prev, (*links).next);
            match prev {
                Some(prev) => (*L::links(prev)).next = next,
                None => self.head = next,
            }
            match next {
                Some(next) => (*L::links(next)).prev = prev,
                None => self.tail = prev,
            }
            (*links).prev = None;
            (*links).next = None;
        }
    }

    /// The node after `node`.
    ///
    /// # Safety
    ///
    /// Lock held; `node` is valid and in this list.
    pub(crate) unsafe fn next(node: NonNull<Node>) -> Option<NonNull<Node>> {
        // Safety: the caller's contract.
        unsafe { (*L::links(node)).next }
    }
}

/// A slot's wait list: the watchers of the name registered there.
pub(crate) type Waiters = List<Primary>;

/// The wait list of the unregistered names whose home is one index position.
///
/// `filter` has bit `hash % 64` set for every node linked since the bucket was last emptied
/// or walked to its end, so a registration whose bit is clear knows without walking the list
/// that none of its watchers wait here. Bits of nodes that left are cleared lazily, when the
/// bucket empties or a wake walks it to the end. All-zero bits are an empty bucket.
#[derive(Debug)]
pub(crate) struct Bucket {
    pub(crate) list: List<Primary>,
    pub(crate) filter: u64,
}

impl Bucket {
    pub(crate) const fn new() -> Self {
        Self {
            list: List::new(),
            filter: 0,
        }
    }
}

/// The bucket filter bit of a hash.
#[inline(always)]
pub(crate) const fn filter_bit(hash: u32) -> u64 {
    1 << (hash % 64)
}
