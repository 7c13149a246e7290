//! Many watchers, cancelled watchers and watchers that stop reading, on `dubbo-health serve`
//! (a process of its own, so that its memory can be read from `/proc`).

#[path = "../../tests/common/mod.rs"]
mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{next, request, watch, Server, TIMEOUT};
use dubbo_health_core::ServingStatus::{NotServing, Serving, Unknown};
use dubbo_health_proto::pb::health_client::HealthClient;
use tonic::transport::Channel;

/// `dubbo-health serve` as a child process, so its memory can be read from `/proc`.
struct ServeProcess {
    child: Child,
    addr: String,
}

impl ServeProcess {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dubbo-health"))
            .args(["serve", "--addr", "127.0.0.1:0", "--set", "svc=SERVING"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dubbo-health serve");
        let stderr = child.stderr.take().unwrap();
        let mut line = String::new();
        BufReader::new(stderr)
            .read_line(&mut line)
            .expect("read stderr");
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("expected `listening ADDR`, got {line:?}"))
            .to_owned();
        Self { child, addr }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    async fn channel(&self) -> Channel {
        tokio::time::timeout(
            TIMEOUT,
            Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect(),
        )
        .await
        .expect("connect timed out")
        .expect("connect")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `per_channel` Watch streams on each channel and waits for each first message.
async fn open_watches(
    channels: &[Channel],
    per_channel: usize,
) -> Vec<tonic::Streaming<dubbo_health_proto::pb::HealthCheckResponse>> {
    let mut tasks = Vec::new();
    for channel in channels {
        let channel = channel.clone();
        tasks.push(tokio::spawn(async move {
            let mut streams = Vec::with_capacity(per_channel);
            let mut client = HealthClient::new(channel);
            let calls: Vec<_> = (0..per_channel)
                .map(|i| {
                    let mut client = client.clone();
                    async move {
                        // Half watch a registered name, half an unknown one.
                        let name = if i % 2 == 0 { "svc" } else { "unknown.svc" };
                        watch(&mut client, name).await.0
                    }
                })
                .collect();
            streams.extend(futures::future::join_all(calls).await);
            // Keep the client alive until the streams are open.
            let _ = client.check(request("")).await;
            streams
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

/// Cancellation reaches the server asynchronously: polls (bounded, with Checks in between)
/// until the server's RSS is at most `limit` KiB, and returns the last reading.
async fn wait_for_rss_at_most(server: &ServeProcess, channel: &Channel, limit: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut rss = server.rss_kib();
    while rss > limit && Instant::now() < deadline {
        checks_are_fast(channel).await;
        rss = server.rss_kib();
    }
    rss
}

async fn checks_are_fast(channel: &Channel) -> Duration {
    let mut client = HealthClient::new(channel.clone());
    let started = Instant::now();
    for _ in 0..200 {
        let status = client
            .check(request("svc"))
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, Serving.as_i32());
    }
    started.elapsed() / 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_watches_opened_and_cancelled_leave_memory_and_check_as_before() {
    const CHANNELS: usize = 10;
    const PER_CHANNEL: usize = 500;
    let server = ServeProcess::start();
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(server.channel().await);
    }
    let check_before = checks_are_fast(&channels[0]).await;
    let fresh = server.rss_kib();

    // The first round shows what an open Watch costs, and lets the allocator and the HTTP/2
    // tables reach their working size.
    let streams = open_watches(&channels, PER_CHANNEL).await;
    assert_eq!(streams.len(), CHANNELS * PER_CHANNEL);
    let open = server.rss_kib();
    eprintln!(
        "server RSS: {fresh} KiB fresh, {open} KiB with {} watches open (~{} bytes per watch)",
        streams.len(),
        open.saturating_sub(fresh) * 1024 / streams.len() as u64
    );
    drop(streams);
    // glibc's allocator keeps freed memory for reuse rather than giving it back, and its
    // fragmentation settles over a couple of rounds: the second round sets the level.
    drop(open_watches(&channels, PER_CHANNEL).await);
    let before = wait_for_rss_at_most(&server, &channels[1], fresh + fresh / 10).await;
    eprintln!("server RSS after two rounds: {before} KiB");

    // Later rounds must give back what they take (a leak of even a tenth of a watch's cost
    // per round would show as +10 % here).
    let mut after = before;
    for round in 3..=4 {
        let streams = open_watches(&channels, PER_CHANNEL).await;
        let open = server.rss_kib();
        drop(streams);
        after = wait_for_rss_at_most(&server, &channels[1], before + before / 10).await;
        eprintln!("round {round}: {open} KiB with watches open, {after} KiB after cancelling");
    }
    assert!(
        after <= before + before / 10,
        "server RSS {after} KiB after cancelling 5,000 watches twice more, {before} KiB before"
    );

    let check_after = checks_are_fast(&channels[0]).await;
    eprintln!("Check latency: {check_before:?} before, {check_after:?} after");
    assert!(
        check_after < check_before * 3 + Duration::from_millis(2),
        "Check slowed from {check_before:?} to {check_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_does_not_block_the_others() {
    let server = Server::start();
    server.set("svc", Serving);

    // A client whose HTTP/2 stream window fills after a few messages, and which never reads.
    let stalled_channel = Channel::from_shared(server.uri())
        .unwrap()
        .initial_stream_window_size(Some(64))
        .connect()
        .await
        .unwrap();
    let mut stalled_client = HealthClient::new(stalled_channel.clone());
    let (mut stalled, first) = watch(&mut stalled_client, "svc").await;
    assert_eq!(first, Serving);

    // Readers on the same connection and on another one.
    let (mut same_conn, _) = watch(&mut stalled_client, "svc").await;
    let mut other_client = server.client().await;
    let (mut other_conn, _) = watch(&mut other_client, "svc").await;

    // Changes the stalled watcher cannot take: each one delivered to the readers first.
    for i in 0..40 {
        let status = if i % 2 == 0 { NotServing } else { Serving };
        server.set("svc", status);
        assert_eq!(next(&mut same_conn).await, Some(status));
        assert_eq!(next(&mut other_conn).await, Some(status));
    }
    // And a burst.
    for i in 0..2000 {
        server.set("svc", if i % 2 == 0 { NotServing } else { Serving });
    }
    server.set("svc", Unknown);

    for (what, stream) in [
        ("same connection", &mut same_conn),
        ("other connection", &mut other_conn),
    ] {
        let started = Instant::now();
        loop {
            match next(stream).await {
                Some(Unknown) => break,
                Some(_) => {}
                None => panic!("{what}: stream ended"),
            }
        }
        eprintln!("{what}: final status after {:?}", started.elapsed());
    }
    assert_eq!(
        other_client
            .check(request("svc"))
            .await
            .unwrap()
            .into_inner()
            .status,
        Unknown.as_i32()
    );

    // The stalled watcher was never queued 2,000 messages: once it reads, it gets what fitted
    // in its window, then the latest status.
    let mut received = 0;
    loop {
        received += 1;
        match next(&mut stalled).await {
            Some(Unknown) => break,
            Some(_) => assert!(
                received < 20,
                "a stalled watcher got {received} stale messages"
            ),
            None => panic!("stalled stream ended"),
        }
    }
    eprintln!("stalled watcher: {received} messages after it resumed reading");
}
