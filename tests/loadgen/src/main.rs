//! `dh-loadgen`: a load generator for any `grpc.health.v1.Health` server, the driver of
//! `make bench`.
//!
//! Modes (each prints one JSON object on stdout):
//!
//! - `check`: C connections × N calls in flight, warm-up, then a fixed measuring window;
//!   throughput and p50/p99/p99.9 latency.
//! - `list`: the same loop with `List`.
//! - `watch-fanout`: W `Watch` streams over K connections (W/100 by default); waits for every
//!   first message, then flips the watched name from outside (a `set NAME STATUS` line on the
//!   server's stdin) and times until every watcher has the new status, for several rounds.
//! - `churn`: what probers do (grpc-health-probe, Kubernetes): connect, one Check, close, in a
//!   bounded loop on C parallel lanes; connections per second, server CPU per connection, and
//!   the server's RSS before and after (flat means nothing is kept per closed connection).
//! - `external`: runs another client (`h2load`) against the server and reports the server's
//!   CPU time over that run.
//!
//! The server is either started by `dh-loadgen` (the command after `--`: its stdin takes the
//! control lines, and it must print `listening ADDR` on stderr or stdout), or already running
//! (`--addr`, with `--pid` for the CPU and memory figures and `--control FIFO` for flips).
//! Server CPU time comes from `/proc/PID/task/*/schedstat` (nanoseconds; `/proc/PID/stat`
//! when schedstat is missing), memory from `VmRSS` in `/proc/PID/status`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use dubbo_health_proto::pb::health_check_response::ServingStatus;
use dubbo_health_proto::pb::health_client::HealthClient;
use dubbo_health_proto::pb::{HealthCheckRequest, HealthListRequest};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Notify, Semaphore};
use tonic::transport::{Channel, Endpoint};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

#[derive(Parser, Debug)]
#[command(name = "dh-loadgen", about = "Load generator for gRPC health services")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Unary Check calls: C connections × N in flight.
    Check(UnaryArgs),
    /// Unary List calls: C connections × N in flight.
    List(UnaryArgs),
    /// W Watch streams; flip the watched name and time the delivery to every watcher.
    WatchFanout(FanoutArgs),
    /// Connect + one Check + close, N times on C parallel lanes (what probers do).
    Churn(ChurnArgs),
    /// Run another client (e.g. h2load) against the server: `{addr}` in --cmd is replaced by
    /// HOST:PORT; reports the server's CPU time over the run and the command's output.
    External(ExternalArgs),
}

#[derive(Args, Debug)]
struct ExternalArgs {
    #[command(flatten)]
    target: Target,
    /// Client command line, split on whitespace; `{addr}` becomes the server's HOST:PORT.
    #[arg(long)]
    cmd: String,
}

#[derive(Args, Debug)]
struct Target {
    /// Address of an already running server (HOST:PORT); otherwise the command after `--` is started.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// PID of the running server given by --addr (for CPU and memory figures).
    #[arg(long)]
    pid: Option<u32>,
    /// FIFO or file that takes `set NAME STATUS` lines for the running server given by --addr.
    #[arg(long)]
    control: Option<PathBuf>,
    /// Client runtime worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds to wait for the started server to print `listening ADDR`.
    #[arg(long, default_value_t = 30.0)]
    start_timeout: f64,
    /// Free-form label copied into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
    /// Server command to start (after `--`).
    #[arg(last = true)]
    server: Vec<String>,
}

#[derive(Args, Debug)]
struct ChurnArgs {
    #[command(flatten)]
    target: Target,
    /// Connections in all (each: connect, one Check, close).
    #[arg(long, short = 'n', default_value_t = 10_000)]
    connections: usize,
    /// Lanes connecting at once.
    #[arg(long, short = 'c', default_value_t = 4)]
    lanes: usize,
    /// Connections made before the RSS baseline is read (allocator warm-up).
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// Service name to Check.
    #[arg(long, default_value = "")]
    service: String,
    /// Seconds the whole run may take.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// The prober: `h2`, a bare HTTP/2 client (the preface, SETTINGS, one Check, close: what
    /// a probe puts on the wire and little else), or `tonic`, a tonic `Channel` per probe
    /// (a client library's own cost per connection on top, several times the server's).
    #[arg(long, value_enum, default_value_t = Prober::H2)]
    client: Prober,
}

