//! loom models of the races between setters, watchers, drops, clears, index shifts and
//! ending watches.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dubbo-health-core --profile loom --test loom`
//! (`make test-loom`). In a plain build this file is empty.
#![cfg(loom)]

use std::sync::Arc;

use dubbo_health_core::{FixedRegistry, Registry, ServingStatus::*, Storage, Watch};
use futures::{Stream, StreamExt};
use loom::{future::block_on, thread};

type Reg = FixedRegistry<2>;

/// Drives `watch` until it has yielded the registry's current status for `name`.
/// A lost wake-up makes loom report a deadlock.
fn converge<S: Storage, N: AsRef<str>>(
    watch: &mut std::pin::Pin<Box<Watch<Arc<Registry<S>>, N>>>,
    reg: &Registry<S>,
) {
    let want = reg.get(watch.name()).unwrap_or(ServiceUnknown);
    while watch.last() != Some(want) {
        let got = block_on(watch.next()).expect("watch ended");
        assert_ne!(got, Unknown, "status of another name leaked");
    }
}

/// A waker that counts the wake-ups done by threads other than the one that made it.
struct ForeignWakes {
    owner: thread::ThreadId,
    count: loom::sync::atomic::AtomicUsize,
}

impl std::task::Wake for ForeignWakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if thread::current().id() != self.owner {
            self.count
                .fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Polls `watch` once with a waker that counts other threads' wake-ups: whether it parked,
/// and the counter.
fn park_counting<S: Storage, N: AsRef<str>>(
    watch: &mut std::pin::Pin<Box<Watch<Arc<Registry<S>>, N>>>,
) -> (bool, Arc<ForeignWakes>) {
    let counter = Arc::new(ForeignWakes {
        owner: thread::current().id(),
        count: loom::sync::atomic::AtomicUsize::new(0),
    });
    let waker = std::task::Waker::from(Arc::clone(&counter));
    let parked = watch
        .as_mut()
        .poll_next(&mut std::task::Context::from_waker(&waker))
        .is_pending();
    (parked, counter)
}

/// After the writers are joined: a watch that parked and now lags the registry must have been
/// woken. (Polling it would hide a lost wake-up, since a poll re-reads the status.)
fn assert_heard<S: Storage, N: AsRef<str>>(
    watch: &std::pin::Pin<Box<Watch<Arc<Registry<S>>, N>>>,
    reg: &Registry<S>,
    (parked, counter): (bool, Arc<ForeignWakes>),
) {
    let now = reg.get(watch.name()).unwrap_or(ServiceUnknown);
    if parked && watch.last() != Some(now) {
        assert!(
            counter.count.load(loom::sync::atomic::Ordering::SeqCst) > 0,
            "a parked watch missed the change to {now:?}"
        );
    }
}

#[test]
fn set_races_first_poll() {
    loom::model(|| {
        let reg = Arc::new(Reg::new());
        let setter = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || reg.set("a", Serving).unwrap())
        };
        let mut watch = Box::pin(Watch::new(Arc::clone(&reg), "a").unwrap());
        let first = block_on(watch.next()).unwrap();
        assert!(first == ServiceUnknown || first == Serving);
        let park = park_counting(&mut watch);
        setter.join().unwrap();
        assert_heard(&watch, &reg, park);
        converge(&mut watch, &reg);
        assert_eq!(watch.last(), Some(Serving));
    });
}

#[test]
fn set_races_parked_watch_drop() {
    loom::model(|| {
        let reg = Arc::new(Reg::new());
        let mut watch = Box::pin(Watch::new(Arc::clone(&reg), "").unwrap());
        assert_eq!(block_on(watch.next()), Some(Serving));
        let setter = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || reg.set("", NotServing).unwrap())
        };
        // Park (or see the change), then drop while the setter may be waking us.
        let waker = futures::task::noop_waker();
        let _ = watch
            .as_mut()
            .poll_next(&mut std::task::Context::from_waker(&waker));
        drop(watch);
        setter.join().unwrap();
        assert_eq!(reg.get(""), Some(NotServing));
    });
}

#[test]
fn two_setters_final_status_delivered() {
    loom::model(|| {
        let reg = Arc::new(Reg::new());
        let mut watch = Box::pin(Watch::new(Arc::clone(&reg), "").unwrap());
        assert_eq!(block_on(watch.next()), Some(Serving));
        let a = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || reg.set("", NotServing).unwrap())
        };
        let b = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || reg.set("", Serving).unwrap())
        };
        // Park while the setters run, so their wake rounds race the linking.
        let park = park_counting(&mut watch);
        a.join().unwrap();
        b.join().unwrap();
        assert_heard(&watch, &reg, park);
        converge(&mut watch, &reg);
    });
}

