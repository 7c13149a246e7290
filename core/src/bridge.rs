//! [`Bridge`]: one watch stream as a latest-wins channel, for consumers that are not async
//! tasks: a thread blocked on the next status, an event loop waiting on a file descriptor, a
//! callback dispatcher, an asyncio loop. (`std` feature.)

use std::{
    fmt,
    future::Future,
    pin::{pin, Pin},
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering::SeqCst},
        Arc, Mutex, TryLockError, Weak,
    },
    task::{Context, Poll, Wake, Waker},
    time::{Duration, Instant},
};

use futures_core::{FusedStream, Stream};

use crate::ServingStatus;

/// The watch a bridge drives, type-erased (any `Stream` of statuses; in practice a
/// [`Watch`](crate::Watch)).
type Source = Pin<Box<dyn Stream<Item = ServingStatus> + Send>>;
/// The hook run after each delivery.
type Notify = Box<dyn Fn() + Send + Sync>;

/// `last` before anything was received.
const NOTHING: u8 = u8::MAX;

/// One watch stream turned into a latest-wins channel that threads, file-descriptor loops,
/// callbacks and foreign event loops can receive from.
///
/// The bridge owns the stream (a [`Watch`](crate::Watch), or any `Stream` of statuses). The
/// stream's waker runs on whichever thread made the change, usually the one that called
/// [`Registry::set`](crate::Registry::set): it polls the stream once more (bounded library
/// work, never user code) and puts what it yields into a channel of capacity one, replacing
/// a status nobody took yet. Consumers only ever receive from that channel:
///
/// - [`recv_blocking`](Self::recv_blocking), [`recv_timeout`](Self::recv_timeout),
///   [`recv_deadline`](Self::recv_deadline): park the calling thread;
/// - [`try_recv`](Self::try_recv): never waits, for loops woken by the notify hook of
///   [`with_notify`](Self::with_notify) (an eventfd write, a queue push);
/// - [`recv`](Self::recv) and the [`Stream`] impl: for any async executor.
///
/// Receivers see the stream's rules: the first status at once, then one per change, never
/// two equal in a row, and under a burst the latest wins. Once the stream ends (see
/// [`Registry::end_watches`](crate::Registry::end_watches)), or after [`close`](Self::close)
/// from any thread, receivers get `Closed` (after the end, only once the last status was
/// taken).
///
/// # Examples
///
/// ```
/// use std::{sync::Arc, thread, time::Duration};
/// use dubbo_health_core::{bridge::{Bridge, TryRecvError}, HeapRegistry, ServingStatus, Watch};
///
/// let registry = Arc::new(HeapRegistry::new());
/// let bridge = Bridge::new(Watch::new(Arc::clone(&registry), "svc").unwrap());
/// // The first status is there at once.
/// assert_eq!(bridge.try_recv(), Ok(ServingStatus::ServiceUnknown));
/// assert_eq!(bridge.try_recv(), Err(TryRecvError::Empty));
///
/// let setter = thread::spawn(move || registry.set("svc", ServingStatus::Serving).unwrap());
/// assert_eq!(bridge.recv_timeout(Duration::from_secs(5)), Ok(ServingStatus::Serving));
/// setter.join().unwrap();
/// ```
///
/// # Implementation Notes
///
/// Only the holder of the stream's lock polls the stream, and nobody ever waits for that
/// lock: a waker that finds it taken marks the stream dirty and returns, and the holder
/// polls again before it lets go (a combining lock). So a setter never blocks on a
/// consumer, and a consumer's lock or a runtime's lock (the GIL, say) can never be part of
/// a cycle with it. The channel's own wake-ups go to receivers only: parked threads
/// (unparked), or the waker an async receiver polled with. Duplicates a replaced status
/// could cause are dropped on the receiving side, which remembers the status it last gave
/// out.
pub struct Bridge {
    shared: Arc<Shared>,
    /// Boxed, so that the bridge is `Unpin` (the receiver keeps its `Stream` listener in
    /// itself, pinned).
    rx: Pin<Box<async_channel::Receiver<ServingStatus>>>,
}

/// What the bridge and its waker share.
struct Shared {
    /// The stream; `None` once it ended or the bridge was closed (dropping it unlinks its
    /// waiter from the registry). Only ever `try_lock`ed: see `pump`.
    source: Mutex<Option<Source>>,
    /// The waker the stream is polled with (it holds this struct weakly: no cycle).
    waker: Waker,
    /// Set by whoever wants the stream polled; the lock holder clears it and polls.
    dirty: AtomicBool,
    /// Set by `close`: the lock holder drops the stream.
    closing: AtomicBool,
    tx: async_channel::Sender<ServingStatus>,
    /// The status receivers last took (`NOTHING` before the first), to drop duplicates.
    last: AtomicU8,
    notify: Option<Notify>,
}

