//! What a server listens on: a TCP socket, or a Unix domain socket whose file is removed
//! when the server stops.

use std::{
    io,
    net::{SocketAddr, TcpListener as StdTcpListener, ToSocketAddrs},
    path::{Path, PathBuf},
};

use tokio::net::{TcpListener, TcpStream};

/// An address a server listens on, read from text the way the CLI, C and Python take it:
/// `unix:PATH` or `unix://PATH` (so `unix:///tmp/health.sock` is `/tmp/health.sock`, as
/// grpc-go writes it) is a Unix domain socket; anything else is `host:port` (`127.0.0.1:0`,
/// `[::1]:50051`, `localhost:50051`; host names are resolved).
///
/// ```
/// use dubbo_health_tonic::server::ListenAddress;
///
/// assert_eq!(
///     ListenAddress::parse("unix:///tmp/h.sock").unwrap(),
///     ListenAddress::Unix("/tmp/h.sock".into())
/// );
/// assert_eq!(ListenAddress::parse("unix:h.sock").unwrap(), ListenAddress::Unix("h.sock".into()));
/// assert!(matches!(ListenAddress::parse("127.0.0.1:0").unwrap(), ListenAddress::Tcp(_)));
/// assert!(ListenAddress::parse("unix:").is_err());
/// assert!(ListenAddress::parse("no port").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    /// TCP, on the first of these addresses that binds.
    Tcp(Vec<SocketAddr>),
    /// A Unix domain socket at this path.
    Unix(PathBuf),
}

impl ListenAddress {
    /// Reads `unix:PATH`, `unix://PATH` or `host:port` (resolving host names).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an empty Unix path or an address that is not `host:port`; the
    /// resolver's error for a host name that does not resolve.
    ///
    /// ```
    /// # use dubbo_health_tonic::server::ListenAddress;
    /// let ListenAddress::Tcp(addrs) = ListenAddress::parse("localhost:0").unwrap() else { panic!() };
    /// assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    /// ```
    pub fn parse(text: &str) -> io::Result<Self> {
        if let Some(rest) = text.strip_prefix("unix:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{text:?}: no socket path after unix:"),
                ));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        let addrs: Vec<SocketAddr> = text
            .to_socket_addrs()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{text:?} is not host:port or unix:PATH ({e})"),
                )
            })?
            .collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{text:?} resolves to no address"),
            ));
        }
        Ok(Self::Tcp(addrs))
    }

    /// Binds it (non-blocking, ready for a tokio runtime). A Unix socket file left behind by
    /// a server that is gone (nothing accepts on it) is replaced; one in use is
    /// `AddrInUse`.
    pub(crate) fn bind(&self) -> io::Result<Bound> {
        match self {
            Self::Tcp(addrs) => {
                let listener = StdTcpListener::bind(&addrs[..])?;
                listener.set_nonblocking(true)?;
                Ok(Bound::Tcp(listener))
            }
            #[cfg(unix)]
            Self::Unix(path) => {
                let (listener, file) = bind_unix(path)?;
                Ok(Bound::Unix(listener, file))
            }
            #[cfg(not(unix))]
            Self::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Unix domain sockets are not supported on this platform",
            )),
        }
    }
}

/// Removes the socket file of a Unix listener when dropped, if it is still the file this
/// listener made (not one another server bound since).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    #[cfg(unix)]
    id: (u64, u64),
}

#[cfg(unix)]
fn file_id(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

impl SocketFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        #[cfg(unix)]
        if file_id(&self.path).ok() == Some(self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(unix)]
fn bind_unix(path: &Path) -> io::Result<(std::os::unix::net::UnixListener, SocketFile)> {
    use std::os::unix::{fs::FileTypeExt, net::UnixListener};
    let in_use = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let listener = match UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            // A stale socket (its server died without removing it) is replaced; a live one,
            // or a file that is not a socket, is left alone.
            let is_socket = std::fs::symlink_metadata(path)
                .map(|m| m.file_type().is_socket())
                .unwrap_or(false);
            let refused = is_socket
                && matches!(
                    std::os::unix::net::UnixStream::connect(path),
                    Err(ref c) if c.kind() == io::ErrorKind::ConnectionRefused
                );
            if !refused {
                return Err(in_use(e));
            }
            std::fs::remove_file(path).map_err(in_use)?;
            UnixListener::bind(path).map_err(in_use)?
        }
        Err(e) => return Err(in_use(e)),
    };
    listener.set_nonblocking(true)?;
    let file = SocketFile {
        path: path.to_owned(),
        id: file_id(path)?,
    };
    Ok((listener, file))
}