#[test]
fn clear_and_reuse_never_leaks_another_name() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        // Two slots: "" and one more, so "b" reuses the slot "a" had.
        let reg = Arc::new(Reg::new());
        reg.set("a", Serving).unwrap();
        let mut watch = Box::pin(Watch::new(Arc::clone(&reg), "a").unwrap());
        assert_eq!(block_on(watch.next()), Some(Serving));
        let churn = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || {
                reg.clear("a").unwrap();
                reg.set("b", Unknown).unwrap();
                reg.clear("b").unwrap();
                reg.set("a", NotServing).unwrap();
            })
        };
        // Whatever the watcher sees meanwhile, it is never "b"'s UNKNOWN (checked in
        // `converge`), and it ends on "a"'s final status.
        let park = park_counting(&mut watch);
        assert_ne!(watch.last(), Some(Unknown));
        churn.join().unwrap();
        assert_heard(&watch, &reg, park);
        converge(&mut watch, &reg);
        assert_eq!(watch.last(), Some(NotServing));
    });
}

#[test]
fn end_watches_delivers_not_serving_then_ends() {
    loom::model(|| {
        let reg = Arc::new(Reg::new());
        let mut watch = Box::pin(Watch::new(Arc::clone(&reg), "").unwrap());
        let mut unknown = Box::pin(Watch::new(Arc::clone(&reg), "x").unwrap());
        assert_eq!(block_on(watch.next()), Some(Serving));
        assert_eq!(block_on(unknown.next()), Some(ServiceUnknown));
        let stopper = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || {
                reg.shutdown();
                reg.end_watches();
            })
        };
        let mut seen = Vec::new();
        while let Some(s) = block_on(watch.next()) {
            seen.push(s);
        }
        assert_eq!(seen, [NotServing]);
        assert_eq!(block_on(unknown.next()), None);
        stopper.join().unwrap();
    });
}

#[test]
fn a_writers_wake_ends_while_another_thread_re_parks_and_sets() {
    // Three watchers parked on "" (a wake batch is 2 under loom, so the writer takes two lock
    // rounds). While it works, the main thread re-parks a woken watcher and sets again, twice.
    // The writer wakes only nodes parked before its own bump: at most one wake per watcher,
    // never the re-parked ones again (with a target re-read each round it could go on).
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let reg = Arc::new(Reg::new());
        let counter = Arc::new(ForeignWakes {
            owner: thread::current().id(),
            count: loom::sync::atomic::AtomicUsize::new(0),
        });
        let waker = std::task::Waker::from(Arc::clone(&counter));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut watches: Vec<_> = (0..3)
            .map(|_| Box::pin(Watch::new(Arc::clone(&reg), "").unwrap()))
            .collect();
        for w in &mut watches {
            assert!(w.as_mut().poll_next(&mut cx).is_ready());
            assert!(w.as_mut().poll_next(&mut cx).is_pending());
        }
        let writer = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || reg.set("", NotServing).unwrap())
        };
        for status in [Serving, NotServing] {
            // Re-park (after seeing whatever changed), then change the status again.
            while watches[0].as_mut().poll_next(&mut cx).is_ready() {}
            reg.set("", status).unwrap();
        }
        writer.join().unwrap();
        let foreign = counter.count.load(loom::sync::atomic::Ordering::SeqCst);
        assert!(
            foreign <= 3,
            "the writer woke {foreign} times for 3 parked watchers"
        );
        for w in &mut watches {
            converge(w, &reg);
        }
    });
}

#[test]
fn a_lock_free_get_never_misses_a_name_a_removal_moves() {
    // "y" and "x0" share a home, so "x0" sits past "y" in the run; clearing "y" shifts "x0"
    // back into its place while a reader looks "x0" up without the lock. (The reader runs on
    // the spawned thread: loom backtracks on the pending operations of live threads, so a
    // reader that finished first would never be re-run against the writer.)
    loom::model(|| {
        let reg = Arc::new(FixedRegistry::<3>::new());
        let home = reg.__home("x0");
        let y = (1..)
            .map(|i| format!("y{i}"))
            .find(|n| reg.__home(n) == home)
            .unwrap();
        reg.set(&y, Serving).unwrap();
        reg.set("x0", NotServing).unwrap();
        let reader = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || assert_eq!(reg.get("x0"), Some(NotServing)))
        };
        assert_eq!(reg.clear(&y), Ok(true));
        reader.join().unwrap();
        assert_eq!(reg.get("x0"), Some(NotServing));
    });
}

