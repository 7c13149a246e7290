//! `dubbo-health`: serve, check, watch and list `grpc.health.v1.Health` from the command line.
//!
//! ```text
//! dubbo-health serve --addr 127.0.0.1:20000 --set org.apache.dubbogo.samples.api.Greeter=SERVING --control-stdin
//! dubbo-health check --addr 127.0.0.1:20000 --service org.apache.dubbogo.samples.api.Greeter
//! dubbo-health watch --addr 127.0.0.1:20000 --service org.apache.dubbogo.samples.api.Greeter --json
//! dubbo-health list --addr 127.0.0.1:20000
//! ```
//!
//! `check` is a drop-in for `grpc-health-probe`: it takes every flag of it (`-addr`,
//! `-service`, `-connect-timeout`, `-rpc-timeout`, `-tls` and the `-tls-*` flags,
//! `-user-agent`, `-rpc-header`, `-gzip`, `-v`; `-alts` and `-spiffe` are refused) and exits
//! with its codes: 0 SERVING, 1 bad arguments, 2 cannot connect, 3 the RPC failed (NOT_FOUND,
//! UNIMPLEMENTED, deadline), 4 not SERVING.

mod client;
mod connect;
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
    propagate_version = true,
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
    /// Address to listen on: host:port (port 0 picks a free port), or unix:PATH /
    /// unix:///PATH for a Unix domain socket (removed again on exit).
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: String,
    /// Register NAME with STATUS (SERVING, NOT_SERVING or UNKNOWN); repeatable. `""=STATUS` is
    /// the whole server.
    #[arg(long = "set", value_name = "NAME=STATUS")]
    set: Vec<String>,
    /// `""` follows NAME: SERVING exactly while every required name is registered and
    /// SERVING (NOT_SERVING until then); repeatable. Readiness (`GET /ready`) follows `""`.
    #[arg(long = "require", value_name = "NAME")]
    require: Vec<String>,
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
    /// Serve TLS with this certificate chain (PEM; needs --tls-key). Reloaded when the file
    /// changes, and on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<String>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<String>,
    /// mTLS: require client certificates that chain to these CA certificates (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<String>,
    /// Do not answer the HTTP probes (`/live`, `/ready`, `/startup`, `/ready?service=NAME`)
    /// and the JSON Check/List on --addr (on by default, over HTTP/1.1 and h2c).
    #[arg(long)]
    no_probes: bool,
    /// Also answer the probes on a port of their own (host:port, like Dubbo QoS's 22222); it
    /// keeps answering through the drain, `/ready` then 503, until the process exits.
    #[arg(long, value_name = "ADDR")]
    probe_addr: Option<String>,
    /// Probe bodies: dubbo-java (`true` / `false`) or dubbo-go (`ok`).
    #[arg(long, value_name = "STYLE", default_value = "dubbo-java")]
    probe_bodies: String,
}

/// grpc-health-probe's flags, with its defaults and meanings.
#[derive(Args, Debug)]
struct CheckArgs {
    /// (required) Server address: host:port, :port, dns:///host:port, unix:///path,
    /// unix:path or unix-abstract:name (the targets grpc-go reads).
    #[arg(long)]
    addr: Option<String>,
    /// Service name to check (default: "", the whole server).
    #[arg(long, default_value = "")]
    service: String,
    /// User-agent header value of health check requests.
    #[arg(long, default_value = "grpc_health_probe")]
    user_agent: String,
    /// Timeout for establishing the connection (Go duration syntax: 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = duration::parse)]
    connect_timeout: Duration,
    /// Additional RPC header in 'name: value' format; repeatable.
    #[arg(long, value_name = "NAME: VALUE", value_parser = parse_rpc_header)]
    rpc_header: Vec<(String, String)>,
    /// Timeout for the health RPC.
    #[arg(long, default_value = "1s", value_parser = duration::parse)]
    rpc_timeout: Duration,
    /// Use TLS (default: plaintext).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    tls: bool,
    /// (with -tls) Do not verify the server's certificate (INSECURE).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    tls_no_verify: bool,
    /// (with -tls, optional) File of trusted certificates for verifying the server (PEM);
    /// the system's roots otherwise.
    #[arg(long, value_name = "FILE")]
    tls_ca_cert: Option<String>,
    /// (with -tls, optional) Client certificate for authenticating to the server (PEM;
    /// requires -tls-client-key).
    #[arg(long, value_name = "FILE")]
    tls_client_cert: Option<String>,
    /// (with -tls) Client private key (PEM; requires -tls-client-cert).
    #[arg(long, value_name = "FILE")]
    tls_client_key: Option<String>,
    /// (with -tls) Override the host name used to verify the server certificate.
    #[arg(long, value_name = "NAME")]
    tls_server_name: Option<String>,
    /// Send the request gzip-compressed and accept a gzip response.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    gzip: bool,
    /// Verbose logs.
    #[arg(short = 'v', long = "verbose", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    verbose: bool,
    /// Not supported (ALTS runs only on Google Cloud): refused with exit code 1.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    alts: bool,
    /// Not supported (no SPIFFE Workload API client): refused with exit code 1.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    spiffe: bool,
}

