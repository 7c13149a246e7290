//! `check`, `watch` and `list`: the client side, with grpc-health-probe's exit codes.

use std::{
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use dubbo_health_proto::pb::{
    health_check_response::ServingStatus as PbStatus, health_client::HealthClient,
    HealthCheckRequest, HealthListRequest,
};
use tokio_stream::StreamExt;
use tonic::{transport::Channel, Code, Status};

use crate::{
    connect::{parse_target, tls_config, Dialer, Target, TlsFlags},
    duration, CheckArgs, ListArgs, WatchArgs,
};

const INVALID_ARGUMENTS: u8 = 1;
const CONNECTION_FAILURE: u8 = 2;
const RPC_FAILURE: u8 = 3;
const UNHEALTHY: u8 = 4;

/// Connects within `timeout` (plaintext), printing grpc-health-probe's messages on failure.
async fn connect(addr: &str, timeout: Duration) -> Result<HealthClient<Channel>, ExitCode> {
    let dialer = Dialer {
        target: parse_target(addr),
        tls: None,
        user_agent: None,
    };
    dial(&dialer, addr, timeout, false)
        .await
        .map(HealthClient::new)
}

/// Connects with `dialer`, retrying until `timeout` as grpc-go's blocking dial does; on
/// failure prints the probe's message (and, with `verbose`, the last error) and gives exit 2.
async fn dial(
    dialer: &Dialer,
    addr: &str,
    timeout: Duration,
    verbose: bool,
) -> Result<Channel, ExitCode> {
    match dialer.connect(timeout).await {
        Ok(channel) => Ok(channel),
        Err(last) => {
            eprintln!(
                "timeout: failed to connect service {addr:?} within {}",
                duration::display(timeout)
            );
            if let Target::Undialable(_) = dialer.target {
                eprintln!(
                    "hint: -addr takes host:port, unix:///path or dns:///host:port, not a URL; \
                     for TLS add -tls"
                );
            } else if let (true, Some(last)) = (verbose, last) {
                eprintln!("last connection error: {last}");
            }
            Err(ExitCode::from(CONNECTION_FAILURE))
        }
    }
}

fn rpc_failed(status: &Status, rpc_timeout: Duration) -> ExitCode {
    match status.code() {
        Code::Unimplemented => eprintln!(
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
            status.message()
        ),
        Code::DeadlineExceeded => eprintln!(
            "timeout: health rpc did not complete within {}",
            duration::display(rpc_timeout)
        ),
        code => eprintln!(
            "error: health rpc failed: rpc error: code = {code:?} desc = {}",
            status.message()
        ),
    }
    ExitCode::from(RPC_FAILURE)
}

fn status_name(status: i32) -> String {
    PbStatus::try_from(status).map_or_else(|_| status.to_string(), |s| s.as_str_name().to_owned())
}

/// An argument error: the probe's message, exit code 1.
fn arg_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(INVALID_ARGUMENTS)
}

