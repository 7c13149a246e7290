//! Dubbo service keys, export/unexport and `""` derived from required services, with the
//! exact names of `DUBBO.md`'s table.

use core::task::Poll;
use std::collections::{BTreeMap, BTreeSet};

use super::{counting, poll, rounds};
use crate::{
    service_key, Error, FixedRegistry, KeyForm, ServingStatus, ServingStatus::*, SetOutcome,
};

type Reg = FixedRegistry<16>;

const GREETER: &str = "org.apache.dubbogo.samples.api.Greeter";
const FOO: &str = "org.apache.Foo";

fn names<S: crate::Storage>(r: &crate::Registry<S>) -> BTreeMap<String, ServingStatus> {
    r.iter()
        .map(|e| (e.name().to_owned(), e.status()))
        .collect()
}

fn key(i: &str, g: &str, v: &str, f: KeyForm) -> String {
    service_key(i, g, v, f).unwrap().to_string()
}

#[test]
fn service_keys_are_dubbo_go_and_dubbo_java_forms() {
    use KeyForm::*;
    // dubbo-go: `group/interface:version`, group out when empty, version out when empty or 0.0.0.
    assert_eq!(key(GREETER, "", "", DubboGo), GREETER);
    assert_eq!(
        key(FOO, "grp", "1.0.0", DubboGo),
        "grp/org.apache.Foo:1.0.0"
    );
    assert_eq!(key(FOO, "grp", "0.0.0", DubboGo), "grp/org.apache.Foo");
    assert_eq!(key(FOO, "", "0.0.0", DubboGo), "org.apache.Foo");
    assert_eq!(key(FOO, "", "1.0.0", DubboGo), "org.apache.Foo:1.0.0");
    assert_eq!(key(FOO, "grp", "", DubboGo), "grp/org.apache.Foo");
    // Dubbo Java: the version kept whenever it is not empty, 0.0.0 included.
    assert_eq!(key(GREETER, "", "", DubboJava), GREETER);
    assert_eq!(
        key(FOO, "grp", "1.0.0", DubboJava),
        "grp/org.apache.Foo:1.0.0"
    );
    assert_eq!(
        key(FOO, "grp", "0.0.0", DubboJava),
        "grp/org.apache.Foo:0.0.0"
    );
    assert_eq!(key(FOO, "", "0.0.0", DubboJava), "org.apache.Foo:0.0.0");
    assert_eq!(KeyForm::default(), DubboGo);
    // 200 bytes fit, 201 do not.
    let long = "i".repeat(196);
    assert_eq!(key(&long, "g", "1", DubboJava).len(), 200);
    assert_eq!(
        service_key(&long, "gg", "1", DubboJava),
        Err(Error::NameTooLong { len: 201 })
    );
    // The dubbo-go form drops the 0.0.0, so it fits where Java's does not.
    let long = "i".repeat(200);
    assert_eq!(key(&long, "", "0.0.0", DubboGo), long);
    assert_eq!(
        service_key(&long, "", "0.0.0", DubboJava),
        Err(Error::NameTooLong { len: 206 })
    );
}

#[test]
fn export_registers_both_key_forms_and_the_bare_interface() {
    let r = Reg::new();
    assert_eq!(
        r.export(FOO, "grp", "0.0.0", Serving),
        Ok(SetOutcome::Changed)
    );
    assert_eq!(
        names(&r),
        BTreeMap::from([
            ("".to_owned(), Serving),
            ("grp/org.apache.Foo".to_owned(), Serving),
            ("grp/org.apache.Foo:0.0.0".to_owned(), Serving),
            (FOO.to_owned(), Serving),
        ])
    );
    assert_eq!(
        r.export(FOO, "grp", "0.0.0", Serving),
        Ok(SetOutcome::Unchanged)
    );
    // One export: unexporting it makes the keys and the interface NOT_SERVING, registered.
    assert_eq!(r.unexport(FOO, "grp", "0.0.0"), Ok(true));
    assert_eq!(r.get("grp/org.apache.Foo"), Some(NotServing));
    assert_eq!(r.get("grp/org.apache.Foo:0.0.0"), Some(NotServing));
    assert_eq!(r.get(FOO), Some(NotServing));
    assert_eq!(r.unexport(FOO, "grp", "0.0.0"), Ok(false));
    assert_eq!(r.len(), 4);
}

