//! One registered name: a sequence-locked slot of atomic words that readers copy without a
//! lock.

use core::mem::size_of;

use crate::{
    lock::backoff,
    loom::{AtomicU32, AtomicUsize, Ordering},
    ServingStatus, MAX_NAME,
};

const WORD: usize = size_of::<usize>();
/// Machine words per stored name.
const WORDS: usize = MAX_NAME.div_ceil(WORD);

// `meta` layout: bits 0-1 status, bit 2 live, bit 3 placeholder (in the index, not
// registered: a name `""` requires or an interface with exports, cleared), bits 8-15 name
// length. Bits 4-7 and 16-31 are free for per-name flags that later features may need
// (written under the lock, read through the sequence lock like the rest).
const LIVE: u32 = 1 << 2;
const PLACEHOLDER: u32 = 1 << 3;

const fn pack(status: ServingStatus, len: usize) -> u32 {
    (status as u32) | LIVE | ((len as u32) << 8)
}
const fn is_live(meta: u32) -> bool {
    meta & LIVE != 0
}
const fn name_len(meta: u32) -> usize {
    ((meta >> 8) & 0xff) as usize
}

/// Word `i` of a name, zero-padded, as stored in a slot.
#[inline(always)]
fn name_word(bytes: &[u8], i: usize) -> usize {
    let start = i * WORD;
    match bytes.get(start..start + WORD) {
        Some(chunk) => usize::from_ne_bytes(chunk.try_into().unwrap_or_default()),
        None => tail_word(bytes.get(start..).unwrap_or_default()),
    }
}

/// Fewer than `WORD` bytes as a zero-padded word, copied in pieces of constant length (4, 2,
/// 1 bytes): a copy of a variable length would be a `memcpy` call.
#[inline(always)]
fn tail_word(tail: &[u8]) -> usize {
    let mut word = [0u8; WORD];
    let len = tail.len().min(WORD - 1);
    let mut at = 0;
    if len - at >= 4 {
        word[at..at + 4].copy_from_slice(&tail[at..at + 4]);
        at += 4;
    }
    if len - at >= 2 {
        word[at..at + 2].copy_from_slice(&tail[at..at + 2]);
        at += 2;
    }
    if len > at {
        word[at] = tail[at];
    }
    usize::from_ne_bytes(word)
}

/// One entry of the dense entry array, readable without the lock through a sequence lock.
///
/// A slot is either live (a registered name) or free. A free slot's `hash` word holds the
/// free list's link (the next free slot + 1, or 0), written under the lock.
///
/// # Safety (of the protocol, not of memory: every field is atomic)
///
/// Fields are written only with the registry lock held, inside [`Slot::write`], which makes
/// `seq` odd for the duration. Readers take `seq` before and after reading and retry when it
/// was odd or moved.
pub(crate) struct Slot {
    seq: AtomicU32,
    meta: AtomicU32,
    /// [`Hash::hi`](crate::hash::Hash::hi) of the name while live; the free-list link while
    /// free.
    hash: AtomicU32,
    /// Writer-only (read and written under the lock, `Relaxed`): the Dubbo ties of the name
    /// (see `ties.rs`): bits 0-23 the slot of its bare interface + 1 (an exported service
    /// key), bit 24 required by `""`, bit 25 exported as its own key, bit 26 that export is
    /// `SERVING`. Zero on a free slot.
    tie: AtomicU32,
    /// Writer-only, as `tie`: for a bare interface, bits 0-15 how many exports are tied to
    /// it, bits 16-31 how many of them are `SERVING`. Zero on a free slot.
    exports: AtomicU32,
    name: [AtomicUsize; WORDS],
}

impl Slot {
    crate::loom::loom_const_fn! {
        /// A free slot (all zeroes, as a zeroed allocation is).
        pub(crate) fn new() -> Self {
            Self {
                seq: AtomicU32::new(0),
                meta: AtomicU32::new(0),
                hash: AtomicU32::new(0),
                tie: AtomicU32::new(0),
                exports: AtomicU32::new(0),
                #[cfg(not(loom))]
                name: [const { AtomicUsize::new(0) }; WORDS],
                #[cfg(loom)]
                name: core::array::from_fn(|_| AtomicUsize::new(0)),
            }
        }
    }

