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
//! A `dh_watch` owns one core [`Watch`] stream (boxed, since it is `!Unpin`) over an
//! `Arc` of the registry, and polls it with its own [`Waker`]: a `Signal` that, when
//! woken, bumps an epoch under a mutex and notifies a condition variable (the blocking
//! form parks on it), writes the eventfd if one was asked for, and calls the callback if
//! one is installed. The status itself is only ever read from the core stream; the
//! signal carries "something may have changed", never a status.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use dubbo_health_core::{HeapRegistry, ServingStatus, Watch};
use futures_core::Stream;

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
/// (`dh_watch_next`, `dh_watch_try_next`, `dh_watch_next_encoded`) are serialised, so
/// with several consumers each status goes to one of them.
#[derive(Debug)]
pub struct dh_watch {
    _private: [u8; 0],
}

type CoreWatch = Watch<Arc<HeapRegistry>, Box<str>>;

/// What a `dh_watch` handle points to.
#[derive(Debug)]
pub(crate) struct WatchHandle {
    state: Mutex<State>,
    signal: Arc<Signal>,
    waker: Waker,
}

impl Castable for dh_watch {
    type RustType = WatchHandle;
}

impl BoxCastable for dh_watch {}

#[derive(Debug)]
struct State {
    /// The core stream; `None` once it ended or the watch was closed (dropping it
    /// unregisters its waiter from the registry).
    stream: Option<Pin<Box<CoreWatch>>>,
    /// A status taken from the stream that a caller could not accept (its buffer was too
    /// small); handed out before the stream is polled again.
    unread: Option<ServingStatus>,
}

/// Called when a watch may have a new status. See `dh_watch_set_callback`.
pub type dh_watch_callback = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

#[derive(Debug, Clone, Copy)]
struct Callback {
    func: unsafe extern "C" fn(userdata: *mut c_void),
    userdata: *mut c_void,
}

// Safety: the caller of `dh_watch_set_callback` promises the callback may be called with
// `userdata` from any thread.
unsafe impl Send for Callback {}

/// The watch's waker.
#[derive(Debug)]
struct Signal {
    /// Bumped on every wake; blocking waiters sleep on `cond` until it moves.
    epoch: Mutex<u64>,
    cond: Condvar,
    /// The eventfd of `dh_watch_fd`, made on first use.
    fd: OnceLock<Fd>,
    /// Held while the callback runs, so callbacks for one watch never overlap and
    /// removing the callback waits for a running one.
    callback: Mutex<Option<Callback>>,
    /// Set when a wake happens on the thread that is polling this watch; the callback is
    /// then called after the poll, outside the state lock.
    deferred: AtomicBool,
    /// Set when a wake happens inside the callback on its own thread; it runs again.
    again: AtomicBool,
}

