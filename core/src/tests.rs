//! Unit tests of the registry, the watch stream and the codec. Small enough for Miri.

use core::{
    pin::Pin,
    task::{Context, Poll, Waker},
};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    task::Wake,
    thread,
};

use futures::{executor::block_on, StreamExt};
use futures_core::Stream;

use crate::{wire, Error, Registry, ServingStatus::*, SetOutcome, Watch, LIST_LIMIT, MAX_NAME};

type Reg = Registry<8>;

/// Polls once with a waker that counts its wake-ups.
fn poll<S: Stream + ?Sized>(s: Pin<&mut S>, waker: &Waker) -> Poll<Option<S::Item>> {
    s.poll_next(&mut Context::from_waker(waker))
}

#[derive(Default)]
struct CountWaker(AtomicUsize);
impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
fn counting() -> (Arc<CountWaker>, Waker) {
    let c = Arc::new(CountWaker::default());
    (c.clone(), Waker::from(c))
}

#[test]
fn new_registry_serves_root() {
    let r = Reg::new();
    assert_eq!(r.get(""), Some(Serving));
    assert_eq!(r.len(), 1);
    assert!(!r.is_shut_down());
}

#[test]
fn static_registry_is_const() {
    static R: Registry<4> = Registry::new();
    R.set("a", NotServing).unwrap();
    assert_eq!(R.get("a"), Some(NotServing));
}

#[test]
fn set_get_check_clear() {
    let r = Reg::new();
    assert_eq!(r.set("org.apache.Foo", Serving), Ok(SetOutcome::Changed));
    assert_eq!(r.set("org.apache.Foo", Serving), Ok(SetOutcome::Unchanged));
    assert_eq!(r.set("org.apache.Foo", NotServing), Ok(SetOutcome::Changed));
    assert_eq!(r.get("org.apache.Foo"), Some(NotServing));
    assert_eq!(r.check("org.apache.Foo"), Ok(NotServing));
    assert_eq!(r.check("org.apache.Bar"), Err(Error::NotFound));
    assert_eq!(r.set("x", Unknown), Ok(SetOutcome::Changed));
    assert_eq!(r.get("x"), Some(Unknown));
    assert_eq!(r.len(), 3);
    assert_eq!(r.clear("org.apache.Foo"), Ok(true));
    assert_eq!(r.clear("org.apache.Foo"), Ok(false));
    assert_eq!(r.get("org.apache.Foo"), None);
    assert_eq!(r.len(), 2);
}

#[test]
fn names_up_to_max_and_utf8_and_dubbo_keys() {
    let r = Registry::<16>::new();
    let max = "é".repeat(MAX_NAME / 2);
    assert_eq!(max.len(), MAX_NAME);
    r.set(&max, Serving).unwrap();
    assert_eq!(r.get(&max), Some(Serving));
    let too_long = "a".repeat(MAX_NAME + 1);
    assert_eq!(
        r.set(&too_long, Serving),
        Err(Error::NameTooLong { len: 201 })
    );
    assert_eq!(r.clear(&too_long), Err(Error::NameTooLong { len: 201 }));
    assert!(matches!(
        r.watch(&too_long),
        Err(Error::NameTooLong { len: 201 })
    ));
    assert_eq!(r.get(&too_long), None);
    for key in [
        "group/org.apache.Foo:1.0.0",
        "org.apache.Foo:1.0.0",
        "健康/服务",
    ] {
        r.set(key, NotServing).unwrap();
        assert_eq!(r.get(key), Some(NotServing), "{key}");
    }
    // Names that share a prefix or differ only past the first word are distinct.
    r.set("abcdefgh1", Serving).unwrap();
    r.set("abcdefgh2", NotServing).unwrap();
    assert_eq!(r.get("abcdefgh1"), Some(Serving));
    assert_eq!(r.get("abcdefgh2"), Some(NotServing));
    assert_eq!(r.get("abcdefgh"), None);
}

#[test]
fn service_unknown_is_refused() {
    let r = Reg::new();
    assert_eq!(r.set("a", ServiceUnknown), Err(Error::InvalidStatus));
    assert_eq!(r.get("a"), None);
}

