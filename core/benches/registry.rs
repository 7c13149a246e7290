//! Criterion benchmarks of the registry users get: a default-capacity `HeapRegistry`.
//!
//! - `get`: the `Check` hot path, hit and miss, as the registry grows; a miss on a registry
//!   at its full capacity; a miss after 1,000,000 registrations and clears of distinct names.
//! - `set`: a status change as the watchers of that name grow (and not with other names'
//!   watchers).
//! - `register`: a new name registered and cleared, with 100,000 parked watchers of other
//!   unregistered names, and with none.
//!
//! Lookups rotate over 1,024 names, so a result is the mean over many home positions, not
//! one lucky (or unlucky) probe.
#![allow(missing_docs)]

use std::{
    hint::black_box,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Wake, Waker},
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dubbo_health_core::{HeapRegistry, ServingStatus, Watch};
use futures_core::Stream;

type Reg = HeapRegistry;

/// What every door makes: `HeapRegistry::with_capacity(DEFAULT_CAPACITY)`.
fn new_registry() -> Box<Reg> {
    Box::new(HeapRegistry::new())
}

fn name(i: usize) -> String {
    format!("org.apache.dubbo.samples.Service{i}")
}

fn missing(i: usize) -> String {
    format!("org.apache.dubbo.samples.Missing{i}")
}

const ROTATE: usize = 1024;

/// Times `get` over `probes`, one per iteration, round robin.
fn bench_get(b: &mut criterion::Bencher<'_>, r: &Reg, probes: &[String]) {
    let mut i = 0;
    b.iter(|| {
        i = (i + 1) % probes.len();
        r.get(black_box(&probes[i]))
    })
}

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    let misses: Vec<String> = (0..ROTATE).map(missing).collect();
    for names in [1usize, 100, 1_000, 10_000] {
        let r = new_registry();
        for i in 0..names {
            r.set(&name(i), ServingStatus::Serving).unwrap();
        }
        let hits: Vec<String> = (0..ROTATE.min(names))
            .map(|i| name(i * names / ROTATE.min(names)))
            .collect();
        group.bench_function(BenchmarkId::new("hit", names), |b| bench_get(b, &r, &hits));
        group.bench_function(BenchmarkId::new("miss", names), |b| {
            bench_get(b, &r, &misses)
        });
    }

    // Every slot taken.
    let r = new_registry();
    let mut i = 0;
    while r.len() < r.capacity() {
        r.set(&name(i), ServingStatus::Serving).unwrap();
        i += 1;
    }
    group.bench_function("miss_full", |b| bench_get(b, &r, &misses));
    drop(r);

    // 1,000,000 registrations and clears of distinct names, 100 live at a time, in setup.
    let r = new_registry();
    for i in 0..1_000_000 {
        r.set(&name(i), ServingStatus::Serving).unwrap();
        if i >= 100 {
            r.clear(&name(i - 100)).unwrap();
        }
    }
    group.bench_function("miss_after_churn", |b| bench_get(b, &r, &misses));
    group.finish();
}

type W<'a> = Pin<Box<Watch<&'a Reg, String>>>;

/// A waker that notes that it was woken.
#[derive(Default)]
struct Flag(AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Polls every watcher until it is parked again.
fn park(watchers: &mut [W<'_>], waker: &Waker) {
    let mut cx = Context::from_waker(waker);
    for w in watchers {
        while w.as_mut().poll_next(&mut cx).is_ready() {}
    }
}

fn flip(flip: &mut bool) -> ServingStatus {
    *flip = !*flip;
    if *flip {
        ServingStatus::NotServing
    } else {
        ServingStatus::Serving
    }
}

fn set(c: &mut Criterion) {
    let mut group = c.benchmark_group("set");
    group.measurement_time(Duration::from_secs(3));
    let waker = Waker::noop();
    for watchers in [0usize, 1, 100, 10_000] {
        let r = new_registry();
        let target = name(0);
        r.set(&target, ServingStatus::Serving).unwrap();
        let mut ws: Vec<W<'_>> = (0..watchers)
            .map(|_| Box::pin(r.watch(target.clone()).unwrap()))
            .collect();
        group.bench_function(BenchmarkId::new("watchers_of_name", watchers), |b| {
            let mut state = false;
            b.iter_custom(|iters| {
                if ws.is_empty() {
                    // Nothing to re-park: time the whole batch, not each call.
                    let start = Instant::now();
                    for _ in 0..iters {
                        r.set(black_box(&target), flip(&mut state)).unwrap();
                    }
                    return start.elapsed();
                }
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    park(&mut ws, waker);
                    let status = flip(&mut state);
                    let start = Instant::now();
                    r.set(black_box(&target), status).unwrap();
                    total += start.elapsed();
                }
                total
            })
        });
    }
    // 10,000 watchers of another name: `set` must not pay for them.
    let r = new_registry();
    r.set("other", ServingStatus::Serving).unwrap();
    r.set(&name(0), ServingStatus::Serving).unwrap();
    let mut ws: Vec<W<'_>> = (0..10_000)
        .map(|_| Box::pin(r.watch("other".to_owned()).unwrap()))
        .collect();
    park(&mut ws, waker);
    group.bench_function("watchers_of_other_name/10000", |b| {
        let mut state = false;
        let target = name(0);
        b.iter(|| r.set(black_box(&target), flip(&mut state)))
    });
    group.finish();
}

fn register(c: &mut Criterion) {
    let mut group = c.benchmark_group("register");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);
    let fresh: Vec<String> = (0..ROTATE)
        .map(|i| format!("org.apache.dubbo.samples.New{i}"))
        .collect();
    for watchers in [0usize, 100_000] {
        let r = new_registry();
        let flag = Arc::new(Flag::default());
        let waker = Waker::from(Arc::clone(&flag));
        // One watcher per unregistered name, each name distinct: spread over the buckets.
        let mut ws: Vec<W<'_>> = (0..watchers)
            .map(|i| {
                Box::pin(
                    r.watch(format!("org.apache.dubbo.samples.Unknown{i}"))
                        .unwrap(),
                )
            })
            .collect();
        park(&mut ws, &waker);
        flag.0.store(false, Ordering::Relaxed);
        group.bench_function(BenchmarkId::new("unknown_watchers", watchers), |b| {
            let mut i = 0;
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    if flag.0.swap(false, Ordering::Relaxed) {
                        // Someone was woken (a registration that wakes every unknown-name
                        // watcher): re-park them outside the timed part.
                        park(&mut ws, &waker);
                        flag.0.store(false, Ordering::Relaxed);
                    }
                    i = (i + 1) % fresh.len();
                    let start = Instant::now();
                    r.set(black_box(&fresh[i]), ServingStatus::Serving).unwrap();
                    r.clear(black_box(&fresh[i])).unwrap();
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, get, set, register);
criterion_main!(benches);
