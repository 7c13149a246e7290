//! The standalone gRPC health server: `dh_server_start`, `dh_server_start_with` (see
//! `dh_server_options`), `dh_server_local_port`, `dh_server_stop`, `dh_server_free`.
//!
//! For hosts that have no gRPC server of their own: it serves `grpc.health.v1.Health`
//! (Check, Watch, List) over the registry on its own thread with its own runtime.
//!
//! ```no_run
//! use dubbo_health::*;
//!
//! let (mut reg, mut srv, mut port) = (std::ptr::null_mut(), std::ptr::null_mut(), 0u16);
//! unsafe {
//!     dh_registry_new(&mut reg);
//!     assert_eq!(dh_server_start(reg, c"127.0.0.1:0".as_ptr(), &mut srv), DH_OK);
//!     dh_server_local_port(srv, &mut port);
//!     println!("health on 127.0.0.1:{port}");
//!     dh_shutdown(reg); // optional: every door reports NOT_SERVING
//!     dh_server_stop(srv, 1000); // this server's watchers get NOT_SERVING, then the port closes
//!     dh_server_free(srv);
//!     dh_registry_free(reg);
//! }
//! ```

use std::ffi::{c_char, CStr};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dubbo_health_core::HeapRegistry;

use crate::error::{dh_result, Failure, DH_INVALID_ADDRESS, DH_INVALID_STATE};
use crate::ffi::{check_out, write_out, ArcCastable, BoxCastable, Castable};
use crate::options::{dh_server_options, ServerOptions};
use crate::registry::dh_registry;

/// The builder the C server options are applied to.
#[cfg(feature = "server")]
pub(crate) type Builder = dubbo_health_tonic::StandaloneBuilder<Arc<HeapRegistry>>;

/// A running (or stopped) standalone health server.
///
/// Opaque; made by `dh_server_start`, freed with `dh_server_free`. Functions on it are
/// thread-safe.
#[derive(Debug)]
pub struct dh_server {
    _private: [u8; 0],
}

/// What a `dh_server` handle points to.
#[derive(Debug)]
pub(crate) struct ServerHandle {
    addr: SocketAddr,
    probe_port: Option<u16>,
    started: backend::Started,
    running: Mutex<Option<backend::Running>>,
}

impl Castable for dh_server {
    type RustType = ServerHandle;
}

impl BoxCastable for dh_server {}

#[cfg(feature = "server")]
mod backend {
    use super::*;

    pub(super) type Running = dubbo_health_tonic::Standalone;
    pub(super) type Started = dubbo_health_tonic::probe::ProbeState;

    pub(super) fn started(server: &Running) -> Started {
        server.probe_state().clone()
    }

    pub(super) fn mark_started(started: &Started) {
        started.mark_started();
    }

    pub(super) fn start(
        addr: &str,
        registry: Arc<HeapRegistry>,
        options: &ServerOptions,
    ) -> Result<(Running, SocketAddr), Failure> {
        use dubbo_health_tonic::server::ListenAddress;
        let address = ListenAddress::parse(addr)
            .map_err(|e| Failure::new(DH_INVALID_ADDRESS, e.to_string()))?;
        super::ignore_sigpipe();
        let builder = dubbo_health_tonic::Standalone::builder(registry);
        let builder = match address {
            ListenAddress::Tcp(addrs) => builder.addr(&addrs[..]),
            ListenAddress::Unix(path) => builder.unix(path),
        };
        let server = options.apply(builder)?.start().map_err(|e| {
            Failure::new(crate::error::DH_IO, format!("cannot serve on {addr}: {e}"))
        })?;
        let local = server.local_addr();
        Ok((server, local))
    }

    pub(super) fn stop(server: Running, grace: Duration) -> Result<(), Failure> {
        server
            .stop(grace)
            .map_err(|e| Failure::new(crate::error::DH_IO, format!("the server failed: {e}")))
    }

    pub(super) fn force_stop(server: Running) {
        // Dropping without `stop` closes everything at once, without draining the registry.
        drop(server);
    }
}