/// A bound listener, before it is handed to a runtime.
#[derive(Debug)]
pub(crate) enum Bound {
    Tcp(StdTcpListener),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener, SocketFile),
}

impl Bound {
    /// Registers it with the current tokio runtime.
    pub(crate) fn into_tokio(self) -> io::Result<Listener> {
        Ok(Listener(match self {
            Self::Tcp(l) => Inner::Tcp(TcpListener::from_std(l)?),
            #[cfg(unix)]
            Self::Unix(l, file) => Inner::Unix {
                listener: tokio::net::UnixListener::from_std(l)?,
                path: Some(file.path().to_owned()),
                _file: Some(file),
            },
        }))
    }
}

/// What [`Engine::serve`](super::Engine::serve) accepts connections on: a TCP listener, or a
/// Unix domain socket listener (made by [`Listener::bind`], its socket file is removed when
/// the listener is dropped, which `serve` does when it stops).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use dubbo_health_tonic::server::Listener;
///
/// let tcp: Listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?.into();
/// let unix = Listener::bind("unix:/tmp/health.sock")?;
/// assert_eq!(unix.to_string(), "unix:/tmp/health.sock");
/// # drop((tcp, unix)); Ok(()) }
/// ```
#[derive(Debug)]
pub struct Listener(Inner);

#[derive(Debug)]
enum Inner {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix {
        listener: tokio::net::UnixListener,
        path: Option<PathBuf>,
        /// Removes the socket file on drop, when this crate made it.
        _file: Option<SocketFile>,
    },
}

/// An accepted connection.
pub(crate) enum Accepted {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Listener {
    /// Binds a [`ListenAddress`] given as text (`unix:PATH`, `unix:///PATH`, `host:port`) on
    /// the current tokio runtime.
    ///
    /// # Errors
    ///
    /// The address does not parse or resolve, or cannot be bound (a Unix socket path in use
    /// by a live server is `AddrInUse`).
    pub fn bind(address: &str) -> io::Result<Self> {
        ListenAddress::parse(address)?.bind()?.into_tokio()
    }

    /// The TCP address, or `None` for a Unix socket.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let listener = dubbo_health_tonic::server::Listener::bind("127.0.0.1:0")?;
    /// assert_ne!(listener.tcp_addr().unwrap().port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match &self.0 {
            Inner::Tcp(l) => l.local_addr().ok(),
            #[cfg(unix)]
            Inner::Unix { .. } => None,
        }
    }

    /// The Unix socket path, or `None` for TCP.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let listener = dubbo_health_tonic::server::Listener::bind("unix:/tmp/h.sock")?;
    /// assert_eq!(listener.unix_path(), Some(std::path::Path::new("/tmp/h.sock")));
    /// # Ok(()) }
    /// ```
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.0 {
            Inner::Tcp(_) => None,
            #[cfg(unix)]
            Inner::Unix { path, .. } => path.as_deref(),
        }
    }

    pub(crate) async fn accept(&self) -> io::Result<Accepted> {
        match &self.0 {
            Inner::Tcp(l) => {
                let (tcp, _) = l.accept().await?;
                let _ = tcp.set_nodelay(true);
                Ok(Accepted::Tcp(tcp))
            }
            #[cfg(unix)]
            Inner::Unix { listener, .. } => Ok(Accepted::Unix(listener.accept().await?.0)),
        }
    }
}

/// `127.0.0.1:50051`, or `unix:/path/to.sock`.
impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.tcp_addr(), self.unix_path()) {
            (Some(addr), _) => write!(f, "{addr}"),
            (None, Some(path)) => write!(f, "unix:{}", path.display()),
            (None, None) => write!(f, "?"),
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self(Inner::Tcp(listener))
    }
}

/// A Unix listener bound by the caller: its socket file is the caller's to remove.
#[cfg(unix)]
impl From<tokio::net::UnixListener> for Listener {
    fn from(listener: tokio::net::UnixListener) -> Self {
        let path = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(Path::to_owned));
        Self(Inner::Unix {
            listener,
            path,
            _file: None,
        })
    }
}
