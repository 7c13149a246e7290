//! The status registry: names and statuses, watchers and the drain switch, over a storage.

use core::fmt;

use crate::{
    hash::{Hash, Keys, FIXED_SEED},
    index,
    iter::Iter,
    lock::SpinLock,
    locked::{Header, Locked},
    loom::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    storage::Inline,
    ties::Effects,
    wake::{Scope, WakeBatch},
    Error, ServingStatus, SetOutcome, Storage, Watch, MAX_CAPACITY, MAX_NAME,
};
#[cfg(feature = "std")]
use crate::{storage::Heap, CapacityError, DEFAULT_CAPACITY};

/// A health registry: service names with their statuses, the watchers of each, and the drain
/// switch, over a [`Storage`].
///
/// `""` (the whole server) starts as `SERVING`, as in grpc-go and grpc-java. Two storages:
///
/// - [`FixedRegistry<N>`] (= `Registry<Inline<N>>`): room for `N` names inside the value
///   itself. [`FixedRegistry::new`] is a `const fn`, so it can be a `static`; nothing
///   allocates. What `no_std` hosts use.
/// - [`HeapRegistry`] (= `Registry<Heap>`, feature `std`): a capacity chosen at run time
///   ([`HeapRegistry::with_capacity`], up to [`MAX_CAPACITY`]); what the C, Python and CLI
///   doors use, with [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY) unless told otherwise.
///   Registering and watching still allocate nothing.
///
/// Code that serves any registry is generic over the storage: `&Registry<S>` with
/// `S: Storage`.
///
/// # Examples
///
/// ```
/// use dubbo_health_core::{FixedRegistry, ServingStatus};
///
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
///
/// assert_eq!(HEALTH.get(""), Some(ServingStatus::Serving));
/// HEALTH.set("org.apache.dubbogo.samples.api.Greeter", ServingStatus::Serving).unwrap();
/// assert_eq!(HEALTH.get("org.apache.dubbogo.samples.api.Greeter"), Some(ServingStatus::Serving));
/// assert_eq!(HEALTH.get("nope"), None);
/// ```
///
/// A registry is `Send + Sync`, so one `static` or `Arc` serves every thread:
///
/// ```
/// use std::sync::Arc;
/// use dubbo_health_core::{HeapRegistry, ServingStatus};
///
/// let registry = Arc::new(HeapRegistry::with_capacity(100_000).unwrap());
/// let writer = Arc::clone(&registry);
/// std::thread::spawn(move || writer.set("svc", ServingStatus::Serving).unwrap())
///     .join()
///     .unwrap();
/// assert_eq!(registry.get("svc"), Some(ServingStatus::Serving));
/// ```
///
/// # Implementation Notes
///
/// Names live in a dense array of *slots*, one per name, taken from a free list (or the next
/// never-used slot) and never moved while registered. Each slot stores the name inline as
/// atomic machine words, its hash and its status, behind a sequence lock, so readers copy it
/// without locking and without writing shared memory.
///
/// An *index* of `2 × capacity` `u32` words (so at most half full) maps names to slots:
/// linear probing from the name's home position, an 8-bit hash tag in each word to skip
/// other names without reading their slots, and backward-shift deletion, so there are no
/// tombstones and a lookup's cost depends only on the load, never on how many names came and
/// went. A reader trusts a hit once the slot's own sequence lock and a name compare confirm
/// it; it trusts a miss once a registry-wide *structure sequence*, which deletions bump
/// while they move index words, shows that nothing moved under it (else it retries).
///
/// Names are hashed with a keyed hash (64-bit keys from a per-registry seed). A
/// [`HeapRegistry`] draws its seed at random, so clients cannot choose names that pile up in
/// one index run or wait bucket. [`FixedRegistry::new`] is `const`, so it has a fixed,
/// public seed: a client who knows it can aim unknown-name watchers at the bucket of a name
/// the host will register, making that registration walk them (they are skipped by a
/// compare each, and never woken), and can pick `Check` names whose probe starts at the
/// longest run of the host's own names. Neither changes what any call answers. Give a
/// `static` a secret seed with [`FixedRegistry::with_seed`] where that matters.
///
/// Writers (`set`, `clear`, `shutdown`, `resume`, `end_watches`) and watchers that park
/// serialise on one short spin lock (see the crate docs for why a spin lock). Watchers park
/// in intrusive lists: a registered name's in its slot, an unregistered name's in the
/// bucket of its home index position. A `set` wakes its slot's list; registering a name
/// wakes only the watchers of that name in its bucket. Every writer wakes exactly the nodes
/// parked before its own change (an epoch it bumped), in rounds of at most 16 nodes per
/// lock hold, and runs wakers only after releasing the lock.
pub struct Registry<S: Storage> {
    storage: S,
    keys: Keys,
    /// Odd while a deletion moves index words; bumped again when it is done. Read by every
    /// lock-free miss, written only by deletions: apart from the writers' fields below.
    pub(crate) structure: AtomicUsize,
    pub(crate) writer: Padded<Writer>,
}

