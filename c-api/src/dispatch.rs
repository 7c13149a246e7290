//! The callback thread: where `dh_watch_set_callback` callbacks run.
//!
//! # Design
//!
//! One thread per process, named `dh-callbacks`, started by the first
//! `dh_watch_set_callback` that installs a callback, runs every watch's callback, one at a
//! time, and lives as long as the process. A watch's bridge rings its [`Slot`] from the
//! thread that made the change (a `dh_set` caller, a server thread): the ring only pushes
//! the slot onto an unbounded queue (once: a slot already queued is not queued again) and
//! returns, so `dh_set` never waits for a callback, and no user code ever runs on a
//! `dh_set` caller's thread or while the library holds a lock. The callback thread takes a
//! slot, clears its "queued" mark (so a change made from now on queues it again), and calls
//! the callback, which then drains the watch with `dh_watch_try_next`.
//!
//! One thread rather than one per registry or per watch: a host has one registry, and a
//! callback that only schedules work (what the header asks for) is short. The price is
//! that a slow callback delays the other watches' callbacks (never a `dh_set`).
//!
//! Removing or replacing a callback (`dh_watch_set_callback`, `dh_watch_free`) from any
//! other thread waits until a run of the old one on the callback thread has returned, so
//! the caller may free its `userdata` next. On the callback thread itself nothing waits:
//! only one callback runs at a time, so the one that is running is the caller itself, and
//! it cannot run again once it returns.

use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;

/// A C callback and its `userdata`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Callback {
    pub(crate) func: unsafe extern "C" fn(userdata: *mut c_void),
    pub(crate) userdata: *mut c_void,
}

// Safety: the caller of `dh_watch_set_callback` promises that the callback may be called
// with `userdata` from any thread (the header says it runs on the callback thread).
unsafe impl Send for Callback {}

/// One watch's callback, as the callback thread sees it.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    /// Signalled when a run ends.
    idle: Condvar,
    /// In the queue (or about to be): a ring while set queues nothing more.
    queued: AtomicBool,
    /// A callback is installed: rings are worth queueing.
    installed: AtomicBool,
}

#[derive(Debug, Default)]
struct SlotState {
    callback: Option<Callback>,
    /// The callback thread is in this slot's callback right now.
    running: bool,
}

static QUEUE: OnceLock<async_channel::Sender<Arc<Slot>>> = OnceLock::new();
static STARTING: Mutex<()> = Mutex::new(());

thread_local! {
    static ON_CALLBACK_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single assignment: a poisoned lock is consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the callback thread unless it runs already.
fn start() -> std::io::Result<()> {
    if QUEUE.get().is_some() {
        return Ok(());
    }
    let _starting = lock(&STARTING);
    if QUEUE.get().is_some() {
        return Ok(());
    }
    let (tx, rx) = async_channel::unbounded::<Arc<Slot>>();
    thread::Builder::new()
        .name("dh-callbacks".into())
        .spawn(move || {
            ON_CALLBACK_THREAD.with(|on| on.set(true));
            while let Ok(slot) = rx.recv_blocking() {
                // `run` calls C code, which cannot unwind; this only guards our own code.
                let _ = catch_unwind(AssertUnwindSafe(|| slot.run()));
            }
        })?;
    let _ = QUEUE.set(tx);
    Ok(())
}

/// Whether the calling thread is the callback thread.
pub(crate) fn on_callback_thread() -> bool {
    ON_CALLBACK_THREAD.with(Cell::get)
}

// === impl Slot ===

impl Slot {
    /// Installs `callback` (or removes it, for `None`). When this returns the previous
    /// callback is not running, unless this is called from the callback thread (then the
    /// running callback is the caller). A new callback is queued to run at once.
    ///
    /// # Errors
    ///
    /// The callback thread could not be started.
    pub(crate) fn install(self: &Arc<Self>, callback: Option<Callback>) -> std::io::Result<()> {
        if callback.is_some() {
            start()?;
        }
        let mut state = lock(&self.state);
        state.callback = callback;
        self.installed.store(callback.is_some(), SeqCst);
        if !on_callback_thread() {
            while state.running {
                state = self
                    .idle
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        drop(state);
        if callback.is_some() {
            self.ring();
        }
        Ok(())
    }

    /// Queues the callback to run on the callback thread, unless it is queued already or
    /// none is installed. Never blocks and never runs user code: what the watch's notify
    /// hook calls on a `dh_set` caller's thread.
    pub(crate) fn ring(self: &Arc<Self>) {
        if !self.installed.load(SeqCst) || self.queued.swap(true, SeqCst) {
            return;
        }
        match QUEUE.get() {
            // Unbounded, and its receiver lives as long as the process: never full, never
            // closed, never waits.
            Some(queue) => {
                let _ = queue.try_send(Arc::clone(self));
            }
            None => self.queued.store(false, SeqCst),
        }
    }

    /// Runs the callback once, on the callback thread.
    fn run(&self) {
        // From here on a change queues the slot again: nothing is missed.
        self.queued.store(false, SeqCst);
        let callback = {
            let mut state = lock(&self.state);
            let Some(callback) = state.callback else {
                return;
            };
            state.running = true;
            callback
        };
        // Safety: the installer promised `func` may be called with `userdata` from any
        // thread until it is removed, and removal waits for this call to return.
        unsafe { (callback.func)(callback.userdata) };
        lock(&self.state).running = false;
        self.idle.notify_all();
    }
}