/// How `churn` connects.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Prober {
    H2,
    Tonic,
}

#[derive(Args, Debug)]
struct UnaryArgs {
    #[command(flatten)]
    target: Target,
    /// HTTP/2 connections.
    #[arg(long, short = 'c', default_value_t = 4)]
    connections: usize,
    /// Calls in flight per connection.
    #[arg(long, short = 'n', default_value_t = 64)]
    in_flight: usize,
    /// Warm-up seconds (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Measuring seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Service name to Check.
    #[arg(long, default_value = "")]
    service: String,
}

#[derive(Args, Debug)]
struct FanoutArgs {
    #[command(flatten)]
    target: Target,
    /// Watch streams.
    #[arg(long, short = 'w', default_value_t = 10_000)]
    watchers: usize,
    /// HTTP/2 connections (default: watchers / 100, at least 1).
    #[arg(long, short = 'c')]
    connections: Option<usize>,
    /// Watched name (must be registered and flippable by `set NAME STATUS`).
    #[arg(long, default_value = "")]
    service: String,
    /// Flips to time.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Watch calls being opened at once.
    #[arg(long, default_value_t = 1000)]
    open_concurrency: usize,
    /// Seconds to wait for all watchers to open, and for each flip to reach every watcher.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Pause between flips, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pause_ms: u64,
}

// ---------------------------------------------------------------------------------------------
// /proc readings

/// CPU time the process has used, in nanoseconds.
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut sum = 0u64;
    let mut any = false;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in dir.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            if let Some(ns) = text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
            {
                sum += ns;
                any = true;
            }
        }
    }
    if any && sum > 0 {
        return Some(sum);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Safety: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ticks * 1_000_000_000 / hz)
}

/// Resident set size in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Write-type system calls the process has made (`syscw` in `/proc/PID/io`: write, writev,
/// sendmsg, ...), all threads included.
fn write_syscalls(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = io.lines().find(|l| l.starts_with("syscw:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // Safety: `lim` is a valid rlimit for getrlimit/setrlimit to read and write.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test

enum Control {
    Stdin(ChildStdin),
    File(PathBuf),
    None,
}

struct Server {
    addr: SocketAddr,
    pid: Option<u32>,
    control: Control,
    child: Option<Child>,
}

fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix("listening")?;
    let token = rest.split_whitespace().last()?;
    let token = token.trim_start_matches("http://");
    token.parse().ok()
}

impl Server {
    async fn start(target: &Target) -> Result<Self> {
        if let Some(addr) = target.addr {
            let control = match &target.control {
                Some(path) => Control::File(path.clone()),
                None => Control::None,
            };
            return Ok(Server {
                addr,
                pid: target.pid,
                control,
                child: None,
            });
        }
        let (program, args) = target
            .server
            .split_first()
            .ok_or("give --addr of a running server or a server command after `--`")?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let pid = child.id();
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SocketAddr>();
        // Both streams are drained for the server's whole life (forwarded to our stderr), so a
        // chatty server never blocks on a full pipe.
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        for (reader, tx) in [
            (
                Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                tx.clone(),
            ),
            (Box::new(stderr), tx),
        ] {
            tokio::spawn(async move {
                let mut lines = BufReader::new(reader).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match parse_listening(&line) {
                        Some(addr) => {
                            let _ = tx.send(addr);
                        }
                        None => eprintln!("[server] {line}"),
                    }
                }
            });
        }
        let wait = Duration::from_secs_f64(target.start_timeout);
        let addr = tokio::select! {
            addr = rx.recv() => addr.ok_or("the server closed its output without printing `listening ADDR`")?,
            status = child.wait() => return Err(format!("the server exited before listening: {:?}", status?).into()),
            _ = tokio::time::sleep(wait) => return Err(format!("the server did not print `listening ADDR` within {wait:?}").into()),
        };
        Ok(Server {
            addr,
            pid,
            control: Control::Stdin(stdin),
            child: Some(child),
        })
    }

    async fn send(&mut self, line: &str) -> Result<()> {
        match &mut self.control {
            Control::Stdin(stdin) => {
                stdin.write_all(line.as_bytes()).await?;
                stdin.write_all(b"\n").await?;
                stdin.flush().await?;
            }
            Control::File(path) => {
                let mut f = tokio::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .await?;
                f.write_all(format!("{line}\n").as_bytes()).await?;
                f.flush().await?;
            }
            Control::None => return Err(
                "flipping needs a control channel: start the server after `--`, or give --control"
                    .into(),
            ),
        }
        Ok(())
    }

    fn cpu_ns(&self) -> Option<u64> {
        self.pid.and_then(cpu_ns)
    }

    fn rss(&self) -> Option<u64> {
        self.pid.and_then(rss_bytes)
    }

    fn write_syscalls(&self) -> Option<u64> {
        self.pid.and_then(write_syscalls)
    }

    async fn stop(mut self) {
        self.control = Control::None; // closes the server's stdin
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // Safety: plain syscall on the PID of our own child, which we have not reaped yet.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

async fn connect(addr: SocketAddr, n: usize) -> Result<Vec<HealthClient<Channel>>> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e:?}"))?;
        clients.push(HealthClient::new(channel).max_decoding_message_size(64 << 20));
    }
    Ok(clients)
}

