//! Waking watchers: which nodes a writer wakes, in bounded lock rounds, and how a panicking
//! waker is kept from stopping the others.
//!
//! A writer bumps the registry's epoch under the lock (the *target*) and wakes exactly the
//! nodes of its scope linked before that bump. Each lock round moves at most
//! [`WAKE_BATCH`] wakers into a [`WakeBatch`] on the writer's stack; they are woken after the
//! lock is released. The first round runs inside the writer's own critical section, so a
//! `set` with a few watchers takes the lock once.
//!
//! A registration walks its bucket, which may also hold watchers of other names. A round
//! visits at most [`SCAN_BATCH`] of them; to resume where it stopped, the writer links a
//! *marker* node of its own (on its stack, skipped by everyone else) into the bucket before
//! the next unvisited node, and starts the next round there. So no critical section is long,
//! and each node of the bucket is visited once per registration.

use core::{cell::UnsafeCell, mem::MaybeUninit, ptr::NonNull, task::Waker};

use crate::{
    list::{filter_bit, Link, List, Node, Primary},
    lock::WAKE_BATCH,
    locked::Locked,
    Registry, Storage,
};

/// Slot lists an all-lists round, or bucket nodes a registration round, looks at before it
/// lets go of the lock.
#[cfg(not(loom))]
const SCAN_BATCH: usize = 256;
#[cfg(loom)]
const SCAN_BATCH: usize = 2;

/// Which nodes a writer wakes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scope {
    /// Slot `n`'s watchers (a status change or a clear).
    Waiters(u32),
    /// The watchers in `bucket` of names with hash `hash` (a registration).
    Bucket { bucket: u32, hash: u32 },
    /// Every slot's watchers from slot `next` on, then, if `unknown`, every unregistered
    /// name's watchers (`shutdown`/`resume`; `end_watches`).
    Everything { next: u32, unknown: bool },
}

/// A writer's wake-up round in progress.
#[derive(Debug)]
pub(crate) struct Job {
    scope: Scope,
    /// Nodes linked at an epoch below this are woken.
    target: u64,
    /// Nodes may be left to wake.
    more: bool,
    /// A bucket walk: the filter bits of the other names' nodes visited so far.
    others: u64,
    /// A bucket walk: the writer's marker is linked where the next round resumes.
    resume: bool,
}

/// Wakers moved out of the lists under the lock and woken after it is released.
///
/// The first `len` entries of `wakers` are initialised; the rest are not (so making and
/// dropping an empty batch costs nothing per entry).
pub(crate) struct WakeBatch {
    wakers: [MaybeUninit<Waker>; WAKE_BATCH],
    len: usize,
}

impl WakeBatch {
    pub(crate) const fn new() -> Self {
        Self {
            wakers: [const { MaybeUninit::uninit() }; WAKE_BATCH],
            len: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.len == WAKE_BATCH
    }

    fn push(&mut self, waker: Option<Waker>) {
        // A node without a waker is a watch between two lock rounds of its own poll; taking
        // it out of the list is its wake-up (its poll re-reads the status).
        if let Some(waker) = waker {
            self.wakers[self.len].write(waker);
            self.len += 1;
        }
    }

    /// Wakes every waker in the batch. With `std`, a waker that panics is caught, the rest are
    /// still woken, and the first panic is kept in `panic` for the caller to resume; without
    /// `std`, the panic unwinds and [`Finish`]'s drop guard wakes the rest.
    fn wake_all(&mut self, panic: &mut Panic) {
        while self.len > 0 {
            self.len -= 1;
            // Safety: entries below the old `len` are initialised; lowering `len` first hands
            // this one over, so it is read (and consumed) exactly once, even if `wake` panics.
            let waker = unsafe { self.wakers[self.len].assume_init_read() };
            wake(waker, panic);
        }
    }
}

impl Drop for WakeBatch {
    fn drop(&mut self) {
        // Never lose a wake-up: a batch is normally empty when dropped.
        self.wake_all(&mut Panic::default());
    }
}

#[cfg(feature = "std")]
type Panic = Option<std::boxed::Box<dyn core::any::Any + Send>>;
#[cfg(not(feature = "std"))]
type Panic = ();

#[cfg(feature = "std")]
fn wake(waker: Waker, panic: &mut Panic) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
    if let Err(payload) = result {
        // Keep the first; later payloads are dropped.
        panic.get_or_insert(payload);
    }
}

#[cfg(not(feature = "std"))]
fn wake(waker: Waker, _: &mut Panic) {
    waker.wake();
}

