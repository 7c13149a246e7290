//! Watches: `dh_watch_new`, blocking `dh_watch_next`, pollable `dh_watch_fd` /
//! `dh_watch_try_next`, `dh_watch_set_callback`, `dh_watch_close`, `dh_watch_free`.
//!
//! ```
//! use dubbo_health::*;
//!
//! let (mut reg, mut w, mut status) = (std::ptr::null_mut(), std::ptr::null_mut(), -1);
//! let name = b"org.apache.Foo";
//! unsafe {
//!     dh_registry_new(&mut reg);
//!     dh_watch_new(reg, name.as_ptr(), name.len(), &mut w);
//!     assert_eq!(dh_watch_next(w, 1000, &mut status), DH_OK);
//!     assert_eq!(status, DH_STATUS_SERVICE_UNKNOWN); // not registered yet
//!     dh_set(reg, name.as_ptr(), name.len(), DH_STATUS_SERVING, std::ptr::null_mut());
//!     assert_eq!(dh_watch_next(w, 1000, &mut status), DH_OK);
//!     assert_eq!(status, DH_STATUS_SERVING);
//!     assert_eq!(dh_watch_try_next(w, &mut status), DH_WOULD_BLOCK);
//!     dh_watch_free(w);
//!     dh_registry_free(reg);
//! }
//! ```
//!
//! # Implementation Notes
//!
//! A `dh_watch` is a core [`Bridge`] over a core [`Watch`] (of an `Arc` of the registry):
//! the bridge's waker re-polls the stream on the thread that made the change and leaves the
//! latest status in a channel of capacity one, which `dh_watch_next` (parked with a
//! timeout), `dh_watch_try_next` and `dh_watch_next_encoded` receive from. The bridge's
//! notify hook writes the eventfd (if `dh_watch_fd` made one) and queues the callback (if
//! one is installed) for the callback thread (see the `dispatch` module); it never runs
//! user code and never blocks, so `dh_set` returns at once whatever callbacks do.

use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use dubbo_health_core::bridge::{Bridge, RecvTimeoutError, TryRecvError};
use dubbo_health_core::{HeapRegistry, ServingStatus, Watch};

use crate::dispatch::{Callback, Slot};
use crate::error::{dh_result, Failure, DH_CLOSED, DH_TIMEOUT, DH_WOULD_BLOCK};
use crate::ffi::ArcCastable;
use crate::ffi::{check_out, name_in, write_out, BoxCastable, Castable};
use crate::registry::{dh_registry, HostRegistry};
use crate::status::{dh_status, status_to_c};

/// A watch on one name: the current status first, then one status per change (never two
/// equal in a row; under bursts the latest wins), until it ends.
///
/// Opaque; made by `dh_watch_new` or `dh_watch_from_request`, freed with `dh_watch_free`.
/// All functions on it are thread-safe; calls that take statuses out of it
/// (`dh_watch_next`, `dh_watch_try_next`, `dh_watch_next_encoded`) each take a different
/// status, so with several consumers each status goes to one of them.
#[derive(Debug)]
pub struct dh_watch {
    _private: [u8; 0],
}

/// What a `dh_watch` handle points to.
#[derive(Debug)]
pub(crate) struct WatchHandle {
    bridge: Bridge,
    ring: Arc<Ring>,
    /// A status taken from the bridge that a caller could not accept (its buffer was too
    /// small); handed out before the bridge is asked again.
    unread: Mutex<Option<ServingStatus>>,
}

impl Castable for dh_watch {
    type RustType = WatchHandle;
}

impl BoxCastable for dh_watch {}

/// What the bridge's notify hook rings: the eventfd and the callback.
#[derive(Debug, Default)]
struct Ring {
    /// The eventfd of `dh_watch_fd`, made on first use.
    fd: OnceLock<Fd>,
    callback: Arc<Slot>,
}