/// Keeps the writers' fields off the cache line readers poll.
#[repr(align(64))]
pub(crate) struct Padded<T>(pub(crate) T);

pub(crate) struct Writer {
    lock: SpinLock<Header>,
    /// Registered names.
    pub(crate) count: AtomicU32,
    /// Slots ever taken: every live slot is below it.
    high_water: AtomicU32,
    pub(crate) shut_down: AtomicBool,
}

/// A registry with room for `N` names (`""` included) inside itself: no allocator needed, and
/// [`new`](Self::new) is a `const fn`.
pub type FixedRegistry<const N: usize> = Registry<Inline<N>>;

/// A registry whose capacity is chosen at run time, on the heap. See
/// [`with_capacity`](Self::with_capacity).
#[cfg(feature = "std")]
pub type HeapRegistry = Registry<Heap>;

impl<const N: usize> Registry<Inline<N>> {
    crate::loom::loom_const_fn! {
        /// A registry holding only `""`, as `SERVING`, with the fixed hash seed (a `const fn`
        /// has no entropy; see [`with_seed`](Self::with_seed) and the type's notes).
        ///
        /// ```
        /// # use dubbo_health_core::{FixedRegistry, ServingStatus};
        /// let registry = FixedRegistry::<16>::new();
        /// assert_eq!(registry.len(), 1);
        /// assert_eq!(registry.get(""), Some(ServingStatus::Serving));
        /// ```
        #[must_use]
        pub fn new() -> Self {
            Self::with_seed(FIXED_SEED)
        }
    }

    crate::loom::loom_const_fn! {
        /// As [`new`](Self::new), hashing names with keys derived from `seed`. A seed the
        /// clients cannot guess (from a hardware RNG at start-up, or a build-time secret for a
        /// `static`) keeps them from aiming names at one bucket.
        ///
        /// ```
        /// # use dubbo_health_core::{FixedRegistry, ServingStatus};
        /// static HEALTH: FixedRegistry<8> = FixedRegistry::with_seed(0x9e37_79b9_7f4a_7c15);
        /// assert_eq!(HEALTH.get(""), Some(ServingStatus::Serving));
        /// ```
        #[must_use]
        pub fn with_seed(seed: u64) -> Self {
            const {
                assert!(N > 0, "a registry needs room for at least \"\"");
                assert!(N <= MAX_CAPACITY, "registry capacity is over MAX_CAPACITY");
            }
            let keys = Keys::from_seed(seed);
            let root = keys.hash(b"");
            let pos = index::home(root.hi(), 2 * N);
            Self {
                storage: Inline::with_root(root.hi(), pos, index::word(0, root)),
                keys,
                structure: AtomicUsize::new(0),
                writer: Padded(Writer {
                    lock: SpinLock::new(Header::new()),
                    count: AtomicU32::new(1),
                    high_water: AtomicU32::new(1),
                    shut_down: AtomicBool::new(false),
                }),
            }
        }
    }
}