impl Locked<'_> {
    /// Starts waking `scope` if anyone may be parked there: bumps the epoch (the target) and
    /// fills `batch` with the first round. `None` when there is nobody to wake.
    pub(crate) fn start(&mut self, scope: Scope, batch: &mut WakeBatch) -> Option<Job> {
        let anyone = match scope {
            Scope::Waiters(slot) => !self.waiters(slot as usize).is_empty(),
            Scope::Bucket { bucket, hash } => {
                self.bucket(bucket as usize).filter & filter_bit(hash) != 0
            }
            Scope::Everything { .. } => true,
        };
        if !anyone {
            return None;
        }
        self.header.epoch += 1;
        let mut job = Job {
            scope,
            target: self.header.epoch,
            more: true,
            others: 0,
            resume: false,
        };
        // No marker yet (it lives in `Finish`): a first round that stops early makes the
        // second start over from the bucket's head.
        job.more = self.collect(&mut job, batch, None);
        Some(job)
    }

    /// One lock round: moves into `batch` the wakers of up to [`WAKE_BATCH`] nodes of the
    /// job's scope linked before its target, unlinking them. Returns whether more may remain.
    fn collect(
        &mut self,
        job: &mut Job,
        batch: &mut WakeBatch,
        marker: Option<NonNull<Node>>,
    ) -> bool {
        let target = job.target;
        match job.scope {
            Scope::Waiters(slot) => self.collect_list(slot as usize, target, batch),
            Scope::Bucket { bucket, hash } => {
                self.collect_bucket(bucket as usize, hash, job, batch, marker)
            }
            Scope::Everything { mut next, unknown } => {
                let high = self.high_water();
                let mut scanned = 0;
                let more = loop {
                    if next as usize >= high {
                        break unknown && self.collect_unknown(target, batch);
                    }
                    if self.collect_list(next as usize, target, batch) {
                        break true;
                    }
                    next += 1;
                    scanned += 1;
                    if scanned == SCAN_BATCH {
                        break true;
                    }
                };
                job.scope = Scope::Everything { next, unknown };
                more
            }
        }
    }

    /// Pops nodes older than `target` from the head of slot `slot`'s list until the batch is
    /// full (`true`: more may remain) or none is left (`false`).
    fn collect_list(&mut self, slot: usize, target: u64, batch: &mut WakeBatch) -> bool {
        loop {
            let Some(node) = self.waiters(slot).head() else {
                return false;
            };
            if !older(node, target) {
                return false;
            }
            if batch.is_full() {
                return true;
            }
            // Safety: `node` is the head of slot `slot`'s list, so valid and linked there.
            batch.push(unsafe { self.detach(node) });
        }
    }

    /// Walks the bucket (from the writer's marker, if a previous round left one), popping the
    /// nodes of `hash` older than the target and skipping the others.
    fn collect_bucket(
        &mut self,
        bucket: usize,
        hash: u32,
        job: &mut Job,
        batch: &mut WakeBatch,
        marker: Option<NonNull<Node>>,
    ) -> bool {
        let mut cur = match marker {
            Some(marker) if job.resume => {
                job.resume = false;
                // Safety: our marker is linked in this bucket (`resume`), under the lock.
                unsafe {
                    let next = List::<Primary>::next(marker);
                    self.bucket(bucket).list.remove(marker);
                    next
                }
            }
            _ => self.bucket(bucket).list.head(),
        };
        let mut scanned = 0;
        while let Some(node) = cur {
            // Safety: `node` is a member of this bucket (reached from its head or from our
            // marker, under the lock); place expressions only.
            let (next, is_marker, node_hash) = unsafe {
                let n = node.as_ptr();
                (List::<Primary>::next(node), (*n).marker, (*n).hash)
            };
            if is_marker {
                // Another writer's place in its own walk.
                cur = next;
                continue;
            }
            if !older(node, job.target) {
                // Every node from here on is newer: done (the filter keeps its stale bits).
                return false;
            }
            if node_hash == hash {
                if batch.is_full() {
                    return self.pause(bucket, job, marker, node);
                }
                // Safety: as above.
                batch.push(unsafe { self.detach(node) });
            } else {
                job.others |= filter_bit(node_hash);
            }
            cur = next;
            scanned += 1;
            if scanned == SCAN_BATCH {
                if let Some(next) = cur {
                    return self.pause(bucket, job, marker, next);
                }
            }
        }
        // Walked to the end: every node left is one of the others seen.
        self.bucket(bucket).filter = job.others;
        false
    }

    /// Ends a bucket round before `at`, linking the marker there (when there is one) so the
    /// next round resumes at `at`. Returns `true`: more may remain.
    fn pause(
        &mut self,
        bucket: usize,
        job: &mut Job,
        marker: Option<NonNull<Node>>,
        at: NonNull<Node>,
    ) -> bool {
        if let Some(marker) = marker {
            // Safety: the marker is the writer's own, valid, pinned for the whole job and in
            // no list (`resume` is false here); `at` is a member of this bucket.
            unsafe {
                let m = marker.as_ptr();
                (*m).marker = true;
                (*m).epoch = 0;
                (*m).linked = Link::Bucket(bucket as u32);
                self.bucket(bucket).list.insert_before(at, marker);
            }
            job.resume = true;
        }
        true
    }

    /// Pops nodes older than `target` from the head of the unknown-names list.
    fn collect_unknown(&mut self, target: u64, batch: &mut WakeBatch) -> bool {
        loop {
            let Some(node) = self.header.unknown.head() else {
                return false;
            };
            if !older(node, target) {
                return false;
            }
            if batch.is_full() {
                return true;
            }
            // Safety: `node` heads the unknown list, so it is valid and in a bucket.
            debug_assert!(matches!(
                unsafe { (*node.as_ptr()).linked },
                Link::Bucket(_)
            ));
            // Safety: as above.
            batch.push(unsafe { self.detach(node) });
        }
    }
}

