//! Names whose status follows other names: a Dubbo export's bare interface (`SERVING` while
//! any export of it is) and `""` when it requires services (`SERVING` exactly when all of
//! them are). Everything here runs under the registry lock, in the critical section of the
//! change that moves a status, and allocates nothing: the ties are two words per slot
//! (`Slot::tie`, `Slot::exports`) and three counters in the [`Header`](crate::locked::Header).
//!
//! - An exported service key `K` of interface `B` (`K != B`) is *linked* to `B`'s slot; `B`
//!   counts its exports and how many of them are `SERVING`. An export whose key is the bare
//!   interface itself (dubbo-go with no group or version) is a flag on `B`'s own slot.
//! - Every status change of a linked key moves `B`'s count and sets `B` to `SERVING` when
//!   the count is above zero, else `NOT_SERVING`.
//! - Every change between `SERVING` and anything else of a required name moves the
//!   registry's count, and sets `""` to `SERVING` when all required names are, else
//!   `NOT_SERVING`.
//! - Interfaces must be non-empty and contain no `/` or `:`, and a key other than its
//!   interface always contains one of them, so a key is never an interface: the chain is at
//!   most key → interface → `""`.
//! - A name that is required, or an interface with exports, stays in the index when it is
//!   cleared (or before it is ever registered) as a *placeholder*: a slot readers see as
//!   free, which keeps its ties until the name is registered again.

use crate::{
    dubbo::valid_interface,
    hash::Hash,
    index,
    locked::Locked,
    loom::Ordering,
    registry::check_len,
    service_key,
    wake::{Job, Scope, WakeBatch},
    Error, KeyForm, Registry, ServingStatus, SetOutcome, Storage,
};

/// `Slot::tie`: the slot of the bare interface + 1 (an exported service key).
pub(crate) const LINK: u32 = (1 << 24) - 1;
/// `Slot::tie`: `""` requires this name.
pub(crate) const REQUIRED: u32 = 1 << 24;
/// `Slot::tie`: an interface exported under its own name as key.
pub(crate) const SELF: u32 = 1 << 25;
/// `Slot::tie`: that export's status is `SERVING`.
pub(crate) const SELF_SERVING: u32 = 1 << 26;
/// `Slot::exports`: the number of exports (low half) ...
const COUNT: u32 = 0xffff;
/// ... and one `SERVING` export (high half).
const SERVING_ONE: u32 = 1 << 16;

/// Wake-up jobs started by one critical section (one per slot or bucket it changed; an
/// export touches at most three names and `""`).
const JOBS: usize = 8;

/// What one critical section changed: the wake-up jobs it started, to finish after the lock
/// is released, and whether any status or registration changed.
pub(crate) struct Effects {
    jobs: [Option<Job>; JOBS],
    batches: [WakeBatch; JOBS],
    n: usize,
    pub(crate) changed: bool,
}

impl Effects {
    pub(crate) const fn new() -> Self {
        Self {
            jobs: [const { None }; JOBS],
            batches: [const { WakeBatch::new() }; JOBS],
            n: 0,
            changed: false,
        }
    }

    /// Starts waking `scope` (in this critical section, so at its epoch).
    pub(crate) fn wake(&mut self, l: &mut Locked<'_>, scope: Scope) {
        if self.n == JOBS {
            // Never expected; but should it happen, a job over every list started now wakes
            // every node that any earlier job of this section would have (they were all
            // linked before it), so replacing the last job loses nobody. Its batch keeps the
            // wakers already taken out.
            let last = JOBS - 1;
            let everything = Scope::Everything {
                next: 0,
                unknown: true,
            };
            self.jobs[last] = l.start(everything, &mut self.batches[last]);
            return;
        }
        if let Some(job) = l.start(scope, &mut self.batches[self.n]) {
            self.jobs[self.n] = Some(job);
            self.n += 1;
        }
    }
}

/// The jobs of an [`Effects`] not finished yet; dropping it mid-way (a waker panicked)
/// finishes them, so every watcher still hears its change.
struct Pending<'a, S: Storage> {
    registry: &'a Registry<S>,
    fx: &'a mut Effects,
    next: usize,
}