fn status_name(s: i32) -> &'static str {
    ServingStatus::try_from(s)
        .map(|s| s.as_str_name())
        .unwrap_or("?")
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

// ---------------------------------------------------------------------------------------------
// check / list

#[derive(Clone, Copy, Debug, PartialEq)]
enum Unary {
    Check,
    List,
}

async fn run_unary(kind: Unary, a: &UnaryArgs, server: &mut Server) -> Result<Value> {
    if a.connections == 0 || a.in_flight == 0 {
        return Err("--connections and --in-flight must be at least 1".into());
    }
    let clients = connect(server.addr, a.connections).await?;
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(a.warmup);
    let end = warm_end + Duration::from_secs_f64(a.duration);
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for client in &clients {
        for _ in 0..a.in_flight {
            let mut client = client.clone();
            let service = a.service.clone();
            let first_error = first_error.clone();
            tasks.push(tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                let mut errors = 0u64;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let result = match kind {
                        Unary::Check => client
                            .check(HealthCheckRequest {
                                service: service.clone(),
                            })
                            .await
                            .map(drop),
                        Unary::List => client.list(HealthListRequest {}).await.map(drop),
                    };
                    let t1 = Instant::now();
                    if t0 < warm_end || t1 > end {
                        continue;
                    }
                    match result {
                        Ok(()) => {
                            let _ = hist.record((t1 - t0).as_nanos() as u64);
                        }
                        Err(status) => {
                            errors += 1;
                            first_error
                                .lock()
                                .expect("lock")
                                .get_or_insert_with(|| format!("{status:?}"));
                        }
                    }
                }
                (hist, errors)
            }));
        }
    }
    tokio::time::sleep_until(warm_end.into()).await;
    let (cpu0, rss0) = (server.cpu_ns(), server.rss());
    tokio::time::sleep_until(end.into()).await;
    let (cpu1, rss1) = (server.cpu_ns(), server.rss());
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await?;
        hist.add(h)?;
        errors += e;
    }
    let ok = hist.len();
    let secs = a.duration;
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let err = first_error.lock().expect("lock").clone();
    if let Some(e) = &err {
        eprintln!("dh-loadgen: {errors} failed calls, the first: {e}");
    }
    Ok(json!({
        "mode": if kind == Unary::Check { "check" } else { "list" },
        "connections": a.connections,
        "in_flight": a.in_flight,
        "duration_s": secs,
        "ok": ok,
        "errors": errors,
        "first_error": err,
        "throughput": ok as f64 / secs,
        "p50_us": if ok > 0 { Some(us(hist.value_at_quantile(0.5))) } else { None },
        "p99_us": if ok > 0 { Some(us(hist.value_at_quantile(0.99))) } else { None },
        "p999_us": if ok > 0 { Some(us(hist.value_at_quantile(0.999))) } else { None },
        "max_us": if ok > 0 { Some(us(hist.max())) } else { None },
        "server_cpu_s": cpu.map(|c| c as f64 / 1e9),
        "server_cpu_util": cpu.map(|c| c as f64 / 1e9 / secs),
        "server_cpu_per_op_us": cpu.filter(|_| ok > 0).map(|c| c as f64 / 1000.0 / ok as f64),
        "server_rss_before": rss0,
        "server_rss_after": rss1,
    }))
}