/// grpc-health-probe's argument checks, in its order and with its messages.
fn validate(args: &CheckArgs) -> Result<&str, ExitCode> {
    let Some(addr) = args.addr.as_deref().filter(|a| !a.is_empty()) else {
        return Err(arg_error("-addr not specified"));
    };
    for (name, value) in [
        ("-connect-timeout", args.connect_timeout),
        ("-rpc-timeout", args.rpc_timeout),
    ] {
        if value.is_zero() {
            return Err(arg_error(&format!(
                "{name} must be greater than zero (specified: {})",
                duration::display(value)
            )));
        }
    }
    let (tls, set) = (args.tls, |o: &Option<String>| o.is_some());
    let conflicts = [
        (
            args.alts && args.spiffe,
            "-alts and -spiffe are mutually incompatible",
        ),
        (tls && args.alts, "cannot specify -tls with -alts"),
        (
            !tls && args.tls_no_verify,
            "specified -tls-no-verify without specifying -tls",
        ),
        (
            !tls && set(&args.tls_ca_cert),
            "specified -tls-ca-cert without specifying -tls",
        ),
        (
            !tls && set(&args.tls_client_cert),
            "specified -tls-client-cert without specifying -tls",
        ),
        (
            !tls && set(&args.tls_server_name),
            "specified -tls-server-name without specifying -tls",
        ),
        (
            set(&args.tls_client_cert) && !set(&args.tls_client_key),
            "specified -tls-client-cert without specifying -tls-client-key",
        ),
        (
            !set(&args.tls_client_cert) && set(&args.tls_client_key),
            "specified -tls-client-key without specifying -tls-client-cert",
        ),
        (
            args.tls_no_verify && set(&args.tls_ca_cert),
            "cannot specify -tls-ca-cert with -tls-no-verify (CA cert would not be used)",
        ),
        (
            args.tls_no_verify && set(&args.tls_server_name),
            "cannot specify -tls-server-name with -tls-no-verify (server name would not be used)",
        ),
        (
            tls && args.spiffe,
            "-tls and -spiffe are mutually incompatible",
        ),
        (
            args.alts,
            "-alts is not supported by dubbo-health check (ALTS runs only on Google Cloud; use grpc-health-probe)",
        ),
        (
            args.spiffe,
            "-spiffe is not supported by dubbo-health check (no SPIFFE Workload API client; use grpc-health-probe)",
        ),
    ];
    if let Some((_, message)) = conflicts.iter().find(|(bad, _)| *bad) {
        return Err(arg_error(message));
    }
    Ok(addr)
}

/// What grpc-health-probe's `-v` prints for its headers: values redacted, keys counted.
fn go_metadata(headers: &[(String, String)]) -> String {
    let keys: std::collections::BTreeSet<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    format!("{{map[<{} redacted>]}}", keys.len())
}

fn log_options(args: &CheckArgs, addr: &str) {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    eprintln!("parsed options:");
    eprintln!(
        "> addr={addr} conn_timeout={} rpc_timeout={}",
        duration::display(args.connect_timeout),
        duration::display(args.rpc_timeout)
    );
    if !args.rpc_header.is_empty() {
        eprintln!("> headers: {}", go_metadata(&args.rpc_header));
    }
    eprintln!("> tls={}", args.tls);
    if args.tls {
        eprintln!("  > no-verify={} ", args.tls_no_verify);
        eprintln!("  > ca-cert={}", opt(&args.tls_ca_cert));
        eprintln!("  > client-cert={}", opt(&args.tls_client_cert));
        eprintln!("  > client-key={}", opt(&args.tls_client_key));
        eprintln!("  > server-name={}", opt(&args.tls_server_name));
    }
    eprintln!("> alts={}", args.alts);
    eprintln!("> spiffe={}", args.spiffe);
}

