//! `dubbo-health check` against grpc-health-probe itself: every one of the probe's flags run
//! through both tools against the same server, comparing exit codes and, where both print the
//! same thing, what they print.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

mod common;
use common::probe;

const BIN: &str = env!("CARGO_BIN_EXE_dubbo-health");
const GREETER: &str = "org.apache.dubbogo.samples.api.Greeter";
const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a command to completion within TIMEOUT.
fn run(command: Command) -> Output {
    common::run_within(command, TIMEOUT)
}

/// The probe's and our answer to the same flags.
struct Both {
    probe: (i32, String),
    ours: (i32, String),
}

fn both(args: &[&str]) -> Both {
    let mut probe_cmd = Command::new(probe());
    probe_cmd.args(args);
    let mut ours_cmd = Command::new(BIN);
    ours_cmd.arg("check").args(args);
    let answer = |out: Output| {
        (
            out.status.code().expect("exited normally"),
            normalize(&String::from_utf8_lossy(&out.stderr)),
        )
    };
    Both {
        probe: answer(run(probe_cmd)),
        ours: answer(run(ours_cmd)),
    }
}

/// Timings differ from run to run; the rest of each line must not.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|line| {
            for timed in ["connection established", "time elapsed"] {
                if line.starts_with(timed) {
                    return timed.to_owned();
                }
            }
            line.to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `dubbo-health serve` on a free port; killed on drop.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(extra: &[&str]) -> Self {
        Self::start_at("127.0.0.1:0", extra)
    }

    fn start_at(listen: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", listen])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("{line:?}"))
            .to_owned();
        // Keep reading so the server never blocks on a full pipe.
        thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Self { child, addr }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

#[test]
fn every_flag_gives_the_probes_exit_code_and_output() {
    let serve = Serve::start(&[
        "--set",
        &format!("{GREETER}=SERVING"),
        "--set",
        "down=NOT_SERVING",
    ]);
    let a = serve.addr.as_str();
    let port = a.rsplit_once(':').unwrap().1;
    let colon_port = format!(":{port}");
    let dns = format!("dns:///{a}");
    let passthrough = format!("passthrough:///{a}");
    let https = format!("https://{a}");
    let http = format!("http://{a}");
    let double_dash = format!("--addr={a}");
    let closed = closed_port();
    let dir = tempdir();
    let no_certs = dir.join("empty.pem");
    std::fs::write(&no_certs, "not a certificate\n").unwrap();
    let no_certs = no_certs.to_str().unwrap();
    let missing = dir.join("missing.pem");
    let missing = missing.to_str().unwrap();

    // (flags, expected exit code, whether both print the same thing)
    let rows: &[(&[&str], i32, bool)] = &[
        (&[], 1, true),
        (&["-addr", a], 0, true),
        (&["-addr", a, "-service", GREETER], 0, true),
        (&["-addr", a, "-service", "down"], 4, true),
        (&["-addr", a, "-service", "nope"], 3, true),
        (&["-addr", a, "-service", GREETER, "-v"], 0, true),
        (&["-addr", a, "-service", "down", "-v"], 4, true),
        (&["-addr", a, "-connect-timeout", "0s"], 1, true),
        (&["-addr", a, "-rpc-timeout", "0s"], 1, true),
        (
            &["-addr", a, "-connect-timeout", "2s", "-rpc-timeout=500ms"],
            0,
            true,
        ),
        (&["-addr", a, "-connect-timeout", "2"], 1, false),
        (&["-addr", a, "-gzip"], 0, true),
        (&["-addr", a, "-gzip=true", "-service", GREETER], 0, true),
        (&["-addr", a, "-tls=false"], 0, true),
        (&["-addr", a, "-user-agent", "kubelet/1.31"], 0, true),
        (
            &[
                "-addr",
                a,
                "-rpc-header",
                "x-one: 1",
                "-rpc-header",
                "X-Two:2",
            ],
            0,
            true,
        ),
        (&["-addr", a, "-rpc-header", "x-one: 1", "-v"], 0, true),
        (&["-addr", a, "-rpc-header", "no colon"], 1, false),
        (&["-addr", a, "-bogus"], 1, false),
        (&[&double_dash, "--service", GREETER], 0, true),
        (&["-addr", &colon_port], 0, true),
        (&["-addr", &dns], 0, true),
        (&["-addr", &passthrough], 0, true),
        (&["-addr", &closed, "-connect-timeout", "300ms"], 2, true),
        (&["-addr", &https, "-connect-timeout", "300ms"], 2, false),
        (&["-addr", &http, "-connect-timeout", "300ms"], 2, false),
        // TLS flags: the probe's argument rules...
        (&["-addr", a, "-tls-no-verify"], 1, true),
        (&["-addr", a, "-tls-ca-cert", "ca.pem"], 1, true),
        (&["-addr", a, "-tls-client-cert", "c.pem"], 1, true),
        (&["-addr", a, "-tls-server-name", "x"], 1, true),
        (&["-addr", a, "-tls", "-tls-client-cert", "c.pem"], 1, true),
        (&["-addr", a, "-tls", "-tls-client-key", "k.pem"], 1, true),
        (
            &[
                "-addr",
                a,
                "-tls",
                "-tls-no-verify",
                "-tls-ca-cert",
                "ca.pem",
            ],
            1,
            true,
        ),
        (
            &[
                "-addr",
                a,
                "-tls",
                "-tls-no-verify",
                "-tls-server-name",
                "x",
            ],
            1,
            true,
        ),
        (&["-addr", a, "-tls", "-tls-ca-cert", missing], 1, true),
        (&["-addr", a, "-tls", "-tls-ca-cert", no_certs], 1, true),
        (
            &[
                "-addr",
                a,
                "-tls",
                "-tls-client-cert",
                missing,
                "-tls-client-key",
                missing,
            ],
            1,
            true,
        ),
        // ... and a TLS client against a plaintext server cannot connect.
        (&["-addr", a, "-tls", "-connect-timeout", "300ms"], 2, true),
        (
            &[
                "-addr",
                a,
                "-tls",
                "-tls-no-verify",
                "-connect-timeout",
                "300ms",
            ],
            2,
            true,
        ),
        (&["-addr", a, "-alts", "-spiffe"], 1, true),
        (&["-addr", a, "-tls", "-alts"], 1, true),
    ];
    let mut failures = Vec::new();
    for (args, expected, same_output) in rows {
        let Both { probe, ours } = both(args);
        if probe.0 != *expected || ours.0 != *expected {
            failures.push(format!(
                "{args:?}: expected {expected}, probe {} ({}), ours {} ({})",
                probe.0, probe.1, ours.0, ours.1
            ));
        } else if *same_output && probe.1 != ours.1 {
            failures.push(format!(
                "{args:?}: output differs\n  probe: {:?}\n  ours:  {:?}",
                probe.1, ours.1
            ));
        } else if !*same_output && *expected == 2 {
            // A URL: the probe's own line first, then a hint.
            let first = ours.1.lines().next().unwrap_or_default();
            if first != probe.1 || !ours.1.contains("hint: -addr takes host:port") {
                failures.push(format!("{args:?}: {:?} vs {:?}", probe.1, ours.1));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What the probe can do and this tool cannot is refused, clearly, with exit code 1.
    for flag in ["-alts", "-spiffe"] {
        let out = run({
            let mut c = Command::new(BIN);
            c.args(["check", "-addr", a, flag]);
            c
        });
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag}: {err}");
        assert!(
            err.contains(&format!("{flag} is not supported by dubbo-health check")),
            "{flag}: {err}"
        );
    }
}

/// A fresh directory under the target dir, removed by nobody (it is small).
fn tempdir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "probe-flags-{}-{:?}",
        std::process::id(),
        thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The headers each request arrived with.
type Seen = Arc<Mutex<Vec<http::HeaderMap>>>;

#[test]
fn user_agent_headers_and_gzip_reach_the_server_from_both_tools() {
    use dubbo_health_core::FixedRegistry;
    static HEALTH: FixedRegistry<8> = FixedRegistry::new();

    let seen: Seen = Arc::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let record = seen.clone();
    runtime.spawn(async move {
        let layer = tower::ServiceBuilder::new().map_request(move |req: http::Request<_>| {
            record.lock().unwrap().push(req.headers().clone());
            req
        });
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(dubbo_health_tonic::HealthService::new(&HEALTH).server())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });

    let args = [
        "-addr",
        &addr,
        "-user-agent",
        "kubelet/1.31",
        "-rpc-header",
        "x-one: 1",
        "-rpc-header",
        "X-Two:  two",
        "-rpc-header",
        "x-one:uno",
        "-gzip",
    ];
    let Both { probe, ours } = both(&args);
    assert_eq!(probe, (0, "status: SERVING".to_owned()));
    assert_eq!(ours, probe);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (tool, headers) in ["grpc-health-probe", "dubbo-health"].iter().zip(&seen) {
        let all = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        let agent = all("user-agent");
        assert!(
            agent.len() == 1 && agent[0].starts_with("kubelet/1.31 "),
            "{tool}: {agent:?}"
        );
        assert_eq!(all("x-one"), ["1", "uno"], "{tool}");
        assert_eq!(all("x-two"), ["two"], "{tool}");
        assert_eq!(all("grpc-encoding"), ["gzip"], "{tool}");
    }
    runtime.shutdown_background();
}

#[test]
fn serve_on_a_unix_socket_is_reached_by_both_tools_and_removed_on_sigterm() {
    let dir = tempdir();
    let path = dir.join("health.sock");
    let _ = std::fs::remove_file(&path);
    let listen = format!("unix:{}", path.display());
    let serve = Serve::start_at(&listen, &["--set", &format!("{GREETER}=SERVING")]);
    assert_eq!(serve.addr, listen);
    assert!(path.exists());

    let target = format!("unix://{}", path.display());
    for (service, expected) in [("", 0), (GREETER, 0), ("nope", 3)] {
        let Both { probe, ours } = both(&["-addr", &target, "-service", service]);
        assert_eq!(probe.0, expected, "{service}: {}", probe.1);
        assert_eq!(ours, probe, "{service}");
    }
    // grpc-go's other spelling, and list/watch over the socket.
    let Both { probe, ours } = both(&["-addr", &listen]);
    assert_eq!(
        (probe.0, ours.0),
        (0, 0),
        "{probe:?} {ours:?}",
        probe = probe.1,
        ours = ours.1
    );
    let list = run({
        let mut c = Command::new(BIN);
        c.args(["list", "--addr", &listen]);
        c
    });
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(&format!("{GREETER}\tSERVING")),
        "{list:?}"
    );

    // A second server on the live socket is refused and leaves it alone.
    let second = run({
        let mut c = Command::new(BIN);
        c.args(["serve", "--addr", &listen]);
        c
    });
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    assert_eq!(both(&["-addr", &target]).ours.0, 0);

    // SIGTERM: drained, exited, the socket file is gone.
    let mut serve = serve;
    let status = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = serve.child.wait().unwrap();
    assert_eq!(exited.code(), Some(0));
    assert!(!path.exists(), "socket file left behind");
    let Both { probe, ours } = both(&["-addr", &target, "-connect-timeout", "300ms"]);
    assert_eq!((probe.0, ours.0), (2, 2));
    assert_eq!(ours, probe);

    // A stale socket file (its server killed) is replaced by the next server.
    let killed = Serve::start_at(&listen, &[]);
    drop(killed); // SIGKILL: the file stays
    assert!(path.exists());
    let again = Serve::start_at(&listen, &[]);
    assert_eq!(both(&["-addr", &target]).ours.0, 0);
    drop(again);
}