    crate::loom::loom_const_fn! {
        /// The slot `""` starts in, already `SERVING`.
        pub(crate) fn new_root(hash: u32) -> Self {
            Self {
                seq: AtomicU32::new(0),
                meta: AtomicU32::new(pack(ServingStatus::Serving, 0)),
                hash: AtomicU32::new(hash),
                tie: AtomicU32::new(0),
                exports: AtomicU32::new(0),
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
    fn read<R>(&self, mut f: impl FnMut(&Self) -> R) -> R {
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

    /// Compares the stored name with `name` (whose length already matched).
    #[inline]
    fn name_eq(&self, name: &[u8], order: Ordering) -> bool {
        let mut chunks = name.chunks_exact(WORD);
        let mut words = self.name.iter();
        // `chunks` first: `zip` pulls from its left side first, and must not consume a stored
        // word when the name has no more full chunks.
        for (chunk, stored) in (&mut chunks).zip(&mut words) {
            let word = usize::from_ne_bytes(chunk.try_into().unwrap_or_default());
            if stored.load(order) != word {
                return false;
            }
        }
        let tail = chunks.remainder();
        tail.is_empty()
            || words
                .next()
                .is_some_and(|stored| stored.load(order) == tail_word(tail))
    }

    /// The status, if this slot holds `name` (with hash `hash`). Lock-free.
    #[inline]
    pub(crate) fn status_of(&self, name: &[u8], hash: u32) -> Option<ServingStatus> {
        self.read(|slot| {
            let meta = slot.meta.load(Ordering::Acquire);
            (is_live(meta)
                && name_len(meta) == name.len()
                && slot.hash.load(Ordering::Acquire) == hash
                && slot.name_eq(name, Ordering::Acquire))
            .then(|| ServingStatus::from_bits(meta))
        })
    }

    /// The name and status, copied out, if the slot is live. Lock-free.
    pub(crate) fn copy_out(&self, buf: &mut [u8; MAX_NAME]) -> Option<(u8, ServingStatus)> {
        self.read(|slot| {
            let meta = slot.meta.load(Ordering::Acquire);
            if !is_live(meta) {
                return None;
            }
            let len = name_len(meta);
            for (i, chunk) in buf[..len].chunks_mut(WORD).enumerate() {
                let word = slot.name[i].load(Ordering::Acquire).to_ne_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            Some((len as u8, ServingStatus::from_bits(meta)))
        })
    }

    // === under the lock: plain reads, sequence-locked writes ===

    /// The status, if this slot holds `name` (with hash `hash`). Lock held.
    #[inline]
    pub(crate) fn locked_status_of(&self, name: &[u8], hash: u32) -> Option<ServingStatus> {
        let meta = self.meta.load(Ordering::Relaxed);
        (is_live(meta)
            && name_len(meta) == name.len()
            && self.hash.load(Ordering::Relaxed) == hash
            && self.name_eq(name, Ordering::Relaxed))
        .then(|| ServingStatus::from_bits(meta))
    }

    /// The status, if live. Lock held.
    #[inline]
    pub(crate) fn live_status(&self) -> Option<ServingStatus> {
        let meta = self.meta.load(Ordering::Relaxed);
        is_live(meta).then(|| ServingStatus::from_bits(meta))
    }

    /// The stored [`Hash::hi`](crate::hash::Hash::hi) of a live slot. Lock held.
    #[inline]
    pub(crate) fn hash(&self) -> u32 {
        self.hash.load(Ordering::Relaxed)
    }

    /// Stores a new name in a free slot. Lock held.
    pub(crate) fn fill(&self, name: &[u8], hash: u32, status: ServingStatus) {
        self.write(|s| {
            for i in 0..name.len().div_ceil(WORD) {
                s.name[i].store(name_word(name, i), Ordering::Release);
            }
            s.hash.store(hash, Ordering::Release);
            s.meta.store(pack(status, name.len()), Ordering::Release);
        });
    }

    /// Changes the status of a live slot. Lock held.
    pub(crate) fn set_status(&self, status: ServingStatus) {
        let len = name_len(self.meta.load(Ordering::Relaxed));
        self.write(|s| s.meta.store(pack(status, len), Ordering::Release));
    }

    /// Frees a live slot (or a placeholder), linking it to `next_free` (slot index + 1, or
    /// 0). Lock held.
    pub(crate) fn free(&self, next_free: u32) {
        self.write(|s| {
            s.meta.store(0, Ordering::Release);
            s.hash.store(next_free, Ordering::Release);
        });
        self.tie.store(0, Ordering::Relaxed);
        self.exports.store(0, Ordering::Relaxed);
    }

    /// Whether this slot, live or a placeholder, holds `name` (with hash `hash`). Lock held.
    #[inline]
    pub(crate) fn locked_holds(&self, name: &[u8], hash: u32) -> bool {
        let meta = self.meta.load(Ordering::Relaxed);
        (is_live(meta) || meta & PLACEHOLDER != 0)
            && name_len(meta) == name.len()
            && self.hash.load(Ordering::Relaxed) == hash
            && self.name_eq(name, Ordering::Relaxed)
    }

    /// Turns a live slot into a *placeholder*: still in the index with its name (so the
    /// writers find its ties), but not registered for anyone reading. Lock held.
    pub(crate) fn hide(&self) {
        let len = name_len(self.meta.load(Ordering::Relaxed));
        self.write(|s| {
            s.meta
                .store(PLACEHOLDER | ((len as u32) << 8), Ordering::Release)
        });
    }

    /// Stores a new name in a free slot as a placeholder. Lock held.
    pub(crate) fn fill_hidden(&self, name: &[u8], hash: u32) {
        self.write(|s| {
            for i in 0..name.len().div_ceil(WORD) {
                s.name[i].store(name_word(name, i), Ordering::Release);
            }
            s.hash.store(hash, Ordering::Release);
            s.meta
                .store(PLACEHOLDER | ((name.len() as u32) << 8), Ordering::Release);
        });
    }

    /// The tie word. Lock held.
    #[inline]
    pub(crate) fn tie(&self) -> u32 {
        self.tie.load(Ordering::Relaxed)
    }

    /// Sets the tie word. Lock held.
    #[inline]
    pub(crate) fn set_tie(&self, tie: u32) {
        self.tie.store(tie, Ordering::Relaxed);
    }

    /// The exports word. Lock held.
    #[inline]
    pub(crate) fn exports(&self) -> u32 {
        self.exports.load(Ordering::Relaxed)
    }

    /// Sets the exports word. Lock held.
    #[inline]
    pub(crate) fn set_exports(&self, exports: u32) {
        self.exports.store(exports, Ordering::Relaxed);
    }

    /// The free-list link of a free slot. Lock held.
    pub(crate) fn next_free(&self) -> u32 {
        self.hash.load(Ordering::Relaxed)
    }
}
