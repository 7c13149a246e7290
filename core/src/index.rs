//! The index: an open-addressing table of `u32` words, linear probing with backward-shift
//! deletion, pointing into the dense slot array.
//!
//! A word is 0 (empty) or `tag << 24 | (slot + 1)`, where `tag` is eight hash bits that let a
//! probe reject other names without reading their slots. The table has twice as many
//! positions as the registry has slots, so it is at most half full and probe runs stay
//! short; deletion shifts the rest of the run back instead of leaving tombstones, so the
//! table never fills up with dead positions however many names come and go.
//!
//! Readers probe without the lock. A positive answer is confirmed by the slot itself (its
//! sequence lock and a name compare), since slots never move while registered. A negative
//! answer could be wrong while a deletion shifts words backwards past a reader, so it is
//! confirmed against the registry's *structure sequence*: odd while a deletion moves words,
//! bumped once more when it is done. A reader that missed retries when the sequence was odd
//! or moved. Insertion never moves a word (it fills the first empty position of the run), so
//! it cannot hide a name and does not touch the sequence.

use crate::{
    hash::Hash,
    lock::backoff,
    loom::{AtomicU32, AtomicUsize, Ordering},
    slot::Slot,
    ServingStatus,
};

const SLOT_BITS: u32 = 24;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;

/// The most slots an index word can address.
pub(crate) const MAX_SLOTS: usize = SLOT_MASK as usize;

/// The word for `slot` with hash `hash`.
#[inline(always)]
pub(crate) const fn word(slot: u32, hash: Hash) -> u32 {
    (hash.tag() << SLOT_BITS) | (slot + 1)
}

#[inline(always)]
pub(crate) const fn word_slot(word: u32) -> usize {
    ((word & SLOT_MASK) - 1) as usize
}

/// The home position of a hash in a table of `len` positions (Lemire's multiply-shift range
/// reduction: no division, and `len` need not be a power of two).
#[inline(always)]
pub(crate) const fn home(hash: u32, len: usize) -> usize {
    ((hash as u64 * len as u64) >> 32) as usize
}

#[inline(always)]
fn next(pos: usize, len: usize) -> usize {
    if pos + 1 == len {
        0
    } else {
        pos + 1
    }
}

/// `pos` lies in the cyclic interval `(from, to]`.
#[inline(always)]
fn cyclic_between(from: usize, pos: usize, to: usize) -> bool {
    if from <= to {
        from < pos && pos <= to
    } else {
        from < pos || pos <= to
    }
}

/// The index words and the slots they point into.
#[derive(Clone, Copy)]
pub(crate) struct Index<'a> {
    pub(crate) words: &'a [AtomicU32],
    pub(crate) slots: &'a [Slot],
}

impl Index<'_> {
    /// Finds `name` without the lock: its slot and status.
    #[inline]
    pub(crate) fn find(
        self,
        name: &[u8],
        hash: Hash,
        structure: &AtomicUsize,
    ) -> Option<(usize, ServingStatus)> {
        let len = self.words.len();
        let tag = hash.tag();
        let start = home(hash.hi(), len);
        let mut spins = 0;
        loop {
            let before = structure.load(Ordering::Acquire);
            let mut pos = start;
            // The table is never more than half full, so a probe meets an empty position
            // long before this bound; it only guards against a reader racing many writers.
            for _ in 0..len {
                let w = self.words[pos].load(Ordering::Acquire);
                if w == 0 {
                    break;
                }
                if w >> SLOT_BITS == tag {
                    let slot = word_slot(w);
                    if let Some(status) = self
                        .slots
                        .get(slot)
                        .and_then(|s| s.status_of(name, hash.hi()))
                    {
                        return Some((slot, status));
                    }
                }
                pos = next(pos, len);
            }
            // A miss. The index loads above are `Acquire`, so this load cannot move above
            // them: if no deletion moved words meanwhile, the miss is real.
            if before & 1 == 0 && structure.load(Ordering::Relaxed) == before {
                return None;
            }
            spins += 1;
            backoff(spins);
        }
    }

    /// Finds `name` under the lock: its index position and slot.
    pub(crate) fn find_locked(self, name: &[u8], hash: Hash) -> Option<(usize, usize)> {
        let len = self.words.len();
        let tag = hash.tag();
        let mut pos = home(hash.hi(), len);
        loop {
            let w = self.words[pos].load(Ordering::Relaxed);
            if w == 0 {
                return None;
            }
            if w >> SLOT_BITS == tag {
                let slot = word_slot(w);
                if self.slots[slot].locked_status_of(name, hash.hi()).is_some() {
                    return Some((pos, slot));
                }
            }
            pos = next(pos, len);
        }
    }

    /// Finds `name` under the lock, registered or a placeholder: its index position and slot.
    pub(crate) fn find_entry_locked(self, name: &[u8], hash: Hash) -> Option<(usize, usize)> {
        let len = self.words.len();
        let tag = hash.tag();
        let mut pos = home(hash.hi(), len);
        loop {
            let w = self.words[pos].load(Ordering::Relaxed);
            if w == 0 {
                return None;
            }
            if w >> SLOT_BITS == tag {
                let slot = word_slot(w);
                if self.slots[slot].locked_holds(name, hash.hi()) {
                    return Some((pos, slot));
                }
            }
            pos = next(pos, len);
        }
    }

    /// Inserts `slot` (whose name is not in the index) at the first empty position of its
    /// run. Lock held; the slot is already filled, so a reader that finds the word finds the
    /// name.
    pub(crate) fn insert(self, slot: u32, hash: Hash) {
        let len = self.words.len();
        let mut pos = home(hash.hi(), len);
        while self.words[pos].load(Ordering::Relaxed) != 0 {
            pos = next(pos, len);
        }
        self.words[pos].store(word(slot, hash), Ordering::Release);
    }

    /// Removes the word at `pos` and shifts the rest of its run back so that every name
    /// stays reachable from its home without tombstones. Lock held.
    pub(crate) fn remove(self, mut hole: usize, structure: &AtomicUsize) {
        let len = self.words.len();
        let mut pos = next(hole, len);
        if self.words[pos].load(Ordering::Relaxed) == 0 {
            // Nothing probes through `hole` to a later position: no reader can miss a name.
            self.words[hole].store(0, Ordering::Release);
            return;
        }
        // Readers that miss while this is odd retry. The stores below are `Release`, so a
        // reader that sees any of them also sees this odd value (or a later one).
        let seq = structure.load(Ordering::Relaxed);
        structure.store(seq.wrapping_add(1), Ordering::Relaxed);
        self.words[hole].store(0, Ordering::Release);
        loop {
            let w = self.words[pos].load(Ordering::Relaxed);
            if w == 0 {
                break;
            }
            let home = home(self.slots[word_slot(w)].hash(), len);
            // The word at `pos` may move back into the hole unless its home lies after the
            // hole (cyclically), where a probe from its home would no longer pass the hole.
            if !cyclic_between(hole, home, pos) {
                self.words[hole].store(w, Ordering::Release);
                self.words[pos].store(0, Ordering::Release);
                hole = pos;
            }
            pos = next(pos, len);
        }
        structure.store(seq.wrapping_add(2), Ordering::Release);
    }
}