#[test]
fn dubbo_go_key_equal_to_the_interface_is_one_name() {
    let r = Reg::new();
    r.export(GREETER, "", "", Serving).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r.get(GREETER), Some(Serving));
    // Another export of the same interface: the bare name serves while either does.
    r.export(GREETER, "grp", "1.0.0", NotServing).unwrap();
    assert_eq!(
        r.get("grp/org.apache.dubbogo.samples.api.Greeter:1.0.0"),
        Some(NotServing)
    );
    assert_eq!(r.get(GREETER), Some(Serving));
    r.export(GREETER, "", "", NotServing).unwrap();
    assert_eq!(r.get(GREETER), Some(NotServing));
    r.export(GREETER, "grp", "1.0.0", Serving).unwrap();
    assert_eq!(r.get(GREETER), Some(Serving));
    assert_eq!(r.unexport(GREETER, "grp", "1.0.0"), Ok(true));
    // What is left is the self export, NOT_SERVING.
    assert_eq!(r.get(GREETER), Some(NotServing));
    r.export(GREETER, "", "", Serving).unwrap();
    assert_eq!(r.get(GREETER), Some(Serving));
    assert_eq!(r.unexport(GREETER, "", ""), Ok(true));
    assert_eq!(r.get(GREETER), Some(NotServing));
    assert_eq!(r.unexport(GREETER, "", ""), Ok(false));
}

#[test]
fn bare_interface_serves_while_any_export_serves() {
    // Dubbo Java would leave the bare name with whichever export or unexport ran last.
    let r = Reg::new();
    r.export(FOO, "grp", "1.0.0", Serving).unwrap();
    r.export(FOO, "grp", "2.0.0", Serving).unwrap();
    r.export(FOO, "", "", NotServing).unwrap();
    assert_eq!(r.get(FOO), Some(Serving));
    r.unexport(FOO, "grp", "1.0.0").unwrap();
    assert_eq!(r.get("grp/org.apache.Foo:1.0.0"), Some(NotServing));
    assert_eq!(r.get("grp/org.apache.Foo:2.0.0"), Some(Serving));
    assert_eq!(r.get(FOO), Some(Serving));
    // A direct `set` of an exported key moves the interface as an export would.
    assert_eq!(
        r.set("grp/org.apache.Foo:2.0.0", NotServing),
        Ok(SetOutcome::Changed)
    );
    assert_eq!(r.get(FOO), Some(NotServing));
    r.set("grp/org.apache.Foo:2.0.0", Serving).unwrap();
    assert_eq!(r.get(FOO), Some(Serving));
    // A direct `set` of the interface stands until one of its exports changes.
    r.set(FOO, NotServing).unwrap();
    assert_eq!(r.get(FOO), Some(NotServing));
    r.set("grp/org.apache.Foo:2.0.0", Unknown).unwrap();
    assert_eq!(r.get(FOO), Some(NotServing));
    r.set("grp/org.apache.Foo:2.0.0", Serving).unwrap();
    assert_eq!(r.get(FOO), Some(Serving));
    // Clearing an exported key ends that export.
    assert_eq!(r.clear("grp/org.apache.Foo:2.0.0"), Ok(true));
    assert_eq!(r.get(FOO), Some(NotServing));
    assert_eq!(r.unexport(FOO, "grp", "2.0.0"), Ok(false));
    // The interface's other export (self, NOT_SERVING) is still there.
    r.export(FOO, "", "", Serving).unwrap();
    assert_eq!(r.get(FOO), Some(Serving));
}

#[test]
fn re_export_does_not_count_twice() {
    let r = Reg::new();
    r.export(FOO, "grp", "1.0.0", Serving).unwrap();
    r.export(FOO, "grp", "1.0.0", Serving).unwrap();
    r.export(FOO, "grp", "1.0.0", NotServing).unwrap();
    assert_eq!(r.get(FOO), Some(NotServing));
    r.export(FOO, "grp", "1.0.0", Serving).unwrap();
    r.unexport(FOO, "grp", "1.0.0").unwrap();
    assert_eq!(r.get(FOO), Some(NotServing));
}