// ---------------------------------------------------------------------------------------------
// watch-fanout

struct Fanout {
    /// `round << 32 | expected status`: the status every watcher must reach in this round.
    target: AtomicU64,
    /// Watchers that have reached the target in this round.
    done: AtomicUsize,
    watchers: usize,
    first_at: Mutex<Option<Instant>>,
    last_at: Mutex<Option<Instant>>,
    notify: Notify,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Fanout {
    fn arm(&self, round: u64, status: ServingStatus) {
        *self.first_at.lock().expect("lock") = None;
        *self.last_at.lock().expect("lock") = None;
        self.done.store(0, Ordering::SeqCst);
        self.target
            .store(round << 32 | status as u64, Ordering::SeqCst);
    }

    fn seen(&self, status: i32, my_round: &mut u64) {
        let target = self.target.load(Ordering::SeqCst);
        let round = target >> 32;
        if status as u64 == target & 0xffff_ffff && *my_round != round {
            *my_round = round;
            let now = Instant::now();
            let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 1 {
                *self.first_at.lock().expect("lock") = Some(now);
            }
            if n == self.watchers {
                *self.last_at.lock().expect("lock") = Some(now);
                self.notify.notify_one();
            }
        }
    }

    fn fail(&self, msg: String) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        self.first_error.lock().expect("lock").get_or_insert(msg);
        self.notify.notify_one();
    }

    /// Waits until every watcher reached the target; returns the time the last one did.
    async fn wait_all(&self, timeout: Duration) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(t) = *self.last_at.lock().expect("lock") {
                return Ok(t);
            }
            if self.failed.load(Ordering::SeqCst) > 0 {
                let e = self
                    .first_error
                    .lock()
                    .expect("lock")
                    .clone()
                    .unwrap_or_default();
                return Err(format!(
                    "{} watch streams failed, the first: {e}",
                    self.failed.load(Ordering::SeqCst)
                )
                .into());
            }
            if tokio::time::timeout_at(deadline, self.notify.notified())
                .await
                .is_err()
            {
                return Err(format!(
                    "only {} of {} watchers reached the expected status within {timeout:?}",
                    self.done.load(Ordering::SeqCst),
                    self.watchers
                )
                .into());
            }
        }
    }
}

fn status_word(s: ServingStatus) -> &'static str {
    s.as_str_name()
}