pub(crate) async fn check(args: CheckArgs) -> ExitCode {
    let addr = match validate(&args) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    if args.verbose {
        log_options(&args, addr);
    }
    let tls = if args.tls {
        let flags = TlsFlags {
            no_verify: args.tls_no_verify,
            ca_cert: args.tls_ca_cert.clone(),
            client_cert: args.tls_client_cert.clone(),
            client_key: args.tls_client_key.clone(),
            server_name: args.tls_server_name.clone(),
        };
        match tls_config(&flags) {
            Ok(config) => Some((Arc::new(config), flags.server_name)),
            Err(e) => {
                eprintln!("failed to initialize tls credentials. error={e}");
                return ExitCode::from(INVALID_ARGUMENTS);
            }
        }
    } else {
        None
    };
    let mut metadata = tonic::metadata::MetadataMap::new();
    for (name, value) in &args.rpc_header {
        let added = if name.ends_with("-bin") {
            tonic::metadata::BinaryMetadataKey::from_bytes(name.as_bytes())
                .map(|key| {
                    metadata.append_bin(
                        key,
                        tonic::metadata::BinaryMetadataValue::from_bytes(value.as_bytes()),
                    );
                })
                .is_ok()
        } else {
            match (
                tonic::metadata::AsciiMetadataKey::from_bytes(name.as_bytes()),
                value.parse::<tonic::metadata::AsciiMetadataValue>(),
            ) {
                (Ok(key), Ok(value)) => {
                    metadata.append(key, value);
                    true
                }
                _ => false,
            }
        };
        if !added {
            // grpc-go fails the RPC on such a header.
            eprintln!(
                "error: health rpc failed: rpc error: code = Internal desc = header key {name:?} contains illegal characters"
            );
            return ExitCode::from(RPC_FAILURE);
        }
    }
    let dialer = Dialer {
        target: parse_target(addr),
        tls,
        user_agent: Some(args.user_agent.clone()),
    };
    if args.verbose {
        eprintln!("establishing connection");
    }
    let connect_start = Instant::now();
    let channel = match dial(&dialer, addr, args.connect_timeout, args.verbose).await {
        Ok(channel) => channel,
        Err(code) => return code,
    };
    let connect_took = connect_start.elapsed();
    if args.verbose {
        eprintln!(
            "connection established (took {})",
            duration::display(connect_took)
        );
    }
    let mut client = HealthClient::new(channel);
    if args.gzip {
        client = client
            .send_compressed(tonic::codec::CompressionEncoding::Gzip)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    let rpc_start = Instant::now();
    let mut request = tonic::Request::from_parts(
        metadata,
        Default::default(),
        HealthCheckRequest {
            service: args.service.clone(),
        },
    );
    request.set_timeout(args.rpc_timeout);
    let response = match tokio::time::timeout(args.rpc_timeout, client.check(request)).await {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(status)) => return rpc_failed(&status, args.rpc_timeout),
        Err(_) => return rpc_failed(&Status::deadline_exceeded("deadline"), args.rpc_timeout),
    };
    let rpc_took = rpc_start.elapsed();
    let name = status_name(response.status);
    if response.status != PbStatus::Serving as i32 {
        eprintln!("service unhealthy (responded with {name:?})");
        return ExitCode::from(UNHEALTHY);
    }
    if args.verbose {
        eprintln!(
            "time elapsed: connect={} rpc={}",
            duration::display(connect_took),
            duration::display(rpc_took)
        );
    }
    eprintln!("status: {name}");
    ExitCode::SUCCESS
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) async fn watch(args: WatchArgs) -> ExitCode {
    let mut client = match connect(&args.addr, args.connect_timeout).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let request = HealthCheckRequest {
        service: args.service.clone(),
    };
    let mut stream = match client.watch(request).await {
        Ok(r) => r.into_inner(),
        Err(status) => return rpc_failed(&status, Duration::ZERO),
    };
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        };
        match next {
            Some(Ok(response)) => {
                let name = status_name(response.status);
                if args.json {
                    println!(
                        "{{\"service\":{},\"status\":{}}}",
                        json_string(&args.service),
                        json_string(&name)
                    );
                } else {
                    println!("{name}");
                }
            }
            Some(Err(status)) => return rpc_failed(&status, Duration::ZERO),
            None => return ExitCode::SUCCESS,
        }
    }
}

pub(crate) async fn list(args: ListArgs) -> ExitCode {
    let mut client = match connect(&args.addr, args.connect_timeout).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut request = tonic::Request::new(HealthListRequest {});
    request.set_timeout(args.rpc_timeout);
    let response = match tokio::time::timeout(args.rpc_timeout, client.list(request)).await {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(status)) => return rpc_failed(&status, args.rpc_timeout),
        Err(_) => return rpc_failed(&Status::deadline_exceeded("deadline"), args.rpc_timeout),
    };
    if args.json {
        let fields: Vec<String> = response
            .statuses
            .iter()
            .map(|(name, r)| {
                format!(
                    "{}:{}",
                    json_string(name),
                    json_string(&status_name(r.status))
                )
            })
            .collect();
        println!("{{{}}}", fields.join(","));
    } else {
        for (name, r) in &response.statuses {
            let shown = if name.is_empty() {
                "\"\""
            } else {
                name.as_str()
            };
            println!("{shown}\t{}", status_name(r.status));
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_prints_like_go() {
        let headers = [("b", "3"), ("a", "1"), ("a", "2")].map(|(k, v)| (k.into(), v.into()));
        assert_eq!(go_metadata(&headers), "{map[<2 redacted>]}");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