#[test]
fn cleared_interface_keeps_its_exports_and_comes_back() {
    let r = Reg::new();
    r.export(FOO, "grp", "1.0.0", Serving).unwrap();
    assert_eq!(r.clear(FOO), Ok(true));
    assert_eq!(r.get(FOO), None);
    assert_eq!(r.len(), 2);
    assert!(!names(&r).contains_key(FOO));
    // The key still changes; the cleared interface stays cleared.
    r.set("grp/org.apache.Foo:1.0.0", NotServing).unwrap();
    assert_eq!(r.get(FOO), None);
    r.set("grp/org.apache.Foo:1.0.0", Serving).unwrap();
    // Another export registers it again, from every export.
    r.export(FOO, "grp", "2.0.0", NotServing).unwrap();
    assert_eq!(r.get(FOO), Some(Serving));
    r.unexport(FOO, "grp", "1.0.0").unwrap();
    assert_eq!(r.get(FOO), Some(NotServing));
    // Cleared again with no exports left: its slot is freed.
    r.unexport(FOO, "grp", "2.0.0").unwrap();
    r.clear(FOO).unwrap();
    r.clear("grp/org.apache.Foo:1.0.0").unwrap();
    r.clear("grp/org.apache.Foo:2.0.0").unwrap();
    assert_eq!(r.len(), 1);
    for i in 0..15 {
        r.set(&format!("n{i}"), Serving).unwrap();
    }
    assert_eq!(r.set("one-more", Serving), Err(Error::Full));
}

#[test]
fn export_errors_change_nothing() {
    let r = FixedRegistry::<4>::new();
    for bad in ["", "grp/org.apache.Foo", "org.apache.Foo:1.0.0"] {
        assert_eq!(
            r.export(bad, "", "", Serving),
            Err(Error::InvalidName),
            "{bad:?}"
        );
        assert_eq!(r.unexport(bad, "", ""), Err(Error::InvalidName), "{bad:?}");
    }
    assert_eq!(
        r.export(&"i".repeat(201), "", "", Serving),
        Err(Error::NameTooLong { len: 201 })
    );
    assert_eq!(
        r.export(&"i".repeat(199), "g", "", Serving),
        Err(Error::NameTooLong { len: 201 })
    );
    assert_eq!(
        r.export(FOO, "", "", ServiceUnknown),
        Err(Error::InvalidStatus)
    );
    // Three names needed (two key forms and the interface), three free slots: fits.
    assert_eq!(
        r.export(FOO, "g", "0.0.0", Serving),
        Ok(SetOutcome::Changed)
    );
    assert_eq!(r.len(), 4);
    // No room for the next one: nothing changes, not even a partial export.
    let before = names(&FixedRegistry::<4>::new());
    let r = FixedRegistry::<4>::new();
    r.set("x", Serving).unwrap();
    r.set("y", Serving).unwrap();
    assert_eq!(r.export(FOO, "g", "0.0.0", Serving), Err(Error::Full));
    r.clear("x").unwrap();
    r.clear("y").unwrap();
    assert_eq!(names(&r), before);
    assert_eq!(
        Error::InvalidName.grpc_code(),
        crate::GrpcCode::InvalidArgument
    );
    // While shut down, exports are ignored like sets; unexports still end them.
    let r = Reg::new();
    r.export(FOO, "grp", "1.0.0", Serving).unwrap();
    r.shutdown();
    assert_eq!(
        r.export(FOO, "grp", "2.0.0", Serving),
        Ok(SetOutcome::Ignored)
    );
    assert_eq!(r.get("grp/org.apache.Foo:2.0.0"), None);
    assert_eq!(r.unexport(FOO, "grp", "1.0.0"), Ok(true));
    r.resume();
    // Unexported during the drain: the interface has no export left to serve.
    assert_eq!(r.get("grp/org.apache.Foo:1.0.0"), Some(Serving));
    assert_eq!(r.get(FOO), Some(Serving));
    r.set("grp/org.apache.Foo:1.0.0", NotServing).unwrap();
    assert_eq!(r.get(FOO), Some(Serving), "no longer tied");
}

