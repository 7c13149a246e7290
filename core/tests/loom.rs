//! loom models of the races between setters, watchers, drops, clears and ending watches.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dubbo-health-core --profile loom --test loom`
//! (`make test-loom`). In a plain build this file is empty.
#![cfg(loom)]

use std::sync::Arc;

use dubbo_health_core::{Registry, ServingStatus::*, Watch};
use futures::{Stream, StreamExt};
use loom::{future::block_on, thread};

type Reg = Registry<2>;

/// Drives `watch` until it has yielded the registry's current status for `name`.
/// A lost wake-up makes loom report a deadlock.
fn converge(watch: &mut std::pin::Pin<Box<Watch<Arc<Reg>, &'static str>>>, reg: &Reg) {
    let want = reg.get(watch.name()).unwrap_or(ServiceUnknown);
    while watch.last() != Some(want) {
        let got = block_on(watch.next()).expect("watch ended");
        assert_ne!(got, Unknown, "status of another name leaked");
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
        setter.join().unwrap();
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
        let waker = futures::task::noop_waker();
        let _ = watch
            .as_mut()
            .poll_next(&mut std::task::Context::from_waker(&waker));
        a.join().unwrap();
        b.join().unwrap();
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
        let waker = futures::task::noop_waker();
        let _ = watch
            .as_mut()
            .poll_next(&mut std::task::Context::from_waker(&waker));
        assert_ne!(watch.last(), Some(Unknown));
        churn.join().unwrap();
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
