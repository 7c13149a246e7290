//! `serve()` and `Server`: the standalone server on its own thread.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dubbo_health_tonic::{
    probe::{ProbeBodies, ProbeState},
    server::ListenAddress,
    Standalone,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::registry::{timeout_arg, Registry};
use crate::watch::lock;

/// The grace period `stop()` and the context manager use by default.
const DEFAULT_GRACE: f64 = 5.0;

/// A running `grpc.health.v1.Health` server.
#[pyclass(module = "dubbo_health._native", frozen, weakref)]
#[derive(Debug)]
pub(crate) struct Server {
    /// "host:port", or "unix:PATH".
    address: String,
    /// 0 on a Unix domain socket.
    port: u16,
    probe_address: Option<SocketAddr>,
    probe_state: ProbeState,
    running: Mutex<Option<Standalone>>,
}

/// Resolves "host:port" to its first address.
fn resolve(address: &str) -> PyResult<SocketAddr> {
    address
        .to_socket_addrs()
        .map_err(|err| PyValueError::new_err(format!("bad address {address:?}: {err}")))?
        .next()
        .ok_or_else(|| PyValueError::new_err(format!("address {address:?} resolves to nothing")))
}

/// Reads a probe body style: "dubbo-java" or "dubbo-go".
pub(crate) fn bodies_arg(name: &str) -> PyResult<ProbeBodies> {
    ProbeBodies::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "probe_bodies must be 'dubbo-java' or 'dubbo-go', not {name:?}"
        ))
    })
}

/// Starts the health service for `registry` on `address`: "host:port" (port 0 picks one;
/// host names resolve) or "unix:PATH" / "unix:///PATH" (a Unix domain socket, removed on
/// stop), with the HTTP probes and JSON Check on the same socket (`probes`), optionally on a
/// TCP port of their own too (`probe_addr`); `/startup` answers 200 once listening unless
/// `started` is false (then call `Server.mark_started()`). `tls_cert` and `tls_key` (PEM
/// files) serve TLS; `tls_client_ca` (PEM) adds mTLS. The files are reloaded when they change.
/// `require` names the services `""` follows (`Registry.require` for each, before listening).
// Each keyword argument of Python's `serve(...)` is a parameter here.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (registry, address, *, probes = true, probe_addr = None, started = true, probe_bodies = "dubbo-java", tls_cert = None, tls_key = None, tls_client_ca = None, require = Vec::new()))]
pub(crate) fn serve(
    py: Python<'_>,
    registry: &Registry,
    address: &str,
    probes: bool,
    probe_addr: Option<&str>,
    started: bool,
    probe_bodies: &str,
    tls_cert: Option<std::path::PathBuf>,
    tls_key: Option<std::path::PathBuf>,
    tls_client_ca: Option<std::path::PathBuf>,
    require: Vec<String>,
) -> PyResult<Server> {
    for name in &require {
        py.detach(|| registry.inner.require(name))
            .map_err(|err| crate::pyobjects::error(py, err))?;
    }
    let registry = Arc::clone(&registry.inner);
    let address = address.to_owned();
    let probe_addr = probe_addr.map(str::to_owned);
    let bodies = bodies_arg(probe_bodies)?;
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some((cert, key, tls_client_ca)),
        (None, None) if tls_client_ca.is_none() => None,
        _ => {
            return Err(PyValueError::new_err(
                "tls_cert and tls_key go together (and tls_client_ca needs both)",
            ))
        }
    };
    let standalone = py.detach(move || -> PyResult<Standalone> {
        let parsed = ListenAddress::parse(&address)
            .map_err(|err| PyValueError::new_err(format!("bad address {address:?}: {err}")))?;
        let mut builder = Standalone::builder(registry)
            .probes(probes)
            .started(started)
            .probe_bodies(bodies);
        if let Some((cert, key, ca)) = tls {
            let config = dubbo_health_tonic::server::TlsConfig::from_pem_files(cert, key, ca)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData => PyValueError::new_err(e.to_string()),
                    _ => PyErr::from(e),
                })?;
            builder = builder.tls(config);
        }
        let mut builder = match parsed {
            ListenAddress::Tcp(addrs) => builder.addr(&addrs[..]),
            ListenAddress::Unix(path) => builder.unix(path),
        };
        if let Some(probe_addr) = probe_addr {
            builder = builder.probe_addr(resolve(&probe_addr)?);
        }
        Ok(builder.start()?)
    })?;
    let (address, port) = match standalone.unix_path() {
        Some(path) => (format!("unix:{}", path.display()), 0),
        None => (
            standalone.local_addr().to_string(),
            standalone.local_addr().port(),
        ),
    };
    Ok(Server {
        address,
        port,
        probe_address: standalone.probe_addr(),
        probe_state: standalone.probe_state().clone(),
        running: Mutex::new(Some(standalone)),
    })
}

impl Server {
    fn stop_with(&self, py: Python<'_>, grace: Duration) -> PyResult<()> {
        let running = lock(&self.running).take();
        match running {
            // Draining wakes watchers, and asyncio ones need the GIL to be woken.
            Some(standalone) => Ok(py.detach(move || standalone.stop(grace))?),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let running = self
            .running
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(standalone) = running {
            // Dropped without stop(): stop at once, without draining the registry, and
            // without holding the GIL while the server thread winds down.
            // (Past interpreter shutdown the closure is dropped unrun: same effect.)
            let _ = Python::try_attach(|py| py.detach(|| drop(standalone)));
        }
    }
}

#[pymethods]
impl Server {
    /// The port the server listens on; 0 on a Unix domain socket.
    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    /// The address the server listens on: "host:port", or "unix:PATH".
    #[getter]
    fn address(&self) -> String {
        self.address.clone()
    }

    /// The probe port, or None without `probe_addr`.
    #[getter]
    fn probe_port(&self) -> Option<u16> {
        self.probe_address.map(|a| a.port())
    }

    /// The probe address as "host:port", or None without `probe_addr`.
    #[getter]
    fn probe_address(&self) -> Option<String> {
        self.probe_address.map(|a| a.to_string())
    }

    /// Whether `/startup` answers 200 (the server was started with `started=True`, or
    /// `mark_started()` was called).
    #[getter]
    fn started(&self) -> bool {
        self.probe_state.is_started()
    }

    /// `/startup` answers 200 from now on.
    fn mark_started(&self) {
        self.probe_state.mark_started();
    }

    /// Whether the server is running (not stopped yet).
    #[getter]
    fn running(&self) -> bool {
        lock(&self.running).is_some()
    }

    /// Drains and stops this server only: each of its gRPC Watch streams (including ones
    /// that open during the drain) gets a last NOT_SERVING and ends, GOAWAY goes out, and
    /// the port closes within `grace` seconds. The registry is not touched: statuses stay,
    /// `registry.watch()` iterators keep running, and a grpcio mount of the same registry
    /// keeps serving. Call `registry.shutdown()` first for a drain every door sees.
    #[pyo3(signature = (grace = 5.0))]
    fn stop(&self, py: Python<'_>, grace: f64) -> PyResult<()> {
        let grace = timeout_arg(Some(grace))?.unwrap_or_default();
        self.stop_with(py, grace)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.stop_with(py, Duration::from_secs_f64(DEFAULT_GRACE))?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.running() { "running" } else { "stopped" };
        format!("Server('{}', {state})", self.address)
    }
}