#[test]
fn shutdown_and_resume_keep_exports_and_requirements_consistent() {
    let r = Reg::new();
    r.export(FOO, "grp", "1.0.0", NotServing).unwrap();
    r.export(GREETER, "", "", Serving).unwrap();
    r.require(FOO).unwrap();
    r.require("db").unwrap();
    r.shutdown();
    assert!(names(&r).values().all(|s| *s == NotServing));
    r.resume();
    assert!(r
        .iter()
        .all(|e| e.name().is_empty() || e.status() == Serving));
    // "db" is required and not registered: resume does not make "" SERVING.
    assert_eq!(r.get(""), Some(NotServing));
    r.set("db", Serving).unwrap();
    assert_eq!(r.get(""), Some(Serving));
    // The counts follow resume: one export down keeps the other's interface serving.
    r.export(FOO, "grp", "2.0.0", Serving).unwrap();
    r.set("grp/org.apache.Foo:1.0.0", NotServing).unwrap();
    assert_eq!(r.get(FOO), Some(Serving));
    r.set("grp/org.apache.Foo:2.0.0", NotServing).unwrap();
    assert_eq!(r.get(FOO), Some(NotServing));
    assert_eq!(r.get(""), Some(NotServing));
    r.shutdown();
    r.unexport(GREETER, "", "").unwrap();
    r.resume();
    // A self export unexported while drained no longer counts.
    r.export(GREETER, "g", "1", NotServing).unwrap();
    assert_eq!(r.get(GREETER), Some(NotServing));
}

#[test]
fn root_is_derived_from_required_services() {
    let r = Reg::new();
    assert_eq!(r.require(""), Err(Error::InvalidName));
    assert_eq!(
        r.require(&"n".repeat(201)),
        Err(Error::NameTooLong { len: 201 })
    );
    assert_eq!(r.require(GREETER), Ok(true));
    assert_eq!(r.require(GREETER), Ok(false));
    assert!(r.is_required(GREETER));
    // Unregistered counts as not serving, and the placeholder is invisible.
    assert_eq!(r.get(""), Some(NotServing));
    assert_eq!(r.get(GREETER), None);
    assert_eq!(r.check(GREETER), Err(Error::NotFound));
    assert_eq!(r.len(), 1);
    assert_eq!(names(&r).len(), 1);
    r.set(GREETER, Serving).unwrap();
    assert_eq!(r.get(""), Some(Serving));
    r.require("grp/org.apache.Foo:1.0.0").unwrap();
    assert_eq!(r.get(""), Some(NotServing));
    r.export(FOO, "grp", "1.0.0", Serving).unwrap();
    assert_eq!(r.get(""), Some(Serving));
    r.set(GREETER, Unknown).unwrap();
    assert_eq!(r.get(""), Some(NotServing));
    r.set(GREETER, Serving).unwrap();
    // Unexport takes the key down, so "" too.
    r.unexport(FOO, "grp", "1.0.0").unwrap();
    assert_eq!(r.get(""), Some(NotServing));
    r.export(FOO, "grp", "1.0.0", Serving).unwrap();
    assert_eq!(r.get(""), Some(Serving));
    // A required bare interface follows its exports.
    r.require(FOO).unwrap();
    assert_eq!(r.get(""), Some(Serving));
    r.set("grp/org.apache.Foo:1.0.0", NotServing).unwrap();
    assert_eq!(r.get(FOO), Some(NotServing));
    assert_eq!(r.get(""), Some(NotServing));
    assert_eq!(r.unrequire("grp/org.apache.Foo:1.0.0"), Ok(true));
    assert_eq!(r.unrequire(FOO), Ok(true));
    assert_eq!(r.get(""), Some(Serving));
    // Clearing a required name: "" NOT_SERVING, and back when it is registered again.
    r.clear(GREETER).unwrap();
    assert_eq!(r.get(""), Some(NotServing));
    assert_eq!(r.get(GREETER), None);
    r.set(GREETER, Serving).unwrap();
    assert_eq!(r.get(""), Some(Serving));
    // A direct set of "" stands until a required name changes.
    r.set("", NotServing).unwrap();
    assert_eq!(r.get(""), Some(NotServing));
    r.set(GREETER, NotServing).unwrap();
    r.set(GREETER, Serving).unwrap();
    assert_eq!(r.get(""), Some(Serving));
    // A cleared "" stays cleared; set registers it again.
    r.clear("").unwrap();
    r.set(GREETER, NotServing).unwrap();
    assert_eq!(r.get(""), None);
    r.set("", Serving).unwrap();
    r.set(GREETER, Serving).unwrap();
    assert_eq!(r.get(""), Some(Serving));
    // Nothing required any more: "" keeps its status.
    r.set(GREETER, NotServing).unwrap();
    assert_eq!(r.unrequire(GREETER), Ok(true));
    assert_eq!(r.get(""), Some(NotServing));
    assert!(!r.is_required(GREETER));
    r.set(GREETER, Serving).unwrap();
    assert_eq!(r.get(""), Some(NotServing));
}

