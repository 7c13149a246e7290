//! Criterion benchmarks of the registry: the `Check` hot path (`get`) as the registry grows,
//! and `set` as the watchers of the changed name grow (and not with other names' watchers).
#![allow(missing_docs)]

use std::{
    hint::black_box,
    pin::Pin,
    task::{Context, Waker},
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dubbo_health_core::{Registry, ServingStatus, Watch};
use futures_core::Stream;

type Big = Registry<16384>;

fn name(i: usize) -> String {
    format!("org.apache.dubbo.samples.Service{i}")
}

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    for names in [1usize, 100, 1_000, 10_000] {
        let r = Box::new(Big::new());
        for i in 0..names {
            r.set(&name(i), ServingStatus::Serving).unwrap();
        }
        let probe = name(names / 2);
        group.bench_with_input(BenchmarkId::new("hit", names), &probe, |b, probe| {
            b.iter(|| r.get(black_box(probe)))
        });
        group.bench_function(BenchmarkId::new("miss", names), |b| {
            b.iter(|| r.get(black_box("org.apache.dubbo.samples.Missing")))
        });
    }
    group.finish();
}

type W<'a> = Pin<Box<Watch<&'a Big, String>>>;

/// Polls every watcher until it is parked again.
fn park(watchers: &mut [W<'_>]) {
    let mut cx = Context::from_waker(Waker::noop());
    for w in watchers {
        while w.as_mut().poll_next(&mut cx).is_ready() {}
    }
}

fn set(c: &mut Criterion) {
    let mut group = c.benchmark_group("set");
    group.measurement_time(Duration::from_secs(3));
    for watchers in [0usize, 1, 100, 10_000] {
        let r = Box::new(Big::new());
        let target = name(0);
        r.set(&target, ServingStatus::Serving).unwrap();
        let mut ws: Vec<W<'_>> = (0..watchers)
            .map(|_| Box::pin(r.watch(target.clone()).unwrap()))
            .collect();
        group.bench_function(BenchmarkId::new("watchers_of_name", watchers), |b| {
            let mut flip = false;
            b.iter_custom(|iters| {
                if ws.is_empty() {
                    // Nothing to re-park: time the whole batch, not each call.
                    let start = Instant::now();
                    for _ in 0..iters {
                        flip = !flip;
                        let status = if flip {
                            ServingStatus::NotServing
                        } else {
                            ServingStatus::Serving
                        };
                        r.set(black_box(&target), status).unwrap();
                    }
                    return start.elapsed();
                }
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    park(&mut ws);
                    flip = !flip;
                    let status = if flip {
                        ServingStatus::NotServing
                    } else {
                        ServingStatus::Serving
                    };
                    let start = Instant::now();
                    r.set(black_box(&target), status).unwrap();
                    total += start.elapsed();
                }
                total
            })
        });
    }
    // 10,000 watchers of another name: `set` must not pay for them.
    let r = Box::new(Big::new());
    r.set("other", ServingStatus::Serving).unwrap();
    let mut ws: Vec<W<'_>> = (0..10_000)
        .map(|_| Box::pin(r.watch("other".to_owned()).unwrap()))
        .collect();
    park(&mut ws);
    group.bench_function("watchers_of_other_name/10000", |b| {
        let mut flip = false;
        b.iter(|| {
            flip = !flip;
            let status = if flip {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            r.set(black_box("target"), status)
        })
    });
    group.finish();
}

criterion_group!(benches, get, set);
criterion_main!(benches);
