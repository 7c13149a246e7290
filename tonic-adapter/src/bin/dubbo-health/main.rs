//! `dubbo-health`: serve, check, watch and list `grpc.health.v1.Health` from the command line.
//!
//! ```text
//! dubbo-health serve --addr 127.0.0.1:20000 --set org.apache.dubbogo.samples.api.Greeter=SERVING --control-stdin
//! dubbo-health check --addr 127.0.0.1:20000 --service org.apache.dubbogo.samples.api.Greeter
//! dubbo-health watch --addr 127.0.0.1:20000 --service org.apache.dubbogo.samples.api.Greeter --json
//! dubbo-health list --addr 127.0.0.1:20000
//! ```
//!
//! `check` is a drop-in for `grpc-health-probe`: it takes its flags (`-addr`, `-service`,
//! `-connect-timeout`, `-rpc-timeout`) and exits with its codes: 0 SERVING, 1 bad arguments,
//! 2 cannot connect, 3 the RPC failed (NOT_FOUND, UNIMPLEMENTED, deadline), 4 not SERVING.

mod client;
mod duration;

use std::{process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use dubbo_health_core::{HeapRegistry, DEFAULT_CAPACITY};

/// How long `serve` waits for calls in flight after SIGTERM/SIGINT before it closes them.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(
    name = "dubbo-health",
    version,
    about = "gRPC health checking (grpc.health.v1.Health): serve, check, watch, list"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve grpc.health.v1.Health ("" starts SERVING) until SIGTERM/SIGINT, then drain.
    Serve(ServeArgs),
    /// Check one service, with grpc-health-probe's flags and exit codes.
    Check(CheckArgs),
    /// Print one line per status change of a service until interrupted.
    Watch(WatchArgs),
    /// List every registered service with its status.
    List(ListArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: String,
    /// Register NAME with STATUS (SERVING, NOT_SERVING or UNKNOWN); repeatable. `""=STATUS` is
    /// the whole server.
    #[arg(long = "set", value_name = "NAME=STATUS")]
    set: Vec<String>,
    /// Read commands from stdin, one per line: `set NAME STATUS`, `clear NAME`, `toggle NAME`,
    /// `shutdown`, `resume` (`""` is the empty name). Each is answered with one line on stdout.
    #[arg(long)]
    control_stdin: bool,
    /// Do not answer gRPC reflection (`grpc.reflection.v1` and `v1alpha`, on by default so
    /// `grpcurl` can list and describe the health service).
    #[arg(long)]
    no_reflection: bool,
    /// How many names the registry holds, "" included (1 to 16777215). Its memory is reserved
    /// up front (about 290 bytes per name) but resident only as names are registered.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CAPACITY)]
    capacity: usize,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// Server address, host:port.
    #[arg(long)]
    addr: Option<String>,
    /// Service name to check (default: "", the whole server).
    #[arg(long, default_value = "")]
    service: String,
    /// Timeout for establishing the connection (Go duration syntax: 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = duration::parse)]
    connect_timeout: Duration,
    /// Timeout for the health RPC.
    #[arg(long, default_value = "1s", value_parser = duration::parse)]
    rpc_timeout: Duration,
    /// Send the request gzip-compressed (as grpc-health-probe -gzip).
    #[arg(long)]
    gzip: bool,
}

#[derive(Args, Debug)]
struct WatchArgs {
    /// Server address, host:port.
    #[arg(long)]
    addr: String,
    /// Service name to watch ("" is the whole server).
    #[arg(long, default_value = "")]
    service: String,
    /// Print JSON lines: {"service":"...","status":"SERVING"}.
    #[arg(long)]
    json: bool,
    /// Timeout for establishing the connection.
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    connect_timeout: Duration,
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Server address, host:port.
    #[arg(long)]
    addr: String,
    /// Print one JSON object {"name":"STATUS",...}.
    #[arg(long)]
    json: bool,
    /// Timeout for establishing the connection.
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    connect_timeout: Duration,
    /// Timeout for the List RPC.
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    rpc_timeout: Duration,
}

/// grpc-health-probe spells its flags with one dash (`-addr=x`, `-service x`); clap wants two.
fn rewrite_single_dash(args: impl Iterator<Item = String>) -> Vec<String> {
    const LONG: &[&str] = &[
        "addr",
        "service",
        "connect-timeout",
        "rpc-timeout",
        "set",
        "control-stdin",
        "capacity",
        "json",
        "gzip",
        "help",
        "version",
    ];
    args.map(|arg| {
        if let Some(rest) = arg.strip_prefix('-').filter(|r| !r.starts_with('-')) {
            let flag = rest.split('=').next().unwrap_or(rest);
            if LONG.contains(&flag) {
                return format!("-{arg}");
            }
        }
        arg
    })
    .collect()
}

fn main() -> ExitCode {
    let args = rewrite_single_dash(std::env::args());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Check(args) => runtime.block_on(client::check(args)),
        Command::Watch(args) => runtime.block_on(client::watch(args)),
        Command::List(args) => runtime.block_on(client::list(args)),
    };
    // A blocking stdin read (--control-stdin) cannot be interrupted; do not wait for it.
    runtime.shutdown_background();
    code
}