#[test]
fn placeholders_take_capacity_and_give_it_back() {
    let r = FixedRegistry::<3>::new();
    r.require("a").unwrap();
    r.require("b").unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r.require("c"), Err(Error::Full));
    assert_eq!(r.set("c", Serving), Err(Error::Full));
    assert_eq!(r.get(""), Some(NotServing));
    r.set("a", Serving).unwrap();
    r.set("b", Serving).unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r.get(""), Some(Serving));
    r.unrequire("a").unwrap();
    r.clear("a").unwrap();
    assert_eq!(r.set("c", Serving), Ok(SetOutcome::Changed));
    r.clear("b").unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(
        r.set("d", Serving),
        Err(Error::Full),
        "b's placeholder holds a slot"
    );
    r.unrequire("b").unwrap();
    assert_eq!(r.set("d", Serving), Ok(SetOutcome::Changed));
}

#[test]
fn watchers_see_derived_changes_once_each() {
    let r = Reg::new();
    let (count, waker) = counting();
    let mut root = Box::pin(r.watch("").unwrap());
    let mut bare = Box::pin(r.watch(FOO).unwrap());
    let mut need = Box::pin(r.watch("db").unwrap());
    assert_eq!(poll(root.as_mut(), &waker), Poll::Ready(Some(Serving)));
    assert_eq!(
        poll(bare.as_mut(), &waker),
        Poll::Ready(Some(ServiceUnknown))
    );
    assert_eq!(
        poll(need.as_mut(), &waker),
        Poll::Ready(Some(ServiceUnknown))
    );
    for w in [root.as_mut(), bare.as_mut(), need.as_mut()] {
        assert_eq!(poll(w, &waker), Poll::Pending);
    }
    r.require("db").unwrap();
    assert_eq!(poll(root.as_mut(), &waker), Poll::Ready(Some(NotServing)));
    // A placeholder is not a registration: its watcher hears nothing.
    assert_eq!(poll(need.as_mut(), &waker), Poll::Pending);
    r.set("db", Serving).unwrap();
    assert_eq!(poll(need.as_mut(), &waker), Poll::Ready(Some(Serving)));
    assert_eq!(poll(root.as_mut(), &waker), Poll::Ready(Some(Serving)));
    // No repeats: the interface goes SERVING once for two exports.
    r.export(FOO, "grp", "1.0.0", Serving).unwrap();
    r.export(FOO, "grp", "2.0.0", Serving).unwrap();
    assert_eq!(poll(bare.as_mut(), &waker), Poll::Ready(Some(Serving)));
    assert_eq!(poll(bare.as_mut(), &waker), Poll::Pending);
    let before = count.count();
    r.unexport(FOO, "grp", "1.0.0").unwrap();
    assert_eq!(count.count(), before, "the interface did not change");
    assert_eq!(poll(bare.as_mut(), &waker), Poll::Pending);
    r.unexport(FOO, "grp", "2.0.0").unwrap();
    assert_eq!(poll(bare.as_mut(), &waker), Poll::Ready(Some(NotServing)));
    // Latest wins: down and up again before the watcher runs says nothing.
    r.clear("db").unwrap();
    r.set("db", Serving).unwrap();
    assert_eq!(poll(root.as_mut(), &waker), Poll::Pending);
    assert_eq!(poll(need.as_mut(), &waker), Poll::Pending);
    r.clear("db").unwrap();
    assert_eq!(
        poll(need.as_mut(), &waker),
        Poll::Ready(Some(ServiceUnknown))
    );
    assert_eq!(poll(root.as_mut(), &waker), Poll::Ready(Some(NotServing)));
    r.shutdown();
    r.resume();
    assert_eq!(
        poll(root.as_mut(), &waker),
        Poll::Pending,
        "still NOT_SERVING"
    );
}