#[test]
fn full_registry_is_an_error_and_loses_nothing() {
    let r = Registry::<4>::new();
    for name in ["a", "b", "c"] {
        r.set(name, Serving).unwrap();
    }
    assert_eq!(r.set("d", Serving), Err(Error::Full));
    assert_eq!(r.len(), 4);
    for name in ["", "a", "b", "c"] {
        assert_eq!(r.get(name), Some(Serving));
    }
    // Updating an existing name still works when full; clearing frees a slot.
    assert_eq!(r.set("a", NotServing), Ok(SetOutcome::Changed));
    r.clear("b").unwrap();
    assert_eq!(r.set("d", Serving), Ok(SetOutcome::Changed));
    assert_eq!(r.get("d"), Some(Serving));
    assert_eq!(r.get("b"), None);
}

#[test]
fn churn_keeps_lookups_correct() {
    // Tombstones and their reuse: many names through a small table.
    let r = Registry::<8>::new();
    for round in 0..50 {
        let names: Vec<String> = (0..5).map(|i| format!("svc-{round}-{i}")).collect();
        for n in &names {
            r.set(n, Serving).unwrap();
        }
        for n in &names {
            assert_eq!(r.get(n), Some(Serving));
        }
        assert_eq!(r.len(), 6);
        for n in &names {
            assert_eq!(r.clear(n), Ok(true));
            assert_eq!(r.get(n), None);
        }
        assert_eq!(r.get(""), Some(Serving));
    }
}

#[test]
fn shutdown_and_resume() {
    let r = Reg::new();
    r.set("a", Serving).unwrap();
    r.set("b", Unknown).unwrap();
    r.shutdown();
    assert!(r.is_shut_down());
    for n in ["", "a", "b"] {
        assert_eq!(r.get(n), Some(NotServing));
    }
    assert_eq!(r.set("a", Serving), Ok(SetOutcome::Ignored));
    assert_eq!(r.set("new", Serving), Ok(SetOutcome::Ignored));
    assert_eq!(r.get("a"), Some(NotServing));
    assert_eq!(r.get("new"), None);
    // Errors still win over being ignored: the caller learns its input was bad.
    assert_eq!(r.set("a", ServiceUnknown), Err(Error::InvalidStatus));
    r.resume();
    assert!(!r.is_shut_down());
    for n in ["", "a", "b"] {
        assert_eq!(r.get(n), Some(Serving));
    }
    assert_eq!(r.set("a", NotServing), Ok(SetOutcome::Changed));
}

#[test]
fn iter_lists_every_name() {
    let r = Reg::new();
    r.set("a", NotServing).unwrap();
    r.set("b", Serving).unwrap();
    r.clear("").unwrap();
    let mut got: Vec<_> = r
        .iter()
        .map(|e| (e.name().to_owned(), e.status()))
        .collect();
    got.sort();
    assert_eq!(got, [("a".into(), NotServing), ("b".into(), Serving)]);
    let debug = format!("{r:?}");
    assert!(debug.contains(r#""a": NotServing"#), "{debug}");
}

#[test]
fn watch_first_item_is_immediate() {
    let r = Reg::new();
    let (_, waker) = counting();
    let mut w = Box::pin(r.watch("").unwrap());
    assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(Some(Serving)));
    assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    let mut u = Box::pin(r.watch("nope").unwrap());
    assert_eq!(poll(u.as_mut(), &waker), Poll::Ready(Some(ServiceUnknown)));
    assert_eq!(poll(u.as_mut(), &waker), Poll::Pending);
}

#[test]
fn watch_follows_changes_without_duplicates() {
    let r = Reg::new();
    r.set("a", Serving).unwrap();
    let (count, waker) = counting();
    let mut w = Box::pin(r.watch("a").unwrap());
    assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(Some(Serving)));
    assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    // Same value: nobody woken, nothing yielded.
    r.set("a", Serving).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    r.set("a", NotServing).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(Some(NotServing)));
    // A change and back before the watcher runs: nothing to say (never two equal in a row).
    assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    r.set("a", Serving).unwrap();
    r.set("a", NotServing).unwrap();
    assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    // Other names do not wake this watcher.
    let before = count.0.load(Ordering::SeqCst);
    r.set("b", Serving).unwrap();
    r.set("b", NotServing).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), before);
}

