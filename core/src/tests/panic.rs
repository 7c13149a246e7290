//! Wakers that panic in `clone`, `wake`, `wake_by_ref` or `drop`: no undefined behaviour
//! (Miri runs these), and the other watchers of the name still hear every change.

use core::{
    pin::Pin,
    task::{Poll, RawWaker, RawWakerVTable, Waker},
};
use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use super::{counting, poll, Reg};
use crate::{ServingStatus::*, Watch};

/// Which vtable function panics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    Clone,
    Wake,
    WakeByRef,
    Drop,
}

/// A waker's shared state: what panics, and how often each function ran.
struct Probe {
    fault: Fault,
    clones: AtomicUsize,
    wakes: AtomicUsize,
}

/// A waker over an `Arc<Probe>` whose `fault` function panics (after keeping the reference
/// count right, so nothing leaks).
fn faulty(fault: Fault) -> (Arc<Probe>, Waker) {
    let probe = Arc::new(Probe {
        fault,
        clones: AtomicUsize::new(0),
        wakes: AtomicUsize::new(0),
    });
    let raw = RawWaker::new(Arc::into_raw(Arc::clone(&probe)).cast(), &VTABLE);
    // Safety: the vtable below upholds `RawWaker`'s contract (each function treats `data` as
    // an `Arc<Probe>` reference it owns or borrows, as documented there).
    (probe, unsafe { Waker::from_raw(raw) })
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// # Safety
///
/// `data` is a live `Arc<Probe>` reference (borrowed).
unsafe fn probe<'a>(data: *const ()) -> &'a Probe {
    // Safety: the caller's contract.
    unsafe { &*data.cast::<Probe>() }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    // Safety: `data` is borrowed from a live waker.
    let p = unsafe { probe(data) };
    if p.fault == Fault::Clone {
        panic!("clone panics");
    }
    p.clones.fetch_add(1, Ordering::SeqCst);
    // Safety: one more reference for the new waker.
    unsafe { Arc::increment_strong_count(data.cast::<Probe>()) };
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // Safety: `wake` consumes the waker's reference.
    let p = unsafe { Arc::from_raw(data.cast::<Probe>()) };
    p.wakes.fetch_add(1, Ordering::SeqCst);
    let fault = p.fault;
    drop(p);
    if fault == Fault::Wake {
        panic!("wake panics");
    }
}

unsafe fn wake_by_ref(data: *const ()) {
    // Safety: borrowed.
    let p = unsafe { probe(data) };
    p.wakes.fetch_add(1, Ordering::SeqCst);
    if p.fault == Fault::WakeByRef {
        panic!("wake_by_ref panics");
    }
}

unsafe fn drop_waker(data: *const ()) {
    // Safety: `drop` consumes the waker's reference.
    let p = unsafe { Arc::from_raw(data.cast::<Probe>()) };
    let fault = p.fault;
    drop(p);
    if fault == Fault::Drop {
        panic!("drop panics");
    }
}

type W<'a> = Pin<Box<Watch<&'a Reg, &'static str>>>;

/// `n` watchers of `name`, parked with counting wakers.
fn parked<'a>(
    r: &'a Reg,
    name: &'static str,
    n: usize,
) -> (Vec<W<'a>>, Arc<super::CountWaker>, Waker) {
    let (count, waker) = counting();
    let watches = (0..n)
        .map(|_| {
            let mut w = Box::pin(r.watch(name).unwrap());
            assert!(poll(w.as_mut(), &waker).is_ready());
            assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
            w
        })
        .collect();
    (watches, count, waker)
}

#[test]
fn clone_panic_on_first_park_leaves_the_watch_sound() {
    for name in ["", "unregistered"] {
        let r = Reg::new();
        let (_others, count, _) = parked(&r, name, 3);
        let (_, bad) = faulty(Fault::Clone);
        let mut w = Box::pin(r.watch(name).unwrap());
        // The first poll yields at once and needs no clone.
        assert!(poll(w.as_mut(), &bad).is_ready());
        // Parking clones the waker: it panics before the node is linked.
        let caught = catch_unwind(AssertUnwindSafe(|| poll(w.as_mut(), &bad)));
        assert!(caught.is_err());
        // Writers never see a dangling node, and the others still hear the change.
        r.set(name, NotServing).unwrap();
        assert_eq!(count.count(), 3);
        // The watch still works, and drops cleanly.
        let (c, good) = counting();
        assert_eq!(poll(w.as_mut(), &good), Poll::Ready(Some(NotServing)));
        assert_eq!(poll(w.as_mut(), &good), Poll::Pending);
        r.set(name, Serving).unwrap();
        assert_eq!(c.count(), 1);
        drop(w);
        r.set(name, NotServing).unwrap();
        assert_eq!(
            count.count(),
            3,
            "the others were woken once and have not re-parked"
        );
    }
}

