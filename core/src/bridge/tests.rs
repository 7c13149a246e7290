//! Unit tests of the bridge: the watch rules through the channel, every way to receive,
//! close and end, the notify hook, re-entrant setters and the lack of cycles. Small enough
//! for Miri.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering::SeqCst},
        Arc, Barrier, Mutex, OnceLock, Weak,
    },
    thread,
    time::{Duration, Instant},
};

use futures::{executor::block_on, StreamExt};

use super::{Bridge, RecvTimeoutError, TryRecvError};
use crate::{FixedRegistry, ServingStatus::*, Watch};

type Reg = FixedRegistry<8>;

const LONG: Duration = Duration::from_secs(20);

fn bridge(reg: &Arc<Reg>, name: &'static str) -> Bridge {
    Bridge::new(Watch::new(Arc::clone(reg), name).unwrap())
}

fn rounds(normal: usize) -> usize {
    if cfg!(miri) {
        normal.min(20)
    } else {
        normal
    }
}

#[test]
fn first_status_at_once_then_one_per_change() {
    let reg = Arc::new(Reg::new());
    let b = bridge(&reg, "a");
    assert_eq!(b.try_recv(), Ok(ServiceUnknown));
    assert_eq!(b.try_recv(), Err(TryRecvError::Empty));
    reg.set("a", Serving).unwrap();
    assert_eq!(b.try_recv(), Ok(Serving));
    reg.set("a", Serving).unwrap(); // unchanged: nothing
    assert_eq!(b.try_recv(), Err(TryRecvError::Empty));
    reg.clear("a").unwrap();
    assert_eq!(b.recv_timeout(LONG), Ok(ServiceUnknown));
    reg.set("a", NotServing).unwrap();
    assert_eq!(block_on(b.recv()), Some(NotServing));
    reg.shutdown();
    reg.set("b", Serving).unwrap(); // another name: nothing
    assert_eq!(
        b.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    reg.resume();
    assert_eq!(b.recv_blocking(), Some(Serving));
}

#[test]
fn latest_wins_and_never_two_equal_in_a_row() {
    let reg = Arc::new(Reg::new());
    let b = bridge(&reg, "a");
    assert_eq!(b.try_recv(), Ok(ServiceUnknown));
    reg.set("a", Serving).unwrap();
    reg.set("a", NotServing).unwrap();
    reg.set("a", Unknown).unwrap();
    assert_eq!(b.try_recv(), Ok(Unknown));
    assert_eq!(b.try_recv(), Err(TryRecvError::Empty));
    // Taken UNKNOWN; then SERVING (not taken) is replaced by UNKNOWN again: that is no
    // change for the receiver, so nothing is delivered.
    reg.set("a", Serving).unwrap();
    reg.set("a", Unknown).unwrap();
    assert_eq!(b.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        b.recv_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
fn a_blocked_receiver_is_woken_by_a_setter_thread() {
    let reg = Arc::new(Reg::new());
    let b = bridge(&reg, "a");
    assert_eq!(b.recv_blocking(), Some(ServiceUnknown));
    thread::scope(|s| {
        s.spawn(|| reg.set("a", NotServing).unwrap());
        assert_eq!(b.recv_timeout(LONG), Ok(NotServing));
    });
}

#[test]
fn timeout_then_still_usable() {
    let reg = Arc::new(Reg::new());
    let b = bridge(&reg, "a");
    assert_eq!(b.try_recv(), Ok(ServiceUnknown));
    let start = Instant::now();
    assert_eq!(
        b.recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(
        b.recv_deadline(Instant::now()),
        Err(RecvTimeoutError::Timeout)
    );
    reg.set("a", Serving).unwrap();
    assert_eq!(b.recv_deadline(Instant::now()), Ok(Serving));
    // A timeout no `Instant` can hold waits without limit (here: for a status at once).
    reg.set("a", NotServing).unwrap();
    assert_eq!(b.recv_timeout(Duration::MAX), Ok(NotServing));
}

#[test]
fn close_wakes_blocked_receivers_and_drops_what_is_pending() {
    let reg = Arc::new(Reg::new());
    let b = bridge(&reg, "a");
    assert_eq!(b.try_recv(), Ok(ServiceUnknown));
    thread::scope(|s| {
        let waiters: Vec<_> = (0..2).map(|_| s.spawn(|| b.recv_timeout(LONG))).collect();
        s.spawn(|| {
            thread::sleep(Duration::from_millis(10));
            assert!(b.close());
        });
        for w in waiters {
            assert_eq!(w.join().unwrap(), Err(RecvTimeoutError::Closed));
        }
    });
    assert!(b.is_closed());
    reg.set("a", Serving).unwrap();
    assert_eq!(b.try_recv(), Err(TryRecvError::Closed));
    assert!(!b.close());

    // A status nobody took is dropped by close.
    let b = bridge(&reg, "a");
    assert!(b.close());
    assert_eq!(b.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(block_on(b.recv()), None);
}

#[test]
fn end_delivers_the_pending_status_then_closes() {
    let reg = Arc::new(Reg::new());
    let b = bridge(&reg, "a");
    assert_eq!(b.try_recv(), Ok(ServiceUnknown));
    reg.set("a", Serving).unwrap();
    reg.end_watches();
    assert!(!b.is_closed());
    assert_eq!(b.recv_blocking(), Some(Serving));
    assert!(b.is_closed());
    assert_eq!(b.recv_blocking(), None);
    assert_eq!(b.recv_timeout(LONG), Err(RecvTimeoutError::Closed));
    // Watches made later are not affected.
    let later = bridge(&reg, "a");
    assert_eq!(later.try_recv(), Ok(Serving));
    assert!(!later.is_closed());
}

#[test]
fn stream_form() {
    let reg = Arc::new(Reg::new());
    let mut b = bridge(&reg, "");
    assert_eq!(block_on(b.next()), Some(Serving));
    reg.set("", NotServing).unwrap();
    reg.end_watches();
    assert_eq!(block_on((&mut b).collect::<Vec<_>>()), [NotServing]);
    assert!(futures_core::FusedStream::is_terminated(&b));
}

#[test]
fn notify_runs_after_each_delivery_and_on_close() {
    let reg = Arc::new(Reg::new());
    let rings = Arc::new(AtomicUsize::new(0));
    let bell = Arc::clone(&rings);
    let b = Bridge::with_notify(Watch::new(Arc::clone(&reg), "a").unwrap(), move || {
        bell.fetch_add(1, SeqCst);
    });
    assert_eq!(rings.load(SeqCst), 1);
    reg.set("a", Serving).unwrap();
    assert_eq!(rings.load(SeqCst), 2);
    reg.set("a", Serving).unwrap(); // no change: no ring
    reg.set("b", Serving).unwrap(); // another name: no ring
    assert_eq!(rings.load(SeqCst), 2);
    assert_eq!(b.try_recv(), Ok(Serving));
    b.close();
    assert_eq!(rings.load(SeqCst), 3);
}

#[test]
fn notify_may_receive_and_set_other_names_reentrantly() {
    // The reentrant pair: a's hook copies a into b, b's hook sets a := SERVING when b is
    // NOT_SERVING. Each hook receives from its own bridge and calls `set` on the setter's
    // thread, with no bridge lock held: `set` returns, and both settle on SERVING.
    let reg = Arc::new(Reg::new());
    reg.set("a", Serving).unwrap();
    reg.set("b", Serving).unwrap();
    // The hooks reach their bridges through a weak slot (a strong one would be a cycle).
    let slot_a: Arc<OnceLock<Bridge>> = Arc::default();
    let slot_b: Arc<OnceLock<Bridge>> = Arc::default();
    let seen_a = Arc::new(Mutex::new(Vec::new()));
    let seen_b = Arc::new(Mutex::new(Vec::new()));
    fn take(slot: &Weak<OnceLock<Bridge>>) -> Option<crate::ServingStatus> {
        slot.upgrade()?.get()?.try_recv().ok()
    }
    let (r, slot, seen) = (
        Arc::clone(&reg),
        Arc::downgrade(&slot_a),
        Arc::clone(&seen_a),
    );
    let wa = Bridge::with_notify(Watch::new(Arc::clone(&reg), "a").unwrap(), move || {
        while let Some(status) = take(&slot) {
            seen.lock().unwrap().push(status);
            r.set("b", status).unwrap();
        }
    });
    let (r, slot, seen) = (
        Arc::clone(&reg),
        Arc::downgrade(&slot_b),
        Arc::clone(&seen_b),
    );
    let wb = Bridge::with_notify(Watch::new(Arc::clone(&reg), "b").unwrap(), move || {
        while let Some(status) = take(&slot) {
            seen.lock().unwrap().push(status);
            if status == NotServing {
                r.set("a", Serving).unwrap();
            }
        }
    });
    assert_eq!(wa.try_recv(), Ok(Serving));
    assert_eq!(wb.try_recv(), Ok(Serving));
    assert!(slot_a.set(wa).is_ok());
    assert!(slot_b.set(wb).is_ok());
    reg.set("a", NotServing).unwrap();
    assert_eq!(reg.get("a"), Some(Serving));
    assert_eq!(reg.get("b"), Some(Serving));
    assert_eq!(*seen_a.lock().unwrap(), [NotServing, Serving]);
    assert_eq!(*seen_b.lock().unwrap(), [NotServing, Serving]);
}

#[test]
fn concurrent_setters_and_receivers_end_on_the_final_status() {
    let reg = Arc::new(Reg::new());
    let n = rounds(2000);
    let setters = 3;
    let bridges: Vec<Bridge> = (0..3).map(|_| bridge(&reg, "a")).collect();
    let start = Barrier::new(setters + bridges.len());
    thread::scope(|s| {
        for _ in 0..setters {
            s.spawn(|| {
                start.wait();
                for i in 0..n {
                    reg.set("a", if i % 2 == 0 { Serving } else { NotServing })
                        .unwrap();
                }
            });
        }
        for b in &bridges {
            let start = &start;
            s.spawn(move || {
                start.wait();
                let mut last = None;
                // Drain until the setters are done and nothing new comes.
                while let Ok(status) = b.recv_timeout(Duration::from_millis(200)) {
                    assert_ne!(Some(status), last, "two equal statuses in a row");
                    last = Some(status);
                }
            });
        }
    });
    reg.set("a", Unknown).unwrap();
    for b in &bridges {
        let mut last = None;
        while let Ok(status) = b.try_recv() {
            last = Some(status);
        }
        assert_eq!(last, Some(Unknown), "the final status is always delivered");
    }
}

#[test]
fn dropping_the_bridge_frees_the_watch() {
    let reg = Arc::new(Reg::new());
    for closed in [false, true] {
        let b = bridge(&reg, "a");
        assert_eq!(Arc::strong_count(&reg), 2);
        if closed {
            b.close();
            // Closing drops the watch at once (no other thread is delivering).
            assert_eq!(Arc::strong_count(&reg), 1);
        }
        drop(b);
        // No cycle through the waker: the watch and its registry handle are gone.
        assert_eq!(Arc::strong_count(&reg), 1);
    }
    // A bridge dropped while another thread's `set` may be waking it.
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..rounds(500) {
                reg.set("a", if i % 2 == 0 { Serving } else { NotServing })
                    .unwrap();
            }
        });
        for _ in 0..rounds(500) {
            drop(bridge(&reg, "a"));
        }
    });
    assert_eq!(Arc::strong_count(&reg), 1);
}

#[test]
fn a_panicking_stream_ends_the_bridge_not_the_setter() {
    use core::{
        pin::Pin,
        task::{Context, Poll, Waker},
    };
    use futures_core::Stream;

    /// Yields SERVING, then is pending, then panics when polled again.
    struct Bomb {
        polls: usize,
        waker: Arc<Mutex<Option<Waker>>>,
    }
    impl Stream for Bomb {
        type Item = crate::ServingStatus;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.polls += 1;
            match self.polls {
                1 => Poll::Ready(Some(Serving)),
                2 => {
                    *self.waker.lock().unwrap() = Some(cx.waker().clone());
                    Poll::Pending
                }
                _ => panic!("boom"),
            }
        }
    }
    let waker = Arc::new(Mutex::new(None));
    let b = Bridge::new(Bomb {
        polls: 0,
        waker: Arc::clone(&waker),
    });
    assert_eq!(b.try_recv(), Ok(Serving));
    let w = waker.lock().unwrap().take().unwrap();
    w.wake(); // the poll panics inside the waker, which ends the bridge instead
    assert_eq!(b.try_recv(), Err(TryRecvError::Closed));
}