/// `node` was linked before the bump to `target`.
#[inline]
fn older(node: NonNull<Node>, target: u64) -> bool {
    // Safety: callers pass list members, valid under the lock they hold; a place expression.
    unsafe { (*node.as_ptr()).epoch < target }
}

impl<S: Storage> Registry<S> {
    /// Wakes `batch`, then runs the job's remaining lock rounds, each woken after the lock is
    /// released.
    ///
    /// # Panics
    ///
    /// If a waker panics, every other node of the job is still woken, and then the first
    /// panic is resumed (with `std`; without it, the drop guard finishes the job while the
    /// panic unwinds).
    pub(crate) fn finish(&self, job: Job, batch: &mut WakeBatch) {
        if !job.more {
            // Everything fitted in the first round: wake it, no marker or drop guard needed
            // (without `std`, a panicking wake unwinds through the caller, whose `WakeBatch`
            // drop wakes the rest).
            let mut panic = Panic::default();
            batch.wake_all(&mut panic);
            #[cfg(feature = "std")]
            if let Some(payload) = panic {
                std::panic::resume_unwind(payload);
            }
            return;
        }
        // The marker of a bucket walk: declared first, so it outlives `finish`, and only ever
        // reached through this shared reference (and, while linked, through the bucket under
        // the lock), so other writers may write it.
        let marker = UnsafeCell::new(Node::default());
        let mut finish = Finish {
            registry: self,
            job,
            batch,
            marker: &marker,
            panic: Panic::default(),
            done: false,
        };
        finish.run();
        finish.done = true;
        #[cfg(feature = "std")]
        if let Some(payload) = finish.panic.take() {
            std::panic::resume_unwind(payload);
        }
    }
}

/// A job being finished; dropping it mid-way (a waker panicked without `std`) finishes it.
struct Finish<'r, S: Storage> {
    registry: &'r Registry<S>,
    job: Job,
    batch: &'r mut WakeBatch,
    marker: &'r UnsafeCell<Node>,
    panic: Panic,
    /// `run` returned: nothing is left for the drop guard.
    done: bool,
}

impl<S: Storage> Finish<'_, S> {
    fn run(&mut self) {
        let marker = NonNull::new(self.marker.get());
        loop {
            self.batch.wake_all(&mut self.panic);
            if !self.job.more {
                return;
            }
            let (job, batch) = (&mut self.job, &mut *self.batch);
            job.more = self.registry.locked(|l| l.collect(job, batch, marker));
        }
    }
}

impl<S: Storage> Drop for Finish<'_, S> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // A panic unwound out of `run` (no `std`): the other watchers still hear the change.
        // A second panic while unwinding aborts, as Rust does.
        self.run();
        // `run` ends with the marker unlinked (a round that returns "no more" has taken it
        // out); never leave it in a bucket whatever happened.
        if self.job.resume {
            if let (Scope::Bucket { bucket, .. }, Some(marker)) =
                (self.job.scope, NonNull::new(self.marker.get()))
            {
                // Safety: the marker is linked in this bucket (`resume`), under the lock.
                self.registry
                    .locked(|l| unsafe { l.bucket(bucket as usize).list.remove(marker) });
            }
        }
    }
}
