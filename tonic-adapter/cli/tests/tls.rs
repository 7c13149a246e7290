//! `dubbo-health serve --tls-cert --tls-key [--tls-client-ca]` against grpc-health-probe's
//! own TLS flags and `dubbo-health check`'s: server verification, mTLS refusals, and
//! certificates rotated under a running server. Certificates are made here (rcgen).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

mod common;
use common::probe;

const BIN: &str = env!("CARGO_BIN_EXE_dubbo-health");
const TIMEOUT: Duration = Duration::from_secs(20);

fn run(command: Command) -> Output {
    common::run_within(command, TIMEOUT)
}

/// (exit code, stderr) of grpc-health-probe and of `dubbo-health check` with these flags.
fn both(args: &[&str]) -> ((i32, String), (i32, String)) {
    let answer = |out: Output| {
        (
            out.status.code().expect("exited normally"),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        )
    };
    let mut p = Command::new(probe());
    p.args(args);
    let mut o = Command::new(BIN);
    o.arg("check").args(args);
    (answer(run(p)), answer(run(o)))
}

/// A CA and what it signs, as PEM files in `dir`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    cert: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let cert = dir.join(format!("{name}.pem"));
        std::fs::write(&cert, issuer.pem()).unwrap();
        Self { issuer, cert }
    }

    /// Signs a leaf for `names`; writes NAME.pem and NAME.key.
    fn leaf(&self, dir: &Path, file: &str, names: &[&str], client: bool) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (
            dir.join(format!("{file}.pem")),
            dir.join(format!("{file}.key")),
        );
        write_atomically(&cert_path, cert.pem().as_bytes());
        write_atomically(&key_path, key.serialize_pem().as_bytes());
        (cert_path, key_path)
    }
}

/// Writes a file the way a rotating sidecar does: a temporary file, then a rename.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn tempdir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `dubbo-health serve` with TLS; its stderr lines arrive on `stderr`.
struct Serve {
    child: Child,
    addr: String,
    stderr: mpsc::Receiver<String>,
}