#[test]
fn watch_latest_wins_under_burst() {
    let r = Reg::new();
    let mut w = Box::pin(r.watch("a").unwrap());
    assert_eq!(block_on(w.next()), Some(ServiceUnknown));
    for i in 0..1000 {
        r.set("a", if i % 2 == 0 { Serving } else { NotServing })
            .unwrap();
    }
    assert_eq!(block_on(w.next()), Some(NotServing));
    let (_, waker) = counting();
    assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
}

#[test]
fn watch_follows_register_clear_reregister() {
    let r = Reg::new();
    let mut w = Box::pin(r.watch("svc").unwrap());
    assert_eq!(block_on(w.next()), Some(ServiceUnknown));
    r.set("svc", Serving).unwrap();
    assert_eq!(block_on(w.next()), Some(Serving));
    r.clear("svc").unwrap();
    assert_eq!(block_on(w.next()), Some(ServiceUnknown));
    r.set("svc", NotServing).unwrap();
    assert_eq!(block_on(w.next()), Some(NotServing));
}

#[test]
fn slot_reuse_never_leaks_another_name() {
    // Registry<2>: "" plus one slot, so "b" must reuse the slot "a" had.
    let r = Registry::<2>::new();
    r.set("a", Serving).unwrap();
    let mut w = Box::pin(r.watch("a").unwrap());
    assert_eq!(block_on(w.next()), Some(Serving));
    r.clear("a").unwrap();
    r.set("b", NotServing).unwrap();
    assert_eq!(block_on(w.next()), Some(ServiceUnknown));
    let (_, waker) = counting();
    assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    r.set("b", Serving).unwrap();
    assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    r.clear("b").unwrap();
    r.set("a", NotServing).unwrap();
    assert_eq!(block_on(w.next()), Some(NotServing));
}

#[test]
fn shutdown_reaches_watchers_and_end_watches_ends_them() {
    let r = Reg::new();
    let mut root = Box::pin(r.watch("").unwrap());
    let mut unknown = Box::pin(r.watch("x").unwrap());
    assert_eq!(block_on(root.next()), Some(Serving));
    assert_eq!(block_on(unknown.next()), Some(ServiceUnknown));
    r.shutdown();
    r.end_watches();
    assert_eq!(block_on(root.next()), Some(NotServing));
    assert_eq!(block_on(root.next()), None);
    assert_eq!(block_on(root.next()), None);
    assert_eq!(block_on(unknown.next()), None);
    // Watches made afterwards are not ended.
    r.resume();
    let mut later = Box::pin(r.watch("").unwrap());
    assert_eq!(block_on(later.next()), Some(Serving));
    let (_, waker) = counting();
    assert_eq!(poll(later.as_mut(), &waker), Poll::Pending);
}

#[test]
fn resume_reaches_watchers() {
    let r = Reg::new();
    let mut w = Box::pin(r.watch("").unwrap());
    assert_eq!(block_on(w.next()), Some(Serving));
    r.shutdown();
    assert_eq!(block_on(w.next()), Some(NotServing));
    r.resume();
    assert_eq!(block_on(w.next()), Some(Serving));
}

#[test]
fn dropping_parked_watches_unlinks_them() {
    let r = Reg::new();
    let (count, waker) = counting();
    let mut watches: Vec<Pin<Box<Watch<&Reg, &str>>>> =
        (0..10).map(|_| Box::pin(r.watch("").unwrap())).collect();
    for w in &mut watches {
        assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(Some(Serving)));
        assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    }
    // Drop every other one (head, middle and tail of the list), then wake the rest.
    let mut i = 0;
    watches.retain(|_| {
        i += 1;
        i % 2 == 0
    });
    r.set("", NotServing).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 5);
    for w in &mut watches {
        assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(Some(NotServing)));
    }
}

