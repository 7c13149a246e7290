//! The `dubbo-health` binary: serve with stdin control, check exit codes, watch, list, and a
//! graceful drain on SIGTERM.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_dubbo-health");
const GREETER: &str = "org.apache.dubbogo.samples.api.Greeter";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Reads lines from a child's pipe on a thread, so each read can have a timeout.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn new(pipe: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self(rx)
    }

    fn next(&self) -> String {
        self.0
            .recv_timeout(TIMEOUT)
            .expect("no line from the child in time")
    }

    fn closed(&self) -> bool {
        matches!(
            self.0.recv_timeout(TIMEOUT),
            Err(mpsc::RecvTimeoutError::Disconnected)
        )
    }
}

struct Serve {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines,
    stderr: Lines,
    addr: String,
}

impl Serve {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0", "--control-stdin"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let stdin = child.stdin.take().unwrap();
        let stdout = Lines::new(child.stdout.take().unwrap());
        let stderr = Lines::new(child.stderr.take().unwrap());
        let line = stderr.next();
        let addr = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("{line:?}"))
            .to_owned();
        Self {
            child,
            stdin,
            stdout,
            stderr,
            addr,
        }
    }

    /// Sends one control command and returns its answer line.
    fn control(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.stdout.next()
    }

    fn run(&self, args: &[&str]) -> Output {
        run(&[args, &["--addr", &self.addr]].concat())
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args);
    common::run_within(command, TIMEOUT)
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