#[test]
fn clone_panic_while_parked_keeps_the_node_unlinkable() {
    // Parked with a good waker, then polled with one whose clone panics: the node stays
    // linked (with the old waker) and is unlinked when the watch drops.
    let r = Reg::new();
    let (c, good) = counting();
    let mut w = Box::pin(r.watch("").unwrap());
    assert!(poll(w.as_mut(), &good).is_ready());
    assert_eq!(poll(w.as_mut(), &good), Poll::Pending);
    let (_, bad) = faulty(Fault::Clone);
    assert!(catch_unwind(AssertUnwindSafe(|| poll(w.as_mut(), &bad))).is_err());
    r.set("", NotServing).unwrap();
    assert_eq!(c.count(), 1);
    assert_eq!(poll(w.as_mut(), &good), Poll::Ready(Some(NotServing)));
    assert_eq!(poll(w.as_mut(), &good), Poll::Pending);
    drop(w);
    assert!(r.locked(|l| l.waiters(0).is_empty()));
}

#[test]
fn wake_panic_does_not_stop_the_other_watchers() {
    // A panicking waker at the head, in the middle of the first batch, and in a later batch:
    // every other watcher is still woken, the status is set, and `set` then panics.
    for at in [0usize, 7, 20] {
        let r = Reg::new();
        let (count, waker) = counting();
        let (probe, bad) = faulty(Fault::Wake);
        let mut watches: Vec<W<'_>> = Vec::new();
        for i in 0..30 {
            let mut w = Box::pin(r.watch("").unwrap());
            let waker = if i == at { &bad } else { &waker };
            assert!(poll(w.as_mut(), waker).is_ready());
            assert_eq!(poll(w.as_mut(), waker), Poll::Pending);
            watches.push(w);
        }
        let caught = catch_unwind(AssertUnwindSafe(|| r.set("", NotServing)));
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"wake panics"));
        assert_eq!(r.get(""), Some(NotServing));
        assert_eq!(count.count(), 29, "panic at {at}");
        assert_eq!(probe.wakes.load(Ordering::SeqCst), 1);
        for w in &mut watches {
            assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(Some(NotServing)));
        }
    }
}

#[test]
fn wake_panics_on_a_registration_and_a_clear() {
    let r = Reg::new();
    let (others, count, _) = parked(&r, "later", 5);
    let (_, bad) = faulty(Fault::Wake);
    let mut w = Box::pin(r.watch("later").unwrap());
    assert!(poll(w.as_mut(), &bad).is_ready());
    assert_eq!(poll(w.as_mut(), &bad), Poll::Pending);
    assert!(catch_unwind(AssertUnwindSafe(|| r.set("later", Serving))).is_err());
    assert_eq!(count.count(), 5);
    assert_eq!(poll(w.as_mut(), &bad), Poll::Ready(Some(Serving)));
    assert_eq!(poll(w.as_mut(), &bad), Poll::Pending);
    drop(others);
    assert!(catch_unwind(AssertUnwindSafe(|| r.clear("later"))).is_err());
    assert_eq!(r.get("later"), None);
    assert_eq!(poll(w.as_mut(), &bad), Poll::Ready(Some(ServiceUnknown)));
}

#[test]
fn wake_by_ref_panic_is_never_reached() {
    // The core consumes wakers with `wake`; one whose `wake_by_ref` panics works normally.
    let r = Reg::new();
    let (probe, odd) = faulty(Fault::WakeByRef);
    let mut w = Box::pin(r.watch("").unwrap());
    assert!(poll(w.as_mut(), &odd).is_ready());
    assert_eq!(poll(w.as_mut(), &odd), Poll::Pending);
    r.set("", NotServing).unwrap();
    assert_eq!(probe.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(poll(w.as_mut(), &odd), Poll::Ready(Some(NotServing)));
}

#[test]
fn drop_panic_comes_out_of_poll_and_leaves_a_sound_watch() {
    // Parked with a waker whose drop panics, then re-polled with another: the old one is
    // dropped after the lock is released, its panic comes out of the poll, and the node is
    // parked with the new waker.
    let r = Reg::new();
    let (probe, bad) = faulty(Fault::Drop);
    let mut w = Box::pin(r.watch("").unwrap());
    assert!(poll(w.as_mut(), &bad).is_ready());
    assert_eq!(poll(w.as_mut(), &bad), Poll::Pending);
    assert_eq!(probe.clones.load(Ordering::SeqCst), 1);
    let (c, good) = counting();
    assert!(catch_unwind(AssertUnwindSafe(|| poll(w.as_mut(), &good))).is_err());
    r.set("", NotServing).unwrap();
    assert_eq!(c.count(), 1);
    assert_eq!(poll(w.as_mut(), &good), Poll::Ready(Some(NotServing)));
    // A parked node holding the panicking waker, dropped with the watch: the node is unlinked
    // before the waker's drop panics.
    assert_eq!(poll(w.as_mut(), &good), Poll::Pending);
    let mut w2 = Box::pin(r.watch("").unwrap());
    assert!(poll(w2.as_mut(), &bad).is_ready());
    assert_eq!(poll(w2.as_mut(), &bad), Poll::Pending);
    assert!(catch_unwind(AssertUnwindSafe(move || drop(w2))).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| drop(bad))).is_err());
    r.set("", Serving).unwrap();
    assert_eq!(c.count(), 2);
}

#[test]
fn parking_again_with_the_same_waker_does_not_clone_it() {
    let r = Reg::new();
    let (probe, waker) = faulty(Fault::WakeByRef);
    let mut w = Box::pin(r.watch("").unwrap());
    assert!(poll(w.as_mut(), &waker).is_ready());
    for _ in 0..5 {
        assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    }
    assert_eq!(probe.clones.load(Ordering::SeqCst), 1);
}
