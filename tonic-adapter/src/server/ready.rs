//! The ready queue of one connection: which of its streams were woken since it last looked.
//!
//! Every stream of a connection gets a [`Waker`] of its own ([`StreamWake`]). Waking it puts
//! the stream's key on the connection's queue (once, however often it is woken before the
//! connection gets to it) and wakes the connection's task. The connection task then polls
//! exactly the streams on the queue, never every stream, and flushes once.
//!
//! This is what `FuturesUnordered` does for its futures, with one difference that matters
//! here: `FuturesUnordered` yields to the executor after two of its futures woke themselves,
//! which would split one status flip over many flushes. The connection drains the whole
//! queue before it flushes.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError,
    },
    task::{Wake, Waker},
};

use atomic_waker::AtomicWaker;

/// The queue shared by a connection task and the wakers of its streams.
#[derive(Debug, Default)]
pub(super) struct ReadyQueue {
    keys: Mutex<Vec<u32>>,
    task: AtomicWaker,
}

impl ReadyQueue {
    /// Registers the connection task to be woken when a key is queued.
    pub(super) fn register(&self, waker: &Waker) {
        self.task.register(waker);
    }

    /// Moves every queued key into `out` (which must be empty), keeping the allocations of
    /// both vectors for next time.
    pub(super) fn take(&self, out: &mut Vec<u32>) {
        debug_assert!(out.is_empty());
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *keys, out);
    }

    fn push(&self, key: u32) {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(key);
        self.task.wake();
    }
}

/// The waker of one stream: its key on the connection and whether it is queued already.
#[derive(Debug)]
pub(super) struct StreamWake {
    queue: Arc<ReadyQueue>,
    key: u32,
    queued: AtomicBool,
}

impl StreamWake {
    /// A waker for the stream at `key`, queued at once (a new stream is polled first thing).
    pub(super) fn queued(queue: &Arc<ReadyQueue>, key: u32) -> Arc<Self> {
        let wake = Self::idle(queue, key);
        wake.wake_by_ref();
        wake
    }

    /// A waker for `key`, not queued until it is woken.
    pub(super) fn idle(queue: &Arc<ReadyQueue>, key: u32) -> Arc<Self> {
        Arc::new(Self {
            queue: Arc::clone(queue),
            key,
            queued: AtomicBool::new(false),
        })
    }

    /// Called by the connection just before it polls the stream: a wake-up from now on
    /// queues the stream again.
    pub(super) fn unqueue(&self) {
        self.queued.store(false, Ordering::Release);
    }
}

impl Wake for StreamWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.push(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_queued_once_until_it_is_polled() {
        let queue = Arc::new(ReadyQueue::default());
        let a = StreamWake::queued(&queue, 1);
        let b = Waker::from(StreamWake::queued(&queue, 2));
        Waker::from(Arc::clone(&a)).wake_by_ref();
        b.wake_by_ref();
        b.wake_by_ref();
        let mut out = Vec::new();
        queue.take(&mut out);
        assert_eq!(out, [1, 2]);
        out.clear();
        a.unqueue();
        Waker::from(Arc::clone(&a)).wake();
        b.wake_by_ref(); // still queued: not polled since
        queue.take(&mut out);
        assert_eq!(out, [1]);
    }
}