#[test]
fn check_exit_codes_follow_grpc_health_probe() {
    let mut serve = Serve::start(&[
        "--set",
        &format!("{GREETER}=SERVING"),
        "--set",
        "down=NOT_SERVING",
    ]);

    let ok = serve.run(&["check"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert!(stderr(&ok).contains("status: SERVING"));

    let ok = serve.run(&["check", "--service", GREETER]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));

    let down = serve.run(&["check", "--service", "down"]);
    assert_eq!(code(&down), 4);
    assert!(
        stderr(&down).contains(r#"service unhealthy (responded with "NOT_SERVING")"#),
        "{}",
        stderr(&down)
    );

    let unknown = serve.run(&["check", "--service", "nope"]);
    assert_eq!(code(&unknown), 3);
    assert!(
        stderr(&unknown).contains("NotFound"),
        "{}",
        stderr(&unknown)
    );

    // grpc-health-probe's single-dash spellings.
    let addr_flag = format!("-addr={}", serve.addr);
    let probe_style = run(&[
        "check",
        &addr_flag,
        "-service",
        GREETER,
        "-connect-timeout",
        "2s",
        "-rpc-timeout=500ms",
    ]);
    assert_eq!(code(&probe_style), 0, "{}", stderr(&probe_style));

    assert!(serve
        .control(&format!("set {GREETER} NOT_SERVING"))
        .starts_with("ok"));
    assert_eq!(code(&serve.run(&["check", "--service", GREETER])), 4);

    let refused = run(&["check", "--addr", &closed_port()]);
    assert_eq!(code(&refused), 2, "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("failed to connect"),
        "{}",
        stderr(&refused)
    );

    let no_addr = run(&["check"]);
    assert_eq!(code(&no_addr), 1);
    assert!(stderr(&no_addr).contains("-addr not specified"));
    assert_eq!(
        code(&run(&[
            "check",
            "--addr",
            &serve.addr,
            "--rpc-timeout",
            "soon"
        ])),
        1
    );
    assert_eq!(code(&run(&["check", "--addr", &serve.addr, "--bogus"])), 1);
    assert_eq!(
        code(&run(&[
            "check",
            "--addr",
            &serve.addr,
            "--rpc-timeout",
            "0s"
        ])),
        1
    );
}

#[test]
fn control_stdin_drives_the_registry() {
    let mut serve = Serve::start(&[]);
    assert_eq!(code(&serve.run(&["check"])), 0);

    assert!(serve
        .control("set group/org.apache.Foo:1.0.0 SERVING")
        .starts_with("ok"));
    assert_eq!(
        code(&serve.run(&["check", "--service", "group/org.apache.Foo:1.0.0"])),
        0
    );
    assert!(serve
        .control("toggle group/org.apache.Foo:1.0.0")
        .starts_with("ok"));
    assert_eq!(
        code(&serve.run(&["check", "--service", "group/org.apache.Foo:1.0.0"])),
        4
    );
    assert!(serve
        .control("clear group/org.apache.Foo:1.0.0")
        .starts_with("ok"));
    assert_eq!(
        code(&serve.run(&["check", "--service", "group/org.apache.Foo:1.0.0"])),
        3
    );

    assert!(serve.control(r#"set "" NOT_SERVING"#).starts_with("ok"));
    assert_eq!(code(&serve.run(&["check"])), 4);
    assert!(serve.control(r#"set "" SERVING"#).starts_with("ok"));

    assert!(serve.control("shutdown").starts_with("ok"));
    assert_eq!(code(&serve.run(&["check"])), 4);
    assert!(serve.control("set x SERVING").contains("ignored"));
    assert!(serve.control("resume").starts_with("ok"));
    assert_eq!(code(&serve.run(&["check"])), 0);

    assert!(serve.control("set x SERVICE_UNKNOWN").starts_with("error"));
    assert!(serve.control("launch rockets").starts_with("error"));
    assert!(serve
        .control(&format!("set {} SERVING", "n".repeat(201)))
        .starts_with("error"));
    // Still serving after bad commands.
    assert_eq!(code(&serve.run(&["check"])), 0);
}

#[test]
fn list_prints_every_name_as_text_or_json() {
    let serve = Serve::start(&["--set", "b=NOT_SERVING", "--set", "a=SERVING"]);
    let text = serve.run(&["list"]);
    assert_eq!(code(&text), 0, "{}", stderr(&text));
    assert_eq!(
        String::from_utf8_lossy(&text.stdout),
        "\"\"\tSERVING\na\tSERVING\nb\tNOT_SERVING\n"
    );
    let json = serve.run(&["list", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&json.stdout),
        "{\"\":\"SERVING\",\"a\":\"SERVING\",\"b\":\"NOT_SERVING\"}\n"
    );
    assert_eq!(code(&run(&["list", "--addr", &closed_port()])), 2);
}

#[test]
fn sigterm_drains_watchers_then_exits() {
    let mut serve = Serve::start(&["--set", &format!("{GREETER}=SERVING")]);
    let mut watch = Command::new(BIN)
        .args([
            "watch",
            "--addr",
            &serve.addr,
            "--service",
            GREETER,
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = Lines::new(watch.stdout.take().unwrap() as ChildStdout);
    assert_eq!(
        lines.next(),
        format!(r#"{{"service":"{GREETER}","status":"SERVING"}}"#)
    );
    assert!(serve
        .control(&format!("toggle {GREETER}"))
        .starts_with("ok"));
    assert_eq!(
        lines.next(),
        format!(r#"{{"service":"{GREETER}","status":"NOT_SERVING"}}"#)
    );
    assert!(serve
        .control(&format!("toggle {GREETER}"))
        .starts_with("ok"));
    assert_eq!(
        lines.next(),
        format!(r#"{{"service":"{GREETER}","status":"SERVING"}}"#)
    );

    serve.terminate();
    // The watcher hears NOT_SERVING, then its stream ends and it exits cleanly.
    assert_eq!(
        lines.next(),
        format!(r#"{{"service":"{GREETER}","status":"NOT_SERVING"}}"#)
    );
    assert!(lines.closed(), "watch kept printing after the drain");
    assert!(watch.wait().unwrap().success());

    let (tx, rx) = mpsc::channel();
    let mut child = std::mem::replace(&mut serve.child, Command::new("true").spawn().unwrap());
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx
        .recv_timeout(TIMEOUT)
        .expect("serve did not exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = Vec::new();
    while let Ok(line) = serve.stderr.0.recv_timeout(Duration::from_millis(500)) {
        rest.push(line);
    }
    assert!(rest.iter().any(|l| l.starts_with("draining")), "{rest:?}");
}

#[test]
fn serve_with_no_flags_holds_ten_thousand_names() {
    use dubbo_health_proto::pb::{
        health_client::HealthClient, HealthCheckRequest, HealthListRequest,
    };

    // No --capacity: the default registry. 10,000 names through the control protocol.
    let mut serve = Serve::start(&[]);
    const NAMES: usize = 10_000;
    let name = |i: usize| format!("group/org.apache.dubbo.samples.Service{i}:1.0.0");
    for i in 0..NAMES {
        let status = if i % 2 == 0 { "SERVING" } else { "NOT_SERVING" };
        writeln!(serve.stdin, "set {} {status}", name(i)).unwrap();
    }
    serve.stdin.flush().unwrap();
    for i in 0..NAMES {
        let answer = serve.stdout.next();
        assert!(answer.starts_with("ok"), "set {}: {answer}", name(i));
    }

    // Every one of them answers Check over gRPC, and List is RESOURCE_EXHAUSTED.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", serve.addr))
            .unwrap()
            .connect()
            .await
            .expect("connect");
        let mut client = HealthClient::new(channel);
        // 200 Checks in flight at a time on the one connection.
        for chunk in (0..NAMES).collect::<Vec<_>>().chunks(200) {
            let checks = chunk.iter().map(|&i| {
                let mut client = client.clone();
                async move {
                    let request = HealthCheckRequest { service: name(i) };
                    let status = tokio::time::timeout(TIMEOUT, client.check(request))
                        .await
                        .expect("Check timed out")
                        .unwrap_or_else(|e| panic!("Check {}: {e}", name(i)))
                        .into_inner()
                        .status;
                    assert_eq!(status, if i % 2 == 0 { 1 } else { 2 }, "{}", name(i));
                }
            });
            futures::future::join_all(checks).await;
        }
        let root = client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("Check \"\"");
        assert_eq!(root.into_inner().status, 1);
        let list = tokio::time::timeout(TIMEOUT, client.list(HealthListRequest {}))
            .await
            .expect("List timed out")
            .expect_err("List of 10,001 names");
        assert_eq!(list.code(), tonic::Code::ResourceExhausted, "{list:?}");
    });
}

#[test]
fn serve_takes_a_capacity() {
    let mut serve = Serve::start(&["--capacity", "3", "--set", "a=SERVING"]);
    assert!(serve.control("set b SERVING").starts_with("ok"));
    let full = serve.control("set c SERVING");
    assert!(full.starts_with("error") && full.contains("full"), "{full}");
    assert!(serve.control("clear a").starts_with("ok"));
    assert!(serve.control("set c SERVING").starts_with("ok"));
    assert_eq!(code(&serve.run(&["check", "--service", "c"])), 0);

    for bad in ["0", "16777216", "many"] {
        let out = run(&["serve", "--addr", "127.0.0.1:0", "--capacity", bad]);
        assert_eq!(code(&out), 1, "--capacity {bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("capacity"), "{}", stderr(&out));
    }
}

/// One HTTP/1.1 GET on a fresh connection: the status code and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[test]
fn serve_answers_probes_on_its_port_and_a_probe_port() {
    let mut serve = Serve::start(&[
        "--probe-addr",
        "127.0.0.1:0",
        "--probe-bodies",
        "dubbo-go",
        "--set",
        &format!("{GREETER}=NOT_SERVING"),
    ]);
    let line = serve.stderr.next();
    let probe_addr = line
        .strip_prefix("probes on ")
        .unwrap_or_else(|| panic!("no probe address: {line:?}"))
        .to_owned();
    for addr in [&serve.addr, &probe_addr] {
        assert_eq!(http_get(addr, "/ready"), (200, "ok".into()));
        assert_eq!(http_get(addr, "/startup"), (200, "ok".into()));
        assert_eq!(http_get(addr, &format!("/ready/{GREETER}")).0, 503);
    }
    assert!(serve.control("shutdown").starts_with("ok"));
    assert_eq!(http_get(&probe_addr, "/ready").0, 503);
    assert_eq!(http_get(&probe_addr, "/live"), (200, "ok".into()));

    let off = Serve::start(&["--no-probes"]);
    assert_eq!(http_get(&off.addr, "/ready").0, 404);

    let bad = run(&["serve", "--addr", "127.0.0.1:0", "--probe-bodies", "yaml"]);
    assert_eq!(code(&bad), 1);
    assert!(stderr(&bad).contains("--probe-bodies"), "{}", stderr(&bad));
}

#[test]
fn serve_require_makes_ready_follow_the_required_services() {
    let mut serve = Serve::start(&[
        "--require",
        GREETER,
        "--set",
        &format!("{GREETER}=NOT_SERVING"),
    ]);
    assert_eq!(http_get(&serve.addr, "/ready"), (503, "false".into()));
    assert!(serve
        .control(&format!("set {GREETER} SERVING"))
        .starts_with("ok"));
    assert_eq!(http_get(&serve.addr, "/ready"), (200, "true".into()));
    assert!(serve.control(&format!("clear {GREETER}")).starts_with("ok"));
    assert_eq!(http_get(&serve.addr, "/ready"), (503, "false".into()));

    let bad = run(&["serve", "--addr", "127.0.0.1:0", "--require", ""]);
    assert_eq!(code(&bad), 1);
    assert!(stderr(&bad).contains("--require"), "{}", stderr(&bad));
}