impl<S: Storage> Pending<'_, S> {
    fn run(&mut self) {
        while self.next < self.fx.n {
            let i = self.next;
            self.next += 1;
            if let Some(job) = self.fx.jobs[i].take() {
                self.registry.finish(job, &mut self.fx.batches[i]);
            }
        }
    }
}

impl<S: Storage> Drop for Pending<'_, S> {
    fn drop(&mut self) {
        while self.next < self.fx.n {
            let i = self.next;
            self.next += 1;
            if let Some(job) = self.fx.jobs[i].take() {
                let (registry, batch) = (self.registry, &mut self.fx.batches[i]);
                // Already unwinding: a second panic is dropped (with `std`) rather than
                // aborting; the first one goes on up.
                #[cfg(feature = "std")]
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    registry.finish(job, batch);
                }));
                #[cfg(not(feature = "std"))]
                registry.finish(job, batch);
            }
        }
    }
}

impl<S: Storage> Registry<S> {
    /// Wakes everything `fx` started, after the lock is released.
    ///
    /// # Panics
    ///
    /// If a waker panics: every other watcher is still woken, then the first panic goes on.
    pub(crate) fn finish_effects(&self, fx: &mut Effects) {
        let mut pending = Pending {
            registry: self,
            fx,
            next: 0,
        };
        pending.run();
    }

    /// Sets live slot `slot` to `status`, wakes its watchers and carries the change on to
    /// its interface and to `""`. A placeholder is left alone.
    pub(crate) fn change(
        &self,
        l: &mut Locked<'_>,
        fx: &mut Effects,
        slot: usize,
        status: ServingStatus,
    ) {
        let slots = l.parts.slots;
        let Some(old) = slots[slot].live_status() else {
            return;
        };
        if old == status {
            return;
        }
        slots[slot].set_status(status);
        fx.changed = true;
        fx.wake(l, Scope::Waiters(slot as u32));
        self.carry(
            l,
            fx,
            slot,
            old == ServingStatus::Serving,
            status == ServingStatus::Serving,
        );
    }

    /// The name at `slot` went from serving (`was`) to `now` or back (a registration or a
    /// clear counts as not serving): moves the counts it is tied into.
    fn carry(&self, l: &mut Locked<'_>, fx: &mut Effects, slot: usize, was: bool, now: bool) {
        if was == now {
            return;
        }
        let slots = l.parts.slots;
        let tie = slots[slot].tie();
        if let Some(bare) = (tie & LINK).checked_sub(1) {
            let b = &slots[bare as usize];
            b.set_exports(if now {
                b.exports() + SERVING_ONE
            } else {
                b.exports() - SERVING_ONE
            });
            self.derive_bare(l, fx, bare as usize);
        }
        if tie & REQUIRED != 0 {
            if now {
                l.header.required_serving += 1;
            } else {
                l.header.required_serving -= 1;
            }
            self.derive_root(l, fx);
        }
    }

    /// Sets interface `bare` from its exports: `SERVING` while any is.
    fn derive_bare(&self, l: &mut Locked<'_>, fx: &mut Effects, bare: usize) {
        let serving = l.parts.slots[bare].exports() >= SERVING_ONE;
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.change(l, fx, bare, status);
    }