/// Sets SIGPIPE to "ignore" if it is at its default ("terminate"), as every Rust program
/// does at start-up: the server writes to sockets with `writev`, and a client that hangs
/// up would otherwise kill the host process. A handler the host installed is left alone.
#[cfg(all(feature = "server", unix))]
fn ignore_sigpipe() {
    // Safety: `sigaction` with a NULL new action only reads the current one into `old`,
    // a zeroed, valid `sigaction` struct; `signal` with SIG_IGN installs no code.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_DFL
        {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
}

#[cfg(all(feature = "server", not(unix)))]
fn ignore_sigpipe() {}

#[cfg(not(feature = "server"))]
mod backend {
    use super::*;

    #[derive(Debug)]
    pub(super) enum Running {}
    #[derive(Debug)]
    pub(super) struct Started;

    pub(super) fn started(server: &Running) -> Started {
        match *server {}
    }

    pub(super) fn mark_started(_: &Started) {}

    pub(super) fn start(
        _: &str,
        _: Arc<HeapRegistry>,
        _: &ServerOptions,
    ) -> Result<(Running, SocketAddr), Failure> {
        Err(Failure::new(
            crate::error::DH_UNSUPPORTED,
            "this build of libdubbo_health has no server (feature `server`)",
        ))
    }

    pub(super) fn stop(server: Running, _: Duration) -> Result<(), Failure> {
        match server {}
    }

    pub(super) fn force_stop(server: Running) {
        match server {}
    }
}

/// Starts a gRPC server for `grpc.health.v1.Health` over the registry, on its own thread,
/// with the default options (as `dh_server_start_with(reg, addr, NULL, srv_out)`).
///
/// `addr` is a NUL-terminated string: `"HOST:PORT"` (`"127.0.0.1:50051"`, `"[::1]:0"`,
/// `"localhost:50051"`; a host name is resolved and the first address that binds is used;
/// port 0 picks a free port, see `dh_server_local_port`), or `"unix:PATH"` /
/// `"unix:///PATH"` for a Unix domain socket (a stale socket file is replaced; the file is
/// removed when the server stops or is freed). When this returns `DH_OK` the address is
/// bound and accepting. The server keeps the registry alive.
///
/// If SIGPIPE is at its default disposition (terminate the process), this sets it to
/// ignored, as Rust programs do: otherwise a client hanging up could kill the host. A
/// SIGPIPE handler the host installed is left alone.
///
/// On success the caller owns `*srv_out`: stop it with `dh_server_stop` and free it with
/// `dh_server_free`.
///
/// # Errors
/// * `DH_INVALID_ADDRESS`: `addr` is neither `HOST:PORT` nor `unix:PATH`, or its host name
///   does not resolve (see `dh_last_error_message`).
/// * `DH_IO`: the address cannot be bound (in use, no permission); see
///   `dh_last_error_message`.
/// * `DH_UNSUPPORTED`: the library was built without its server.
/// * `DH_NULL_PARAMETER`: an argument is NULL.
///
/// # Safety
/// `reg` is a live handle; `addr` is a NUL-terminated string; `srv_out` is valid for a
/// write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_server_start(
    reg: *const dh_registry,
    addr: *const c_char,
    srv_out: *mut *mut dh_server,
) -> dh_result {
    // Safety: forwarded from the caller; NULL options are the defaults.
    unsafe { dh_server_start_with(reg, addr, std::ptr::null(), srv_out) }
}

/// Starts a gRPC server for `grpc.health.v1.Health` over the registry, on its own thread,
/// with the given options (`NULL` for the defaults; see `dh_server_options`).
///
/// `addr`, SIGPIPE and ownership of `*srv_out` are as for `dh_server_start`. The server
/// copies what it needs from `opts`: the options may be changed or freed once this returns.
///
/// # Errors
/// As for `dh_server_start`.
///
/// # Safety
/// `reg` is a live handle; `addr` is a NUL-terminated string; `opts` is NULL or a live
/// options handle not being changed by another thread; `srv_out` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_server_start_with(
    reg: *const dh_registry,
    addr: *const c_char,
    opts: *const dh_server_options,
    srv_out: *mut *mut dh_server,
) -> dh_result {
    ffi_fn! {
        check_out(srv_out, "srv_out")?;
        // Safety: forwarded from the caller.
        let host = unsafe { dh_registry::try_ref(reg, "reg") }?;
        if addr.is_null() {
            return Err(crate::ffi::null("addr"));
        }
        // Safety: forwarded from the caller (NULL is allowed: the defaults).
        let defaults;
        let options = match unsafe { dh_server_options::try_ref(opts, "opts") } {
            Ok(options) => options,
            Err(_) => {
                defaults = ServerOptions::default();
                &defaults
            }
        };
        // Safety: non-NULL, and the caller promises a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(addr) };
        let text = text
            .to_str()
            .map_err(|_| Failure::new(DH_INVALID_ADDRESS, format!("{text:?} is not UTF-8")))?;
        let (running, local) = backend::start(text, Arc::clone(&host.registry), options)?;
        let probe_port = probe_port_of(&running);
        let started = backend::started(&running);
        let handle = ServerHandle {
            addr: local,
            probe_port,
            started,
            running: Mutex::new(Some(running)),
        };
        // Safety: checked non-NULL; valid for writes by the caller's promise.
        unsafe { write_out(srv_out, "srv_out", dh_server::into_handle(handle)) }
    }
}

/// Writes the port the server listens on to `*port_out` (useful after binding port 0);
/// 0 for a server on a Unix domain socket. Still answers after `dh_server_stop`.
///
/// # Errors
/// `DH_NULL_PARAMETER` if an argument is NULL.
///
/// # Safety
/// `srv` is a live handle; `port_out` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_server_local_port(
    srv: *const dh_server,
    port_out: *mut u16,
) -> dh_result {
    ffi_fn! {
        check_out(port_out, "port_out")?;
        // Safety (both): forwarded from the caller.
        let server = unsafe { dh_server::try_ref(srv, "srv") }?;
        unsafe { write_out(port_out, "port_out", server.addr.port()) }
    }
}