thread_local! {
    /// The signal of the watch this thread is polling right now, if any.
    static POLLING: Cell<*const Signal> = const { Cell::new(std::ptr::null()) };
    /// The signal whose callback this thread is running right now, if any.
    static IN_CALLBACK: Cell<*const Signal> = const { Cell::new(std::ptr::null()) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data behind (every
    // update is a single assignment), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        *lock(&self.epoch) += 1;
        self.cond.notify_all();
        if let Some(fd) = self.fd.get() {
            fd.signal();
        }
        let me: *const Signal = Arc::as_ptr(self);
        if POLLING.with(Cell::get) == me {
            self.deferred.store(true, Ordering::Release);
        } else {
            self.run_callback();
        }
    }
}

impl Signal {
    /// Calls the installed callback (if any), on this thread.
    ///
    /// A wake that comes from inside the callback (the callback itself polled the watch
    /// or changed the registry) does not call it again recursively: it is remembered and
    /// the callback runs once more after it returns.
    fn run_callback(&self) {
        let me: *const Signal = self;
        if IN_CALLBACK.with(Cell::get) == me {
            self.again.store(true, Ordering::Release);
            return;
        }
        let guard = lock(&self.callback);
        while let Some(cb) = *guard {
            self.again.store(false, Ordering::Release);
            let prev = IN_CALLBACK.with(|c| c.replace(me));
            // Safety: the installer promised `func` may be called with `userdata` from any
            // thread until it is removed; removal takes this lock, so it waits for us.
            unsafe { (cb.func)(cb.userdata) };
            IN_CALLBACK.with(|c| c.set(prev));
            if !self.again.swap(false, Ordering::AcqRel) {
                break;
            }
        }
    }
}

/// What one poll of the watch gave.
#[derive(Debug)]
pub(crate) enum Next {
    Status(ServingStatus),
    Pending,
    Closed,
}

// === impl WatchHandle ===

impl WatchHandle {
    pub(crate) fn new(registry: Arc<HeapRegistry>, name: &str) -> Result<Self, Failure> {
        let stream = Watch::new(registry, Box::<str>::from(name))?;
        let signal = Arc::new(Signal {
            epoch: Mutex::new(0),
            cond: Condvar::new(),
            fd: OnceLock::new(),
            callback: Mutex::new(None),
            deferred: AtomicBool::new(false),
            again: AtomicBool::new(false),
        });
        Ok(Self {
            state: Mutex::new(State {
                stream: Some(Box::pin(stream)),
                unread: None,
            }),
            waker: Waker::from(Arc::clone(&signal)),
            signal,
        })
    }

    /// Polls the core stream once with the watch's waker.
    pub(crate) fn poll_once(&self) -> Next {
        let next = {
            let mut state = lock(&self.state);
            if let Some(status) = state.unread.take() {
                Next::Status(status)
            } else if let Some(stream) = state.stream.as_mut() {
                let prev = POLLING.with(|p| p.replace(Arc::as_ptr(&self.signal)));
                let polled = stream
                    .as_mut()
                    .poll_next(&mut Context::from_waker(&self.waker));
                POLLING.with(|p| p.set(prev));
                match polled {
                    Poll::Ready(Some(status)) => Next::Status(status),
                    Poll::Ready(None) => {
                        state.stream = None;
                        Next::Closed
                    }
                    Poll::Pending => Next::Pending,
                }
            } else {
                Next::Closed
            }
        };
        if self.signal.deferred.swap(false, Ordering::AcqRel) {
            self.signal.run_callback();
        }
        next
    }

    /// Waits for the next status until `timeout` (None: forever).
    pub(crate) fn next_blocking(
        &self,
        timeout: Option<Duration>,
    ) -> Result<ServingStatus, Failure> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let seen = *lock(&self.signal.epoch);
            match self.poll_once() {
                Next::Status(status) => return Ok(status),
                Next::Closed => return Err(closed()),
                Next::Pending => {}
            }
            let mut epoch = lock(&self.signal.epoch);
            while *epoch == seen {
                match deadline {
                    None => {
                        epoch = self
                            .signal
                            .cond
                            .wait(epoch)
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                    }
                    Some(deadline) => {
                        let now = Instant::now();
                        if now >= deadline {
                            return Err(Failure::new(
                                DH_TIMEOUT,
                                "no new status before the timeout",
                            ));
                        }
                        epoch = self
                            .signal
                            .cond
                            .wait_timeout(epoch, deadline - now)
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .0;
                    }
                }
            }
        }
    }

    /// Takes the next status if one is ready, without blocking.
    pub(crate) fn try_next(&self) -> Result<ServingStatus, Failure> {
        if let Some(fd) = self.signal.fd.get() {
            // Drain first: a wake after this point makes the fd readable again.
            fd.drain();
        }
        match self.poll_once() {
            Next::Status(status) => Ok(status),
            Next::Closed => {
                // An ended watch stays readable, so a level-triggered loop notices.
                if let Some(fd) = self.signal.fd.get() {
                    fd.signal();
                }
                Err(closed())
            }
            Next::Pending => Err(Failure::new(DH_WOULD_BLOCK, "no new status yet")),
        }
    }

    /// Gives a status back, to be returned by the next call that takes one.
    pub(crate) fn unread(&self, status: ServingStatus) {
        lock(&self.state).unread = Some(status);
    }

    pub(crate) fn close(&self) {
        let stream = lock(&self.state).stream.take();
        drop(stream);
        self.signal.wake_by_ref();
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        // Wait for a running callback, and make sure none runs after we are gone (a
        // registry wake may still reach the signal through a waker clone).
        *lock(&self.signal.callback) = None;
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
/// `dh_watch_free` (remove it from your poll set first). Every call returns the same fd.
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
        let fd = match watch.signal.fd.get() {
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
                let _ = watch.signal.fd.set(made);
                watch.signal.fd.get().map_or(-1, |fd| fd.0)
            }
        };
        // Safety: checked non-NULL; valid for writes by the caller's promise.
        unsafe { write_out(fd_out, "fd_out", fd) }
    }
}

/// Installs `callback`, called with `userdata` whenever the watch may have a new status;
/// NULL removes it. The callback should be quick: typically it schedules a
/// `dh_watch_try_next` call, or makes that call itself.
///
/// It is called once right away (from this function) when it is installed, since the
/// first status is ready at once. Later it runs on whichever thread caused the change (a
/// `dh_set`, `dh_clear`, `dh_shutdown`, `dh_end_watches` or `dh_watch_close` caller, or a
/// server thread), never twice at the same time for one watch, and never after
/// `dh_watch_set_callback(w, NULL, ..)` or `dh_watch_free` has returned.
///
/// Inside the callback you may call `dh_watch_try_next` and `dh_watch_close` on this watch
/// and any function on other handles (a wake the callback causes on its own watch makes it
/// run once more after it returns, never recursively). You must not call
/// `dh_watch_set_callback` or `dh_watch_free` on this watch from inside its callback, nor
/// block in `dh_watch_next` there.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `w` is NULL.
///
/// # Safety
/// `w` is a live handle; `callback` is safe to call with `userdata` from any thread until
/// it is removed.
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
        *lock(&watch.signal.callback) = installed;
        if installed.is_some() {
            watch.signal.run_callback();
        }
        Ok(())
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
/// no-op. When this returns, the callback is not running and will not run again.
///
/// # Safety
/// `w` is NULL or a live handle that no other thread is using (close it and let blocked
/// callers return first); do not call this twice on the same handle, nor from the
/// watch's own callback.
#[no_mangle]
pub unsafe extern "C" fn dh_watch_free(w: *mut dh_watch) {
    ffi_panic_boundary! {
        // Safety: forwarded from the caller.
        if let Some(watch) = unsafe { dh_watch::take(w) } {
            *lock(&watch.signal.callback) = None;
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