/// The stream's waker: polls again on the waking thread.
struct Wakeup(Weak<Shared>);

impl Wake for Wakeup {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(shared) = self.0.upgrade() {
            // A panic here would unwind into the registry's wake loop and cost the other
            // watchers of the batch their wake-up: end this bridge instead.
            let pumped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shared.pump()));
            if pumped.is_err() {
                shared.tx.close();
            }
        }
    }
}

impl Shared {
    /// Polls the stream until it is pending and delivers what it yielded, unless another
    /// thread is doing so right now: then that thread polls once more for us.
    fn pump(&self) {
        self.dirty.store(true, SeqCst);
        let mut delivered = false;
        loop {
            let mut source = match self.source.try_lock() {
                Ok(guard) => guard,
                // Every update under the lock is a single assignment: still consistent.
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                // The holder re-checks `dirty` after it unlocks.
                Err(TryLockError::WouldBlock) => break,
            };
            while self.dirty.swap(false, SeqCst) {
                delivered |= self.step(&mut source);
            }
            drop(source);
            if !self.dirty.load(SeqCst) {
                break;
            }
        }
        if delivered {
            self.notify();
        }
    }

    /// One round under the lock: polls until pending, sends the latest status, closes the
    /// channel when the stream ended. Returns whether receivers have something new.
    fn step(&self, source: &mut Option<Source>) -> bool {
        let Some(stream) = source.as_mut() else {
            return false;
        };
        if self.closing.load(SeqCst) {
            *source = None;
            return false;
        }
        let mut cx = Context::from_waker(&self.waker);
        let mut latest = None;
        let ended = loop {
            match stream.as_mut().poll_next(&mut cx) {
                Poll::Ready(Some(status)) => latest = Some(status),
                Poll::Ready(None) => break true,
                Poll::Pending => break false,
            }
        };
        if let Some(status) = latest {
            // Capacity one: a status nobody took is replaced (latest wins). Fails only when
            // the bridge is closed, and then nobody wants it.
            let _ = self.tx.force_send(status);
        }
        if ended {
            *source = None;
            self.tx.close();
        }
        latest.is_some() || ended
    }

    fn notify(&self) {
        if let Some(notify) = &self.notify {
            notify();
        }
    }
}

// === impl Bridge ===

impl Bridge {
    /// A bridge over `watch`, polled at once: the first status is ready to receive when
    /// this returns.
    ///
    /// ```
    /// use dubbo_health_core::{bridge::Bridge, FixedRegistry, ServingStatus};
    ///
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let bridge = Bridge::new(HEALTH.watch("").unwrap());
    /// assert_eq!(bridge.recv_blocking(), Some(ServingStatus::Serving));
    /// ```
    #[must_use]
    pub fn new<W>(watch: W) -> Self
    where
        W: Stream<Item = ServingStatus> + Send + 'static,
    {
        Self::build(Box::pin(watch), None)
    }

    /// A bridge that also calls `notify` whenever receivers may have something new: after
    /// each status it delivers, when the stream ends, and on [`close`](Self::close). Once
    /// for the first status, before this returns.
    ///
    /// `notify` runs on the thread that made the change (a `set` caller, a server thread)
    /// after the status is in the channel, with no lock of the bridge held. It says only
    /// "look again": make it quick and non-blocking (an eventfd write, a push onto a
    /// queue), and let consumers call [`try_recv`](Self::try_recv).
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    /// use dubbo_health_core::{bridge::Bridge, FixedRegistry, ServingStatus};
    ///
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let rings = Arc::new(AtomicUsize::new(0));
    /// let bell = Arc::clone(&rings);
    /// let bridge = Bridge::with_notify(HEALTH.watch("svc").unwrap(), move || {
    ///     bell.fetch_add(1, Ordering::SeqCst);
    /// });
    /// assert_eq!(rings.load(Ordering::SeqCst), 1); // the first status
    /// HEALTH.set("svc", ServingStatus::NotServing).unwrap();
    /// assert_eq!(rings.load(Ordering::SeqCst), 2);
    /// assert_eq!(bridge.try_recv(), Ok(ServingStatus::NotServing)); // latest wins
    /// ```
    #[must_use]
    pub fn with_notify<W, F>(watch: W, notify: F) -> Self
    where
        W: Stream<Item = ServingStatus> + Send + 'static,
        F: Fn() + Send + Sync + 'static,
    {
        Self::build(Box::pin(watch), Some(Box::new(notify)))
    }