/// A tiny deterministic generator (no dependency, Miri-friendly).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Random exports, unexports, sets, clears, requirements and drains, checked after every step
/// against what the documented rules say from scratch (no direct sets of interfaces or `""`,
/// which stand only until the next change).
#[test]
fn derived_names_agree_with_a_model() {
    const IFACES: [&str; 2] = ["org.apache.Foo", "greet.GreetService"];
    const GROUPS: [&str; 2] = ["", "grp"];
    const VERSIONS: [&str; 3] = ["", "0.0.0", "1.0.0"];
    const OTHERS: [&str; 2] = ["db", "cache"];
    let statuses = [Serving, NotServing, Unknown];
    for seed in 1..=rounds(300, 6) as u64 {
        let r = FixedRegistry::<64>::new();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Service keys tied to their interface, and the statuses of self exports (key ==
        // interface), as the documented rules say.
        let mut tied: BTreeMap<String, usize> = BTreeMap::new();
        let mut self_status: BTreeMap<usize, ServingStatus> = BTreeMap::new();
        let mut required: BTreeSet<String> = BTreeSet::new();
        let mut down = false;
        let mut log = Vec::new();
        for _ in 0..rounds(60, 25) {
            let (i, g, v) = (rng.below(2), rng.below(2), rng.below(3));
            let keys: BTreeSet<String> = KeyForm::ALL
                .iter()
                .map(|f| key(IFACES[i], GROUPS[g], VERSIONS[v], *f))
                .collect();
            let status = statuses[rng.below(3)];
            let op = rng.below(9);
            log.push(format!("{op} {i}{g}{v} {status:?}"));
            match op {
                0 | 1 => {
                    r.export(IFACES[i], GROUPS[g], VERSIONS[v], status).unwrap();
                    if !down {
                        for k in &keys {
                            if k == IFACES[i] {
                                self_status.insert(i, status);
                            } else {
                                tied.insert(k.clone(), i);
                            }
                        }
                    }
                }
                2 => {
                    r.unexport(IFACES[i], GROUPS[g], VERSIONS[v]).unwrap();
                    for k in &keys {
                        if k == IFACES[i] {
                            self_status.remove(&i);
                        } else {
                            tied.remove(k);
                        }
                    }
                }
                3 => {
                    let k = keys.iter().nth(rng.below(keys.len())).unwrap().clone();
                    if k != IFACES[i] {
                        r.set(&k, status).unwrap();
                    }
                }
                4 => {
                    let k = keys.iter().nth(rng.below(keys.len())).unwrap().clone();
                    if k != IFACES[i] {
                        r.clear(&k).unwrap();
                        tied.remove(&k);
                    }
                }
                5 => {
                    let n = rng.below(4);
                    let name = match n {
                        0 | 1 => OTHERS[n].to_owned(),
                        2 => IFACES[i].to_owned(),
                        _ => keys.iter().next().unwrap().clone(),
                    };
                    if rng.below(2) == 0 {
                        r.require(&name).unwrap();
                        required.insert(name);
                    } else {
                        r.unrequire(&name).unwrap();
                        required.remove(&name);
                    }
                }
                6 => {
                    let o = OTHERS[rng.below(2)];
                    if rng.below(3) == 0 {
                        r.clear(o).unwrap();
                    } else {
                        r.set(o, status).unwrap();
                    }
                }
                7 if rng.below(3) == 0 => {
                    r.shutdown();
                    down = true;
                    for s in self_status.values_mut() {
                        *s = NotServing;
                    }
                }
                _ => {
                    if down && rng.below(2) == 0 {
                        r.resume();
                        down = false;
                        for s in self_status.values_mut() {
                            *s = Serving;
                        }
                    }
                }
            }
            // Every interface with an export: SERVING exactly while one of them is.
            for (n, iface) in IFACES.iter().enumerate() {
                let has = self_status.contains_key(&n) || tied.values().any(|t| *t == n);
                let serving = self_status.get(&n) == Some(&Serving)
                    || tied
                        .iter()
                        .any(|(k, t)| *t == n && r.get(k) == Some(Serving));
                // (With no export left, `resume` may have made it SERVING like any name.)
                if let (true, Some(got)) = (has, r.get(iface)) {
                    let want = if serving { Serving } else { NotServing };
                    assert_eq!(got, want, "seed {seed}: {iface} after {log:?}");
                }
            }
            if !required.is_empty() {
                let all = required.iter().all(|n| r.get(n) == Some(Serving));
                let want = if all { Serving } else { NotServing };
                assert_eq!(r.get(""), Some(want), "seed {seed}: \"\" with {required:?}");
            }
            assert_eq!(r.len(), r.iter().count(), "seed {seed}");
        }
    }
}