impl Ring {
    /// "Look again": on the thread that made the change; never blocks, no user code.
    fn ring(&self) {
        if let Some(fd) = self.fd.get() {
            fd.signal();
        }
        self.callback.ring();
    }
}

/// Called when a watch may have a new status. See `dh_watch_set_callback`.
pub type dh_watch_callback = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock leaves consistent data behind (every update is a
    // single assignment), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// === impl WatchHandle ===

impl WatchHandle {
    pub(crate) fn new(registry: Arc<HeapRegistry>, name: &str) -> Result<Self, Failure> {
        let watch = Watch::new(registry, Box::<str>::from(name))?;
        let ring = Arc::new(Ring::default());
        let hook = Arc::clone(&ring);
        Ok(Self {
            bridge: Bridge::with_notify(watch, move || hook.ring()),
            ring,
            unread: Mutex::new(None),
        })
    }

    /// Waits for the next status until `timeout` (None: forever).
    pub(crate) fn next_blocking(
        &self,
        timeout: Option<Duration>,
    ) -> Result<ServingStatus, Failure> {
        if let Some(status) = lock(&self.unread).take() {
            return Ok(status);
        }
        let next = match timeout {
            Some(timeout) => self.bridge.recv_timeout(timeout),
            None => self.bridge.recv_blocking().ok_or(RecvTimeoutError::Closed),
        };
        next.map_err(|e| match e {
            RecvTimeoutError::Timeout => {
                Failure::new(DH_TIMEOUT, "no new status before the timeout")
            }
            RecvTimeoutError::Closed => closed(),
        })
    }

    /// Takes the next status if one is ready, without blocking.
    pub(crate) fn try_next(&self) -> Result<ServingStatus, Failure> {
        if let Some(status) = lock(&self.unread).take() {
            return Ok(status);
        }
        if let Some(fd) = self.ring.fd.get() {
            // Drain first: a delivery after this point makes the fd readable again.
            fd.drain();
        }
        match self.bridge.try_recv() {
            Ok(status) => Ok(status),
            Err(TryRecvError::Closed) => {
                // An ended watch stays readable, so a level-triggered loop notices.
                if let Some(fd) = self.ring.fd.get() {
                    fd.signal();
                }
                Err(closed())
            }
            Err(TryRecvError::Empty) => Err(Failure::new(DH_WOULD_BLOCK, "no new status yet")),
        }
    }

    /// Gives a status back, to be returned by the next call that takes one.
    pub(crate) fn unread(&self, status: ServingStatus) {
        *lock(&self.unread) = Some(status);
    }

    pub(crate) fn close(&self) {
        lock(&self.unread).take();
        // Rings the fd and the callback once more.
        self.bridge.close();
    }
}

fn closed() -> Failure {
    Failure::new(DH_CLOSED, "the watch has ended")
}

pub(crate) fn timeout_from_ms(timeout_ms: i32) -> Option<Duration> {
    u64::try_from(timeout_ms).ok().map(Duration::from_millis)
}

// === eventfd ===

#[derive(Debug)]
struct Fd(c_int);

impl Fd {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn new() -> std::io::Result<Self> {
        // Starts at 1 (readable): the first status is ready at once.
        // Safety: plain system call, no pointers.
        let fd = unsafe { libc::eventfd(1, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(Self(fd))
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn new() -> std::io::Result<Self> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "eventfd needs Linux",
        ))
    }

    fn signal(&self) {
        let one: u64 = 1;
        // Safety: writes 8 bytes from a live u64 to our own fd. EAGAIN (counter full) still
        // leaves the fd readable, so errors can be ignored.
        let _ = unsafe { libc::write(self.0, (&one as *const u64).cast(), 8) };
    }

    fn drain(&self) {
        let mut value: u64 = 0;
        // Safety: reads 8 bytes into a live u64 from our own non-blocking fd.
        let _ = unsafe { libc::read(self.0, (&mut value as *mut u64).cast(), 8) };
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // Safety: we own this descriptor and close it once.
        unsafe { libc::close(self.0) };
    }
}

// === exported functions ===

/// Borrows the watch behind a handle.
///
/// # Safety
/// `w` is NULL or a live `dh_watch` handle.
pub(crate) unsafe fn watch_ref<'a>(w: *const dh_watch) -> Result<&'a WatchHandle, Failure> {
    // Safety: forwarded from the caller.
    unsafe { dh_watch::try_ref(w, "w") }
}

/// Opens a watch on `name` (registered or not; an unregistered name first reports
/// `DH_STATUS_SERVICE_UNKNOWN` and follows the name if it is registered later).
///
/// On success the caller owns `*w_out` and frees it with `dh_watch_free`. The watch keeps
/// the registry alive: `reg` may be freed before the watch.
///
/// # Errors
/// `DH_NULL_PARAMETER`, `DH_NAME_TOO_LONG`, `DH_INVALID_UTF8`: as for `dh_set`.
///
/// # Safety
/// `reg` is a live handle; `name` is readable for `name_len` bytes; `w_out` is valid for
/// a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_watch_new(
    reg: *const dh_registry,
    name: *const u8,
    name_len: usize,
    w_out: *mut *mut dh_watch,
) -> dh_result {
    ffi_fn! {
        check_out(w_out, "w_out")?;
        // Safety (all): forwarded from the caller.
        let host: &HostRegistry = unsafe { dh_registry::try_ref(reg, "reg") }?;
        let name = unsafe { name_in(name, name_len) }?;
        let watch = WatchHandle::new(Arc::clone(&host.registry), name)?;
        unsafe { write_out(w_out, "w_out", dh_watch::into_handle(watch)) }
    }
}

