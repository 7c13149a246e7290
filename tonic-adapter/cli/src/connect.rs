//! Where `check`, `watch` and `list` connect, the way grpc-go (and so grpc-health-probe) reads
//! a target: `host:port`, `:port`, `dns:[//authority/]host[:port]`, `passthrough:///host:port`,
//! `unix:path`, `unix:///absolute/path`, `unix-abstract:name`; anything else (an `http://` or
//! `https://` URL, a bare host) is passed through as a TCP address, which grpc-go then can never
//! dial. TLS (`-tls` and friends) runs over any of them, with rustls.

use std::{
    io,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use hyper_util::rt::TokioIo;
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::{Channel, Endpoint};

/// Where a target points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A TCP `host:port` (the port defaults to 443, as in grpc-go).
    Tcp { host: String, port: u16 },
    /// A Unix domain socket path.
    Unix(PathBuf),
    /// A Linux abstract socket name (without the leading NUL).
    UnixAbstract(String),
    /// An address grpc-go passes through but can never dial (`https://host:port`,
    /// `host:port:extra`): the probe retries it until `-connect-timeout` ends.
    Undialable(String),
}

/// grpc-go's default port when a target has none.
const DEFAULT_PORT: u16 = 443;

/// Splits `host[:port]` the way Go's `net.SplitHostPort` does after grpc-go adds the default
/// port; `[v6]:port` keeps the brackets off the host.
fn host_port(addr: &str) -> Target {
    let undialable = || Target::Undialable(addr.to_owned());
    if let Some(rest) = addr.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return undialable();
        };
        let port = match after {
            "" => DEFAULT_PORT,
            p => match p.strip_prefix(':').and_then(|p| p.parse().ok()) {
                Some(port) => port,
                None => return undialable(),
            },
        };
        return Target::Tcp {
            host: host.to_owned(),
            port,
        };
    }
    match addr.matches(':').count() {
        0 => Target::Tcp {
            host: addr.to_owned(),
            port: DEFAULT_PORT,
        },
        1 => {
            let (host, port) = addr.split_once(':').unwrap_or((addr, ""));
            match port.parse() {
                Ok(port) => Target::Tcp {
                    host: if host.is_empty() {
                        "localhost".to_owned()
                    } else {
                        host.to_owned()
                    },
                    port,
                },
                Err(_) => undialable(),
            }
        }
        _ => undialable(),
    }
}

/// Reads a target as grpc-go does.
pub(crate) fn parse_target(target: &str) -> Target {
    if let Some(rest) = target.strip_prefix("unix-abstract:") {
        return Target::UnixAbstract(rest.trim_start_matches("//").to_owned());
    }
    if let Some(rest) = target.strip_prefix("unix:") {
        // unix:///abs (empty authority), unix:relative or unix:/abs.
        return match rest.strip_prefix("//") {
            Some(path) if path.starts_with('/') => Target::Unix(PathBuf::from(path)),
            Some(_) => Target::Undialable(target.to_owned()),
            None => Target::Unix(PathBuf::from(rest)),
        };
    }
    for scheme in ["dns:", "passthrough:"] {
        if let Some(rest) = target.strip_prefix(scheme) {
            // dns:///host:port, dns://resolver/host:port or dns:host:port.
            let endpoint = match rest.strip_prefix("//") {
                Some(after) => after.split_once('/').map_or("", |(_, e)| e),
                None => rest,
            };
            return host_port(endpoint);
        }
    }
    host_port(target)
}

impl Target {
    /// The `:authority` grpc-go sends and the name TLS verifies by default.
    fn authority(&self) -> String {
        match self {
            Target::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Target::Tcp { host, port } => format!("{host}:{port}"),
            _ => "localhost".to_owned(),
        }
    }

    fn host(&self) -> &str {
        match self {
            Target::Tcp { host, .. } => host,
            _ => "localhost",
        }
    }
}

/// A connected stream of any transport.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

async fn dial(target: &Target) -> io::Result<Box<dyn Io>> {
    match target {
        Target::Tcp { host, port } => {
            let mut last =
                io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}"));
            for addr in tokio::net::lookup_host((host.as_str(), *port)).await? {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(Box::new(stream));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        #[cfg(unix)]
        Target::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        #[cfg(target_os = "linux")]
        Target::UnixAbstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
            stream.set_nonblocking(true)?;
            Ok(Box::new(tokio::net::UnixStream::from_std(stream)?))
        }
        Target::Undialable(addr) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr:?} is not host:port (for TLS, give host:port and -tls)"),
        )),
        #[allow(unreachable_patterns)]
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "Unix sockets are not supported on this platform",
        )),
    }
}

/// grpc-health-probe's TLS flags.
#[derive(Debug, Default, Clone)]
pub(crate) struct TlsFlags {
    pub(crate) no_verify: bool,
    pub(crate) ca_cert: Option<String>,
    pub(crate) client_cert: Option<String>,
    pub(crate) client_key: Option<String>,
    pub(crate) server_name: Option<String>,
}