#[test]
fn more_watchers_than_a_wake_batch() {
    let r = Reg::new();
    let (count, waker) = counting();
    let mut watches: Vec<_> = (0..40).map(|_| Box::pin(r.watch("").unwrap())).collect();
    for w in &mut watches {
        let _ = poll(w.as_mut(), &waker);
        assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    }
    r.set("", NotServing).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 40);
}

#[test]
fn watch_with_arc_and_owned_name_is_send_static() {
    let r = Arc::new(Reg::new());
    let w = Watch::new(Arc::clone(&r), String::from("svc")).unwrap();
    let handle = thread::spawn(move || {
        let mut w = Box::pin(w);
        let mut seen = Vec::new();
        while seen.last() != Some(&Serving) {
            seen.push(block_on(w.next()).unwrap());
        }
        seen
    });
    r.set("svc", Serving).unwrap();
    // Whatever the interleaving, the watcher ends on SERVING, with nothing else in between.
    let seen = handle.join().unwrap();
    assert!(
        seen == [ServiceUnknown, Serving] || seen == [Serving],
        "{seen:?}"
    );
}

#[test]
fn concurrent_setters_and_watchers_converge() {
    let r = Arc::new(Registry::<16>::new());
    let mut handles = Vec::new();
    for t in 0..2 {
        let r = Arc::clone(&r);
        handles.push(thread::spawn(move || {
            for i in 0..if cfg!(miri) { 20 } else { 2000 } {
                r.set(
                    "a",
                    if (i + t) % 2 == 0 {
                        Serving
                    } else {
                        NotServing
                    },
                )
                .unwrap();
            }
        }));
    }
    let watcher = {
        let r = Arc::clone(&r);
        thread::spawn(move || {
            let mut w = Box::pin(Watch::new(r, "a").unwrap());
            let mut last = None;
            while let Some(s) = block_on(w.next()) {
                assert_ne!(Some(s), last, "two equal messages in a row");
                last = Some(s);
                if s == Unknown {
                    break;
                }
            }
        })
    };
    for h in handles {
        h.join().unwrap();
    }
    r.set("a", Unknown).unwrap();
    watcher.join().unwrap();
    assert_eq!(r.get("a"), Some(Unknown));
}

#[test]
fn readers_see_consistent_statuses_during_writes() {
    let r = Arc::new(Registry::<16>::new());
    r.set("long-name-over-several-words-xxxxxxxx", Serving)
        .unwrap();
    let writer = {
        let r = Arc::clone(&r);
        thread::spawn(move || {
            for i in 0..if cfg!(miri) { 20 } else { 5000 } {
                let name = if i % 2 == 0 { "p" } else { "q" };
                r.set(name, Serving).unwrap();
                r.clear(name).unwrap();
            }
        })
    };
    for _ in 0..if cfg!(miri) { 20 } else { 5000 } {
        assert_eq!(
            r.get("long-name-over-several-words-xxxxxxxx"),
            Some(Serving)
        );
        assert_eq!(r.get(""), Some(Serving));
    }
    writer.join().unwrap();
}

// === wire ===