async fn serve(args: ServeArgs) -> ExitCode {
    // The registry `serve` publishes, for the life of the process.
    let registry: &'static HeapRegistry = match HeapRegistry::with_capacity(args.capacity) {
        Ok(registry) => Box::leak(Box::new(registry)),
        Err(e) => {
            eprintln!("error: --capacity {}: {e}", args.capacity);
            return ExitCode::from(1);
        }
    };
    for item in &args.set {
        let Some((name, status)) = item.rsplit_once('=') else {
            eprintln!("error: --set {item:?}: expected NAME=STATUS");
            return ExitCode::from(1);
        };
        let name = dubbo_health_tonic::control::unquote_name(name);
        let result = dubbo_health_tonic::control::parse_status(status)
            .and_then(|s| registry.set(&name, s).map_err(|e| e.to_string()));
        if let Err(e) = result {
            eprintln!("error: --set {item:?}: {e}");
            return ExitCode::from(1);
        }
    }
    let listener = match tokio::net::TcpListener::bind(&args.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.addr);
            return ExitCode::from(2);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.control_stdin {
        tokio::spawn(dubbo_health_tonic::control::run_stdin(registry));
    }
    eprintln!("listening {addr}");
    // SIGTERM / SIGINT: the full drain. The registry goes NOT_SERVING first (every door and
    // every watcher sees it), then the server ends its Watch streams, sends GOAWAY and
    // closes what is left after DRAIN_GRACE.
    let signal = async move {
        wait_for_signal().await;
        eprintln!("draining: every service NOT_SERVING, watches ending");
        registry.shutdown();
    };
    let engine = dubbo_health_tonic::Standalone::builder(registry)
        .reflection(!args.no_reflection)
        .engine();
    let result = engine.serve(listener, signal, DRAIN_GRACE).await;
    match result {
        Ok(()) => {
            eprintln!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::from(1)
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_dash_flags_are_rewritten() {
        let args = [
            "dubbo-health",
            "check",
            "-addr=localhost:1",
            "-service",
            "x",
            "-rpc-timeout",
            "2s",
            "-x",
        ];
        let out = rewrite_single_dash(args.iter().map(|s| s.to_string()));
        assert_eq!(
            out,
            [
                "dubbo-health",
                "check",
                "--addr=localhost:1",
                "--service",
                "x",
                "--rpc-timeout",
                "2s",
                "-x"
            ]
        );
        let cli = Cli::try_parse_from(out.iter().take(7)).unwrap();
        let Command::Check(check) = cli.command else {
            panic!("not check")
        };
        assert_eq!(check.addr.as_deref(), Some("localhost:1"));
        assert_eq!(check.service, "x");
        assert_eq!(check.rpc_timeout, Duration::from_secs(2));
    }
}