impl Serve {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(TIMEOUT).expect("serve printed nothing");
        let addr = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("{line:?}"))
            .to_owned();
        Self {
            child,
            addr,
            stderr: rx,
        }
    }

    /// Waits for a stderr line containing `text`.
    fn expect_line(&self, text: &str) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|_| panic!("no line with {text:?}"));
            if line.contains(text) {
                return line;
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn probe_tls_flags_against_a_tls_server() {
    let dir = tempdir("flags");
    let ca = Ca::new(&dir, "ca");
    let other = Ca::new(&dir, "other-ca");
    let (cert, key) = ca.leaf(&dir, "server", &["localhost", "127.0.0.1"], false);
    let serve = Serve::start(&["--tls-cert", path(&cert), "--tls-key", path(&key)]);
    let a = serve.addr.as_str();
    let port = a.rsplit_once(':').unwrap().1;
    let by_name = format!("localhost:{port}");
    let ca_pem = path(&ca.cert);

    let rows: &[(&[&str], i32)] = &[
        (&["-addr", a, "-tls", "-tls-ca-cert", ca_pem], 0),
        (&["-addr", &by_name, "-tls", "-tls-ca-cert", ca_pem], 0),
        (
            &[
                "-addr",
                a,
                "-tls",
                "-tls-ca-cert",
                ca_pem,
                "-tls-server-name",
                "localhost",
            ],
            0,
        ),
        (&["-addr", a, "-tls", "-tls-no-verify"], 0),
        (
            &["-addr", a, "-tls", "-tls-no-verify", "-service", "nope"],
            3,
        ),
        // Not trusted: the wrong CA, the system roots, or a name the certificate lacks.
        (
            &[
                "-addr",
                a,
                "-tls",
                "-tls-ca-cert",
                path(&other.cert),
                "-connect-timeout",
                "500ms",
            ],
            2,
        ),
        (&["-addr", a, "-tls", "-connect-timeout", "500ms"], 2),
        (
            &[
                "-addr",
                a,
                "-tls",
                "-tls-ca-cert",
                ca_pem,
                "-tls-server-name",
                "other.example",
                "-connect-timeout",
                "500ms",
            ],
            2,
        ),
        // Plaintext to a TLS server.
        (&["-addr", a, "-connect-timeout", "500ms"], 2),
    ];
    for (args, expected) in rows {
        let (probe, ours) = both(args);
        assert_eq!(probe.0, *expected, "probe {args:?}: {}", probe.1);
        assert_eq!(ours, probe, "{args:?}");
    }

    // ALPN offers http/1.1 too: plain HTTP over TLS reaches the HTTP side of the server
    // (404 here, where no plain-HTTP handler is set).
    let answer = http_over_tls(a, &ca.cert);
    assert!(
        answer.starts_with(b"HTTP/1.1 404"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// Sends `GET /` over TLS with ALPN http/1.1 and returns the first bytes of the answer.
fn http_over_tls(addr: &str, ca: &Path) -> Vec<u8> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = vec![0u8; 12];
        tokio::time::timeout(TIMEOUT, tls.read_exact(&mut answer))
            .await
            .expect("no answer in time")
            .unwrap();
        answer
    })
}

#[test]
fn mtls_refuses_clients_without_a_certificate_from_the_client_ca() {
    let dir = tempdir("mtls");
    let ca = Ca::new(&dir, "ca");
    let other = Ca::new(&dir, "other-ca");
    let (cert, key) = ca.leaf(&dir, "server", &["localhost", "127.0.0.1"], false);
    let (client, client_key) = ca.leaf(&dir, "client", &["client.example"], true);
    let (stranger, stranger_key) = other.leaf(&dir, "stranger", &["stranger.example"], true);
    let serve = Serve::start(&[
        "--tls-cert",
        path(&cert),
        "--tls-key",
        path(&key),
        "--tls-client-ca",
        path(&ca.cert),
    ]);
    let a = serve.addr.as_str();
    let ca_pem = path(&ca.cert);
    let with = |c: &Path, k: &Path| {
        both(&[
            "-addr",
            a,
            "-tls",
            "-tls-ca-cert",
            ca_pem,
            "-tls-client-cert",
            path(c),
            "-tls-client-key",
            path(k),
            "-connect-timeout",
            "1s",
        ])
    };
    let (probe, ours) = with(&client, &client_key);
    assert_eq!(probe, (0, "status: SERVING".to_owned()));
    assert_eq!(ours, probe);

    // A certificate from another CA, or none at all: refused by the server.
    for (probe, ours) in [
        with(&stranger, &stranger_key),
        both(&[
            "-addr",
            a,
            "-tls",
            "-tls-ca-cert",
            ca_pem,
            "-connect-timeout",
            "1s",
        ]),
    ] {
        assert_ne!(probe.0, 0, "{probe:?}");
        assert_ne!(ours.0, 0, "{ours:?}");
        assert_eq!(ours.0, probe.0, "probe {probe:?}, ours {ours:?}");
    }
}

#[test]
fn rotated_certificates_are_seen_by_new_connections() {
    let dir = tempdir("reload");
    let first = Ca::new(&dir, "first-ca");
    let second = Ca::new(&dir, "second-ca");
    let (cert, key) = first.leaf(&dir, "server", &["127.0.0.1"], false);
    let serve = Serve::start(&["--tls-cert", path(&cert), "--tls-key", path(&key)]);
    let a = serve.addr.clone();
    let check = |ca: &Ca| {
        both(&[
            "-addr",
            &a,
            "-tls",
            "-tls-ca-cert",
            path(&ca.cert),
            "-connect-timeout",
            "500ms",
        ])
    };
    assert_eq!(check(&first).0 .0, 0);
    assert_eq!(check(&second).0 .0, 2);

    // The sidecar rotates to a certificate from the second CA.
    second.leaf(&dir, "server", &["127.0.0.1"], false);
    thread::sleep(dubbo_health_tonic::server::TLS_RELOAD_POLL + Duration::from_millis(300));
    let (probe, ours) = check(&second);
    assert_eq!(probe.0, 0, "{probe:?}");
    assert_eq!(ours.0, 0, "{ours:?}");
    serve.expect_line("tls: certificates reloaded");
    assert_eq!(check(&first).0 .0, 2);

    // A broken rotation keeps the certificate that works, and says so.
    write_atomically(&cert, b"-----BEGIN CERTIFICATE-----\nnot base64\n");
    thread::sleep(dubbo_health_tonic::server::TLS_RELOAD_POLL + Duration::from_millis(300));
    assert_eq!(check(&second).0 .0, 0);
    serve.expect_line("tls: reload failed, keeping the previous certificates");

    // SIGHUP reloads at once.
    first.leaf(&dir, "server", &["127.0.0.1"], false);
    let status = Command::new("kill")
        .args(["-HUP", &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    serve.expect_line("tls: certificates reloaded (SIGHUP)");
    assert_eq!(check(&first).1 .0, 0);
}

#[test]
fn bad_tls_files_are_refused_at_start() {
    let dir = tempdir("bad");
    let ca = Ca::new(&dir, "ca");
    let (cert, _) = ca.leaf(&dir, "server", &["127.0.0.1"], false);
    let (_, other_key) = ca.leaf(&dir, "unrelated", &["127.0.0.1"], false);
    let missing = dir.join("missing.pem");
    for (args, needle) in [
        (
            vec!["--tls-cert", path(&missing), "--tls-key", path(&other_key)],
            "missing.pem",
        ),
        (
            vec!["--tls-cert", path(&cert), "--tls-key", path(&other_key)],
            "server.pem",
        ),
        (vec!["--tls-cert", path(&cert)], "--tls-key"),
    ] {
        let mut c = Command::new(BIN);
        c.args(["serve", "--addr", "127.0.0.1:0"]).args(&args);
        let out = run(c);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