impl<const N: usize> Default for Registry<Inline<N>> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl Registry<Heap> {
    /// A registry of [`DEFAULT_CAPACITY`] names with a random seed, holding only `""` as
    /// `SERVING`.
    ///
    /// # Panics
    ///
    /// If the memory cannot be allocated (as `Box::new` would); use
    /// [`with_capacity`](Self::with_capacity) to get an error instead.
    ///
    /// ```
    /// use dubbo_health_core::{HeapRegistry, DEFAULT_CAPACITY};
    /// assert_eq!(HeapRegistry::new().capacity(), DEFAULT_CAPACITY);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        match Self::with_capacity(DEFAULT_CAPACITY) {
            Ok(registry) => registry,
            Err(err) => panic!("{err}"),
        }
    }

    /// A registry with room for `capacity` names (`""` included), holding only `""` as
    /// `SERVING`, with a random hash seed.
    ///
    /// Memory: about 290 bytes of address space per name of capacity on 64-bit targets
    /// (`docs/core.md` breaks it down), allocated zeroed, so it becomes resident only as
    /// names are registered: an empty registry of 1,000,000 names is a few pages. The value
    /// itself is small, so `Arc::new(HeapRegistry::with_capacity(n)?)` is fine for any `n`.
    ///
    /// # Errors
    ///
    /// [`CapacityError::Zero`], [`CapacityError::TooLarge`] over [`MAX_CAPACITY`], or
    /// [`CapacityError::OutOfMemory`].
    ///
    /// ```
    /// use dubbo_health_core::{CapacityError, HeapRegistry, ServingStatus, MAX_CAPACITY};
    ///
    /// let registry = HeapRegistry::with_capacity(1_000_000).unwrap();
    /// assert_eq!(registry.capacity(), 1_000_000);
    /// assert_eq!(registry.get(""), Some(ServingStatus::Serving));
    /// assert_eq!(HeapRegistry::with_capacity(0).unwrap_err(), CapacityError::Zero);
    /// assert!(HeapRegistry::with_capacity(MAX_CAPACITY + 1).is_err());
    /// ```
    pub fn with_capacity(capacity: usize) -> Result<Self, CapacityError> {
        Self::with_capacity_and_seed(capacity, Keys::random_seed())
    }

    /// As [`with_capacity`](Self::with_capacity), with a chosen hash seed (for reproducible
    /// tests and benchmarks; a random seed is what keeps clients from aiming names).
    ///
    /// # Errors
    ///
    /// As [`with_capacity`](Self::with_capacity).
    ///
    /// ```
    /// # use dubbo_health_core::HeapRegistry;
    /// let registry = HeapRegistry::with_capacity_and_seed(8, 42).unwrap();
    /// assert_eq!(registry.len(), 1);
    /// ```
    pub fn with_capacity_and_seed(capacity: usize, seed: u64) -> Result<Self, CapacityError> {
        if capacity == 0 {
            return Err(CapacityError::Zero);
        }
        if capacity > MAX_CAPACITY {
            return Err(CapacityError::TooLarge {
                requested: capacity,
            });
        }
        let registry = Self {
            storage: Heap::new(capacity)?,
            keys: Keys::from_seed(seed),
            structure: AtomicUsize::new(0),
            writer: Padded(Writer {
                lock: SpinLock::new(Header::new()),
                count: AtomicU32::new(0),
                high_water: AtomicU32::new(0),
                shut_down: AtomicBool::new(false),
            }),
        };
        // Room for "" (capacity ≥ 1) and not shut down, so this cannot fail.
        let _ = registry.set("", ServingStatus::Serving);
        Ok(registry)
    }

    /// The bytes of address space a registry of `capacity` names reserves (resident only
    /// once touched).
    ///
    /// ```
    /// # use dubbo_health_core::HeapRegistry;
    /// assert!(HeapRegistry::reserved_bytes(1_000_000) < 400 << 20);
    /// ```
    #[must_use]
    pub const fn reserved_bytes(capacity: usize) -> usize {
        Heap::bytes(capacity)
    }
}

#[cfg(feature = "std")]
impl Default for Registry<Heap> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Storage> Registry<S> {
    /// Runs `f` with the lock held.
    #[inline]
    pub(crate) fn locked<R>(&self, f: impl FnOnce(&mut Locked<'_>) -> R) -> R {
        let parts = self.storage.parts();
        let high_water = &self.writer.0.high_water;
        self.writer.0.lock.with(|header| {
            f(&mut Locked {
                header,
                parts,
                high_water,
            })
        })
    }

    #[inline]
    pub(crate) fn hash(&self, name: &[u8]) -> Hash {
        self.keys.hash(name)
    }

    /// The slots, for iteration.
    pub(crate) fn storage(&self) -> &S {
        &self.storage
    }

    pub(crate) fn high_water(&self) -> usize {
        self.writer.0.high_water.load(Ordering::Acquire) as usize
    }

    /// How many names the registry can hold (`""` included).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// assert_eq!(FixedRegistry::<32>::new().capacity(), 32);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.storage.parts().slots.len()
    }

