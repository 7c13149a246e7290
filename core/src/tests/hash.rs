//! The keyed hash: one `const fn` for both const and runtime use, keyed by the seed.

use std::collections::HashSet;

use crate::{
    hash::{Keys, FIXED_SEED},
    MAX_NAME,
};

#[test]
fn const_evaluation_agrees_with_runtime() {
    const KEYS: Keys = Keys::from_seed(FIXED_SEED);
    const EMPTY: u64 = KEYS.hash(b"").0;
    const GREETER: u64 = KEYS.hash(b"org.apache.dubbogo.samples.api.Greeter").0;
    let keys = Keys::from_seed(std::hint::black_box(FIXED_SEED));
    assert_eq!(keys.hash(b"").0, EMPTY);
    assert_eq!(
        keys.hash(b"org.apache.dubbogo.samples.api.Greeter").0,
        GREETER
    );
}

#[test]
fn every_length_and_byte_matters() {
    // Names of every length up to MAX_NAME, and each one-byte change of a long name, hash
    // differently (no input byte is ignored by the chunking).
    let keys = Keys::from_seed(7);
    let base = vec![b'x'; MAX_NAME];
    let mut seen = HashSet::new();
    for len in 0..=MAX_NAME {
        assert!(seen.insert(keys.hash(&base[..len]).0), "length {len}");
    }
    let step = if cfg!(miri) { 37 } else { 1 };
    for i in (0..MAX_NAME).step_by(step) {
        let mut name = base.clone();
        name[i] = b'y';
        assert!(seen.insert(keys.hash(&name).0), "byte {i}");
    }
}

#[test]
#[cfg(feature = "std")]
fn the_seed_changes_every_hash() {
    let (a, b) = (Keys::from_seed(1), Keys::from_seed(2));
    for name in ["", "a", "org.apache.Foo", "group/org.apache.Foo:1.0.0"] {
        assert_ne!(a.hash(name.as_bytes()), b.hash(name.as_bytes()), "{name}");
    }
    assert_ne!(Keys::random_seed(), Keys::random_seed());
    assert_eq!(format!("{a:?}"), "Keys(..)");
}

#[test]
fn home_and_tag_bits_spread() {
    // Sequential names (what a Dubbo host registers) fill the high bits (home positions) and
    // the tag evenly: no bucket of 64 gets more than twice its share.
    let keys = Keys::from_seed(FIXED_SEED);
    let n = if cfg!(miri) { 640 } else { 64_000 };
    let (mut homes, mut tags) = ([0usize; 64], [0usize; 256]);
    for i in 0..n {
        let h = keys.hash(format!("org.apache.dubbo.samples.Service{i}").as_bytes());
        homes[crate::index::home(h.hi(), 64)] += 1;
        tags[h.tag() as usize] += 1;
    }
    assert!(homes.iter().all(|&c| c < 2 * n / 64), "{homes:?}");
    if !cfg!(miri) {
        assert!(tags.iter().all(|&c| c < 2 * n / 256), "{tags:?}");
    }
}
