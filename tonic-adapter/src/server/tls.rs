//! TLS and mTLS for the standalone server (rustls, ring provider), with certificates reloaded
//! when their files change.

use std::{
    fmt, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant, SystemTime},
};

use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    RootCertStore, ServerConfig,
};

/// How often, at most, the certificate files are looked at for changes: 1 s. The check runs
/// when a connection arrives, so a connection made a second after a rotation gets the new
/// certificate.
pub const TLS_RELOAD_POLL: Duration = Duration::from_secs(1);

/// TLS for the standalone server: a certificate chain and private key (PEM files) and, for
/// mTLS, the CA certificates (PEM) client certificates must chain to — a client without one
/// is refused. ALPN offers `h2` and `http/1.1`, so gRPC and the plain-HTTP handler both work
/// over TLS.
///
/// The files are read again when they change (their size, modification time or inode; looked
/// at most every [`TLS_RELOAD_POLL`], when a connection arrives) or on
/// [`reload`](Self::reload): a sidecar that rotates certificates needs no restart. A reload
/// that fails (a half-written file, a key that does not match) keeps the previous
/// certificates and is logged on stderr. Clones share the same state.
///
/// ```no_run
/// use dubbo_health_tonic::server::TlsConfig;
/// # use dubbo_health_core::FixedRegistry;
/// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
///
/// let tls = TlsConfig::from_pem_files("server.pem", "server.key", Some("clients-ca.pem")).unwrap();
/// let server = dubbo_health_tonic::Standalone::builder(&HEALTH).addr("0.0.0.0:50051").tls(tls).start().unwrap();
/// # drop(server);
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    inner: Arc<Inner>,
}

struct Inner {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    current: RwLock<Arc<ServerConfig>>,
    /// The files as last loaded, and when they were last looked at.
    seen: Mutex<(Fingerprint, Instant)>,
}

/// Size, modification time and inode of each file: what changes when a file is rewritten or
/// replaced.
type Fingerprint = Vec<Option<(u64, Option<SystemTime>, u64)>>;

fn fingerprint(paths: &[&Path]) -> Fingerprint {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p).ok().map(|m| {
                #[cfg(unix)]
                let ino = std::os::unix::fs::MetadataExt::ino(&m);
                #[cfg(not(unix))]
                let ino = 0;
                (m.len(), m.modified().ok(), ino)
            })
        })
        .collect()
}

fn read(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("TLS {what} {}: {e}", path.display())))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads the files and builds the rustls configuration.
fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> io::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pem = read(cert, "certificate")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("TLS certificate {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(invalid(format!(
            "TLS certificate {}: no PEM certificate in it",
            cert.display()
        )));
    }
    let pem = read(key, "key")?;
    let private = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        invalid(format!(
            "TLS key {}: no PEM private key ({e})",
            key.display()
        ))
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?;
    let builder = match client_ca {
        Some(ca) => {
            let pem = read(ca, "client CA")?;
            let mut roots = RootCertStore::empty();
            for der in CertificateDer::pem_slice_iter(&pem) {
                let der =
                    der.map_err(|e| invalid(format!("TLS client CA {}: {e}", ca.display())))?;
                roots
                    .add(der)
                    .map_err(|e| invalid(format!("TLS client CA {}: {e}", ca.display())))?;
            }
            if roots.is_empty() {
                return Err(invalid(format!(
                    "TLS client CA {}: no PEM certificate in it",
                    ca.display()
                )));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid(format!("TLS client CA {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, private).map_err(|e| {
        invalid(format!(
            "TLS certificate {} and key {}: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl TlsConfig {
    /// Loads a certificate chain and its private key (PEM files: PKCS#8, PKCS#1 or SEC1
    /// keys) and, for mTLS, the client CA certificates (PEM).
    ///
    /// # Errors
    ///
    /// A file cannot be read, holds no certificate or key, or the key does not match the
    /// certificate; the error names the file.
    ///
    /// ```
    /// use dubbo_health_tonic::server::TlsConfig;
    ///
    /// let missing = TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem", None::<&str>);
    /// assert!(missing.unwrap_err().to_string().contains("/nonexistent/cert.pem"));
    /// ```
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
        client_ca: Option<impl AsRef<Path>>,
    ) -> io::Result<Self> {
        let (cert, key) = (cert.as_ref().to_owned(), key.as_ref().to_owned());
        let client_ca = client_ca.map(|p| p.as_ref().to_owned());
        let config = load(&cert, &key, client_ca.as_deref())?;
        let seen = fingerprint(&Self::paths_of(&cert, &key, client_ca.as_deref()));
        Ok(Self {
            inner: Arc::new(Inner {
                cert,
                key,
                client_ca,
                current: RwLock::new(Arc::new(config)),
                seen: Mutex::new((seen, Instant::now())),
            }),
        })
    }

    fn paths_of<'a>(cert: &'a Path, key: &'a Path, ca: Option<&'a Path>) -> Vec<&'a Path> {
        let mut paths = vec![cert, key];
        paths.extend(ca);
        paths
    }

    fn paths(&self) -> Vec<&Path> {
        Self::paths_of(
            &self.inner.cert,
            &self.inner.key,
            self.inner.client_ca.as_deref(),
        )
    }

    /// Whether client certificates are required (a client CA was given).
    ///
    /// ```no_run
    /// # let tls = dubbo_health_tonic::server::TlsConfig::from_pem_files("c.pem", "k.pem", None::<&str>).unwrap();
    /// assert!(!tls.requires_client_certificate());
    /// ```
    pub fn requires_client_certificate(&self) -> bool {
        self.inner.client_ca.is_some()
    }

    /// Reads the files again now (the CLI calls this on SIGHUP). New connections get the new
    /// certificates; open ones keep theirs.
    ///
    /// # Errors
    ///
    /// As for [`from_pem_files`](Self::from_pem_files); the previous certificates stay in
    /// use.
    ///
    /// ```no_run
    /// # let tls = dubbo_health_tonic::server::TlsConfig::from_pem_files("c.pem", "k.pem", None::<&str>).unwrap();
    /// if let Err(e) = tls.reload() {
    ///     eprintln!("keeping the old certificate: {e}");
    /// }
    /// ```
    pub fn reload(&self) -> io::Result<()> {
        let seen = fingerprint(&self.paths());
        let config = load(
            &self.inner.cert,
            &self.inner.key,
            self.inner.client_ca.as_deref(),
        )?;
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        self.inner
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0 = seen;
        Ok(())
    }

    /// Reloads if the files changed since they were last loaded (looked at most every
    /// [`TLS_RELOAD_POLL`]); a failed reload is logged and the old certificates stay.
    fn reload_if_changed(&self) {
        let now = Instant::now();
        {
            let mut seen = self
                .inner
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if now.duration_since(seen.1) < TLS_RELOAD_POLL {
                return;
            }
            seen.1 = now;
            if fingerprint(&self.paths()) == seen.0 {
                return;
            }
        }
        match self.reload() {
            Ok(()) => eprintln!(
                "tls: certificates reloaded from {}",
                self.inner.cert.display()
            ),
            Err(e) => {
                // Do not try the same broken files on every connection: wait for the next
                // change.
                self.inner
                    .seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0 = fingerprint(&self.paths());
                eprintln!("tls: reload failed, keeping the previous certificates: {e}");
            }
        }
    }

    /// The acceptor for a connection arriving now.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.reload_if_changed();
        let config = self
            .inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert", &self.inner.cert)
            .field("key", &self.inner.key)
            .field("client_ca", &self.inner.client_ca)
            .finish_non_exhaustive()
    }
}