async fn run_fanout(a: &FanoutArgs, server: &mut Server) -> Result<Value> {
    let w = a.watchers;
    if w == 0 {
        return Err("--watchers must be at least 1".into());
    }
    let k = a.connections.unwrap_or(w.div_ceil(100)).max(1);
    let name_arg = if a.service.is_empty() {
        "\"\"".to_owned()
    } else {
        a.service.clone()
    };
    let timeout = Duration::from_secs_f64(a.timeout);

    let clients = connect(server.addr, k).await?;
    server.send(&format!("set {name_arg} SERVING")).await?;
    // One Check per connection: every connection has done a full exchange before the baseline.
    for c in &clients {
        c.clone()
            .check(HealthCheckRequest {
                service: a.service.clone(),
            })
            .await
            .map_err(|e| format!("Check before the fan-out failed: {e:?}"))?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss0 = server.rss();
    let cpu_open0 = server.cpu_ns();

    let fan = Arc::new(Fanout {
        target: AtomicU64::new(0),
        done: AtomicUsize::new(0),
        watchers: w,
        first_at: Mutex::new(None),
        last_at: Mutex::new(None),
        notify: Notify::new(),
        failed: AtomicUsize::new(0),
        first_error: Mutex::new(None),
    });
    fan.arm(0, ServingStatus::Serving);
    let opening = Arc::new(Semaphore::new(a.open_concurrency.max(1)));
    let t_open = Instant::now();
    let mut tasks = Vec::with_capacity(w);
    for i in 0..w {
        let mut client = clients[i % k].clone();
        let fan = fan.clone();
        let opening = opening.clone();
        let service = a.service.clone();
        tasks.push(tokio::spawn(async move {
            let permit = opening.acquire_owned().await.expect("semaphore open");
            let mut stream = match client.watch(HealthCheckRequest { service }).await {
                Ok(r) => r.into_inner(),
                Err(e) => return fan.fail(format!("{e:?}")),
            };
            let mut my_round = u64::MAX;
            let mut permit = Some(permit);
            loop {
                match stream.message().await {
                    Ok(Some(msg)) => {
                        permit.take();
                        fan.seen(msg.status, &mut my_round);
                    }
                    Ok(None) => return fan.fail("the server ended a Watch stream".into()),
                    Err(e) => return fan.fail(format!("{e:?}")),
                }
            }
        }));
    }
    let opened_at = fan.wait_all(timeout).await?;
    let open_s = (opened_at - t_open).as_secs_f64();
    tokio::time::sleep(Duration::from_millis(a.pause_ms)).await;
    let rss1 = server.rss();
    let cpu_open1 = server.cpu_ns();

    let mut rounds = Vec::new();
    let (mut last_ms, mut first_ms, mut cpu_us, mut writes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 1..=a.rounds as u64 {
        let status = if r % 2 == 1 {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        fan.arm(r, status);
        let cpu_a = server.cpu_ns();
        let writes_a = server.write_syscalls();
        let t0 = Instant::now();
        server
            .send(&format!("set {name_arg} {}", status_word(status)))
            .await?;
        let t_last = fan.wait_all(timeout).await?;
        let cpu_b = server.cpu_ns();
        let writes_b = server.write_syscalls();
        let flip_writes = writes_a
            .zip(writes_b)
            .map(|(a, b)| b.saturating_sub(a) as f64);
        if let Some(n) = flip_writes {
            writes.push(n);
        }
        let t_first = fan.first_at.lock().expect("lock").unwrap_or(t_last);
        let last = (t_last - t0).as_secs_f64() * 1e3;
        let first = (t_first - t0).as_secs_f64() * 1e3;
        let cpu = match (cpu_a, cpu_b) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1000.0 / w as f64),
            _ => None,
        };
        last_ms.push(last);
        first_ms.push(first);
        if let Some(c) = cpu {
            cpu_us.push(c);
        }
        rounds.push(json!({"status": status_name(status as i32), "first_ms": first, "last_ms": last, "server_cpu_per_watcher_us": cpu, "server_write_syscalls": flip_writes}));
        tokio::time::sleep(Duration::from_millis(a.pause_ms)).await;
    }
    let rss2 = server.rss();
    for t in &tasks {
        t.abort();
    }
    drop(clients);

    let mem = match (rss0, rss1) {
        (Some(a), Some(b)) => Some((b as f64 - a as f64) / w as f64),
        _ => None,
    };
    let open_cpu = match (cpu_open0, cpu_open1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1000.0 / w as f64),
        _ => None,
    };
    Ok(json!({
        "mode": "watch-fanout",
        "watchers": w,
        "connections": k,
        "rounds": a.rounds,
        "open_s": open_s,
        "open_server_cpu_per_watcher_us": open_cpu,
        "delivery_last_ms": median(&mut last_ms),
        "delivery_first_ms": median(&mut first_ms),
        "server_cpu_per_watcher_us": if cpu_us.is_empty() { None } else { Some(median(&mut cpu_us)) },
        "server_cpu_per_flip_ms": if cpu_us.is_empty() { None } else { Some(median(&mut cpu_us) * w as f64 / 1000.0) },
        "server_write_syscalls_per_flip": if writes.is_empty() { None } else { Some(median(&mut writes)) },
        "server_rss_before": rss0,
        "server_rss_watching": rss1,
        "server_rss_end": rss2,
        "mem_per_watcher_bytes": mem,
        "per_round": rounds,
    }))
}