/// Blocks until the watch has a new status and writes it to `*status_out`.
///
/// The first call returns at once with the current status (or
/// `DH_STATUS_SERVICE_UNKNOWN`); later calls return one status per change.
/// `timeout_ms < 0` waits without limit; `0` does not wait.
///
/// # Errors
/// * `DH_TIMEOUT`: nothing new within `timeout_ms`.
/// * `DH_CLOSED`: the watch has ended (`dh_watch_close`, `dh_end_watches`, the last
///   registry handle freed, a server on the registry stopped). It stays ended.
/// * `DH_NULL_PARAMETER`: `w` or `status_out` is NULL.
///
/// # Safety
/// `w` is a live handle (not freed while this call runs); `status_out` is valid for a write.
///
/// Thread-safe. To wake a thread blocked here, call `dh_watch_close` from another thread.
#[no_mangle]
pub unsafe extern "C" fn dh_watch_next(
    w: *const dh_watch,
    timeout_ms: i32,
    status_out: *mut dh_status,
) -> dh_result {
    ffi_fn! {
        check_out(status_out, "status_out")?;
        // Safety (both): forwarded from the caller.
        let watch = unsafe { watch_ref(w) }?;
        let status = watch.next_blocking(timeout_from_ms(timeout_ms))?;
        unsafe { write_out(status_out, "status_out", status_to_c(status)) }
    }
}

/// Takes the next status if one is ready, without blocking.
///
/// Use it with `dh_watch_fd` or `dh_watch_set_callback`: call it until it returns
/// `DH_WOULD_BLOCK`, then wait for the fd or the callback.
///
/// # Errors
/// * `DH_WOULD_BLOCK`: no new status yet.
/// * `DH_CLOSED`: the watch has ended (see `dh_watch_next`).
/// * `DH_NULL_PARAMETER`: `w` or `status_out` is NULL.
///
/// # Safety
/// `w` is a live handle; `status_out` is valid for a write.
///
/// Thread-safe; never blocks (beyond a short internal lock).
#[no_mangle]
pub unsafe extern "C" fn dh_watch_try_next(
    w: *const dh_watch,
    status_out: *mut dh_status,
) -> dh_result {
    ffi_fn! {
        check_out(status_out, "status_out")?;
        // Safety (both): forwarded from the caller.
        let watch = unsafe { watch_ref(w) }?;
        let status = watch.try_next()?;
        unsafe { write_out(status_out, "status_out", status_to_c(status)) }
    }
}

