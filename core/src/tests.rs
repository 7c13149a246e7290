//! Unit tests of the registry, the watch stream and the codec, split by mechanism. Small
//! enough for Miri (which runs them with `make test-miri`).

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
};

use futures_core::Stream;

use crate::index::home;

mod dubbo;
mod hash;
mod index;
mod panic;
mod registry;
mod watch;
mod wire;

type Reg = crate::FixedRegistry<8>;

/// Polls once.
fn poll<S: Stream + ?Sized>(s: Pin<&mut S>, waker: &Waker) -> Poll<Option<S::Item>> {
    s.poll_next(&mut Context::from_waker(waker))
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountWaker(AtomicUsize);
impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
impl CountWaker {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}
fn counting() -> (Arc<CountWaker>, Waker) {
    let c = Arc::new(CountWaker::default());
    (c.clone(), Waker::from(c))
}

/// Rounds of loops that Miri runs too: a few there, more natively.
fn rounds(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}

/// `count` names whose home in `r`'s index is `target`.
pub(crate) fn names_at_home<S: crate::Storage>(
    r: &crate::Registry<S>,
    target: usize,
    count: usize,
) -> Vec<String> {
    let len = r.storage().parts().index.len();
    (0..)
        .map(|i| format!("n{i}"))
        .filter(|n| home(r.hash(n.as_bytes()).hi(), len) == target)
        .take(count)
        .collect()
}