// ---------------------------------------------------------------------------------------------
// churn

/// One prober's visit on a bare HTTP/2 connection: connect, one Check (its answer read to
/// the trailers, `grpc-status: 0` required), close.
async fn probe_once_h2(addr: SocketAddr, body: &bytes::Bytes) -> Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut send, conn) = h2::client::handshake(tcp).await?;
    let call = async {
        let request = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let (response, mut stream) = send.send_request(request, false)?;
        stream.send_data(body.clone(), true)?;
        let (head, mut body) = response.await?.into_parts();
        // A trailers-only answer (an error) has its status in the head.
        let early = head.headers.get("grpc-status").cloned();
        let mut got = 0;
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            got += chunk.len();
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        let status = match early {
            Some(status) => Some(status),
            None => body
                .trailers()
                .await?
                .and_then(|t| t.get("grpc-status").cloned()),
        };
        if got == 0 || status.as_ref().map(|s| s.as_bytes()) != Some(b"0") {
            return Err(format!("Check answered {status:?} with {got} bytes").into());
        }
        Ok::<_, BoxError>(())
    };
    tokio::select! {
        result = call => result,
        result = conn => Err(format!("connection ended first: {result:?}").into()),
    }
}

/// The length-prefixed `HealthCheckRequest` for `service`.
fn check_body(service: &str) -> bytes::Bytes {
    use prost::Message;
    let msg = HealthCheckRequest {
        service: service.to_owned(),
    }
    .encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    frame.into()
}

/// One prober's visit on a tonic `Channel`: a new connection, one Check, and the connection
/// closed.
async fn probe_once(addr: SocketAddr, service: &str) -> Result<()> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(())
}