#[test]
fn a_registration_reaches_its_bucket_while_another_name_parks_there() {
    // Watchers of two unregistered names with one home share a bucket; registering one wakes
    // its watcher (racing that watcher's own park) and never the other's.
    loom::model(|| {
        let reg = Arc::new(FixedRegistry::<3>::new());
        let home = reg.__home("a0");
        let b = (1..)
            .map(|i| format!("b{i}"))
            .find(|n| reg.__home(n) == home)
            .unwrap();
        let counter = Arc::new(ForeignWakes {
            owner: thread::current().id(),
            count: loom::sync::atomic::AtomicUsize::new(0),
        });
        let waker = std::task::Waker::from(Arc::clone(&counter));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut other = Box::pin(Watch::new(Arc::clone(&reg), b).unwrap());
        assert_eq!(
            other.as_mut().poll_next(&mut cx),
            std::task::Poll::Ready(Some(ServiceUnknown))
        );
        assert!(other.as_mut().poll_next(&mut cx).is_pending());
        let setter = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || reg.set("a0", Serving).unwrap())
        };
        let mut watch = Box::pin(Watch::new(Arc::clone(&reg), "a0").unwrap());
        let first = block_on(watch.next()).unwrap();
        assert!(first == ServiceUnknown || first == Serving);
        setter.join().unwrap();
        converge(&mut watch, &reg);
        assert_eq!(watch.last(), Some(Serving));
        assert_eq!(counter.count.load(loom::sync::atomic::Ordering::SeqCst), 0);
    });
}

#[test]
fn a_bucket_walk_resumes_at_its_marker_while_neighbours_leave() {
    // Two watchers of other names, then one of "a0", all in one bucket. A round scans 2 nodes
    // under loom, so the registration parks its marker before "a0"'s node between rounds,
    // while the main thread drops the two watchers around it.
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let reg = Arc::new(FixedRegistry::<3>::new());
        let home = reg.__home("a0");
        let others: Vec<String> = (1..)
            .map(|i| format!("b{i}"))
            .filter(|n| reg.__home(n) == home)
            .take(2)
            .collect();
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut parked = Vec::new();
        for name in others.into_iter().chain(["a0".to_owned()]) {
            let mut w = Box::pin(Watch::new(Arc::clone(&reg), name).unwrap());
            assert!(w.as_mut().poll_next(&mut cx).is_ready());
            assert!(w.as_mut().poll_next(&mut cx).is_pending());
            parked.push(w);
        }
        let mut mine = parked.pop().unwrap();
        // Re-park "a0"'s watcher with a waker that counts the setter's wake-ups.
        let counter = Arc::new(ForeignWakes {
            owner: thread::current().id(),
            count: loom::sync::atomic::AtomicUsize::new(0),
        });
        let counting = std::task::Waker::from(Arc::clone(&counter));
        assert!(mine
            .as_mut()
            .poll_next(&mut std::task::Context::from_waker(&counting))
            .is_pending());
        let setter = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || reg.set("a0", Serving).unwrap())
        };
        drop(parked);
        setter.join().unwrap();
        // The registration woke it (polling it again would hide a lost wake-up).
        assert_eq!(counter.count.load(loom::sync::atomic::Ordering::SeqCst), 1);
        converge(&mut mine, &reg);
        assert_eq!(mine.last(), Some(Serving));
    });
}

#[test]
fn derived_root_follows_two_required_names_set_at_once() {
    loom::model(|| {
        let reg = Arc::new(FixedRegistry::<4>::new());
        reg.set("a", Serving).unwrap();
        reg.set("b", Serving).unwrap();
        reg.require("a").unwrap();
        reg.require("b").unwrap();
        let mut watch = Box::pin(Watch::new(Arc::clone(&reg), "").unwrap());
        assert_eq!(block_on(watch.next()), Some(Serving));
        let a = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || reg.set("a", NotServing).unwrap())
        };
        let b = {
            let reg = Arc::clone(&reg);
            thread::spawn(move || reg.set("b", NotServing).unwrap())
        };
        // Park while the setters run: each setter's change of "" wakes it.
        let park = park_counting(&mut watch);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(reg.get(""), Some(NotServing));
        assert_heard(&watch, &reg, park);
        converge(&mut watch, &reg);
        // The counts survived the race: both back up makes "" SERVING again.
        reg.set("a", Serving).unwrap();
        assert_eq!(reg.get(""), Some(NotServing));
        reg.set("b", Serving).unwrap();
        assert_eq!(reg.get(""), Some(Serving));
        converge(&mut watch, &reg);
    });
}