#[test]
fn decode_requests() {
    assert_eq!(wire::decode_check_request(b""), Ok(""));
    assert_eq!(wire::decode_check_request(b"\x0a\x03abc"), Ok("abc"));
    // last value wins
    assert_eq!(wire::decode_check_request(b"\x0a\x01a\x0a\x01b"), Ok("b"));
    // unknown fields of every wire type are skipped
    let skip = b"\x10\x96\x01\x19\x01\x02\x03\x04\x05\x06\x07\x08\x22\x02hi\x2d\x01\x02\x03\x04\x33\x08\x01\x34\x0a\x01z";
    assert_eq!(wire::decode_check_request(skip), Ok("z"));
    use wire::DecodeError::*;
    assert_eq!(wire::decode_check_request(b"\x0a"), Err(Truncated));
    assert_eq!(wire::decode_check_request(b"\x0a\x80"), Err(Truncated));
    assert_eq!(wire::decode_check_request(b"\x00"), Err(BadKey));
    assert_eq!(wire::decode_check_request(b"\x0e"), Err(BadKey));
    assert_eq!(wire::decode_check_request(b"\x14"), Err(BadGroup));
    assert_eq!(
        wire::decode_check_request(b"\x0c"),
        Err(WrongWireType {
            field: 1,
            wire_type: 4
        })
    );
    assert_eq!(wire::decode_check_request(b"\x13\x1c"), Err(BadGroup));
    assert_eq!(wire::decode_check_request(b"\x13"), Err(Truncated));
    assert_eq!(
        wire::decode_check_request(b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
        Ok("")
    );
    assert_eq!(
        wire::decode_check_request(b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"),
        Err(BadVarint)
    );
    assert_eq!(
        wire::decode_check_request(b"\x0d\x00\x00\x00\x00"),
        Err(WrongWireType {
            field: 1,
            wire_type: 5
        })
    );
    let mut long = vec![0x0a, 201, 1];
    long.extend(std::iter::repeat_n(b'a', 201));
    assert_eq!(
        wire::decode_check_request(&long),
        Err(NameTooLong { len: 201 })
    );
    assert_eq!(wire::decode_list_request(b"\x08\x01"), Ok(()));
    assert_eq!(wire::decode_list_request(b"\x08"), Err(Truncated));
}

#[test]
fn handlers_answer_like_grpc() {
    let r = Reg::new();
    let mut out = [0u8; 256];
    assert_eq!(wire::handle_check(&r, b"", &mut out), Ok(2));
    assert_eq!(&out[..2], b"\x08\x01");
    let err = wire::handle_check(&r, b"\x0a\x01x", &mut out).unwrap_err();
    assert_eq!(err.code(), crate::GrpcCode::NotFound);
    let err = wire::handle_check(&r, b"\xff", &mut out).unwrap_err();
    assert_eq!(err.code(), crate::GrpcCode::InvalidArgument);
    r.set("a", Unknown).unwrap();
    assert_eq!(wire::handle_check(&r, b"\x0a\x01a", &mut out), Ok(0));
    let n = wire::handle_list(&r, b"", &mut out).unwrap();
    assert!(n > 0);
    let mut small = [0u8; 3];
    assert!(matches!(
        wire::handle_list(&r, b"", &mut small),
        Err(wire::RpcError::BufferTooSmall { needed }) if needed == n
    ));
}

#[test]
fn list_over_limit_is_resource_exhausted() {
    let r = Registry::<256>::new();
    for i in 0..LIST_LIMIT - 1 {
        r.set(&format!("s{i}"), Serving).unwrap();
    }
    let mut out = vec![0u8; 8192];
    assert!(wire::handle_list(&r, b"", &mut out).is_ok());
    r.set("one-too-many", Serving).unwrap();
    let err = wire::handle_list(&r, b"", &mut out).unwrap_err();
    assert_eq!(err.code(), crate::GrpcCode::ResourceExhausted);
}

#[test]
fn const_and_runtime_hash_agree() {
    use crate::registry::{hash, hash_const};
    let long = "x".repeat(MAX_NAME);
    for name in [
        "",
        "a",
        "abcdefg",
        "abcdefgh",
        "abcdefghi",
        "org.apache.dubbogo.samples.api.Greeter",
        &long,
    ] {
        assert_eq!(hash(name.as_bytes()), hash_const(name.as_bytes()), "{name}");
    }
}

#[test]
fn heap_constructors_match_new() {
    for r in [Registry::<8>::new_boxed(), Box::new(Registry::<8>::new())] {
        assert_eq!(r.len(), 1);
        assert_eq!(r.get(""), Some(Serving));
        r.set("a", NotServing).unwrap();
        let mut w = Box::pin(r.watch("a").unwrap());
        assert_eq!(block_on(w.next()), Some(NotServing));
        r.set("a", Serving).unwrap();
        assert_eq!(block_on(w.next()), Some(Serving));
    }
    let a = Registry::<8>::new_arc();
    assert_eq!(a.get(""), Some(Serving));
    // Big registries never touch the stack: this would overflow a 64 KiB thread otherwise.
    let big = thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| Registry::<4096>::new_arc().len())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(big, 1);
}