    fn build(source: Source, notify: Option<Notify>) -> Self {
        let (tx, rx) = async_channel::bounded(1);
        let shared = Arc::new_cyclic(|weak| Shared {
            source: Mutex::new(Some(source)),
            waker: Waker::from(Arc::new(Wakeup(Weak::clone(weak)))),
            dirty: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            tx,
            last: AtomicU8::new(NOTHING),
            notify,
        });
        shared.pump();
        Self {
            shared,
            rx: Box::pin(rx),
        }
    }

    /// Whether `status` is not the one receivers took last (and remembers it).
    fn fresh(&self, status: ServingStatus) -> bool {
        self.shared.last.swap(status as u8, SeqCst) != status as u8
    }

    /// The next status if one is ready, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when nothing new came yet, [`TryRecvError::Closed`] once the
    /// bridge has ended.
    ///
    /// ```
    /// use dubbo_health_core::{bridge::{Bridge, TryRecvError}, FixedRegistry, ServingStatus};
    ///
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let bridge = Bridge::new(HEALTH.watch("").unwrap());
    /// assert_eq!(bridge.try_recv(), Ok(ServingStatus::Serving));
    /// assert_eq!(bridge.try_recv(), Err(TryRecvError::Empty));
    /// bridge.close();
    /// assert_eq!(bridge.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&self) -> Result<ServingStatus, TryRecvError> {
        loop {
            match self.rx.try_recv() {
                Ok(status) if self.fresh(status) => return Ok(status),
                Ok(_) => {}
                Err(async_channel::TryRecvError::Empty) => return Err(TryRecvError::Empty),
                Err(async_channel::TryRecvError::Closed) => return Err(TryRecvError::Closed),
            }
        }
    }

    /// Waits for the next status; `None` once the bridge has ended.
    ///
    /// ```
    /// use std::thread;
    /// use dubbo_health_core::{bridge::Bridge, FixedRegistry, ServingStatus};
    ///
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let bridge = Bridge::new(HEALTH.watch("svc").unwrap());
    /// assert_eq!(bridge.recv_blocking(), Some(ServingStatus::ServiceUnknown));
    /// thread::spawn(|| HEALTH.end_watches());
    /// assert_eq!(bridge.recv_blocking(), None);
    /// ```
    pub fn recv_blocking(&self) -> Option<ServingStatus> {
        self.wait(None).ok()
    }

    /// Waits for the next status for at most `timeout` (`Duration::ZERO` only looks).
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when nothing new came in time,
    /// [`RecvTimeoutError::Closed`] once the bridge has ended.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dubbo_health_core::{bridge::{Bridge, RecvTimeoutError}, FixedRegistry};
    ///
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let bridge = Bridge::new(HEALTH.watch("").unwrap());
    /// assert!(bridge.recv_timeout(Duration::ZERO).is_ok());
    /// assert_eq!(bridge.recv_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<ServingStatus, RecvTimeoutError> {
        // A timeout too large for an `Instant` is no timeout.
        self.wait(Instant::now().checked_add(timeout))
    }

    /// Waits for the next status until `deadline`.
    ///
    /// # Errors
    ///
    /// As for [`recv_timeout`](Self::recv_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use dubbo_health_core::{bridge::{Bridge, RecvTimeoutError}, FixedRegistry, ServingStatus};
    ///
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let bridge = Bridge::new(HEALTH.watch("").unwrap());
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// assert_eq!(bridge.recv_deadline(deadline), Ok(ServingStatus::Serving));
    /// assert_eq!(bridge.recv_deadline(deadline), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<ServingStatus, RecvTimeoutError> {
        self.wait(Some(deadline))
    }

    /// Parks this thread (on a parker of its own, never the thread's park token) until a
    /// status comes, the bridge ends, or `deadline` passes.
    fn wait(&self, deadline: Option<Instant>) -> Result<ServingStatus, RecvTimeoutError> {
        match self.try_recv() {
            Ok(status) => return Ok(status),
            Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
            Err(TryRecvError::Empty) => {}
        }
        let (parker, unparker) = parking::pair();
        let waker = Waker::from(unparker);
        let mut cx = Context::from_waker(&waker);
        let mut recv = pin!(self.recv());
        loop {
            if let Poll::Ready(next) = recv.as_mut().poll(&mut cx) {
                return next.ok_or(RecvTimeoutError::Closed);
            }
            match deadline {
                None => parker.park(),
                Some(deadline) => {
                    if !parker.park_deadline(deadline) {
                        // Timed out; a status that came at the last moment still counts.
                        return match recv.as_mut().poll(&mut cx) {
                            Poll::Ready(next) => next.ok_or(RecvTimeoutError::Closed),
                            Poll::Pending => Err(RecvTimeoutError::Timeout),
                        };
                    }
                }
            }
        }
    }

    /// Receives the next status from any async executor; `None` once the bridge has ended.
    ///
    /// # Cancellation
    ///
    /// Dropping the future before it completes loses nothing: a status it did not return
    /// stays in the bridge.
    ///
    /// ```
    /// use futures::executor::block_on;
    /// use dubbo_health_core::{bridge::Bridge, FixedRegistry, ServingStatus};
    ///
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let bridge = Bridge::new(HEALTH.watch("").unwrap());
    /// assert_eq!(block_on(bridge.recv()), Some(ServingStatus::Serving));
    /// ```
    pub async fn recv(&self) -> Option<ServingStatus> {
        loop {
            let status = self.rx.recv().await.ok()?;
            if self.fresh(status) {
                return Some(status);
            }
        }
    }

    /// Ends the bridge from any thread: receivers blocked now or later get `Closed` (a
    /// status nobody took is dropped), the notify hook runs once more, and the watch is
    /// dropped (at once, or by the thread delivering to the bridge right now). Returns
    /// whether this call ended it; closing twice is fine.
    ///
    /// ```
    /// use std::{thread, time::Duration};
    /// use dubbo_health_core::{bridge::Bridge, FixedRegistry, ServingStatus};
    ///
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let bridge = Bridge::new(HEALTH.watch("").unwrap());
    /// assert_eq!(bridge.recv_blocking(), Some(ServingStatus::Serving));
    /// thread::scope(|s| {
    ///     s.spawn(|| {
    ///         thread::sleep(Duration::from_millis(20));
    ///         assert!(bridge.close());
    ///     });
    ///     assert_eq!(bridge.recv_blocking(), None); // woken by the close
    /// });
    /// assert!(!bridge.close());
    /// assert!(bridge.is_closed());
    /// ```
    pub fn close(&self) -> bool {
        self.shared.closing.store(true, SeqCst);
        let ended_now = self.shared.tx.close();
        while self.rx.try_recv().is_ok() {}
        // Drops the stream, or leaves it to the thread holding it right now.
        self.shared.pump();
        self.shared.notify();
        ended_now
    }

    /// Whether the bridge has ended: closed, or its stream ended and the last status was
    /// taken. Then every receive returns `Closed`.
    ///
    /// ```
    /// use dubbo_health_core::{bridge::Bridge, FixedRegistry, ServingStatus};
    ///
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let bridge = Bridge::new(HEALTH.watch("").unwrap());
    /// HEALTH.end_watches();
    /// assert!(!bridge.is_closed()); // SERVING is still to be taken
    /// assert_eq!(bridge.try_recv(), Ok(ServingStatus::Serving));
    /// assert!(bridge.is_closed());
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed() && self.rx.is_empty()
    }
}

