//! Proves the core allocates nothing: set, get, check, watch polling (parking in slot lists
//! and buckets, waking, re-parking, dropping), registration of new names, clear (with index
//! shifts), shutdown/resume, end_watches, iteration and the wire handlers all run under a
//! global allocator that counts every allocation made on this thread — on a `static`
//! `FixedRegistry` and on a `HeapRegistry` (which allocates only when it is made).
#![cfg(not(loom))]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    pin::pin,
    sync::atomic::{AtomicUsize, Ordering},
    task::{Context, Poll, Waker},
};

use dubbo_health_core::{wire, FixedRegistry, HeapRegistry, Registry, ServingStatus::*, Storage};
use futures_core::Stream;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// Safety: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // Safety: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCATIONS.load(Ordering::SeqCst) - before)
}

static REGISTRY: FixedRegistry<64> = FixedRegistry::new();

/// Everything a host and its watchers do, on one registry.
fn workload<S: Storage>(r: &Registry<S>) {
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    r.set("org.apache.dubbogo.samples.api.Greeter", Serving)
        .unwrap();
    r.set("group/org.apache.Foo:1.0.0", NotServing).unwrap();
    assert_eq!(
        r.get("org.apache.dubbogo.samples.api.Greeter"),
        Some(Serving)
    );
    assert!(r.check("missing").is_err());

    let mut known = pin!(r.watch("org.apache.dubbogo.samples.api.Greeter").unwrap());
    let mut unknown = pin!(r.watch("later").unwrap());
    let mut other = pin!(r.watch("never").unwrap());
    for _ in 0..100 {
        assert!(matches!(
            known.as_mut().poll_next(&mut cx),
            Poll::Ready(Some(_))
        ));
        assert!(known.as_mut().poll_next(&mut cx).is_pending());
        let status = if known.last() == Some(Serving) {
            NotServing
        } else {
            Serving
        };
        r.set("org.apache.dubbogo.samples.api.Greeter", status)
            .unwrap();
    }
    assert_eq!(
        other.as_mut().poll_next(&mut cx),
        Poll::Ready(Some(ServiceUnknown))
    );
    assert!(other.as_mut().poll_next(&mut cx).is_pending());
    assert_eq!(
        unknown.as_mut().poll_next(&mut cx),
        Poll::Ready(Some(ServiceUnknown))
    );
    assert!(unknown.as_mut().poll_next(&mut cx).is_pending());
    r.set("later", Serving).unwrap();
    assert_eq!(
        unknown.as_mut().poll_next(&mut cx),
        Poll::Ready(Some(Serving))
    );
    assert!(unknown.as_mut().poll_next(&mut cx).is_pending());
    r.clear("later").unwrap();
    assert_eq!(
        unknown.as_mut().poll_next(&mut cx),
        Poll::Ready(Some(ServiceUnknown))
    );
    assert!(unknown.as_mut().poll_next(&mut cx).is_pending());

    // Churn: names registered and cleared, slots reused, index runs shifted.
    for round in 0..50u8 {
        let mut name = *b"churn-000";
        name[6] = b'0' + round / 10;
        name[7] = b'0' + round % 10;
        for last in b'0'..=b'9' {
            name[8] = last;
            r.set(core::str::from_utf8(&name).unwrap(), Serving)
                .unwrap();
        }
        for last in b'0'..=b'9' {
            name[8] = last;
            assert_eq!(r.clear(core::str::from_utf8(&name).unwrap()), Ok(true));
        }
    }

    // Dubbo: keys, exports tied to their interface, "" derived from required names (and
    // their placeholders), with a watcher parked on "" and on the interface.
    let key = dubbo_health_core::service_key(
        "org.apache.Foo",
        "grp",
        "0.0.0",
        dubbo_health_core::KeyForm::DubboJava,
    )
    .unwrap();
    assert_eq!(&*key, "grp/org.apache.Foo:0.0.0");
    let mut root = pin!(r.watch("").unwrap());
    let mut bare = pin!(r.watch("org.apache.Foo").unwrap());
    assert!(root.as_mut().poll_next(&mut cx).is_ready());
    assert!(bare.as_mut().poll_next(&mut cx).is_ready());
    assert!(root.as_mut().poll_next(&mut cx).is_pending());
    assert!(bare.as_mut().poll_next(&mut cx).is_pending());
    assert_eq!(r.require("org.apache.Foo"), Ok(true));
    assert_eq!(r.require("db"), Ok(true));
    assert_eq!(
        root.as_mut().poll_next(&mut cx),
        Poll::Ready(Some(NotServing))
    );
    r.export("org.apache.Foo", "grp", "0.0.0", Serving).unwrap();
    r.export("org.apache.Foo", "grp", "1.0.0", Serving).unwrap();
    r.set("grp/org.apache.Foo:1.0.0", NotServing).unwrap();
    r.set("db", Serving).unwrap();
    assert_eq!(r.get(""), Some(Serving));
    assert_eq!(root.as_mut().poll_next(&mut cx), Poll::Ready(Some(Serving)));
    assert_eq!(bare.as_mut().poll_next(&mut cx), Poll::Ready(Some(Serving)));
    assert_eq!(r.clear("db"), Ok(true));
    assert_eq!(r.unexport("org.apache.Foo", "grp", "0.0.0"), Ok(true));
    assert_eq!(r.get("org.apache.Foo"), Some(NotServing));
    assert_eq!(r.unrequire("db"), Ok(true));
    assert!(r.is_required("org.apache.Foo"));

    r.shutdown();
    r.resume();
    let mut names = 0;
    for entry in r.iter() {
        names += entry.name().len();
    }
    assert!(names > 0);

    let mut out = [0u8; 512];
    assert_eq!(
        wire::handle_check(r, b"\x0a\x05later", &mut out),
        Err(wire::RpcError::NotFound)
    );
    assert!(wire::handle_list(r, b"", &mut out).is_ok());
    r.end_watches();
    assert_eq!(
        known.as_mut().poll_next(&mut cx),
        Poll::Ready(Some(Serving))
    );
    assert_eq!(known.as_mut().poll_next(&mut cx), Poll::Ready(None));
    assert_eq!(unknown.as_mut().poll_next(&mut cx), Poll::Ready(None));
    assert_eq!(other.as_mut().poll_next(&mut cx), Poll::Ready(None));
}

#[test]
fn the_core_never_allocates() {
    // The counter works: an allocation inside `counted` is seen.
    let (_, n) = counted(|| Box::new(1u8));
    assert_eq!(n, 1, "the counting allocator must see allocations");

    let ((), allocations) = counted(|| workload(&REGISTRY));
    assert_eq!(
        allocations, 0,
        "the fixed registry allocated {allocations} times"
    );

    let heap = HeapRegistry::with_capacity(64).unwrap();
    let ((), allocations) = counted(|| workload(&heap));
    assert_eq!(
        allocations, 0,
        "the heap registry allocated {allocations} times"
    );
}
