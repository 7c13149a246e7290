//! Registry semantics: statuses, names, capacity, shutdown, iteration, both storages.

use std::{sync::Arc, thread};

use super::{rounds, Reg};
#[cfg(feature = "std")]
use crate::{CapacityError, HeapRegistry, DEFAULT_CAPACITY, MAX_CAPACITY};
use crate::{Error, FixedRegistry, Registry, ServingStatus::*, SetOutcome, MAX_NAME};

#[test]
fn new_registry_serves_root() {
    let r = Reg::new();
    assert_eq!(r.get(""), Some(Serving));
    assert_eq!(r.len(), 1);
    assert!(!r.is_shut_down());
}

#[test]
fn static_registry_is_const() {
    static R: FixedRegistry<4> = FixedRegistry::new();
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
    let r = FixedRegistry::<16>::new();
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
    let r = FixedRegistry::<4>::new();
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
    let r = FixedRegistry::<8>::new();
    for round in 0..rounds(50, 10) {
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
fn readers_see_consistent_statuses_during_writes() {
    let r = Arc::new(FixedRegistry::<16>::new());
    r.set("long-name-over-several-words-xxxxxxxx", Serving)
        .unwrap();
    let writer = {
        let r = Arc::clone(&r);
        thread::spawn(move || {
            for i in 0..rounds(5000, 20) {
                let name = if i % 2 == 0 { "p" } else { "q" };
                r.set(name, Serving).unwrap();
                r.clear(name).unwrap();
            }
        })
    };
    for _ in 0..rounds(5000, 20) {
        assert_eq!(
            r.get("long-name-over-several-words-xxxxxxxx"),
            Some(Serving)
        );
        assert_eq!(r.get(""), Some(Serving));
    }
    writer.join().unwrap();
}

#[test]
fn lock_free_reads_never_miss_a_name_moved_by_a_removal() {
    // Names sharing one home: clearing the first shifts the others back past concurrent
    // readers, which must still find them (the structure sequence makes them retry).
    let r = Arc::new(FixedRegistry::<16>::new());
    let names = super::names_at_home(&r, 5, 4);
    let (stay, churn) = (names[3].clone(), names[..3].to_vec());
    for n in &churn {
        r.set(n, Serving).unwrap();
    }
    r.set(&stay, NotServing).unwrap();
    let writer = {
        let r = Arc::clone(&r);
        thread::spawn(move || {
            for _ in 0..rounds(2000, 10) {
                for n in &churn {
                    r.clear(n).unwrap();
                }
                for n in &churn {
                    r.set(n, Serving).unwrap();
                }
            }
        })
    };
    for _ in 0..rounds(20_000, 20) {
        assert_eq!(r.get(&stay), Some(NotServing));
    }
    writer.join().unwrap();
}

// === capacity and storage ===

#[test]
#[cfg(feature = "std")]
fn capacity_is_chosen_at_run_time() {
    assert_eq!(
        HeapRegistry::with_capacity(0).unwrap_err(),
        CapacityError::Zero
    );
    assert_eq!(
        HeapRegistry::with_capacity(MAX_CAPACITY + 1).unwrap_err(),
        CapacityError::TooLarge {
            requested: MAX_CAPACITY + 1
        }
    );
    let one = HeapRegistry::with_capacity(1).unwrap();
    assert_eq!((one.capacity(), one.len()), (1, 1));
    assert_eq!(one.get(""), Some(Serving));
    assert_eq!(one.set("a", Serving), Err(Error::Full));
    one.clear("").unwrap();
    assert_eq!(one.set("a", Serving), Ok(SetOutcome::Changed));
    assert_eq!(FixedRegistry::<3>::default().capacity(), 3);
    // Miri retags every slice borrow byte by byte: default-sized registries are for native runs.
    if !cfg!(miri) {
        assert_eq!(HeapRegistry::new().capacity(), DEFAULT_CAPACITY);
        assert_eq!(HeapRegistry::default().len(), 1);
    }
}

#[test]
#[cfg(feature = "std")]
fn heap_registry_is_small_by_value() {
    // Four boxed slices and a few words: moving it into an `Arc` copies next to nothing, and
    // a registry of any capacity can be built on a 64 KiB thread stack.
    assert!(
        size_of::<HeapRegistry>() <= 256,
        "{}",
        size_of::<HeapRegistry>()
    );
    let len = thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| Arc::new(HeapRegistry::with_capacity(rounds(100_000, 64)).unwrap()).len())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(len, 1);
}

#[test]
#[cfg(feature = "std")]
fn default_capacity_holds_ten_thousand_names() {
    // (Under Miri, a small registry: see `capacity_is_chosen_at_run_time`.)
    let r = if cfg!(miri) {
        HeapRegistry::with_capacity(64).unwrap()
    } else {
        HeapRegistry::new()
    };
    let n = rounds(10_000, 40);
    for i in 0..n {
        r.set(&format!("org.apache.dubbo.samples.Service{i}"), Serving)
            .unwrap();
    }
    assert_eq!(r.len(), n + 1);
    for i in (0..n).step_by(97) {
        assert_eq!(
            r.get(&format!("org.apache.dubbo.samples.Service{i}")),
            Some(Serving)
        );
    }
}

#[test]
#[cfg(feature = "std")]
fn a_million_names_when_asked() {
    if cfg!(miri) {
        return; // minutes under Miri; the same code runs at small sizes above
    }
    use std::fmt::Write;
    let r = HeapRegistry::with_capacity(1_000_000).unwrap();
    let mut name = String::new();
    for i in 0..999_999 {
        name.clear();
        write!(name, "s{i}").unwrap();
        r.set(&name, NotServing).unwrap();
    }
    assert_eq!(r.len(), 1_000_000);
    assert_eq!(r.set("one-too-many", Serving), Err(Error::Full));
    assert_eq!(r.get("s123456"), Some(NotServing));
    assert_eq!(r.get("s999998"), Some(NotServing));
    assert_eq!(r.get("one-too-many"), None);
    assert_eq!(r.clear("s0"), Ok(true));
    assert_eq!(r.set("one-too-many", Serving), Ok(SetOutcome::Changed));
}

#[test]
fn both_storages_behave_alike() {
    fn exercise<S: crate::Storage>(r: &Registry<S>) {
        assert_eq!(r.get(""), Some(Serving));
        r.set("a", NotServing).unwrap();
        r.set("b", Unknown).unwrap();
        assert_eq!(r.clear("a"), Ok(true));
        r.set("c", Serving).unwrap();
        let mut names: Vec<_> = r
            .iter()
            .map(|e| (e.name().to_owned(), e.status()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                (String::new(), Serving),
                ("b".to_owned(), Unknown),
                ("c".to_owned(), Serving)
            ]
        );
        r.shutdown();
        assert!(r.iter().all(|e| e.status() == NotServing));
        r.resume();
        assert_eq!(r.get("b"), Some(Serving));
    }
    exercise(&FixedRegistry::<4>::new());
    exercise(&FixedRegistry::<4>::with_seed(99));
    #[cfg(feature = "std")]
    {
        exercise(&HeapRegistry::with_capacity(4).unwrap());
        exercise(&HeapRegistry::with_capacity_and_seed(4, 1).unwrap());
    }
}

#[test]
#[cfg(feature = "std")]
fn iteration_walks_only_slots_in_use() {
    // Slots are taken from a free list first: clearing and re-registering reuses them, so the
    // walk (and the memory touched) follows the most names registered at once.
    let capacity = rounds(1000, 64);
    let r = HeapRegistry::with_capacity(capacity).unwrap();
    for round in 0..rounds(100, 5) {
        for i in 0..3 {
            r.set(&format!("r{round}-{i}"), Serving).unwrap();
        }
        for i in 0..3 {
            r.clear(&format!("r{round}-{i}")).unwrap();
        }
    }
    assert_eq!(r.high_water(), 4);
    assert_eq!(r.iter().size_hint().1, Some(capacity));
    assert_eq!(r.iter().count(), 1);
}

#[test]
#[cfg(feature = "std")]
fn registries_are_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Reg>();
    shared::<HeapRegistry>();
    shared::<crate::Inline<4>>();
    shared::<crate::Heap>();
    let debug = format!(
        "{:?} {:?}",
        crate::Inline::<4>::with_root(0, 0, 0),
        HeapRegistry::with_capacity(2).unwrap()
    );
    assert!(debug.contains("Inline"), "{debug}");
}

#[test]
// Not under Miri: `make test-miri` randomises struct layout, which changes the padding.
#[cfg(all(feature = "std", target_pointer_width = "64", not(miri)))]
fn memory_per_name_and_per_watcher_is_as_documented() {
    // docs/core.md: 296 bytes of address space per name of capacity (slot 224, index 8, slot
    // wait list 16, buckets 48), and a 72-byte wait node inside each `Watch`.
    assert_eq!(size_of::<crate::slot::Slot>(), 224);
    assert_eq!(HeapRegistry::reserved_bytes(1), 296);
    assert_eq!(size_of::<crate::list::Node>(), 72);
    println!(
        "Watch<Arc<HeapRegistry>, String>: {} bytes",
        size_of::<crate::Watch<Arc<HeapRegistry>, String>>()
    );
}