/// Accepts any server certificate (`-tls-no-verify`); handshake signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn read_error(path: &str, e: &io::Error) -> String {
    // Go prints "open PATH: no such file or directory".
    let text = match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    };
    format!("open {path}: {text}")
}

/// Builds the client TLS configuration, with grpc-health-probe's error texts.
pub(crate) fn tls_config(flags: &TlsFlags) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if flags.no_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        if let Some(path) = &flags.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "failed to load root CA certificates from file ({path}) error={}",
                    read_error(path, &e)
                )
            })?;
            for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(format!("no root CA certs parsed from file {path}"));
            }
        } else {
            let system = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(system.certs);
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (&flags.client_cert, &flags.client_key) {
        (Some(cert), Some(key)) => {
            let load = || -> Result<_, String> {
                let pem = std::fs::read(cert).map_err(|e| read_error(cert, &e))?;
                let chain: Vec<_> = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("tls: {e}"))?;
                if chain.is_empty() {
                    return Err("tls: failed to find any PEM data in certificate input".into());
                }
                let pem = std::fs::read(key).map_err(|e| read_error(key, &e))?;
                let key = PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|_| "tls: failed to find any PEM data in key input".to_owned())?;
                Ok((chain, key))
            };
            let (chain, key) = load()
                .map_err(|e| format!("failed to load tls client cert/key pair. error={e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("failed to load tls client cert/key pair. error={e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// How to reach the server.
#[derive(Clone)]
pub(crate) struct Dialer {
    pub(crate) target: Target,
    pub(crate) tls: Option<(Arc<ClientConfig>, Option<String>)>,
    pub(crate) user_agent: Option<String>,
}

impl Dialer {
    async fn stream(&self) -> io::Result<TokioIo<Box<dyn Io>>> {
        let stream = dial(&self.target).await?;
        let Some((config, server_name)) = &self.tls else {
            return Ok(TokioIo::new(stream));
        };
        let name = server_name.as_deref().unwrap_or(self.target.host());
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, stream)
            .await?;
        Ok(TokioIo::new(Box::new(tls)))
    }

    /// One attempt to open an HTTP/2 channel.
    async fn once(&self) -> Result<Channel, String> {
        let authority = self.target.authority();
        let mut endpoint = Endpoint::from_shared(format!("http://{authority}"))
            .or_else(|_| Endpoint::from_shared("http://localhost".to_owned()))
            .map_err(|e| e.to_string())?;
        if let Some(agent) = &self.user_agent {
            endpoint = endpoint
                .user_agent(agent.clone())
                .map_err(|e| e.to_string())?;
        }
        let dialer = self.clone();
        let connector = tower::service_fn(move |_: http::Uri| {
            let dialer = dialer.clone();
            async move { dialer.stream().await }
        });
        endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|e| error_chain(&e))
    }

    /// Connects, retrying with backoff (as grpc-go's blocking dial does) until `deadline`.
    /// On failure returns the last error.
    pub(crate) async fn connect(&self, timeout: Duration) -> Result<Channel, Option<String>> {
        let deadline = Instant::now() + timeout;
        let mut backoff = Duration::from_millis(50);
        let mut last = None;
        loop {
            match tokio::time::timeout_at(deadline.into(), self.once()).await {
                Ok(Ok(channel)) => return Ok(channel),
                Ok(Err(e)) => last = Some(e),
                Err(_) => return Err(last),
            }
            let now = Instant::now();
            if now + backoff >= deadline {
                tokio::time::sleep_until(deadline.into()).await;
                return Err(last);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

/// An error and its sources, without the repeats the transport layers add.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Target {
        Target::Tcp {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn targets_parse_as_grpc_go_reads_them() {
        assert_eq!(parse_target("localhost:20000"), tcp("localhost", 20000));
        assert_eq!(parse_target(":20000"), tcp("localhost", 20000));
        assert_eq!(parse_target("[::1]:7"), tcp("::1", 7));
        assert_eq!(parse_target("example.com"), tcp("example.com", 443));
        assert_eq!(parse_target("dns:///a:1"), tcp("a", 1));
        assert_eq!(parse_target("dns://8.8.8.8/a:1"), tcp("a", 1));
        assert_eq!(parse_target("dns:a:1"), tcp("a", 1));
        assert_eq!(parse_target("passthrough:///a:1"), tcp("a", 1));
        assert_eq!(
            parse_target("unix:///tmp/h.sock"),
            Target::Unix("/tmp/h.sock".into())
        );
        assert_eq!(parse_target("unix:h.sock"), Target::Unix("h.sock".into()));
        assert_eq!(
            parse_target("unix-abstract:h"),
            Target::UnixAbstract("h".into())
        );
        for never in [
            "https://a:1",
            "http://a:1",
            "a:1:2",
            "a:port",
            "unix://host/p",
        ] {
            assert!(
                matches!(parse_target(never), Target::Undialable(_)),
                "{never}"
            );
        }
    }
}