/// Writes to `*fd_out` a file descriptor (a Linux eventfd) that is readable whenever the
/// watch may have a new status, for epoll/poll/libuv loops.
///
/// It starts readable. When it is readable, call `dh_watch_try_next` until it returns
/// `DH_WOULD_BLOCK` (it clears the fd's readiness itself; do not read the fd). After the
/// watch ends the fd becomes readable and `dh_watch_try_next` returns `DH_CLOSED`.
///
/// The watch owns the fd: the caller must not close it, and it is closed by
/// `dh_watch_free` (remove it from your poll set first; if another thread is delivering a
/// change to the watch at that moment, the fd is closed right after). Every call returns
/// the same fd.
///
/// # Errors
/// * `DH_UNSUPPORTED`: not on Linux (use `dh_watch_set_callback`).
/// * `DH_IO`: the eventfd could not be made (`dh_last_error_message` says why).
/// * `DH_NULL_PARAMETER`: `w` or `fd_out` is NULL.
///
/// # Safety
/// `w` is a live handle; `fd_out` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_watch_fd(w: *const dh_watch, fd_out: *mut c_int) -> dh_result {
    ffi_fn! {
        check_out(fd_out, "fd_out")?;
        // Safety: forwarded from the caller.
        let watch = unsafe { watch_ref(w) }?;
        let fd = match watch.ring.fd.get() {
            Some(fd) => fd.0,
            None => {
                let made = Fd::new().map_err(|e| {
                    let code = if e.kind() == std::io::ErrorKind::Unsupported {
                        crate::error::DH_UNSUPPORTED
                    } else {
                        crate::error::DH_IO
                    };
                    Failure::new(code, format!("cannot make an eventfd: {e}"))
                })?;
                // A racing call may have won: then `made` is dropped (closed) and theirs used.
                let _ = watch.ring.fd.set(made);
                watch.ring.fd.get().map_or(-1, |fd| fd.0)
            }
        };
        // Safety: checked non-NULL; valid for writes by the caller's promise.
        unsafe { write_out(fd_out, "fd_out", fd) }
    }
}

/// Installs `callback`, called with `userdata` whenever the watch may have a new status;
/// NULL removes it. Typically the callback takes statuses with `dh_watch_try_next` until
/// `DH_WOULD_BLOCK`, or schedules that on the host's own loop.
///
/// Callbacks run on the library's callback thread: one thread per process, started by the
/// first call that installs a callback, that runs the callbacks of every watch one at a
/// time. Never on the thread that called `dh_set` (or any other `dh_` function), and never
/// while the library holds a lock: `dh_set` only queues the callback and returns at once,
/// whatever callbacks do. So keep callbacks short and non-blocking: a slow one delays the
/// callbacks of other watches (never a `dh_set`), and one that waits for another
/// callback to run waits forever.
///
/// Once installed, the callback runs soon (the first status is ready at once), then after
/// each change (under a burst, once for several), and once more when the watch ends
/// (`dh_watch_close`, `dh_end_watches`, the last registry handle freed). It never runs
/// twice at the same time.
///
/// Inside a callback you may call any `dh_` function on any handle: `dh_watch_try_next`,
/// `dh_set` of any name (one another callback watches included), `dh_watch_set_callback`
/// and `dh_watch_free` on this watch or another. A change the callback causes on its own
/// watch makes it run once more after it returns, never recursively. Avoid blocking calls
/// there (`dh_watch_next` with a long timeout, `dh_server_stop`): they hold up every
/// callback.
///
/// When this returns, the previous callback (if any) is not running and will not run again,
/// so its `userdata` may be freed; called from that callback itself, it returns at once
/// (the callback cannot run again after it returns). Do not hold a lock here that your
/// callback takes: this may wait for a running callback.
///
/// # Errors
/// * `DH_NULL_PARAMETER`: `w` is NULL.
/// * `DH_IO`: the callback thread could not be started (`dh_last_error_message` says why).
///
/// # Safety
/// `w` is a live handle; `callback` is safe to call with `userdata` on another thread (the
/// callback thread) until it is removed, and does not unwind (no C++ exception may leave
/// it).
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_watch_set_callback(
    w: *const dh_watch,
    callback: dh_watch_callback,
    userdata: *mut c_void,
) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        let watch = unsafe { watch_ref(w) }?;
        let installed = callback.map(|func| Callback { func, userdata });
        watch.ring.callback.install(installed).map_err(|e| {
            Failure::new(crate::error::DH_IO, format!("cannot start the callback thread: {e}"))
        })
    }
}