#[cfg(feature = "server")]
fn probe_port_of(server: &backend::Running) -> Option<u16> {
    server.probe_addr().map(|a| a.port())
}

#[cfg(not(feature = "server"))]
fn probe_port_of(server: &backend::Running) -> Option<u16> {
    match *server {}
}

/// Writes the port of the server's probe address (`dh_server_options_set_probe_addr`) to
/// `*port_out`. Still answers after `dh_server_stop`.
///
/// # Errors
/// `DH_NULL_PARAMETER` if an argument is NULL; `DH_INVALID_STATE` if the server has no
/// probe address.
///
/// # Safety
/// `srv` is a live handle; `port_out` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_server_probe_port(
    srv: *const dh_server,
    port_out: *mut u16,
) -> dh_result {
    ffi_fn! {
        check_out(port_out, "port_out")?;
        // Safety (both): forwarded from the caller.
        let server = unsafe { dh_server::try_ref(srv, "srv") }?;
        let port = server
            .probe_port
            .ok_or_else(|| Failure::new(DH_INVALID_STATE, "the server has no probe address"))?;
        unsafe { write_out(port_out, "port_out", port) }
    }
}

/// Marks the host started: the server's `GET /startup` answers 200 from now on (for a
/// server started with `dh_server_options_set_started(opts, false)`).
///
/// # Errors
/// `DH_NULL_PARAMETER` if `srv` is NULL.
///
/// # Safety
/// `srv` is a live handle.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_server_mark_started(srv: *const dh_server) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        let server = unsafe { dh_server::try_ref(srv, "srv") }?;
        backend::mark_started(&server.started);
        Ok(())
    }
}

/// Stops the server gracefully and waits for it, draining only this server: it stops
/// accepting, each of its gRPC Watch streams (including ones that open during the drain)
/// gets a last NOT_SERVING message (unless that is what it sent last) and ends, GOAWAY goes
/// out, and whatever is still open after `grace_ms` milliseconds is closed. The registry is
/// not touched: statuses stay as they are, `dh_watch` watches keep running, and other
/// servers on the same registry keep serving. For a drain every door sees, call
/// `dh_shutdown(reg)` first (every name NOT_SERVING), then `dh_server_stop`.
///
/// # Errors
/// * `DH_INVALID_STATE`: the server was already stopped.
/// * `DH_IO`: the server had failed (the message says why); it is stopped now.
/// * `DH_NULL_PARAMETER`: `srv` is NULL.
///
/// # Safety
/// `srv` is a live handle.
///
/// Thread-safe; returns within about `grace_ms` milliseconds (sooner once every connection
/// has closed).
#[no_mangle]
pub unsafe extern "C" fn dh_server_stop(srv: *const dh_server, grace_ms: u32) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        let server = unsafe { dh_server::try_ref(srv, "srv") }?;
        let running = server
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| Failure::new(DH_INVALID_STATE, "the server is already stopped"))?;
        backend::stop(running, Duration::from_millis(u64::from(grace_ms)))
    }
}

/// Frees a server handle. If `dh_server_stop` was not called, the server is stopped at
/// once: connections close without a grace period. NULL is a no-op.
///
/// # Safety
/// `srv` is NULL or a live handle that no other thread is using; do not call this twice
/// on the same handle.
#[no_mangle]
pub unsafe extern "C" fn dh_server_free(srv: *mut dh_server) {
    ffi_panic_boundary! {
        // Safety: forwarded from the caller.
        if let Some(server) = unsafe { dh_server::take(srv) } {
            let running = server.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            if let Some(running) = running {
                backend::force_stop(running);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::*;
    use crate::registry::{dh_registry_free, dh_registry_new};
    use std::ptr::null_mut;

    #[cfg(feature = "server")]
    #[test]
    fn start_report_port_stop_free() {
        let (mut reg, mut srv, mut port) = (null_mut(), null_mut(), 0u16);
        unsafe {
            assert_eq!(dh_registry_new(&mut reg), DH_OK);
            assert_eq!(
                dh_server_start(reg, c"127.0.0.1:0".as_ptr(), &mut srv),
                DH_OK
            );
            assert_eq!(dh_server_local_port(srv, &mut port), DH_OK);
            assert_ne!(port, 0);
            assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
            assert_eq!(dh_server_stop(srv, 1000), DH_OK);
            assert_eq!(dh_server_stop(srv, 1000), DH_INVALID_STATE);
            dh_server_free(srv);
            dh_registry_free(reg);
        }
    }

    #[cfg(not(feature = "server"))]
    #[test]
    fn without_the_feature_start_is_unsupported() {
        let (mut reg, mut srv) = (null_mut(), null_mut());
        unsafe {
            assert_eq!(dh_registry_new(&mut reg), DH_OK);
            assert_eq!(
                dh_server_start(reg, c"127.0.0.1:0".as_ptr(), &mut srv),
                DH_UNSUPPORTED
            );
            assert!(srv.is_null());
            dh_registry_free(reg);
        }
    }
}
