//! The index: linear probing with backward-shift deletion stays exact under any order of
//! registrations and removals, with no tombstones and at most half the positions in use.

use std::collections::HashMap;

use proptest::prelude::*;

use super::names_at_home;
use crate::{
    index::{home, word_slot},
    loom::Ordering,
    storage::sealed::Sealed,
    FixedRegistry, Registry,
    ServingStatus::*,
    Storage,
};

/// Checks the index of `r` word by word: every word points at a live slot whose name is
/// reachable from its home without crossing an empty position, every live slot appears
/// once, and nothing else is in the index (no tombstones).
fn check_index<S: Storage>(r: &Registry<S>) {
    let parts = r.storage().parts();
    let len = parts.index.len();
    assert_eq!(len, 2 * parts.slots.len());
    let mut seen = vec![false; parts.slots.len()];
    let mut used = 0;
    for pos in 0..len {
        let w = parts.index[pos].load(Ordering::Relaxed);
        if w == 0 {
            continue;
        }
        used += 1;
        let slot = word_slot(w);
        assert!(
            parts.slots[slot].live_status().is_some(),
            "word at {pos} -> dead slot {slot}"
        );
        assert!(!seen[slot], "slot {slot} indexed twice");
        seen[slot] = true;
        let mut p = home(parts.slots[slot].hash(), len);
        while p != pos {
            assert_ne!(
                parts.index[p].load(Ordering::Relaxed),
                0,
                "gap before {pos} at {p}"
            );
            p = (p + 1) % len;
        }
    }
    assert_eq!(used, r.len(), "index words vs registered names");
    assert!(used * 2 <= len, "index more than half full");
}

#[test]
fn colliding_names_survive_every_removal_order() {
    // Five names with one home (and the run wrapping past the end of the table, when the
    // home is the last position), removed in every rotation of their order.
    for target in [3, 15] {
        for rotate in 0..5 {
            let r = FixedRegistry::<8>::new();
            let names = names_at_home(&r, target, 5);
            for n in &names {
                r.set(n, Serving).unwrap();
            }
            check_index(&r);
            let mut order = names.clone();
            order.rotate_left(rotate);
            for (i, n) in order.iter().enumerate() {
                assert_eq!(r.clear(n), Ok(true));
                check_index(&r);
                for m in &order[i + 1..] {
                    assert_eq!(r.get(m), Some(Serving), "{m} lost after clearing {n}");
                }
                assert_eq!(r.get(n), None);
                assert_eq!(r.get(""), Some(Serving));
            }
        }
    }
}

#[test]
fn churn_leaves_no_tombstones() {
    // Far more registrations than slots, a few live at a time: the index ends as it started.
    let r = FixedRegistry::<16>::new();
    for round in 0..super::rounds(500, 20) {
        let names: Vec<String> = (0..6).map(|i| format!("svc-{round}-{i}")).collect();
        for n in &names {
            r.set(n, Serving).unwrap();
        }
        check_index(&r);
        for n in &names {
            assert_eq!(r.clear(n), Ok(true));
        }
    }
    check_index(&r);
    assert_eq!(r.len(), 1);
    let used = (r.storage().parts().index.iter())
        .filter(|w| w.load(Ordering::Relaxed) != 0)
        .count();
    assert_eq!(used, 1, "only \"\" is left in the index");
}

#[test]
fn a_full_registry_keeps_half_its_index_free() {
    let r = FixedRegistry::<32>::new();
    for i in 0..31 {
        r.set(&format!("s{i}"), NotServing).unwrap();
    }
    assert_eq!(r.set("one-more", Serving), Err(crate::Error::Full));
    check_index(&r);
    for i in 0..31 {
        assert_eq!(r.get(&format!("s{i}")), Some(NotServing));
    }
    assert_eq!(r.get("missing"), None);
}

#[derive(Clone, Debug)]
enum Op {
    Set(u8, bool),
    Clear(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..24, any::<bool>()).prop_map(|(n, s)| Op::Set(n, s)),
        (0u8..24).prop_map(Op::Clear),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 64 },
        // No regression files: Miri's isolation has no file system (and no cwd).
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any sequence of sets and clears over a pool of names (more than fit) agrees with a map.
    #[test]
    fn agrees_with_a_map(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 30 } else { 200 })) {
        let r = FixedRegistry::<12>::new();
        let mut model: HashMap<u8, crate::ServingStatus> = HashMap::new();
        for op in ops {
            match op {
                Op::Set(n, s) => {
                    let status = if s { Serving } else { NotServing };
                    let got = r.set(&format!("name-{n}"), status);
                    if model.contains_key(&n) || model.len() < 11 {
                        prop_assert!(got.is_ok());
                        model.insert(n, status);
                    } else {
                        prop_assert_eq!(got, Err(crate::Error::Full));
                    }
                }
                Op::Clear(n) => {
                    prop_assert_eq!(r.clear(&format!("name-{n}")), Ok(model.remove(&n).is_some()));
                }
            }
            check_index(&r);
            prop_assert_eq!(r.len(), model.len() + 1);
            for n in 0..24u8 {
                prop_assert_eq!(r.get(&format!("name-{n}")), model.get(&n).copied());
            }
        }
        let mut listed: Vec<String> = r.iter().map(|e| e.name().to_owned()).collect();
        listed.sort();
        let mut want: Vec<String> = model.keys().map(|n| format!("name-{n}")).collect();
        want.push(String::new());
        want.sort();
        prop_assert_eq!(listed, want);
    }
}