/// Ends the watch: a blocked `dh_watch_next` returns `DH_CLOSED`, as do all later calls
/// that take statuses; the callback (if any) and the fd are signalled once more. Closing
/// twice is fine. The handle must still be freed with `dh_watch_free`.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `w` is NULL.
///
/// # Safety
/// `w` is a live handle.
///
/// Thread-safe: this is how another thread wakes a blocked `dh_watch_next`.
#[no_mangle]
pub unsafe extern "C" fn dh_watch_close(w: *const dh_watch) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        unsafe { watch_ref(w) }?.close();
        Ok(())
    }
}

/// Frees a watch (closing it first), its eventfd, and its hold on the registry. NULL is a
/// no-op. When this returns, the callback is not running and will not run again (as for
/// `dh_watch_set_callback(w, NULL, NULL)`, which this waits like). The watch's own callback
/// may free it: then this does not wait for itself, and the callback must not use `w`
/// after it.
///
/// # Safety
/// `w` is NULL or a live handle that no other thread is using (close it and let blocked
/// callers return first); do not call this twice on the same handle.
#[no_mangle]
pub unsafe extern "C" fn dh_watch_free(w: *mut dh_watch) {
    ffi_panic_boundary! {
        // Safety: forwarded from the caller.
        if let Some(watch) = unsafe { dh_watch::take(w) } {
            // Removing a callback cannot fail (only starting the thread can).
            let _ = watch.ring.callback.install(None);
            watch.close();
            drop(watch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::*;
    use crate::registry::*;
    use crate::status::*;
    use std::ptr::null_mut;

    #[test]
    fn watch_follows_changes_then_closes() {
        let mut reg = null_mut();
        let mut w = null_mut();
        let mut st = -1;
        unsafe {
            assert_eq!(dh_registry_new(&mut reg), DH_OK);
            assert_eq!(dh_watch_new(reg, b"svc".as_ptr(), 3, &mut w), DH_OK);
            assert_eq!(dh_watch_next(w, 1000, &mut st), DH_OK);
            assert_eq!(st, DH_STATUS_SERVICE_UNKNOWN);
            assert_eq!(dh_watch_next(w, 0, &mut st), DH_TIMEOUT);
            assert_eq!(dh_watch_try_next(w, &mut st), DH_WOULD_BLOCK);
            assert_eq!(
                dh_set(reg, b"svc".as_ptr(), 3, DH_STATUS_SERVING, null_mut()),
                DH_OK
            );
            assert_eq!(dh_watch_next(w, 1000, &mut st), DH_OK);
            assert_eq!(st, DH_STATUS_SERVING);
            // Last host handle gone: the watch ends, and stays safe to use.
            dh_registry_free(reg);
            assert_eq!(dh_watch_next(w, 1000, &mut st), DH_CLOSED);
            assert_eq!(dh_watch_try_next(w, &mut st), DH_CLOSED);
            dh_watch_free(w);
        }
    }
}
