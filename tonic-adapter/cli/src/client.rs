//! `check`, `watch` and `list`: the client side, with grpc-health-probe's exit codes.

use std::{process::ExitCode, time::Duration};

use dubbo_health_proto::pb::{
    health_check_response::ServingStatus as PbStatus, health_client::HealthClient,
    HealthCheckRequest, HealthListRequest,
};
use tokio_stream::StreamExt;
use tonic::{transport::Channel, Code, Status};

use crate::{duration, CheckArgs, ListArgs, WatchArgs};

const INVALID_ARGUMENTS: u8 = 1;
const CONNECTION_FAILURE: u8 = 2;
const RPC_FAILURE: u8 = 3;
const UNHEALTHY: u8 = 4;

/// `host:port`, `:port` (localhost, as Go allows) or a full `http://` URI.
fn endpoint_uri(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_owned()
    } else if let Some(port) = addr.strip_prefix(':') {
        format!("http://127.0.0.1:{port}")
    } else {
        format!("http://{addr}")
    }
}

/// Connects within `timeout`, printing grpc-health-probe's messages on failure.
async fn connect(addr: &str, timeout: Duration) -> Result<HealthClient<Channel>, ExitCode> {
    let endpoint = match Channel::from_shared(endpoint_uri(addr)) {
        Ok(e) => e.connect_timeout(timeout).tcp_nodelay(true),
        Err(e) => {
            eprintln!("error: failed to connect service at {addr:?}: invalid address: {e}");
            return Err(ExitCode::from(CONNECTION_FAILURE));
        }
    };
    match tokio::time::timeout(timeout, endpoint.connect()).await {
        Ok(Ok(channel)) => Ok(HealthClient::new(channel)),
        Ok(Err(e)) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                // Layers of the transport error often repeat their child's text.
                let part = s.to_string();
                if !text.ends_with(&part) {
                    text = format!("{text}: {part}");
                }
                source = s.source();
            }
            eprintln!("error: failed to connect service at {addr:?}: {text}");
            Err(ExitCode::from(CONNECTION_FAILURE))
        }
        Err(_) => {
            eprintln!(
                "timeout: failed to connect service {addr:?} within {}",
                duration::display(timeout)
            );
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

pub(crate) async fn check(args: CheckArgs) -> ExitCode {
    let Some(addr) = args.addr.as_deref().filter(|a| !a.is_empty()) else {
        eprintln!("error: -addr not specified");
        return ExitCode::from(INVALID_ARGUMENTS);
    };
    if args.connect_timeout.is_zero() {
        eprintln!("error: -connect-timeout must be greater than zero (specified: 0s)");
        return ExitCode::from(INVALID_ARGUMENTS);
    }
    if args.rpc_timeout.is_zero() {
        eprintln!("error: -rpc-timeout must be greater than zero (specified: 0s)");
        return ExitCode::from(INVALID_ARGUMENTS);
    }
    let mut client = match connect(addr, args.connect_timeout).await {
        Ok(c) if args.gzip => c
            .send_compressed(tonic::codec::CompressionEncoding::Gzip)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: args.service.clone(),
    });
    request.set_timeout(args.rpc_timeout);
    let response = match tokio::time::timeout(args.rpc_timeout, client.check(request)).await {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(status)) => return rpc_failed(&status, args.rpc_timeout),
        Err(_) => return rpc_failed(&Status::deadline_exceeded("deadline"), args.rpc_timeout),
    };
    let name = status_name(response.status);
    if response.status != PbStatus::Serving as i32 {
        eprintln!("service unhealthy (responded with {name:?})");
        return ExitCode::from(UNHEALTHY);
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
    fn addresses_become_uris() {
        assert_eq!(endpoint_uri("localhost:20000"), "http://localhost:20000");
        assert_eq!(endpoint_uri(":20000"), "http://127.0.0.1:20000");
        assert_eq!(endpoint_uri("http://[::1]:1"), "http://[::1]:1");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
