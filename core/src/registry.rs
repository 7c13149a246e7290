//! The status registry: a fixed-capacity hash table of names and statuses.

use core::{fmt, mem::size_of};

use crate::{
    list::{List, ListId, WakeBatch, UNKNOWN_LIST},
    lock::{backoff, SpinLock},
    loom::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    Error, ServingStatus, SetOutcome, Watch, MAX_NAME,
};

const WORD: usize = size_of::<usize>();
/// Machine words per stored name.
const WORDS: usize = MAX_NAME.div_ceil(WORD);

// `meta` layout: bits 0-1 status, bits 2-3 kind, bits 8-15 name length.
const KIND_EMPTY: u32 = 0;
const KIND_LIVE: u32 = 1;
const KIND_TOMB: u32 = 2;

const fn pack(kind: u32, status: ServingStatus, len: usize) -> u32 {
    (status as u32) | (kind << 2) | ((len as u32) << 8)
}
const fn kind(meta: u32) -> u32 {
    (meta >> 2) & 0b11
}
const fn name_len(meta: u32) -> usize {
    ((meta >> 8) & 0xff) as usize
}

const HASH_K: u64 = 0x517c_c1b7_2722_0a95;

#[inline(always)]
const fn hash_step(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(HASH_K)
}

#[inline(always)]
const fn hash_finish(mut h: u64) -> u32 {
    h ^= h >> 29;
    h = h.wrapping_mul(HASH_K);
    (h ^ (h >> 32)) as u32
}

/// The little-endian word of up to 8 bytes, zero-padded.
#[inline(always)]
const fn tail_word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let mut j = 0;
    while j < bytes.len() {
        word[j] = bytes[j];
        j += 1;
    }
    u64::from_le_bytes(word)
}

/// Hashes a name (FxHash-style, eight bytes at a time). The `const` twin of [`hash`], so
/// `Registry::new` can place `""`; a test checks the two agree.
pub(crate) const fn hash_const(bytes: &[u8]) -> u32 {
    let mut h: u64 = bytes.len() as u64;
    let mut i = 0;
    while i < bytes.len() {
        let end = if i + 8 < bytes.len() {
            i + 8
        } else {
            bytes.len()
        };
        let (_, rest) = bytes.split_at(i);
        let (chunk, _) = rest.split_at(end - i);
        h = hash_step(h, tail_word(chunk));
        i += 8;
    }
    hash_finish(h)
}

/// Hashes a name (FxHash-style, eight bytes at a time).
#[inline]
pub(crate) fn hash(bytes: &[u8]) -> u32 {
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word: [u8; 8] = chunk.try_into().unwrap_or_default();
        h = hash_step(h, u64::from_le_bytes(word));
    }
    if !chunks.remainder().is_empty() {
        h = hash_step(h, tail_word(chunks.remainder()));
    }
    hash_finish(h)
}

/// Word `i` of a name, zero-padded, as stored in a slot.
#[inline(always)]
fn name_word(bytes: &[u8], i: usize) -> usize {
    let start = i * WORD;
    match bytes.get(start..start + WORD) {
        Some(chunk) => usize::from_ne_bytes(chunk.try_into().unwrap_or_default()),
        None => {
            let mut word = [0u8; WORD];
            let tail = &bytes[start.min(bytes.len())..];
            word[..tail.len()].copy_from_slice(tail);
            usize::from_ne_bytes(word)
        }
    }
}

/// One entry of the table, readable without the lock through a sequence lock.
///
/// # Safety (of the protocol, not of memory: every field is atomic)
///
/// Fields are written only with the registry lock held, inside [`Slot::write`], which makes
/// `seq` odd for the duration. Readers take `seq` before and after reading and retry when it
/// was odd or moved.
struct Slot {
    seq: AtomicU32,
    meta: AtomicU32,
    hash: AtomicU32,
    /// Bumped each time a name is registered here, so a watcher bound to an earlier name of
    /// this slot notices that it was replaced.
    gen: AtomicU32,
    name: [AtomicUsize; WORDS],
}

impl Slot {
    crate::loom::loom_const_fn! {
        fn new() -> Self {
            Self {
                seq: AtomicU32::new(0),
                meta: AtomicU32::new(pack(KIND_EMPTY, ServingStatus::Unknown, 0)),
                hash: AtomicU32::new(0),
                gen: AtomicU32::new(0),
                #[cfg(not(loom))]
                name: [const { AtomicUsize::new(0) }; WORDS],
                #[cfg(loom)]
                name: core::array::from_fn(|_| AtomicUsize::new(0)),
            }
        }
    }