/// A Go boolean flag value (`-tls`, `-tls=true`, `-tls=0`...).
fn go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("parse error: {text:?} is not a boolean")),
    }
}

/// `-rpc-header 'name: value'`, as grpc-health-probe splits it (name lower-cased as gRPC
/// metadata is; leading blanks of the value dropped).
fn parse_rpc_header(text: &str) -> Result<(String, String), String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(format!(
            "invalid RPC header, expected 'key: value', got {text:?}"
        ));
    };
    Ok((name.to_ascii_lowercase(), value.trim_start().to_owned()))
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
        "user-agent",
        "rpc-header",
        "tls",
        "tls-no-verify",
        "tls-ca-cert",
        "tls-client-cert",
        "tls-client-key",
        "tls-server-name",
        "alts",
        "spiffe",
        "set",
        "control-stdin",
        "capacity",
        "json",
        "gzip",
        "help",
        "version",
        "no-reflection",
        "tls-cert",
        "tls-key",
        "tls-client-ca",
    ];
    args.map(|arg| {
        // grpc-health-probe's `-v` is `--verbose` here (`-v` alone already works).
        if let Some(value) = arg.strip_prefix("-v=").or(arg.strip_prefix("--v=")) {
            return format!("--verbose={value}");
        }
        if arg == "--v" {
            return "--verbose".to_owned();
        }
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
    for name in &args.require {
        if let Err(e) = registry.require(name) {
            eprintln!("error: --require {name:?}: {e}");
            return ExitCode::from(1);
        }
    }
    for item in &args.set {
        let Some((name, status)) = item.rsplit_once('=') else {
            eprintln!("error: --set {item:?}: expected NAME=STATUS");
            return ExitCode::from(1);
        };
        let name = dubbo_health_cli::control::unquote_name(name);
        let result = dubbo_health_cli::control::parse_status(status)
            .and_then(|s| registry.set(&name, s).map_err(|e| e.to_string()));
        if let Err(e) = result {
            eprintln!("error: --set {item:?}: {e}");
            return ExitCode::from(1);
        }
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            match dubbo_health_tonic::server::TlsConfig::from_pem_files(
                cert,
                key,
                args.tls_client_ca.as_ref(),
            ) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        _ => None,
    };
    let listener = match dubbo_health_tonic::server::Listener::bind(&args.addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.addr);
            return ExitCode::from(2);
        }
    };
    let addr = listener.to_string();
    let Some(bodies) = dubbo_health_tonic::probe::ProbeBodies::from_name(&args.probe_bodies) else {
        eprintln!(
            "error: --probe-bodies {:?}: expected dubbo-java or dubbo-go",
            args.probe_bodies
        );
        return ExitCode::from(1);
    };
    let probe_listener = match &args.probe_addr {
        None => None,
        Some(probe_addr) => match tokio::net::TcpListener::bind(probe_addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: cannot listen on --probe-addr {probe_addr}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if args.control_stdin {
        tokio::spawn(dubbo_health_cli::control::run_stdin(registry));
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
    let mut builder = dubbo_health_tonic::Standalone::builder(registry)
        .reflection(!args.no_reflection)
        .probes(!args.no_probes)
        .probe_bodies(bodies);
    if let Some(tls) = &tls {
        builder = builder.tls(tls.clone());
        tokio::spawn(reload_on_sighup(tls.clone()));
    }
    let engine = builder.engine();
    if let Some(probe_listener) = probe_listener {
        if let Ok(probe_addr) = probe_listener.local_addr() {
            eprintln!("probes on {probe_addr}");
        }
        // Runs until the process exits: through the drain, /ready says 503.
        let probe_server = engine.probe_server();
        tokio::spawn(async move {
            probe_server
                .serve(probe_listener, std::future::pending(), Duration::ZERO)
                .await
        });
    }
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

/// SIGHUP: read the TLS certificates again (they are also reloaded when the files change).
async fn reload_on_sighup(tls: dubbo_health_tonic::server::TlsConfig) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => eprintln!("tls: certificates reloaded (SIGHUP)"),
                Err(e) => eprintln!("tls: reload failed, keeping the previous certificates: {e}"),
            }
        }
    }
    #[cfg(not(unix))]
    drop(tls);
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
