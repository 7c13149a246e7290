//! An empty `HeapRegistry` of 1,000,000 names is (almost) not resident: its slices are
//! allocated zeroed, so the pages no name has touched are never faulted in, and resident
//! memory grows with the names registered. Measured from `/proc/self/statm` in a process of
//! its own (this file holds one test).
#![cfg(all(target_os = "linux", feature = "std", not(loom), not(miri)))]

use dubbo_health_core::{HeapRegistry, ServingStatus};

/// The page size, from the auxiliary vector (`AT_PAGESZ`).
fn page_size() -> usize {
    let auxv = std::fs::read("/proc/self/auxv").expect("read /proc/self/auxv");
    let word = size_of::<usize>();
    auxv.chunks_exact(2 * word)
        .map(|pair| {
            let (key, value) = pair.split_at(word);
            (
                usize::from_ne_bytes(key.try_into().unwrap()),
                usize::from_ne_bytes(value.try_into().unwrap()),
            )
        })
        .find(|&(key, _)| key == 6)
        .map(|(_, value)| value)
        .expect("AT_PAGESZ in the auxiliary vector")
}

/// Resident bytes of this process.
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("resident pages in statm");
    pages * page_size()
}

const MIB: f64 = (1 << 20) as f64;

#[test]
fn an_empty_million_name_registry_is_not_resident() {
    let reserved = HeapRegistry::reserved_bytes(1_000_000);
    let before = resident();
    let registry = HeapRegistry::with_capacity(1_000_000).expect("1,000,000 names");
    assert_eq!(registry.get(""), Some(ServingStatus::Serving));
    let empty = resident().saturating_sub(before);
    println!(
        "HeapRegistry::with_capacity(1_000_000): {:.1} MiB reserved, {:.3} MiB resident when empty",
        reserved as f64 / MIB,
        empty as f64 / MIB
    );
    assert!(reserved > 200 << 20, "the registry reserves its capacity");
    assert!(
        empty < 16 << 20,
        "an empty 1,000,000-name registry is {empty} bytes resident"
    );

    // Resident memory then follows the names registered: 100,000 names fault in their slots
    // (216 bytes each, contiguous) and the index pages they land on, not the rest.
    let before = resident();
    for i in 0..100_000 {
        registry
            .set(
                &format!("org.apache.dubbo.samples.Service{i}"),
                ServingStatus::Serving,
            )
            .unwrap();
    }
    let grown = resident().saturating_sub(before);
    println!(
        "after 100,000 names: +{:.1} MiB resident",
        grown as f64 / MIB
    );
    assert!(
        grown < 64 << 20,
        "100,000 names made {grown} bytes resident"
    );
    assert!(grown < reserved / 4);
}