async fn churn_lanes(
    addr: SocketAddr,
    a: &ChurnArgs,
    n: usize,
    deadline: Instant,
) -> (usize, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let body = check_body(&a.service);
    for _ in 0..a.lanes.max(1) {
        let (next, errors, service) = (Arc::clone(&next), Arc::clone(&errors), a.service.clone());
        let (body, prober) = (body.clone(), a.client);
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n && Instant::now() < deadline {
                let result = match prober {
                    Prober::H2 => probe_once_h2(addr, &body).await,
                    Prober::Tonic => probe_once(addr, &service).await,
                };
                if let Err(e) = result {
                    if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("churn: first failed probe: {e}");
                    }
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    (
        next.load(Ordering::Relaxed).min(n),
        errors.load(Ordering::Relaxed),
    )
}

async fn run_churn(a: &ChurnArgs, server: &mut Server) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs_f64(a.timeout);
    let (_, warm_errors) = churn_lanes(server.addr, a, a.warmup, deadline).await;
    // Let closed connections go before the baseline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = server.rss();
    let cpu0 = server.cpu_ns();
    let t0 = Instant::now();
    let (done, errors) = churn_lanes(server.addr, a, a.connections, deadline).await;
    let elapsed = t0.elapsed();
    let cpu1 = server.cpu_ns();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_after = server.rss();
    let cpu_per_conn_us = match (cpu0, cpu1) {
        (Some(a0), Some(a1)) if done > 0 => Some(us(a1.saturating_sub(a0)) / done as f64),
        _ => None,
    };
    Ok(json!({
        "mode": "churn",
        "connections": done,
        "lanes": a.lanes,
        "client": format!("{:?}", a.client).to_lowercase(),
        "errors": errors + warm_errors,
        "elapsed_s": elapsed.as_secs_f64(),
        "conns_per_s": done as f64 / elapsed.as_secs_f64().max(1e-9),
        "server_cpu_per_conn_us": cpu_per_conn_us,
        "server_rss_before": rss_before,
        "server_rss_after": rss_after,
        "server_rss_before_kib": rss_before.map(|b| b / 1024),
        "server_rss_after_kib": rss_after.map(|b| b / 1024),
        "rss_growth_bytes": match (rss_before, rss_after) {
            (Some(b), Some(a)) => Some(a as i64 - b as i64),
            _ => None,
        },
    }))
}

// ---------------------------------------------------------------------------------------------
// external

async fn run_external(a: &ExternalArgs, server: &mut Server) -> Result<Value> {
    let words: Vec<String> = a
        .cmd
        .split_whitespace()
        .map(|w| w.replace("{addr}", &server.addr.to_string()))
        .collect();
    let (program, args) = words.split_first().ok_or("--cmd is empty")?;
    let (cpu0, rss0) = (server.cpu_ns(), server.rss());
    let t0 = Instant::now();
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, rss1) = (server.cpu_ns(), server.rss());
    Ok(json!({
        "mode": "external",
        "exit_code": out.status.code(),
        "stdout": String::from_utf8_lossy(&out.stdout),
        "stderr": String::from_utf8_lossy(&out.stderr),
        "wall_s": wall,
        "server_cpu_s": cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a) as f64 / 1e9),
        "server_rss_before": rss0,
        "server_rss_after": rss1,
    }))
}

// ---------------------------------------------------------------------------------------------

async fn run(cli: Cli) -> Result<Value> {
    let target = match &cli.mode {
        Mode::Check(a) | Mode::List(a) => &a.target,
        Mode::WatchFanout(a) => &a.target,
        Mode::Churn(a) => &a.target,
        Mode::External(a) => &a.target,
    };
    let mut server = Server::start(target).await?;
    let result = match &cli.mode {
        Mode::Check(a) => run_unary(Unary::Check, a, &mut server).await,
        Mode::List(a) => run_unary(Unary::List, a, &mut server).await,
        Mode::WatchFanout(a) => run_fanout(a, &mut server).await,
        Mode::Churn(a) => run_churn(a, &mut server).await,
        Mode::External(a) => run_external(a, &mut server).await,
    };
    server.stop().await;
    let mut value = result?;
    value["label"] = Value::from(target.label.clone());
    Ok(value)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    raise_nofile_limit();
    let threads = match &cli.mode {
        Mode::Check(a) | Mode::List(a) => a.target.threads,
        Mode::WatchFanout(a) => a.target.threads,
        Mode::Churn(a) => a.target.threads,
        Mode::External(a) => a.target.threads,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dh-loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dh-loadgen: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines_parse() {
        assert_eq!(
            parse_listening("listening 127.0.0.1:5000"),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        assert_eq!(
            parse_listening("listening on http://127.0.0.1:7"),
            Some("127.0.0.1:7".parse().unwrap())
        );
        assert_eq!(parse_listening("hello"), None);
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn own_process_has_cpu_and_rss() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 0);
        let writes = write_syscalls(pid).unwrap();
        let path = std::env::temp_dir().join(format!("dh-loadgen-test-{pid}"));
        std::fs::write(&path, b"x").unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(write_syscalls(pid).unwrap() > writes);
        // Spin until 10 ms of CPU time are counted; on a loaded machine that takes longer
        // than 10 ms of wall time, so the bound is on the counter, with a wall-clock cap.
        let spin = Instant::now();
        while cpu_ns(pid).unwrap() < 10_000_000 && spin.elapsed() < Duration::from_secs(10) {}
        assert!(cpu_ns(pid).unwrap() >= 10_000_000);
    }
}
