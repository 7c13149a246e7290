//! `tonic-health-anchor`: the stock `tonic-health` 0.14 server, as `make bench` compares
//! dubbo-health against it.
//!
//! One tokio worker thread (a multi-thread runtime with `worker_threads(1)`, the way a host
//! would mount it), TCP_NODELAY as tonic's own `serve` sets it.
//!
//! ```text
//! tonic-health-anchor [--addr 127.0.0.1:0] [--set NAME=STATUS]... [--mount dubbo-health]
//! ```
//!
//! `--mount dubbo-health` mounts dubbo-health's tonic service (`HealthService::server()`)
//! instead, in the same host runtime and server builder: the "mounted" comparison of
//! `make bench`.
//!
//! Prints `listening ADDR` on stderr once bound, then reads `set NAME STATUS` and
//! `clear NAME` lines on stdin (`""` is the empty name) until stdin closes.

use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;

fn parse_status(s: &str) -> Option<ServingStatus> {
    match s {
        "SERVING" => Some(ServingStatus::Serving),
        "NOT_SERVING" => Some(ServingStatus::NotServing),
        "UNKNOWN" => Some(ServingStatus::Unknown),
        _ => None,
    }
}

fn unquote(name: &str) -> &str {
    if name == "\"\"" {
        ""
    } else {
        name
    }
}

struct Args {
    addr: SocketAddr,
    sets: Vec<(String, ServingStatus)>,
    ours: bool,
}

static REGISTRY: dubbo_health_core::FixedRegistry<1024> = dubbo_health_core::FixedRegistry::new();

fn ours(status: ServingStatus) -> dubbo_health_core::ServingStatus {
    match status {
        ServingStatus::Serving => dubbo_health_core::ServingStatus::Serving,
        ServingStatus::NotServing => dubbo_health_core::ServingStatus::NotServing,
        ServingStatus::Unknown => dubbo_health_core::ServingStatus::Unknown,
    }
}

fn parse_args() -> Result<Args, String> {
    let mut addr: SocketAddr = "127.0.0.1:0".parse().expect("constant address");
    let mut sets = Vec::new();
    let mut mount_ours = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--addr" => {
                addr = value
                    .parse()
                    .map_err(|e| format!("bad --addr {value}: {e}"))?
            }
            "--set" => {
                let (name, status) = value
                    .rsplit_once('=')
                    .ok_or_else(|| format!("bad --set {value}: want NAME=STATUS"))?;
                let status =
                    parse_status(status).ok_or_else(|| format!("bad status in --set {value}"))?;
                sets.push((unquote(name).to_owned(), status));
            }
            "--mount" if value == "dubbo-health" => mount_ours = true,
            "--mount" if value == "tonic-health" => mount_ours = false,
            _ => return Err(format!("unknown argument {arg} {value}")),
        }
    }
    Ok(Args {
        addr,
        sets,
        ours: mount_ours,
    })
}

async fn run(args: Args) -> Result<(), String> {
    let (reporter, service) = tonic_health::server::health_reporter();
    for (name, status) in &args.sets {
        if args.ours {
            REGISTRY
                .set(name, ours(*status))
                .map_err(|e| e.to_string())?;
        } else {
            reporter.set_service_status(name, *status).await;
        }
    }
    let incoming = TcpIncoming::bind(args.addr)
        .map_err(|e| format!("cannot bind {}: {e}", args.addr))?
        .with_nodelay(Some(true));
    let local = incoming.local_addr().map_err(|e| e.to_string())?;
    let server = if args.ours {
        tokio::spawn(
            Server::builder()
                .add_service(dubbo_health_tonic::HealthService::new(&REGISTRY).server())
                .serve_with_incoming(incoming),
        )
    } else {
        tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        )
    };
    eprintln!("listening {local}");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut reporter = reporter;
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["set", name, status] => match parse_status(status) {
                Some(status) if args.ours => {
                    if let Err(e) = REGISTRY.set(unquote(name), ours(status)) {
                        eprintln!("set {name}: {e}");
                    }
                }
                Some(status) => reporter.set_service_status(unquote(name), status).await,
                None => eprintln!("unknown status {status}"),
            },
            ["clear", name] if args.ours => {
                let _ = REGISTRY.clear(unquote(name));
            }
            ["clear", name] => reporter.clear_service_status(unquote(name)).await,
            [] => {}
            _ => eprintln!("unknown command {line:?}"),
        }
    }
    server.abort();
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("tonic-health-anchor: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tonic-health-anchor: {e}");
            ExitCode::from(2)
        }
    }
}
