//! [`Drain`]: ending one server's (or one mount's) Watch streams, and no one else's.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use pin_project_lite::pin_project;
use tokio::sync::{futures::OwnedNotified, Notify};

/// The stop switch of one health service's Watch streams.
///
/// Every Watch stream a [`HealthService`](crate::HealthService) opens holds a
/// [`DrainSignal`] of the service's `Drain`. Once [`start`](Self::start) runs, each of those
/// streams — and each one opened afterwards — sends a last `NOT_SERVING` (unless that is what
/// it sent last) and ends with status OK, so a host's graceful stop is never held up by
/// open Watches and its watchers learn it is going before the port closes.
///
/// A drain touches only the streams of its own service: the registry, and other services or
/// servers over the same registry, go on as before (the registry's own
/// [`shutdown`](dubbo_health_core::Registry::shutdown) is the call that changes statuses
/// everywhere). Clones share one switch.
///
/// # Examples
///
/// ```
/// use dubbo_health_tonic::Drain;
/// use futures::executor::block_on;
///
/// let drain = Drain::new();
/// let signal = drain.signal();
/// assert!(!drain.is_draining());
/// drain.clone().start();
/// assert!(drain.is_draining());
/// block_on(signal); // resolves once the drain started
/// block_on(drain.signal()); // and so does every signal taken later
/// ```
///
/// # Implementation Notes
///
/// A flag and a [`tokio::sync::Notify`]: each signal is an intrusive waiter of the `Notify`
/// (no allocation, no task, 64 bytes in the stream), and `start` sets the flag before it wakes
/// every waiter, so a signal taken at any moment either sees the flag or is woken.
#[derive(Clone, Default)]
pub struct Drain {
    notify: Arc<Notify>,
    draining: Arc<AtomicBool>,
}

impl Drain {
    /// A switch that has not been thrown.
    ///
    /// ```
    /// assert!(!dubbo_health_tonic::Drain::new().is_draining());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the drain: every [`DrainSignal`] of this switch, taken before or after, resolves.
    /// Calling it again does nothing more.
    ///
    /// ```
    /// let drain = dubbo_health_tonic::Drain::new();
    /// drain.start();
    /// drain.start();
    /// assert!(drain.is_draining());
    /// ```
    pub fn start(&self) {
        if !self.draining.swap(true, Ordering::SeqCst) {
            self.notify.notify_waiters();
        }
    }

    /// Whether [`start`](Self::start) has run.
    ///
    /// ```
    /// let drain = dubbo_health_tonic::Drain::new();
    /// assert!(!drain.is_draining());
    /// ```
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// A future that resolves once the drain has started (at once if it has).
    ///
    /// ```
    /// use futures::{executor::block_on, FutureExt};
    ///
    /// let drain = dubbo_health_tonic::Drain::new();
    /// let mut signal = Box::pin(drain.signal());
    /// assert!(signal.as_mut().now_or_never().is_none());
    /// drain.start();
    /// block_on(signal);
    /// ```
    #[must_use]
    pub fn signal(&self) -> DrainSignal {
        // Register first, then read the flag: a `start` in between is seen one way or the
        // other (it sets the flag before it notifies).
        let notified = Arc::clone(&self.notify).notified_owned();
        DrainSignal {
            notified,
            fired: self.is_draining(),
        }
    }

    /// Waits for `signal`, then [starts](Self::start) the drain and resolves: the future to
    /// hand to tonic's `serve_with_shutdown`, which then waits for the calls in flight — the
    /// Watch streams end at once. The future is `Send` when `signal` is, and borrows nothing
    /// from `self`.
    ///
    /// ```
    /// use futures::executor::block_on;
    ///
    /// let drain = dubbo_health_tonic::Drain::new();
    /// block_on(drain.after(async {}));
    /// assert!(drain.is_draining());
    /// ```
    pub fn after<F>(&self, signal: F) -> impl Future<Output = ()>
    where
        F: Future<Output = ()>,
    {
        let drain = self.clone();
        async move {
            signal.await;
            drain.start();
        }
    }
}

impl fmt::Debug for Drain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("draining", &self.is_draining())
            .finish()
    }
}

pin_project! {
    /// Resolves once its [`Drain`] has started: what each Watch stream polls beside its
    /// registry watch.
    ///
    /// # Cancellation
    ///
    /// Dropping it unregisters it from the drain at once.
    ///
    /// ```
    /// use futures::executor::block_on;
    ///
    /// let drain = dubbo_health_tonic::Drain::new();
    /// let signal = drain.signal();
    /// drain.start();
    /// block_on(signal);
    /// ```
    pub struct DrainSignal {
        #[pin]
        notified: OwnedNotified,
        fired: bool,
    }
}

impl DrainSignal {
    /// Whether the drain was seen to have started.
    ///
    /// ```
    /// let drain = dubbo_health_tonic::Drain::new();
    /// drain.start();
    /// assert!(drain.signal().has_fired());
    /// ```
    #[must_use]
    pub fn has_fired(&self) -> bool {
        self.fired
    }
}

impl Future for DrainSignal {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if !*this.fired {
            if this.notified.poll(cx).is_pending() {
                return Poll::Pending;
            }
            *this.fired = true;
        }
        Poll::Ready(())
    }
}

impl fmt::Debug for DrainSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainSignal")
            .field("fired", &self.fired)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{executor::block_on, FutureExt};

    #[test]
    fn signals_taken_before_during_and_after_start_all_resolve() {
        let drain = Drain::new();
        let mut polled = Box::pin(drain.signal());
        assert!(polled.as_mut().now_or_never().is_none());
        let unpolled = drain.signal();
        let other = Drain::new();
        let mut unrelated = Box::pin(other.signal());
        drain.start();
        block_on(polled);
        block_on(unpolled);
        block_on(drain.signal());
        // Another switch is not thrown by this one.
        assert!(unrelated.as_mut().now_or_never().is_none());
        assert!(!other.is_draining());
    }

    #[test]
    fn start_from_another_thread_wakes_a_parked_signal() {
        let drain = Drain::new();
        let signal = drain.signal();
        let starter = drain.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            starter.start();
        });
        block_on(signal);
        thread.join().unwrap();
    }
}
