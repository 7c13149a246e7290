//! The watch stream: first item, changes, latest wins, scoped and bounded wake-ups.

use core::{pin::Pin, task::Poll};
#[cfg(feature = "std")]
use std::{sync::Arc, thread};

use futures::{executor::block_on, StreamExt};

use super::{counting, poll, rounds, Reg};
#[cfg(feature = "std")]
use crate::HeapRegistry;
use crate::{FixedRegistry, ServingStatus::*, Watch};

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
    assert_eq!(count.count(), 0);
    r.set("a", NotServing).unwrap();
    assert_eq!(count.count(), 1);
    assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(Some(NotServing)));
    // A change and back before the watcher runs: nothing to say (never two equal in a row).
    assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    r.set("a", Serving).unwrap();
    r.set("a", NotServing).unwrap();
    assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
    // Other names do not wake this watcher.
    let before = count.count();
    r.set("b", Serving).unwrap();
    r.set("b", NotServing).unwrap();
    assert_eq!(count.count(), before);
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
    let r = FixedRegistry::<2>::new();
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
    assert_eq!(count.count(), 5);
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
    assert_eq!(count.count(), 40);
}

#[test]
#[cfg(feature = "std")] // `Arc` is a `StableDeref` handle with `std`
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
#[cfg(feature = "std")] // `Arc` is a `StableDeref` handle with `std`
fn concurrent_setters_and_watchers_converge() {
    let r = Arc::new(FixedRegistry::<16>::new());
    let mut handles = Vec::new();
    for t in 0..2 {
        let r = Arc::clone(&r);
        handles.push(thread::spawn(move || {
            for i in 0..rounds(2000, 20) {
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
fn registering_a_name_wakes_only_its_own_watchers() {
    let r = FixedRegistry::<8>::new();
    // Two unregistered names with the same home position, so their watchers share a bucket,
    // and one elsewhere.
    let same = super::names_at_home(&r, 6, 2);
    let elsewhere = super::names_at_home(&r, 9, 1);
    let (x, y, z) = (&same[0], &same[1], &elsewhere[0]);
    let (cx, wx) = counting();
    let (cy, wy) = counting();
    let (cz, wz) = counting();
    let mut watch_x = Box::pin(r.watch(x.as_str()).unwrap());
    let mut watch_y = Box::pin(r.watch(y.as_str()).unwrap());
    let mut watch_z = Box::pin(r.watch(z.as_str()).unwrap());
    for (w, waker) in [
        (&mut watch_x, &wx),
        (&mut watch_y, &wy),
        (&mut watch_z, &wz),
    ] {
        assert_eq!(poll(w.as_mut(), waker), Poll::Ready(Some(ServiceUnknown)));
        assert_eq!(poll(w.as_mut(), waker), Poll::Pending);
    }
    r.set(x, Serving).unwrap();
    assert_eq!((cx.count(), cy.count(), cz.count()), (1, 0, 0));
    assert_eq!(poll(watch_x.as_mut(), &wx), Poll::Ready(Some(Serving)));
    // The walk to the end of the bucket left only y's bit in its filter.
    let filter = r.locked(|l| {
        let bucket = crate::index::home(r.hash(y.as_bytes()).hi(), l.parts.buckets.len());
        l.bucket(bucket).filter
    });
    assert_eq!(filter, crate::list::filter_bit(r.hash(y.as_bytes()).hi()));
    r.set(y, NotServing).unwrap();
    assert_eq!((cx.count(), cy.count(), cz.count()), (1, 1, 0));
    assert_eq!(poll(watch_y.as_mut(), &wy), Poll::Ready(Some(NotServing)));
    r.set(z, Serving).unwrap();
    assert_eq!((cx.count(), cy.count(), cz.count()), (1, 1, 1));
}

#[test]
fn a_registration_wakes_every_watcher_of_that_name_in_rounds() {
    // More watchers of one unregistered name than a wake batch, mixed with watchers of other
    // names in the same bucket.
    let r = FixedRegistry::<8>::new();
    let names = super::names_at_home(&r, 2, 2);
    let (mine, other) = (&names[0], &names[1]);
    let (count, waker) = counting();
    let (other_count, other_waker) = counting();
    let mut watches = Vec::new();
    for i in 0..40 {
        let (name, waker) = if i % 3 == 0 {
            (other, &other_waker)
        } else {
            (mine, &waker)
        };
        let mut w = Box::pin(r.watch(name.as_str()).unwrap());
        assert_eq!(poll(w.as_mut(), waker), Poll::Ready(Some(ServiceUnknown)));
        assert_eq!(poll(w.as_mut(), waker), Poll::Pending);
        watches.push(w);
    }
    r.set(mine, Serving).unwrap();
    assert_eq!((count.count(), other_count.count()), (26, 0));
    r.set(other, Serving).unwrap();
    assert_eq!((count.count(), other_count.count()), (26, 14));
}

#[test]
fn a_set_wakes_only_the_nodes_parked_before_it() {
    use crate::wake::{Scope, WakeBatch};
    // 20 watchers of "" (slot 0), each with its own counter.
    let r = FixedRegistry::<4>::new();
    let wakers: Vec<_> = (0..20).map(|_| counting()).collect();
    let mut watches: Vec<_> = (0..20).map(|_| Box::pin(r.watch("").unwrap())).collect();
    for (w, (_, waker)) in watches.iter_mut().zip(&wakers) {
        assert_eq!(poll(w.as_mut(), waker), Poll::Ready(Some(Serving)));
        assert_eq!(poll(w.as_mut(), waker), Poll::Pending);
    }
    // A writer's first round: change the status, bump, take the first batch of 16.
    let mut batch = WakeBatch::new();
    let job = r
        .locked(|l| {
            l.parts.slots[0].set_status(NotServing);
            l.start(Scope::Waiters(0), &mut batch)
        })
        .unwrap();
    // Before its next round, the 16 re-park (they see the change first) and another writer
    // bumps the epoch without having woken anyone yet.
    for (w, (_, waker)) in watches.iter_mut().zip(&wakers).take(16) {
        assert_eq!(poll(w.as_mut(), waker), Poll::Ready(Some(NotServing)));
        assert_eq!(poll(w.as_mut(), waker), Poll::Pending);
    }
    r.locked(|l| l.header.epoch += 1);
    r.finish(job, &mut batch);
    // Each watcher parked before the first writer's bump was woken once; the re-parked ones
    // were not woken again, whatever the epoch did meanwhile.
    let counts: Vec<usize> = wakers.iter().map(|(c, _)| c.count()).collect();
    assert_eq!(counts, [1; 20]);
}

#[test]
#[cfg(feature = "std")]
fn end_watches_reaches_every_list_in_rounds() {
    // More registered names than one all-lists round scans, and unknown-name watchers
    // spread over many buckets.
    let r = HeapRegistry::with_capacity(rounds(600, 40)).unwrap();
    let n = rounds(300, 20);
    let (count, waker) = counting();
    let mut watches = Vec::new();
    for i in 0..n {
        let name = format!("s{i}");
        r.set(&name, Serving).unwrap();
        for watched in [name.clone(), format!("unknown{i}")] {
            let mut w = Box::pin(Watch::new(&r, watched).unwrap());
            assert!(poll(w.as_mut(), &waker).is_ready());
            assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
            watches.push(w);
        }
    }
    r.shutdown();
    assert_eq!(
        count.count(),
        n,
        "shutdown wakes the watchers of every registered name"
    );
    r.end_watches();
    assert_eq!(count.count(), 2 * n);
    for w in &mut watches {
        let first = poll(w.as_mut(), &waker);
        assert!(matches!(
            first,
            Poll::Ready(Some(NotServing)) | Poll::Ready(None)
        ));
        if first != Poll::Ready(None) {
            assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(None));
        }
    }
    // Nothing is left parked.
    assert!(r.locked(|l| l.header.unknown.is_empty()));
}

#[test]
fn a_watch_never_reports_another_names_status_whatever_the_reuse() {
    // One slot besides "": "a" and "b" take turns in it many times while a watch of "a" is
    // bound to it and parked; the watch compares the name, so it sees only "a"'s statuses.
    let r = FixedRegistry::<2>::new();
    r.set("a", Serving).unwrap();
    let (_, waker) = counting();
    let mut w = Box::pin(r.watch("a").unwrap());
    assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(Some(Serving)));
    for _ in 0..rounds(1000, 20) {
        assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
        r.clear("a").unwrap();
        r.set("b", Unknown).unwrap();
        // Polled while "b" holds the slot "a" was bound to.
        assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(Some(ServiceUnknown)));
        assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
        r.clear("b").unwrap();
        assert_eq!(poll(w.as_mut(), &waker), Poll::Pending);
        r.set("a", Serving).unwrap();
        assert_eq!(poll(w.as_mut(), &waker), Poll::Ready(Some(Serving)));
    }
}

#[test]
#[cfg(feature = "std")]
fn heap_registry_watch_is_send_static() {
    let r = Arc::new(HeapRegistry::with_capacity(16).unwrap());
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
    let seen = handle.join().unwrap();
    assert!(
        seen == [ServiceUnknown, Serving] || seen == [Serving],
        "{seen:?}"
    );
}

#[test]
fn a_moved_or_repolled_watch_keeps_one_node() {
    // Re-polling with the same waker, or with another one, keeps the node in one list.
    let r = Reg::new();
    let (c1, w1) = counting();
    let (c2, w2) = counting();
    let mut w: Pin<Box<Watch<&Reg, &str>>> = Box::pin(r.watch("").unwrap());
    assert!(poll(w.as_mut(), &w1).is_ready());
    for _ in 0..3 {
        assert_eq!(poll(w.as_mut(), &w1), Poll::Pending);
    }
    assert_eq!(poll(w.as_mut(), &w2), Poll::Pending);
    r.set("", NotServing).unwrap();
    assert_eq!((c1.count(), c2.count()), (0, 1));
    assert!(r.locked(|l| l.waiters(0).is_empty()));
}

#[test]
fn a_crowded_bucket_is_walked_in_bounded_rounds() {
    // 300 watchers of another name share the bucket with 40 of the name being registered:
    // more than a round scans and more than a batch wakes, so the writer parks its marker
    // between rounds. Exactly the 40 are woken, and the bucket holds only the 300 after.
    let r = FixedRegistry::<8>::new();
    let names = super::names_at_home(&r, 11, 2);
    let (mine, other) = (names[0].as_str(), names[1].as_str());
    let (count, waker) = counting();
    let (other_count, other_waker) = counting();
    let mut watches = Vec::new();
    for i in 0..340 {
        let (name, waker) = if i % 17 < 2 {
            (mine, &waker)
        } else {
            (other, &other_waker)
        };
        let mut w = Box::pin(r.watch(name).unwrap());
        assert_eq!(poll(w.as_mut(), waker), Poll::Ready(Some(ServiceUnknown)));
        assert_eq!(poll(w.as_mut(), waker), Poll::Pending);
        watches.push(w);
    }
    r.set(mine, Serving).unwrap();
    assert_eq!((count.count(), other_count.count()), (40, 0));
    let left = r.locked(|l| {
        let bucket = crate::index::home(r.hash(other.as_bytes()).hi(), l.parts.buckets.len());
        let mut n = 0;
        let mut cur = l.bucket(bucket).list.head();
        while let Some(node) = cur {
            // Safety: a member of the bucket, under the lock.
            assert!(
                !unsafe { (*node.as_ptr()).marker },
                "a marker was left behind"
            );
            n += 1;
            cur = unsafe { crate::list::List::<crate::list::Primary>::next(node) };
        }
        n
    });
    assert_eq!(left, 300);
    r.set(other, Serving).unwrap();
    assert_eq!((count.count(), other_count.count()), (40, 300));
}