    /// Sets `""` (while registered) from the names it requires, if it requires any.
    fn derive_root(&self, l: &mut Locked<'_>, fx: &mut Effects) {
        let (required, serving) = (l.header.required, l.header.required_serving);
        if required == 0 {
            return;
        }
        let status = if serving == required {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if let Some((_, slot)) = l.index().find_locked(b"", self.hash(b"")) {
            self.change(l, fx, slot, status);
        }
    }

    /// Counts a registration and wakes the watchers waiting for the name.
    fn registered(&self, l: &mut Locked<'_>, fx: &mut Effects, hash: Hash) {
        self.writer.0.count.fetch_add(1, Ordering::Release);
        fx.changed = true;
        let bucket = index::home(hash.hi(), l.parts.buckets.len()) as u32;
        fx.wake(
            l,
            Scope::Bucket {
                bucket,
                hash: hash.hi(),
            },
        );
    }

    /// Sets `name` to `status`, registering it (or its placeholder) if needed.
    pub(crate) fn set_locked(
        &self,
        l: &mut Locked<'_>,
        fx: &mut Effects,
        name: &[u8],
        hash: Hash,
        status: ServingStatus,
    ) -> Result<usize, Error> {
        let (slot, was_registered) = self.ensure(l, fx, name, hash, status)?;
        if was_registered {
            self.change(l, fx, slot, status);
        }
        Ok(slot)
    }

    /// Finds `name`, or registers it with `status` (a new slot, or its placeholder made
    /// visible). Returns its slot and whether it was registered already (status untouched).
    fn ensure(
        &self,
        l: &mut Locked<'_>,
        fx: &mut Effects,
        name: &[u8],
        hash: Hash,
        status: ServingStatus,
    ) -> Result<(usize, bool), Error> {
        let slots = l.parts.slots;
        if let Some((_, slot)) = l.index().find_entry_locked(name, hash) {
            if slots[slot].live_status().is_some() {
                return Ok((slot, true));
            }
            slots[slot].set_status(status);
            l.header.placeholders -= 1;
            self.registered(l, fx, hash);
            self.carry(l, fx, slot, false, status == ServingStatus::Serving);
            return Ok((slot, false));
        }
        let slot = l.alloc()?;
        slots[slot].fill(name, hash.hi(), status);
        l.index().insert(slot as u32, hash);
        self.registered(l, fx, hash);
        Ok((slot, false))
    }

    /// Forgets the registered name at `slot` (index position `pos`): its watchers hear
    /// `SERVICE_UNKNOWN`, an export key leaves its interface's count, and a name that is
    /// still tied (required, or an interface with exports) stays as a placeholder.
    pub(crate) fn forget(&self, l: &mut Locked<'_>, fx: &mut Effects, pos: usize, slot: usize) {
        let slots = l.parts.slots;
        let s = &slots[slot];
        let was = s.live_status() == Some(ServingStatus::Serving);
        fx.changed = true;
        fx.wake(l, Scope::Waiters(slot as u32));
        self.writer.0.count.fetch_sub(1, Ordering::Release);
        let tie = s.tie();
        if tie & REQUIRED != 0 && was {
            l.header.required_serving -= 1;
        }
        if tie & (REQUIRED | SELF) != 0 || s.exports() & COUNT != 0 {
            s.set_tie(tie & !LINK);
            s.hide();
            l.header.placeholders += 1;
        } else {
            l.index().remove(pos, &self.structure);
            l.release(slot);
        }
        if let Some(bare) = (tie & LINK).checked_sub(1) {
            let b = &slots[bare as usize];
            b.set_exports(b.exports() - 1 - if was { SERVING_ONE } else { 0 });
            self.derive_bare(l, fx, bare as usize);
        }
        if tie & REQUIRED != 0 {
            self.derive_root(l, fx);
        }
    }

    /// Frees the placeholder at `slot` (of `name`) once nothing ties it any more.
    fn drop_if_untied(&self, l: &mut Locked<'_>, slot: usize, name: &[u8], hash: Hash) {
        let s = &l.parts.slots[slot];
        if s.live_status().is_some()
            || s.tie() & (REQUIRED | SELF | LINK) != 0
            || s.exports() & COUNT != 0
        {
            return;
        }
        if let Some((pos, _)) = l.index().find_entry_locked(name, hash) {
            l.index().remove(pos, &self.structure);
            l.release(slot);
            l.header.placeholders -= 1;
        }
    }

    /// After `shutdown`/`resume` set every registered name to `status`: the export counts
    /// and `""`'s requirements follow (in the same critical section).
    pub(crate) fn recount(&self, l: &mut Locked<'_>, status: ServingStatus) -> bool {
        let serving = status == ServingStatus::Serving;
        let mut required_serving = 0;
        for slot in &l.parts.slots[..l.high_water()] {
            let exports = slot.exports() & COUNT;
            if exports != 0 {
                slot.set_exports(if serving {
                    exports | exports << 16
                } else {
                    exports
                });
            }
            let tie = slot.tie();
            if tie & SELF != 0 {
                slot.set_tie(if serving {
                    tie | SELF_SERVING
                } else {
                    tie & !SELF_SERVING
                });
            }
            if tie & REQUIRED != 0 && serving && slot.live_status().is_some() {
                required_serving += 1;
            }
        }
        l.header.required_serving = required_serving;
        let required = l.header.required;
        if required == 0 || required_serving == required {
            return false;
        }
        // A required name is not registered: `""` is NOT_SERVING whatever `resume` set.
        match l.index().find_locked(b"", self.hash(b"")) {
            Some((_, root))
                if l.parts.slots[root].live_status() != Some(ServingStatus::NotServing) =>
            {
                l.parts.slots[root].set_status(ServingStatus::NotServing);
                true
            }
            _ => false,
        }
    }

    /// Exports `interface` (with its `group` and `version`) as `status`, as a Dubbo host does
    /// when it exports a service: sets the service key in both forms (dubbo-go's and Dubbo
    /// Java's; one name when they are equal, e.g. a version other than `0.0.0`), and the bare
    /// `interface`, which is `SERVING` while **any** export of it is `SERVING` and
    /// `NOT_SERVING` once none is.
    ///
    /// The key is an ordinary name afterwards: [`set`](Self::set), [`shutdown`](Self::shutdown)
    /// /[`resume`](Self::resume) and [`clear`](Self::clear) of it move the interface the same
    /// way (a cleared key is no export any more). A [`set`](Self::set) of the interface itself
    /// stands until the next change of one of its exports. With no group and no version,
    /// dubbo-go's key is the interface itself: that export counts like the others.
    /// Exporting a key again updates its status (it is not counted twice).
    ///
    /// # Returns
    ///
    /// [`SetOutcome::Changed`] when a name was registered or a status changed, `Unchanged`,
    /// or `Ignored` while shut down (nothing changes).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for an empty `interface` or one with `/` or `:`;
    /// [`Error::NameTooLong`] for a key over [`MAX_NAME`](crate::MAX_NAME) bytes;
    /// [`Error::InvalidStatus`] for `SERVICE_UNKNOWN`; [`Error::Full`] when the names it
    /// needs do not fit (or one interface has 65,535 exports). Nothing changes on error.
    ///
    /// # Panics
    ///
    /// As [`set`](Self::set), only if a watcher's waker panics.
    ///
    /// ```
    /// use dubbo_health_core::{FixedRegistry, ServingStatus::*};
    ///
    /// let registry = FixedRegistry::<16>::new();
    /// registry.export("org.apache.Foo", "grp", "1.0.0", Serving).unwrap();
    /// registry.export("org.apache.Foo", "grp", "2.0.0", Serving).unwrap();
    /// assert_eq!(registry.get("grp/org.apache.Foo:1.0.0"), Some(Serving));
    /// assert_eq!(registry.get("org.apache.Foo"), Some(Serving));
    ///
    /// registry.unexport("org.apache.Foo", "grp", "1.0.0").unwrap();
    /// assert_eq!(registry.get("grp/org.apache.Foo:1.0.0"), Some(NotServing));
    /// assert_eq!(registry.get("org.apache.Foo"), Some(Serving)); // 2.0.0 still serves
    /// registry.unexport("org.apache.Foo", "grp", "2.0.0").unwrap();
    /// assert_eq!(registry.get("org.apache.Foo"), Some(NotServing));
    /// ```
    pub fn export(
        &self,
        interface: &str,
        group: &str,
        version: &str,
        status: ServingStatus,
    ) -> Result<SetOutcome, Error> {
        if status == ServingStatus::ServiceUnknown {
            return Err(Error::InvalidStatus);
        }
        let keys = export_keys(interface, group, version)?;
        let bare = interface.as_bytes();
        let bare_hash = self.hash(bare);
        let key_hashes = keys.each(|k| self.hash(k.as_bytes()));
        let mut fx = Effects::new();
        let outcome = self.locked(|l| {
            if self.writer.0.shut_down.load(Ordering::Relaxed) {
                return Ok(SetOutcome::Ignored);
            }
            let slots = l.parts.slots;
            // Room first, so that nothing changes on error.
            let mut new = 0;
            let mut untied = 0;
            let b = l.index().find_entry_locked(bare, bare_hash).map(|(_, s)| s);
            new += u32::from(b.is_none());
            for (key, hash) in keys.iter().zip(key_hashes) {
                if key.as_bytes() == bare {
                    untied += u32::from(b.is_none_or(|b| slots[b].tie() & SELF == 0));
                    continue;
                }
                match l.index().find_entry_locked(key.as_bytes(), hash) {
                    None => {
                        new += 1;
                        untied += 1;
                    }
                    Some((_, k)) => {
                        let linked = b.is_some_and(|b| slots[k].tie() & LINK == b as u32 + 1);
                        untied += u32::from(!linked);
                    }
                }
            }
            let used = self.writer.0.count.load(Ordering::Relaxed) + l.header.placeholders;
            let exports = b.map_or(0, |b| slots[b].exports() & COUNT);
            if new as usize > l.parts.slots.len() - used as usize || exports + untied > COUNT {
                return Err(Error::Full);
            }
            let (b, _) = self.ensure(l, &mut fx, bare, bare_hash, ServingStatus::NotServing)?;
            let link = b as u32 + 1;
            for (key, hash) in keys.iter().zip(key_hashes) {
                if key.as_bytes() == bare {
                    let (tie, exports) = (slots[b].tie(), slots[b].exports());
                    let (mut tie, mut exports) = if tie & SELF == 0 {
                        (tie | SELF, exports + 1)
                    } else {
                        (tie, exports)
                    };
                    let serving = status == ServingStatus::Serving;
                    if serving != (tie & SELF_SERVING != 0) {
                        tie ^= SELF_SERVING;
                        exports = if serving {
                            exports + SERVING_ONE
                        } else {
                            exports - SERVING_ONE
                        };
                    }
                    slots[b].set_tie(tie);
                    slots[b].set_exports(exports);
                    continue;
                }
                let k = self.set_locked(l, &mut fx, key.as_bytes(), hash, status)?;
                let tie = slots[k].tie();
                if tie & LINK == link {
                    continue;
                }
                if let Some(old) = (tie & LINK).checked_sub(1) {
                    // A key string two exports share (a version with `/`): it moves here.
                    self.untie(l, &mut fx, k, old as usize);
                }
                let tie = slots[k].tie();
                slots[k].set_tie(tie | link);
                let serving = slots[k].live_status() == Some(ServingStatus::Serving);
                slots[b]
                    .set_exports(slots[b].exports() + 1 + if serving { SERVING_ONE } else { 0 });
            }
            self.derive_bare(l, &mut fx, b);
            Ok(if fx.changed {
                SetOutcome::Changed
            } else {
                SetOutcome::Unchanged
            })
        });
        self.finish_effects(&mut fx);
        outcome
    }

    /// Takes the key at `key` out of interface `bare`'s count.
    fn untie(&self, l: &mut Locked<'_>, fx: &mut Effects, key: usize, bare: usize) {
        let slots = l.parts.slots;
        let serving = slots[key].live_status() == Some(ServingStatus::Serving);
        slots[key].set_tie(slots[key].tie() & !LINK);
        let b = &slots[bare];
        b.set_exports(b.exports() - 1 - if serving { SERVING_ONE } else { 0 });
        self.derive_bare(l, fx, bare);
    }

    /// Ends an [`export`](Self::export): its service keys become `NOT_SERVING` (they stay
    /// registered, so a dubbo-go consumer's `Watch` hears `NOT_SERVING`, its "provider is
    /// closing" signal, rather than `SERVICE_UNKNOWN`) and leave the interface's count; the
    /// bare interface stays `SERVING` while another export of it is `SERVING`, and is
    /// `NOT_SERVING` (still registered) once none is. [`clear`](Self::clear) forgets the
    /// names afterwards if wanted. Works while shut down (the drain step comes first; unexport
    /// on stop comes after).
    ///
    /// # Returns
    ///
    /// `true` if the interface had this export.
    ///
    /// # Errors
    ///
    /// As [`export`](Self::export): [`Error::InvalidName`], [`Error::NameTooLong`].
    ///
    /// # Panics
    ///
    /// As [`set`](Self::set), only if a watcher's waker panics.
    ///
    /// ```
    /// use dubbo_health_core::{FixedRegistry, ServingStatus::*};
    ///
    /// let registry = FixedRegistry::<16>::new();
    /// let greeter = "org.apache.dubbogo.samples.api.Greeter";
    /// registry.export(greeter, "", "", Serving).unwrap();
    /// assert_eq!(registry.get(greeter), Some(Serving));
    /// assert_eq!(registry.unexport(greeter, "", ""), Ok(true));
    /// assert_eq!(registry.get(greeter), Some(NotServing));
    /// assert_eq!(registry.unexport(greeter, "", ""), Ok(false));
    /// ```
    pub fn unexport(&self, interface: &str, group: &str, version: &str) -> Result<bool, Error> {
        let keys = export_keys(interface, group, version)?;
        let bare = interface.as_bytes();
        let bare_hash = self.hash(bare);
        let key_hashes = keys.each(|k| self.hash(k.as_bytes()));
        let mut fx = Effects::new();
        let found = self.locked(|l| {
            let slots = l.parts.slots;
            let Some((_, b)) = l.index().find_entry_locked(bare, bare_hash) else {
                return false;
            };
            let mut found = false;
            for (key, hash) in keys.iter().zip(key_hashes) {
                if key.as_bytes() == bare {
                    let (tie, exports) = (slots[b].tie(), slots[b].exports());
                    if tie & SELF != 0 {
                        let serving = if tie & SELF_SERVING != 0 {
                            SERVING_ONE
                        } else {
                            0
                        };
                        slots[b].set_tie(tie & !(SELF | SELF_SERVING));
                        slots[b].set_exports(exports - 1 - serving);
                        found = true;
                    }
                    continue;
                }
                let Some((_, k)) = l.index().find_locked(key.as_bytes(), hash) else {
                    continue;
                };
                if slots[k].tie() & LINK != b as u32 + 1 {
                    continue;
                }
                self.change(l, &mut fx, k, ServingStatus::NotServing);
                self.untie(l, &mut fx, k, b);
                found = true;
            }
            if found {
                self.derive_bare(l, &mut fx, b);
                self.drop_if_untied(l, b, bare, bare_hash);
            }
            found
        });
        self.finish_effects(&mut fx);
        Ok(found)
    }

    /// Makes `""` depend on `name` (hyperium/tonic#1930): from now on `""` is `SERVING`
    /// exactly when every required name is registered and `SERVING`, and `NOT_SERVING`
    /// otherwise; its watchers see each change of that (no repeats, latest wins).
    ///
    /// `""` is derived every time a required name changes, is registered or cleared, and
    /// when a name is required or no longer required. In between, a [`set`](Self::set) of
    /// `""` stands until the next such change; [`shutdown`](Self::shutdown) makes `""`
    /// `NOT_SERVING` like every name, and [`resume`](Self::resume) makes it `SERVING` only if
    /// every required name is registered. A [`clear`](Self::clear)ed `""` stays unregistered
    /// (derivation sets it only while it is registered), and clearing a required name makes
    /// `""` `NOT_SERVING`. A required name that is not registered takes one slot of the
    /// registry's capacity, invisible to `get`, `List` and `len`. Once nothing is required,
    /// `""` keeps its last status.
    ///
    /// # Returns
    ///
    /// `true` if the name was not required before.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for `""` itself; [`Error::NameTooLong`]; [`Error::Full`] when
    /// an unregistered name finds no free slot.
    ///
    /// # Panics
    ///
    /// As [`set`](Self::set), only if a watcher's waker panics.
    ///
    /// ```
    /// use dubbo_health_core::{FixedRegistry, ServingStatus::*};
    ///
    /// let registry = FixedRegistry::<16>::new();
    /// registry.require("db").unwrap();
    /// assert_eq!(registry.get(""), Some(NotServing)); // "db" is not registered
    /// assert_eq!(registry.get("db"), None);
    /// registry.set("db", Serving).unwrap();
    /// assert_eq!(registry.get(""), Some(Serving));
    /// registry.set("db", NotServing).unwrap();
    /// assert_eq!(registry.get(""), Some(NotServing));
    /// ```
    pub fn require(&self, name: &str) -> Result<bool, Error> {
        check_len(name)?;
        if name.is_empty() {
            return Err(Error::InvalidName);
        }
        let bytes = name.as_bytes();
        let hash = self.hash(bytes);
        let mut fx = Effects::new();
        let added = self.locked(|l| {
            let slots = l.parts.slots;
            let slot = match l.index().find_entry_locked(bytes, hash) {
                Some((_, slot)) => slot,
                None => {
                    let slot = l.alloc()?;
                    slots[slot].fill_hidden(bytes, hash.hi());
                    l.index().insert(slot as u32, hash);
                    l.header.placeholders += 1;
                    slot
                }
            };
            let tie = slots[slot].tie();
            if tie & REQUIRED != 0 {
                return Ok(false);
            }
            slots[slot].set_tie(tie | REQUIRED);
            l.header.required += 1;
            if slots[slot].live_status() == Some(ServingStatus::Serving) {
                l.header.required_serving += 1;
            }
            self.derive_root(l, &mut fx);
            Ok(true)
        });
        self.finish_effects(&mut fx);
        added
    }

    /// Undoes [`require`](Self::require): `""` no longer depends on `name` (and is derived
    /// from the others, if any remain; with none left it keeps its status).
    ///
    /// # Returns
    ///
    /// `true` if the name was required.
    ///
    /// # Errors
    ///
    /// [`Error::NameTooLong`].
    ///
    /// ```
    /// use dubbo_health_core::{FixedRegistry, ServingStatus::*};
    ///
    /// let registry = FixedRegistry::<16>::new();
    /// registry.set("cache", Serving).unwrap();
    /// registry.require("cache").unwrap();
    /// registry.require("db").unwrap();
    /// assert_eq!(registry.get(""), Some(NotServing));
    /// assert_eq!(registry.unrequire("db"), Ok(true));
    /// assert_eq!(registry.get(""), Some(Serving));
    /// assert_eq!(registry.unrequire("db"), Ok(false));
    /// ```
    pub fn unrequire(&self, name: &str) -> Result<bool, Error> {
        check_len(name)?;
        let bytes = name.as_bytes();
        let hash = self.hash(bytes);
        let mut fx = Effects::new();
        let removed = self.locked(|l| {
            let slots = l.parts.slots;
            let Some((_, slot)) = l.index().find_entry_locked(bytes, hash) else {
                return false;
            };
            let tie = slots[slot].tie();
            if tie & REQUIRED == 0 {
                return false;
            }
            slots[slot].set_tie(tie & !REQUIRED);
            l.header.required -= 1;
            if slots[slot].live_status() == Some(ServingStatus::Serving) {
                l.header.required_serving -= 1;
            }
            self.drop_if_untied(l, slot, bytes, hash);
            self.derive_root(l, &mut fx);
            true
        });
        self.finish_effects(&mut fx);
        Ok(removed)
    }

    /// Whether `""` requires `name` (see [`require`](Self::require)).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// let registry = FixedRegistry::<8>::new();
    /// registry.require("db").unwrap();
    /// assert!(registry.is_required("db"));
    /// assert!(!registry.is_required("cache"));
    /// ```
    #[must_use]
    pub fn is_required(&self, name: &str) -> bool {
        if check_len(name).is_err() {
            return false;
        }
        let bytes = name.as_bytes();
        let hash = self.hash(bytes);
        self.locked(|l| {
            l.index()
                .find_entry_locked(bytes, hash)
                .is_some_and(|(_, slot)| l.parts.slots[slot].tie() & REQUIRED != 0)
        })
    }
}

/// The distinct service keys an export registers: dubbo-go's form, then Dubbo Java's when
/// it differs.
struct ExportKeys {
    keys: [crate::ServiceKey; 2],
    n: usize,
}

impl ExportKeys {
    fn iter(&self) -> impl Iterator<Item = &crate::ServiceKey> {
        self.keys[..self.n].iter()
    }

    fn each<T: Copy + Default>(&self, f: impl Fn(&crate::ServiceKey) -> T) -> [T; 2] {
        let mut out = [T::default(); 2];
        for (o, k) in out.iter_mut().zip(self.iter()) {
            *o = f(k);
        }
        out
    }
}

fn export_keys(interface: &str, group: &str, version: &str) -> Result<ExportKeys, Error> {
    check_len(interface)?;
    if !valid_interface(interface) {
        return Err(Error::InvalidName);
    }
    let go = service_key(interface, group, version, KeyForm::DubboGo)?;
    let java = service_key(interface, group, version, KeyForm::DubboJava)?;
    let n = if go == java { 1 } else { 2 };
    Ok(ExportKeys {
        keys: [go, java],
        n,
    })
}