    /// How many names are registered (`""` included while it is).
    ///
    /// ```
    /// # use dubbo_health_core::{FixedRegistry, ServingStatus};
    /// let registry = FixedRegistry::<8>::new();
    /// registry.set("a", ServingStatus::Serving).unwrap();
    /// assert_eq!(registry.len(), 2);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.writer.0.count.load(Ordering::Acquire) as usize
    }

    /// `true` when no name is registered, not even `""`.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// let registry = FixedRegistry::<8>::new();
    /// assert!(!registry.is_empty());
    /// registry.clear("").unwrap();
    /// assert!(registry.is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` between [`shutdown`](Self::shutdown) and [`resume`](Self::resume).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// let registry = FixedRegistry::<8>::new();
    /// registry.shutdown();
    /// assert!(registry.is_shut_down());
    /// ```
    #[must_use]
    pub fn is_shut_down(&self) -> bool {
        self.writer.0.shut_down.load(Ordering::Acquire)
    }

    /// The status of `name`, or `None` when it is not registered. Lock-free and allocation-free:
    /// this is the `Check` hot path. A name longer than [`MAX_NAME`] is never registered, so
    /// it gives `None`; use [`check`](Self::check) to tell the two apart.
    ///
    /// ```
    /// # use dubbo_health_core::{FixedRegistry, ServingStatus};
    /// let registry = FixedRegistry::<8>::new();
    /// registry.set("group/org.apache.Foo:1.0.0", ServingStatus::NotServing).unwrap();
    /// assert_eq!(registry.get("group/org.apache.Foo:1.0.0"), Some(ServingStatus::NotServing));
    /// assert_eq!(registry.get("org.apache.Foo"), None);
    /// ```
    #[must_use]
    #[inline]
    pub fn get(&self, name: &str) -> Option<ServingStatus> {
        let bytes = name.as_bytes();
        if bytes.len() > MAX_NAME {
            return None;
        }
        let parts = self.storage.parts();
        let index = index::Index {
            words: parts.index,
            slots: parts.slots,
        };
        index
            .find(bytes, self.hash(bytes), &self.structure)
            .map(|(_, status)| status)
    }

    /// Like [`get`](Self::get), but says why there is no status: [`Error::NotFound`] or
    /// [`Error::NameTooLong`] — the two answers gRPC's `Check` gives.
    ///
    /// ```
    /// # use dubbo_health_core::{Error, FixedRegistry, ServingStatus};
    /// let registry = FixedRegistry::<8>::new();
    /// assert_eq!(registry.check(""), Ok(ServingStatus::Serving));
    /// assert_eq!(registry.check("missing"), Err(Error::NotFound));
    /// assert_eq!(registry.check(&"n".repeat(300)), Err(Error::NameTooLong { len: 300 }));
    /// ```
    pub fn check(&self, name: &str) -> Result<ServingStatus, Error> {
        check_len(name)?;
        self.get(name).ok_or(Error::NotFound)
    }

    /// Sets the status of `name`, registering it if needed, and wakes its watchers when the
    /// status changed.
    ///
    /// # Returns
    ///
    /// [`SetOutcome::Changed`], [`SetOutcome::Unchanged`], or [`SetOutcome::Ignored`] while the
    /// registry is [shut down](Self::shutdown) (the name is then left as it was, and not
    /// registered if it was new).
    ///
    /// # Errors
    ///
    /// [`Error::NameTooLong`] over [`MAX_NAME`] bytes, [`Error::InvalidStatus`] for
    /// `SERVICE_UNKNOWN`, [`Error::Full`] when a new name finds every slot taken. Nothing
    /// changes on error.
    ///
    /// # Panics
    ///
    /// Only if a watcher's waker panics; the status is set and every other watcher is woken
    /// first, then the first such panic is resumed.
    ///
    /// ```
    /// # use dubbo_health_core::{Error, FixedRegistry, ServingStatus, SetOutcome};
    /// let registry = FixedRegistry::<2>::new();
    /// assert_eq!(registry.set("a", ServingStatus::NotServing), Ok(SetOutcome::Changed));
    /// assert_eq!(registry.set("b", ServingStatus::Serving), Err(Error::Full));
    /// assert_eq!(registry.set("a", ServingStatus::ServiceUnknown), Err(Error::InvalidStatus));
    /// ```
    pub fn set(&self, name: &str, status: ServingStatus) -> Result<SetOutcome, Error> {
        if status == ServingStatus::ServiceUnknown {
            return Err(Error::InvalidStatus);
        }
        check_len(name)?;
        let bytes = name.as_bytes();
        let hash = self.hash(bytes);
        let mut fx = Effects::new();
        let outcome = self.locked(|l| {
            if self.writer.0.shut_down.load(Ordering::Relaxed) {
                return Ok(SetOutcome::Ignored);
            }
            self.set_locked(l, &mut fx, bytes, hash, status)?;
            Ok(if fx.changed {
                SetOutcome::Changed
            } else {
                SetOutcome::Unchanged
            })
        });
        self.finish_effects(&mut fx);
        outcome
    }

    /// Forgets `name`. Its watchers get `SERVICE_UNKNOWN` and `Check` answers `NOT_FOUND`.
    /// Works during shutdown too: forgetting is not a status change.
    ///
    /// # Returns
    ///
    /// `true` if the name was registered.
    ///
    /// # Errors
    ///
    /// [`Error::NameTooLong`] over [`MAX_NAME`] bytes.
    ///
    /// # Panics
    ///
    /// As [`set`](Self::set), only if a waker panics.
    ///
    /// ```
    /// # use dubbo_health_core::{FixedRegistry, ServingStatus};
    /// let registry = FixedRegistry::<8>::new();
    /// registry.set("a", ServingStatus::Serving).unwrap();
    /// assert_eq!(registry.clear("a"), Ok(true));
    /// assert_eq!(registry.clear("a"), Ok(false));
    /// assert_eq!(registry.get("a"), None);
    /// ```
    pub fn clear(&self, name: &str) -> Result<bool, Error> {
        check_len(name)?;
        let bytes = name.as_bytes();
        let hash = self.hash(bytes);
        let mut fx = Effects::new();
        let cleared = self.locked(|l| {
            let Some((pos, slot)) = l.index().find_locked(bytes, hash) else {
                return false;
            };
            self.forget(l, &mut fx, pos, slot);
            true
        });
        self.finish_effects(&mut fx);
        Ok(cleared)
    }

    /// Graceful drain: every registered name becomes `NOT_SERVING`, and later
    /// [`set`](Self::set) calls are ignored until [`resume`](Self::resume).
    ///
    /// Run it before a server stops taking traffic, so watchers (load balancers, Dubbo
    /// consumers) move away first.
    ///
    /// # Cost
    ///
    /// O(slots in use): one of the calls that must visit every name. The statuses change in
    /// one hold of the lock; the watchers are then woken in bounded rounds.
    ///
    /// # Panics
    ///
    /// As [`set`](Self::set), only if a waker panics.
    ///
    /// ```
    /// # use dubbo_health_core::{FixedRegistry, ServingStatus, SetOutcome};
    /// let registry = FixedRegistry::<8>::new();
    /// registry.shutdown();
    /// assert_eq!(registry.get(""), Some(ServingStatus::NotServing));
    /// assert_eq!(registry.set("", ServingStatus::Serving), Ok(SetOutcome::Ignored));
    /// registry.resume();
    /// assert_eq!(registry.get(""), Some(ServingStatus::Serving));
    /// ```
    pub fn shutdown(&self) {
        self.set_all(true, ServingStatus::NotServing);
    }

    /// Ends a [`shutdown`](Self::shutdown): every registered name becomes `SERVING` and
    /// [`set`](Self::set) works again — as grpc-go's `Resume`, also when the registry was not
    /// shut down.
    ///
    /// # Cost
    ///
    /// O(slots in use), as [`shutdown`](Self::shutdown).
    ///
    /// # Panics
    ///
    /// As [`set`](Self::set), only if a waker panics.
    ///
    /// ```
    /// # use dubbo_health_core::{FixedRegistry, ServingStatus};
    /// let registry = FixedRegistry::<8>::new();
    /// registry.set("a", ServingStatus::NotServing).unwrap();
    /// registry.shutdown();
    /// registry.resume();
    /// assert_eq!(registry.get("a"), Some(ServingStatus::Serving));
    /// ```
    pub fn resume(&self) {
        self.set_all(false, ServingStatus::Serving);
    }

    fn set_all(&self, shut_down: bool, status: ServingStatus) {
        let mut batch = WakeBatch::new();
        let job = self.locked(|l| {
            self.writer.0.shut_down.store(shut_down, Ordering::Release);
            let mut changed = false;
            for slot in &l.parts.slots[..l.high_water()] {
                if matches!(slot.live_status(), Some(s) if s != status) {
                    slot.set_status(status);
                    changed = true;
                }
            }
            changed |= self.recount(l, status);
            if !changed {
                return None;
            }
            l.start(
                Scope::Everything {
                    next: 0,
                    unknown: false,
                },
                &mut batch,
            )
        });
        if let Some(job) = job {
            self.finish(job, &mut batch);
        }
    }

    /// Ends every [`Watch`] open now: each yields the change it has not delivered yet (so a
    /// `NOT_SERVING` from [`shutdown`](Self::shutdown) still goes out) and then `None`.
    /// Watches created afterwards are not affected. Servers call this on stop, so open
    /// streams do not hold up a graceful shutdown.
    ///
    /// # Cost
    ///
    /// O(slots in use + parked watchers), in bounded lock rounds.
    ///
    /// # Panics
    ///
    /// As [`set`](Self::set), only if a waker panics.
    ///
    /// ```
    /// use futures::{executor::block_on, StreamExt};
    /// use dubbo_health_core::{FixedRegistry, ServingStatus};
    ///
    /// let registry = FixedRegistry::<8>::new();
    /// let mut watch = Box::pin(registry.watch("").unwrap());
    /// assert_eq!(block_on(watch.next()), Some(ServingStatus::Serving));
    /// registry.shutdown();
    /// registry.end_watches();
    /// assert_eq!(block_on(watch.next()), Some(ServingStatus::NotServing));
    /// assert_eq!(block_on(watch.next()), None);
    /// ```
    pub fn end_watches(&self) {
        let mut batch = WakeBatch::new();
        let job = self.locked(|l| {
            l.header.end_epoch = l.header.end_epoch.wrapping_add(1);
            l.start(
                Scope::Everything {
                    next: 0,
                    unknown: true,
                },
                &mut batch,
            )
        });
        if let Some(job) = job {
            self.finish(job, &mut batch);
        }
    }

    /// Watches `name`: a stream of its statuses. See [`Watch`].
    ///
    /// # Errors
    ///
    /// [`Error::NameTooLong`] over [`MAX_NAME`] bytes.
    ///
    /// ```
    /// use futures::{executor::block_on, StreamExt};
    /// use dubbo_health_core::{FixedRegistry, ServingStatus};
    ///
    /// let registry = FixedRegistry::<8>::new();
    /// let mut watch = Box::pin(registry.watch("svc").unwrap());
    /// assert_eq!(block_on(watch.next()), Some(ServingStatus::ServiceUnknown));
    /// registry.set("svc", ServingStatus::Serving).unwrap();
    /// assert_eq!(block_on(watch.next()), Some(ServingStatus::Serving));
    /// ```
    pub fn watch<N: AsRef<str>>(&self, name: N) -> Result<Watch<&Self, N>, Error> {
        Watch::new(self, name)
    }

    /// Every registered name with its status, without allocating. Not a snapshot: names set
    /// or cleared during the walk may or may not appear.
    ///
    /// ```
    /// # use dubbo_health_core::{FixedRegistry, ServingStatus};
    /// let registry = FixedRegistry::<8>::new();
    /// registry.set("a", ServingStatus::NotServing).unwrap();
    /// let mut names: Vec<(String, ServingStatus)> =
    ///     registry.iter().map(|e| (e.name().to_owned(), e.status())).collect();
    /// names.sort();
    /// assert_eq!(names, [("".to_owned(), ServingStatus::Serving), ("a".to_owned(), ServingStatus::NotServing)]);
    /// ```
    pub fn iter(&self) -> Iter<'_, S> {
        Iter::new(self)
    }
}

impl<S: Storage> fmt::Debug for Registry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for entry in self.iter() {
            map.entry(&entry.name(), &entry.status());
        }
        map.finish()
    }
}

#[inline]
pub(crate) fn check_len(name: &str) -> Result<(), Error> {
    if name.len() > MAX_NAME {
        Err(Error::NameTooLong { len: name.len() })
    } else {
        Ok(())
    }
}

/// Test hooks (`cfg(loom)` only): where the index puts names, so models can build collisions.
#[cfg(loom)]
#[doc(hidden)]
impl<S: Storage> Registry<S> {
    /// The home index position of `name`.
    pub fn __home(&self, name: &str) -> usize {
        index::home(
            self.hash(name.as_bytes()).hi(),
            self.storage.parts().index.len(),
        )
    }
}