impl Stream for Bridge {
    type Item = ServingStatus;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ServingStatus>> {
        loop {
            match self.rx.as_mut().poll_next(cx) {
                Poll::Ready(Some(status)) if !self.fresh(status) => {}
                other => return other,
            }
        }
    }
}

impl FusedStream for Bridge {
    fn is_terminated(&self) -> bool {
        self.rx.is_terminated()
    }
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.shared.last.load(SeqCst);
        f.debug_struct("Bridge")
            .field(
                "last",
                &(last != NOTHING).then(|| ServingStatus::from_bits(u32::from(last))),
            )
            .field("ready", &!self.rx.is_empty())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

// === errors ===

/// Why [`Bridge::try_recv`] returned no status.
///
/// ```
/// use dubbo_health_core::bridge::TryRecvError;
/// assert_eq!(TryRecvError::Empty.to_string(), "no new status yet");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// Nothing new came yet.
    Empty,
    /// The bridge has ended (closed, or its watch ended); no status will come.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "no new status yet",
            Self::Closed => "the watch has ended",
        })
    }
}

impl std::error::Error for TryRecvError {}

/// Why [`Bridge::recv_timeout`] or [`Bridge::recv_deadline`] returned no status.
///
/// ```
/// use dubbo_health_core::bridge::RecvTimeoutError;
/// assert_eq!(RecvTimeoutError::Timeout.to_string(), "no new status before the timeout");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecvTimeoutError {
    /// Nothing new came before the timeout.
    Timeout,
    /// The bridge has ended (closed, or its watch ended); no status will come.
    Closed,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "no new status before the timeout",
            Self::Closed => "the watch has ended",
        })
    }
}

impl std::error::Error for RecvTimeoutError {}

#[cfg(test)]
mod tests;
