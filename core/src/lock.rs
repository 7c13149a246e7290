//! The writers' lock.
//!
//! Readers (`get`, `check`, iteration) never take it: they read each slot through a sequence
//! lock. Writers (`set`, `clear`, `shutdown`, …) and watchers that park or unpark take this
//! short spin lock. A spin lock is the only lock `no_std` without an OS offers; it is fine here
//! because every critical section is bounded (one slot write, or at most [`WAKE_BATCH`] list
//! operations) and never calls out to user code: wakers are woken after it is released.
//! With the `std` feature a waiting thread yields to the OS scheduler after a short spin, so a
//! preempted holder does not burn a whole time slice of the waiters.

#[cfg(not(loom))]
use crate::loom::spin_loop;
#[cfg(not(loom))]
use {
    crate::loom::{AtomicBool, Ordering},
    core::cell::UnsafeCell,
};

/// How many wakers a writer moves out of a wait list per lock acquisition.
#[cfg(not(loom))]
pub(crate) const WAKE_BATCH: usize = 16;
/// Small under loom so the models go through several lock rounds.
#[cfg(loom)]
pub(crate) const WAKE_BATCH: usize = 2;

/// A test-and-test-and-set spin lock guarding `T`, entered only through [`SpinLock::with`].
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// Safety: the lock hands out `&mut T` to one closure at a time, so sharing the lock is as safe
// as sending `T` between threads.
#[cfg(not(loom))]
unsafe impl<T: Send> Sync for SpinLock<T> {}
// Safety: as above; the lock owns its `T`.
#[cfg(not(loom))]
unsafe impl<T: Send> Send for SpinLock<T> {}

#[cfg(not(loom))]
impl<T> SpinLock<T> {
    pub(crate) const fn new(data: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            data: UnsafeCell::new(data),
        }
    }

    /// Runs `f` with exclusive access to the data. No guard exists, so none can outlive `f`.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.acquire();
        struct Release<'a>(&'a AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _release = Release(&self.locked);
        // Safety: `acquire` returned, so this thread holds the lock until `_release` drops,
        // and no other `&mut T` exists meanwhile.
        f(unsafe { &mut *self.data.get() })
    }

    #[inline]
    fn acquire(&self) {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.acquire_slow();
    }

    #[cold]
    fn acquire_slow(&self) {
        let mut spins: u32 = 0;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                spins = spins.wrapping_add(1);
                backoff(spins);
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

/// Under loom the lock is loom's model-checked mutex: the models check the registry's use of
/// the lock, and a textbook test-and-test-and-set lock is not what they are for.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct SpinLock<T> {
    data: loom::sync::Mutex<T>,
}

#[cfg(loom)]
impl<T> SpinLock<T> {
    pub(crate) fn new(data: T) -> Self {
        Self {
            data: loom::sync::Mutex::new(data),
        }
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.data.lock().unwrap())
    }
}

#[inline]
pub(crate) fn backoff(spins: u32) {
    #[cfg(all(feature = "std", not(loom)))]
    if spins > 64 {
        std::thread::yield_now();
        return;
    }
    let _ = spins;
    // loom must be told that this thread waits for another, or it explores the spin forever.
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    spin_loop();
}