    crate::loom::loom_const_fn! {
        /// The slot `""` starts in, already `SERVING`.
        fn new_root() -> Self {
            Self {
                seq: AtomicU32::new(0),
                meta: AtomicU32::new(pack(KIND_LIVE, ServingStatus::Serving, 0)),
                hash: AtomicU32::new(hash_const(b"")),
                gen: AtomicU32::new(1),
                #[cfg(not(loom))]
                name: [const { AtomicUsize::new(0) }; WORDS],
                #[cfg(loom)]
                name: core::array::from_fn(|_| AtomicUsize::new(0)),
            }
        }
    }

    /// Runs a writer's update. Lock held.
    ///
    /// Data stores inside `f` are `Release`, so a reader that sees any of them also sees the
    /// odd `seq` stored before them, and retries.
    #[inline]
    fn write(&self, f: impl FnOnce(&Self)) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        f(self);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// Runs a reader until it sees one consistent version of the slot.
    #[inline]
    fn read<R>(&self, f: impl Fn(&Self) -> R) -> R {
        let mut spins = 0;
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 0 {
                let value = f(self);
                // The loads in `f` are `Acquire`, so this load cannot move above them.
                if self.seq.load(Ordering::Relaxed) == before {
                    return value;
                }
            }
            spins += 1;
            backoff(spins);
        }
    }

    #[inline]
    fn meta(&self) -> u32 {
        self.meta.load(Ordering::Acquire)
    }

    /// Compares the stored name with `name` (whose length already matched).
    #[inline]
    fn name_eq(&self, name: &[u8]) -> bool {
        let mut chunks = name.chunks_exact(WORD);
        let mut words = self.name.iter();
        // `chunks` first: `zip` pulls from its left side first, and must not consume a stored
        // word when the name has no more full chunks.
        for (chunk, stored) in (&mut chunks).zip(&mut words) {
            let word = usize::from_ne_bytes(chunk.try_into().unwrap_or_default());
            if stored.load(Ordering::Acquire) != word {
                return false;
            }
        }
        let tail = chunks.remainder();
        tail.is_empty()
            || words
                .next()
                .is_some_and(|stored| stored.load(Ordering::Acquire) == name_word(tail, 0))
    }

    /// Copies the stored name into `buf`, returning its length.
    fn copy_name(&self, len: usize, buf: &mut [u8; MAX_NAME]) {
        for (i, chunk) in buf[..len].chunks_mut(WORD).enumerate() {
            let word = self.name[i].load(Ordering::Acquire).to_ne_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// Matches `name` against this slot. Lock-free.
    #[inline]
    fn probe(&self, name: &[u8], hash: u32) -> Probe {
        self.read(|slot| {
            let meta = slot.meta();
            match kind(meta) {
                KIND_EMPTY => Probe::End,
                KIND_LIVE
                    if name_len(meta) == name.len()
                        && slot.hash.load(Ordering::Acquire) == hash
                        && slot.name_eq(name) =>
                {
                    Probe::Found {
                        status: ServingStatus::from_bits(meta),
                        gen: slot.gen.load(Ordering::Acquire),
                    }
                }
                _ => Probe::Next,
            }
        })
    }
}

enum Probe {
    End,
    Next,
    Found { status: ServingStatus, gen: u32 },
}

/// Where a name is, or could go. Computed under the lock.
enum Place {
    Found(usize),
    Vacant(Option<usize>),
}

/// Lock-protected state: the wait lists and the watch-ending epoch.
pub(crate) struct State<const N: usize> {
    pub(crate) lists: [List; N],
    pub(crate) unknown: List,
    /// Bumped by [`Registry::end_watches`]; a watch created at an older epoch ends.
    pub(crate) end_epoch: u32,
}

impl<const N: usize> State<N> {
    pub(crate) fn list(&mut self, id: ListId) -> &mut List {
        if id == UNKNOWN_LIST {
            &mut self.unknown
        } else {
            &mut self.lists[id as usize]
        }
    }
}

/// A health registry with room for `N` names: statuses, watchers and the drain switch.
///
/// `""` (the whole server) starts as `SERVING`, as in grpc-go and grpc-java. `new` is a
/// `const fn`, so a registry can be a `static`; nothing in it allocates.
///
/// # Examples
///
/// ```
/// use dubbo_health_core::{Registry, ServingStatus};
///
/// static HEALTH: Registry<64> = Registry::new();
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
/// use dubbo_health_core::DefaultRegistry;
/// fn shared<T: Send + Sync>() {}
/// shared::<DefaultRegistry>();
/// ```
///
/// # Implementation Notes
///
/// Names live in an open-addressing hash table of `N` slots with linear probing. Each slot
/// stores the name inline (as machine words, so it can be read atomically), its hash, its
/// status and a generation counter. Readers (`get`, `check`, `iter`) never lock and never
/// write shared memory: each slot is a sequence lock, so any number of threads can read
/// without contending. Writers serialise on one short spin lock (see the crate docs for why
/// a spin lock). Cleared slots become tombstones, turned back into empty slots when nothing
/// probes past them, so lookups of absent names stay short.
///
/// Watchers park in intrusive lists, one per slot plus one for names not registered; a `set`
/// wakes only the watchers of that slot. The generation counter keeps a watcher bound to a
/// cleared slot from ever seeing the status of the next name stored there.
pub struct Registry<const N: usize> {
    slots: [Slot; N],
    count: AtomicU32,
    shut_down: AtomicBool,
    pub(crate) state: SpinLock<State<N>>,
}

impl<const N: usize> Registry<N> {
    const ROOT: usize = {
        assert!(N > 0, "a registry needs room for at least \"\"");
        assert!(N < u32::MAX as usize, "registry capacity must fit in u32");
        hash_const(b"") as usize % N
    };

    crate::loom::loom_const_fn! {
        /// A registry holding only `""`, as `SERVING`.
        ///
        /// ```
        /// # use dubbo_health_core::{Registry, ServingStatus};
        /// let registry = Registry::<16>::new();
        /// assert_eq!(registry.len(), 1);
        /// assert_eq!(registry.get(""), Some(ServingStatus::Serving));
        /// ```
        #[must_use]
        pub fn new() -> Self {
            #[cfg(not(loom))]
            let slots = {
                let mut slots = [const { Slot::new() }; N];
                slots[Self::ROOT] = Slot::new_root();
                slots
            };
            #[cfg(loom)]
            let slots = core::array::from_fn(|i| if i == Self::ROOT { Slot::new_root() } else { Slot::new() });
            Self {
                slots,
                count: AtomicU32::new(1),
                shut_down: AtomicBool::new(false),
                state: SpinLock::new(State {
                    lists: [const { List::new() }; N],
                    unknown: List::new(),
                    end_epoch: 0,
                }),
            }
        }
    }

    /// A new registry (as [`new`](Self::new)) built directly on the heap.
    ///
    /// `Registry::<N>::new()` is about `N × 240` bytes, which `Arc::new(Registry::new())`
    /// would first build on the stack: too much for a small thread stack when `N` is large.
    /// This allocates zeroed memory — a valid empty registry — and registers `""`.
    ///
    /// ```
    /// use dubbo_health_core::{DefaultRegistry, ServingStatus};
    ///
    /// let registry = DefaultRegistry::new_arc();
    /// assert_eq!(registry.get(""), Some(ServingStatus::Serving));
    /// assert_eq!(registry.len(), 1);
    /// ```
    #[cfg(all(feature = "std", not(loom)))]
    #[must_use]
    pub fn new_arc() -> std::sync::Arc<Self> {
        // `Arc::from(Box)` moves heap to heap; nothing large lands on the stack.
        std::sync::Arc::from(Self::new_boxed())
    }

    /// As [`new_arc`](Self::new_arc), in a `Box`.
    ///
    /// # Panics
    ///
    /// Like `Box::new`, aborts if memory cannot be allocated.
    ///
    /// ```
    /// use dubbo_health_core::{DefaultRegistry, ServingStatus};
    ///
    /// let registry = DefaultRegistry::new_boxed();
    /// assert_eq!(registry.get(""), Some(ServingStatus::Serving));
    /// ```
    #[cfg(all(feature = "std", not(loom)))]
    #[must_use]
    pub fn new_boxed() -> std::boxed::Box<Self> {
        use std::alloc::{alloc_zeroed, handle_alloc_error, Layout};
        let layout = Layout::new::<Self>();
        // Safety: a registry is never zero-sized (N > 0 is checked at compile time).
        let ptr = unsafe { alloc_zeroed(layout) }.cast::<Self>();
        if ptr.is_null() {
            handle_alloc_error(layout);
        }
        // Safety: `ptr` is a fresh allocation of `Self`'s layout, as `Box` requires. Every field
        // of a registry is an atomic, an integer, a `bool` or an `Option<NonNull<_>>` (inside
        // `UnsafeCell`s and arrays): all-zero bits are valid for each, and together they are
        // a registry with every slot empty and nothing parked.
        let registry = unsafe { std::boxed::Box::from_raw(ptr) };
        registry.register_root();
        registry
    }

    #[cfg(all(feature = "std", not(loom)))]
    fn register_root(&self) {
        debug_assert!(self.is_empty());
        // A new registry has room for "" (N > 0 is checked at compile time) and is not shut
        // down, so this cannot fail.
        let _ = self.set("", ServingStatus::Serving);
    }

    /// How many names the registry can hold (`N`).
    ///
    /// ```
    /// # use dubbo_health_core::Registry;
    /// assert_eq!(Registry::<32>::new().capacity(), 32);
    /// ```
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many names are registered (`""` included while it is).
    ///
    /// ```
    /// # use dubbo_health_core::{Registry, ServingStatus};
    /// let registry = Registry::<8>::new();
    /// registry.set("a", ServingStatus::Serving).unwrap();
    /// assert_eq!(registry.len(), 2);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire) as usize
    }

    /// `true` when no name is registered, not even `""`.
    ///
    /// ```
    /// # use dubbo_health_core::Registry;
    /// let registry = Registry::<8>::new();
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
    /// # use dubbo_health_core::Registry;
    /// let registry = Registry::<8>::new();
    /// registry.shutdown();
    /// assert!(registry.is_shut_down());
    /// ```
    #[must_use]
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// The status of `name`, or `None` when it is not registered. Lock-free and allocation-free:
    /// this is the `Check` hot path. A name longer than [`MAX_NAME`] is never registered, so
    /// it gives `None`; use [`check`](Self::check) to tell the two apart.
    ///
    /// ```
    /// # use dubbo_health_core::{Registry, ServingStatus};
    /// let registry = Registry::<8>::new();
    /// registry.set("group/org.apache.Foo:1.0.0", ServingStatus::NotServing).unwrap();
    /// assert_eq!(registry.get("group/org.apache.Foo:1.0.0"), Some(ServingStatus::NotServing));
    /// assert_eq!(registry.get("org.apache.Foo"), None);
    /// ```
    #[must_use]
    #[inline]
    pub fn get(&self, name: &str) -> Option<ServingStatus> {
        self.lookup(name).map(|(_, status, _)| status)
    }

    /// Like [`get`](Self::get), but says why there is no status: [`Error::NotFound`] or
    /// [`Error::NameTooLong`] — the two answers gRPC's `Check` gives.
    ///
    /// ```
    /// # use dubbo_health_core::{Error, Registry, ServingStatus};
    /// let registry = Registry::<8>::new();
    /// assert_eq!(registry.check(""), Ok(ServingStatus::Serving));
    /// assert_eq!(registry.check("missing"), Err(Error::NotFound));
    /// assert_eq!(registry.check(&"n".repeat(300)), Err(Error::NameTooLong { len: 300 }));
    /// ```
    pub fn check(&self, name: &str) -> Result<ServingStatus, Error> {
        check_len(name)?;
        self.get(name).ok_or(Error::NotFound)
    }

    /// Finds `name` without the lock: its slot, status and generation.
    #[inline]
    pub(crate) fn lookup(&self, name: &str) -> Option<(usize, ServingStatus, u32)> {
        let bytes = name.as_bytes();
        if bytes.len() > MAX_NAME {
            return None;
        }
        let hash = hash(bytes);
        let mut idx = hash as usize % N;
        for _ in 0..N {
            match self.slots[idx].probe(bytes, hash) {
                Probe::End => return None,
                Probe::Next => {}
                Probe::Found { status, gen } => return Some((idx, status, gen)),
            }
            idx += 1;
            if idx == N {
                idx = 0;
            }
        }
        None
    }

    /// Where `name` is, or the first free slot on its probe path. Lock held, so plain reads.
    fn place(&self, name: &[u8], hash: u32) -> Place {
        let mut idx = hash as usize % N;
        let mut free = None;
        for _ in 0..N {
            let slot = &self.slots[idx];
            let meta = slot.meta.load(Ordering::Relaxed);
            match kind(meta) {
                KIND_EMPTY => return Place::Vacant(free.or(Some(idx))),
                KIND_LIVE
                    if name_len(meta) == name.len()
                        && slot.hash.load(Ordering::Relaxed) == hash
                        && slot.name_eq(name) =>
                {
                    return Place::Found(idx)
                }
                KIND_TOMB if free.is_none() => free = Some(idx),
                _ => {}
            }
            idx += 1;
            if idx == N {
                idx = 0;
            }
        }
        Place::Vacant(free)
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
    /// `SERVICE_UNKNOWN`, [`Error::Full`] when a new name finds no free slot. Nothing changes
    /// on error.
    ///
    /// ```
    /// # use dubbo_health_core::{Error, Registry, ServingStatus, SetOutcome};
    /// let registry = Registry::<2>::new();
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
        let hash = hash(bytes);
        let (outcome, wake) = self.state.with(|state| {
            if self.shut_down.load(Ordering::Relaxed) {
                return Ok((SetOutcome::Ignored, None));
            }
            match self.place(bytes, hash) {
                Place::Found(idx) => {
                    let slot = &self.slots[idx];
                    let meta = slot.meta.load(Ordering::Relaxed);
                    if ServingStatus::from_bits(meta) == status {
                        return Ok((SetOutcome::Unchanged, None));
                    }
                    slot.write(|s| {
                        s.meta
                            .store(pack(KIND_LIVE, status, bytes.len()), Ordering::Release)
                    });
                    state.lists[idx].bump();
                    Ok((SetOutcome::Changed, Some(idx as ListId)))
                }
                Place::Vacant(Some(idx)) => {
                    let slot = &self.slots[idx];
                    slot.write(|s| {
                        let gen = s.gen.load(Ordering::Relaxed).wrapping_add(1);
                        for i in 0..bytes.len().div_ceil(WORD) {
                            s.name[i].store(name_word(bytes, i), Ordering::Release);
                        }
                        s.hash.store(hash, Ordering::Release);
                        s.gen.store(gen, Ordering::Release);
                        s.meta
                            .store(pack(KIND_LIVE, status, bytes.len()), Ordering::Release);
                    });
                    self.count.fetch_add(1, Ordering::Release);
                    state.unknown.bump();
                    Ok((SetOutcome::Changed, Some(UNKNOWN_LIST)))
                }
                Place::Vacant(None) => Err(Error::Full),
            }
        })?;
        if let Some(list) = wake {
            self.wake(list);
        }
        Ok(outcome)
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
    /// ```
    /// # use dubbo_health_core::{Registry, ServingStatus};
    /// let registry = Registry::<8>::new();
    /// registry.set("a", ServingStatus::Serving).unwrap();
    /// assert_eq!(registry.clear("a"), Ok(true));
    /// assert_eq!(registry.clear("a"), Ok(false));
    /// assert_eq!(registry.get("a"), None);
    /// ```
    pub fn clear(&self, name: &str) -> Result<bool, Error> {
        check_len(name)?;
        let bytes = name.as_bytes();
        let hash = hash(bytes);
        let cleared = self.state.with(|state| {
            let Place::Found(idx) = self.place(bytes, hash) else {
                return None;
            };
            self.slots[idx].write(|s| {
                s.meta.store(
                    pack(KIND_TOMB, ServingStatus::Unknown, 0),
                    Ordering::Release,
                )
            });
            self.count.fetch_sub(1, Ordering::Release);
            // When nothing probes past this slot, it and the tombstones before it can become
            // empty again, which keeps lookups of absent names short.
            if kind(self.slots[(idx + 1) % N].meta.load(Ordering::Relaxed)) == KIND_EMPTY {
                let mut i = idx;
                while kind(self.slots[i].meta.load(Ordering::Relaxed)) == KIND_TOMB {
                    self.slots[i].write(|s| {
                        s.meta.store(
                            pack(KIND_EMPTY, ServingStatus::Unknown, 0),
                            Ordering::Release,
                        )
                    });
                    i = if i == 0 { N - 1 } else { i - 1 };
                }
            }
            state.lists[idx].bump();
            Some(idx)
        });
        match cleared {
            Some(idx) => {
                self.wake(idx as ListId);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Graceful drain: every registered name becomes `NOT_SERVING`, and later
    /// [`set`](Self::set) calls are ignored until [`resume`](Self::resume).
    ///
    /// Run it before a server stops taking traffic, so watchers (load balancers, Dubbo
    /// consumers) move away first.
    ///
    /// ```
    /// # use dubbo_health_core::{Registry, ServingStatus, SetOutcome};
    /// let registry = Registry::<8>::new();
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
    /// ```
    /// # use dubbo_health_core::{Registry, ServingStatus};
    /// let registry = Registry::<8>::new();
    /// registry.set("a", ServingStatus::NotServing).unwrap();
    /// registry.shutdown();
    /// registry.resume();
    /// assert_eq!(registry.get("a"), Some(ServingStatus::Serving));
    /// ```
    pub fn resume(&self) {
        self.set_all(false, ServingStatus::Serving);
    }

    fn set_all(&self, shut_down: bool, status: ServingStatus) {
        let changed = self.state.with(|state| {
            self.shut_down.store(shut_down, Ordering::Release);
            let mut changed = false;
            for (idx, slot) in self.slots.iter().enumerate() {
                let meta = slot.meta.load(Ordering::Relaxed);
                if kind(meta) == KIND_LIVE && ServingStatus::from_bits(meta) != status {
                    slot.write(|s| {
                        s.meta
                            .store(pack(KIND_LIVE, status, name_len(meta)), Ordering::Release)
                    });
                    state.lists[idx].bump();
                    changed = true;
                }
            }
            changed
        });
        if changed {
            self.wake_every_list();
        }
    }

    /// Ends every [`Watch`] open now: each yields the change it has not delivered yet (so a
    /// `NOT_SERVING` from [`shutdown`](Self::shutdown) still goes out) and then `None`.
    /// Watches created afterwards are not affected. Servers call this on stop, so open
    /// streams do not hold up a graceful shutdown.
    ///
    /// ```
    /// use futures::{executor::block_on, StreamExt};
    /// use dubbo_health_core::{Registry, ServingStatus};
    ///
    /// let registry = Registry::<8>::new();
    /// let mut watch = Box::pin(registry.watch("").unwrap());
    /// assert_eq!(block_on(watch.next()), Some(ServingStatus::Serving));
    /// registry.shutdown();
    /// registry.end_watches();
    /// assert_eq!(block_on(watch.next()), Some(ServingStatus::NotServing));
    /// assert_eq!(block_on(watch.next()), None);
    /// ```
    pub fn end_watches(&self) {
        self.state.with(|state| {
            state.end_epoch = state.end_epoch.wrapping_add(1);
            state.unknown.bump();
            for list in &mut state.lists {
                list.bump();
            }
        });
        self.wake_every_list();
    }

    /// Watches `name`: a stream of its statuses. See [`Watch`].
    ///
    /// # Errors
    ///
    /// [`Error::NameTooLong`] over [`MAX_NAME`] bytes.
    ///
    /// ```
    /// use futures::{executor::block_on, StreamExt};
    /// use dubbo_health_core::{Registry, ServingStatus};
    ///
    /// let registry = Registry::<8>::new();
    /// let mut watch = Box::pin(registry.watch("svc").unwrap());
    /// assert_eq!(block_on(watch.next()), Some(ServingStatus::ServiceUnknown));
    /// registry.set("svc", ServingStatus::Serving).unwrap();
    /// assert_eq!(block_on(watch.next()), Some(ServingStatus::Serving));
    /// ```
    pub fn watch<S: AsRef<str>>(&self, name: S) -> Result<Watch<&Self, S>, Error> {
        Watch::new(self, name)
    }

    /// Every registered name with its status, without allocating. Not a snapshot: names set
    /// or cleared during the walk may or may not appear.
    ///
    /// ```
    /// # use dubbo_health_core::{Registry, ServingStatus};
    /// let registry = Registry::<8>::new();
    /// registry.set("a", ServingStatus::NotServing).unwrap();
    /// let mut names: Vec<(String, ServingStatus)> =
    ///     registry.iter().map(|e| (e.name().to_owned(), e.status())).collect();
    /// names.sort();
    /// assert_eq!(names, [("".to_owned(), ServingStatus::Serving), ("a".to_owned(), ServingStatus::NotServing)]);
    /// ```
    pub fn iter(&self) -> Iter<'_, N> {
        Iter {
            registry: self,
            idx: 0,
        }
    }

    /// Wakes the watchers parked in `list` before its last bump, a batch at a time, waking
    /// each batch after the lock is released.
    pub(crate) fn wake(&self, list: ListId) {
        let mut batch = WakeBatch::new();
        loop {
            let more = self.state.with(|state| {
                let list = state.list(list);
                let target = list.epoch;
                while !batch.is_full() {
                    match list.pop_older_than(target) {
                        Ok(Some(waker)) => batch.push(waker),
                        Ok(None) => {}
                        Err(()) => return false,
                    }
                }
                true
            });
            batch.wake_all();
            if !more {
                return;
            }
        }
    }

    fn wake_every_list(&self) {
        for idx in 0..N {
            if !self.state.with(|s| s.lists[idx].is_empty()) {
                self.wake(idx as ListId);
            }
        }
        self.wake(UNKNOWN_LIST);
    }

    /// Under the lock: the status of the name bound at `(idx, gen)`, if that binding still
    /// holds, else a fresh lookup. Returns the status and the new binding.
    pub(crate) fn locked_status(
        &self,
        name: &str,
        hash: u32,
        bound: Option<(u32, u32)>,
    ) -> (ServingStatus, Option<(u32, u32)>) {
        if let Some((idx, gen)) = bound {
            let slot = &self.slots[idx as usize];
            let meta = slot.meta.load(Ordering::Relaxed);
            if kind(meta) == KIND_LIVE && slot.gen.load(Ordering::Relaxed) == gen {
                return (ServingStatus::from_bits(meta), bound);
            }
        }
        match self.place(name.as_bytes(), hash) {
            Place::Found(idx) => {
                let slot = &self.slots[idx];
                let meta = slot.meta.load(Ordering::Relaxed);
                (
                    ServingStatus::from_bits(meta),
                    Some((idx as u32, slot.gen.load(Ordering::Relaxed))),
                )
            }
            Place::Vacant(_) => (ServingStatus::ServiceUnknown, None),
        }
    }
}

impl<const N: usize> Default for Registry<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for Registry<N> {
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

/// The iterator returned by [`Registry::iter`].
pub struct Iter<'a, const N: usize> {
    registry: &'a Registry<N>,
    idx: usize,
}

impl<const N: usize> fmt::Debug for Iter<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("idx", &self.idx).finish()
    }
}

impl<const N: usize> Iterator for Iter<'_, N> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        while self.idx < N {
            let slot = &self.registry.slots[self.idx];
            self.idx += 1;
            let entry = slot.read(|slot| {
                let meta = slot.meta();
                (kind(meta) == KIND_LIVE).then(|| {
                    let mut entry = Entry {
                        name: [0; MAX_NAME],
                        len: name_len(meta) as u8,
                        status: ServingStatus::from_bits(meta),
                    };
                    slot.copy_name(name_len(meta), &mut entry.name);
                    entry
                })
            });
            if entry.is_some() {
                return entry;
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(N - self.idx))
    }
}

/// One registered name and its status, copied out of the registry by [`Registry::iter`].
#[derive(Clone)]
pub struct Entry {
    name: [u8; MAX_NAME],
    len: u8,
    status: ServingStatus,
}

impl Entry {
    /// The service name.
    ///
    /// ```
    /// # use dubbo_health_core::Registry;
    /// let registry = Registry::<8>::new();
    /// assert_eq!(registry.iter().next().unwrap().name(), "");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        // The bytes were a `&str` when stored and the sequence lock rules out torn copies, so
        // this never fails; an empty name is the safe answer if it somehow did.
        core::str::from_utf8(&self.name[..self.len as usize]).unwrap_or_default()
    }

    /// Its status.
    ///
    /// ```
    /// # use dubbo_health_core::{Registry, ServingStatus};
    /// let registry = Registry::<8>::new();
    /// assert_eq!(registry.iter().next().unwrap().status(), ServingStatus::Serving);
    /// ```
    #[must_use]
    pub fn status(&self) -> ServingStatus {
        self.status
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name())
            .field("status", &self.status)
            .finish()
    }
}
