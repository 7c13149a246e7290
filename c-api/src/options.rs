//! Options of the standalone server: `dh_server_options_new`, the `dh_server_options_set_*`
//! setters, `dh_server_options_free`; used by `dh_server_start_with`.
//!
//! ```no_run
//! use dubbo_health::*;
//!
//! let (mut reg, mut opts, mut srv) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
//! unsafe {
//!     dh_registry_new(&mut reg);
//!     assert_eq!(dh_server_options_new(&mut opts), DH_OK);
//!     assert_eq!(dh_server_options_set_reflection(opts, false), DH_OK);
//!     assert_eq!(dh_server_start_with(reg, c"127.0.0.1:0".as_ptr(), opts, &mut srv), DH_OK);
//!     dh_server_options_free(opts); // the server keeps what it needs
//!     dh_server_stop(srv, 1000);
//!     dh_server_free(srv);
//!     dh_registry_free(reg);
//! }
//! ```

use crate::error::dh_result;
use crate::ffi::{check_out, write_out, BoxCastable, Castable};

/// Options for `dh_server_start_with`: made by `dh_server_options_new` (every option at its
/// default), changed by the `dh_server_options_set_*` functions, freed with
/// `dh_server_options_free`.
///
/// Opaque. A server copies what it needs when it starts, so one options object may start
/// several servers, and may be changed or freed while they run. Not thread-safe: change an
/// options object from one thread at a time, and not while `dh_server_start_with` reads it.
#[derive(Debug)]
pub struct dh_server_options {
    _private: [u8; 0],
}

/// What a `dh_server_options` handle points to: the options as the server takes them.
#[derive(Debug, Clone)]
pub(crate) struct ServerOptions {
    /// Answer gRPC server reflection (`grpc.reflection.v1` and `v1alpha`).
    pub(crate) reflection: bool,
    /// TLS (and mTLS), loaded by `dh_server_options_set_tls`.
    #[cfg(feature = "server")]
    pub(crate) tls: Option<dubbo_health_tonic::server::TlsConfig>,
    /// Answer the HTTP probes and the JSON Check on the server's own address.
    pub(crate) probes: bool,
    /// A TCP address ("host:port") for the probes of their own.
    pub(crate) probe_addr: Option<String>,
    /// dubbo-go's `ok` probe bodies instead of Dubbo Java's `true` / `false`.
    pub(crate) probe_bodies_go: bool,
    /// `/startup` answers 200 once listening (else after `dh_server_mark_started`).
    pub(crate) started: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            reflection: true,
            #[cfg(feature = "server")]
            tls: None,
            probes: true,
            probe_addr: None,
            probe_bodies_go: false,
            started: true,
        }
    }
}

impl Castable for dh_server_options {
    type RustType = ServerOptions;
}

impl BoxCastable for dh_server_options {}

#[cfg(feature = "server")]
impl ServerOptions {
    /// These options on a server builder.
    pub(crate) fn apply(
        &self,
        builder: crate::server::Builder,
    ) -> Result<crate::server::Builder, crate::error::Failure> {
        use dubbo_health_tonic::probe::ProbeBodies;
        let mut builder = builder
            .reflection(self.reflection)
            .probes(self.probes)
            .started(self.started)
            .probe_bodies(if self.probe_bodies_go {
                ProbeBodies::DubboGo
            } else {
                ProbeBodies::DubboJava
            });
        if let Some(tls) = &self.tls {
            builder = builder.tls(tls.clone());
        }
        Ok(match &self.probe_addr {
            Some(addr) => builder.probe_addr(addr.as_str()),
            None => builder,
        })
    }
}

/// Makes an options object with every option at its default: reflection on, plaintext
/// (see `dh_server_options_set_tls`).
///
/// On success the caller owns `*opts_out`; free it with `dh_server_options_free`.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `opts_out` is NULL.
///
/// # Safety
/// `opts_out` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_server_options_new(opts_out: *mut *mut dh_server_options) -> dh_result {
    ffi_fn! {
        check_out(opts_out, "opts_out")?;
        let handle = dh_server_options::into_handle(ServerOptions::default());
        // Safety: checked non-NULL; valid for writes by the caller's promise.
        unsafe { write_out(opts_out, "opts_out", handle) }
    }
}

/// Frees an options object. Servers started with it are not affected. NULL is a no-op.
///
/// # Safety
/// `opts` is NULL or a live handle that no other thread is using; do not call this twice
/// on the same handle.
#[no_mangle]
pub unsafe extern "C" fn dh_server_options_free(opts: *mut dh_server_options) {
    ffi_panic_boundary! {
        // Safety: forwarded from the caller.
        drop(unsafe { dh_server_options::take(opts) });
    }
}

/// Whether the server answers gRPC server reflection (`grpc.reflection.v1` and
/// `v1alpha`, so `grpcurl list` and `grpcurl describe` work). On by default.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `opts` is NULL.
///
/// # Safety
/// `opts` is a live handle not used by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn dh_server_options_set_reflection(
    opts: *mut dh_server_options,
    on: bool,
) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        let options = unsafe { options_mut(opts) }?;
        options.reflection = on;
        Ok(())
    }
}

/// Serves TLS with the certificate chain `cert_path` and its private key `key_path` (PEM
/// files; NUL-terminated paths) and, when `client_ca_path` is not NULL, mTLS: clients must
/// present a certificate that chains to the CA certificates in that PEM file, or are
/// refused. ALPN offers `h2` and `http/1.1`. The files are read now (so a bad file is
/// reported here) and again whenever they change while a server runs (checked at most once
/// a second, when a connection arrives): rotating them needs no restart, and a rotation that
/// fails to load keeps the previous certificates. `cert_path` and `key_path` both NULL turn
/// TLS off again (plaintext, the default).
///
/// # Errors
/// * `DH_IO`: a file cannot be read (the message names it).
/// * `DH_INVALID_ARGUMENT`: a file holds no certificate or key, or the key does not match
///   the certificate.
/// * `DH_INVALID_UTF8`: a path is not UTF-8.
/// * `DH_NULL_PARAMETER`: `opts` is NULL, or only one of `cert_path` and `key_path` is.
/// * `DH_UNSUPPORTED`: the library was built without its server.
///
/// On error the options are unchanged.
///
/// # Safety
/// `opts` is a live handle not used by another thread during the call; each path is NULL
/// or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn dh_server_options_set_tls(
    opts: *mut dh_server_options,
    cert_path: *const std::ffi::c_char,
    key_path: *const std::ffi::c_char,
    client_ca_path: *const std::ffi::c_char,
) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        let options = unsafe { options_mut(opts) }?;
        let path = |p: *const std::ffi::c_char, what: &'static str| -> Result<Option<&str>, crate::error::Failure> {
            if p.is_null() {
                return Ok(None);
            }
            // Safety: non-NULL, and the caller promises a NUL-terminated string.
            let text = unsafe { std::ffi::CStr::from_ptr(p) };
            text.to_str().map(Some).map_err(|_| {
                crate::error::Failure::new(crate::error::DH_INVALID_UTF8, format!("{what} is not UTF-8"))
            })
        };
        let (cert, key, ca) = (path(cert_path, "cert_path")?, path(key_path, "key_path")?, path(client_ca_path, "client_ca_path")?);
        let (cert, key) = match (cert, key) {
            (None, None) => {
                #[cfg(feature = "server")]
                {
                    options.tls = None;
                }
                return Ok(());
            }
            (Some(cert), Some(key)) => (cert, key),
            (None, Some(_)) => return Err(crate::ffi::null("cert_path")),
            (Some(_), None) => return Err(crate::ffi::null("key_path")),
        };
        #[cfg(feature = "server")]
        {
            let tls = dubbo_health_tonic::server::TlsConfig::from_pem_files(cert, key, ca).map_err(|e| {
                let code = if e.kind() == std::io::ErrorKind::InvalidData {
                    crate::error::DH_INVALID_ARGUMENT
                } else {
                    crate::error::DH_IO
                };
                crate::error::Failure::new(code, e.to_string())
            })?;
            options.tls = Some(tls);
            Ok(())
        }
        #[cfg(not(feature = "server"))]
        {
            let _ = (options, cert, key, ca);
            Err(crate::error::Failure::new(crate::error::DH_UNSUPPORTED, "built without the server"))
        }
    }
}

/// Whether the server's own address answers the HTTP probes (`GET /live`, `/ready`,
/// `/startup`, `/ready?service=NAME`; `200 true` / `503 false`) and the JSON
/// `POST /grpc.health.v1.Health/Check` and `List`, over HTTP/1.1 and h2c. On by default.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `opts` is NULL.
///
/// # Safety
/// `opts` is a live handle not used by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn dh_server_options_set_probes(
    opts: *mut dh_server_options,
    on: bool,
) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        let options = unsafe { options_mut(opts) }?;
        options.probes = on;
        Ok(())
    }
}

/// A TCP address ("host:port", port 0 picks one; see `dh_server_probe_port`) where the
/// server also answers the probes, as Dubbo's QoS uses port 22222. It keeps answering
/// during `dh_server_stop`'s drain (`/ready` then says 503) until the server has stopped.
/// NULL removes it (the default). The address is resolved by `dh_server_start_with`, which
/// fails with `DH_IO` if it cannot be bound.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `opts` is NULL; `DH_INVALID_ADDRESS` if `addr` is not UTF-8.
///
/// # Safety
/// `opts` is a live handle not used by another thread during the call; `addr` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn dh_server_options_set_probe_addr(
    opts: *mut dh_server_options,
    addr: *const std::ffi::c_char,
) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        let options = unsafe { options_mut(opts) }?;
        if addr.is_null() {
            options.probe_addr = None;
            return Ok(());
        }
        // Safety: non-NULL, and the caller promises a NUL-terminated string.
        let text = unsafe { std::ffi::CStr::from_ptr(addr) };
        let text = text.to_str().map_err(|_| {
            crate::error::Failure::new(
                crate::error::DH_INVALID_ADDRESS,
                format!("{text:?} is not UTF-8"),
            )
        })?;
        options.probe_addr = Some(text.to_owned());
        Ok(())
    }
}

/// The probe bodies: Dubbo Java QoS's `true` / `false` (`dubbo_go` false, the default) or
/// dubbo-go's `ok` / `probe ready: not serving` (`dubbo_go` true). Status codes are the same.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `opts` is NULL.
///
/// # Safety
/// `opts` is a live handle not used by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn dh_server_options_set_probe_bodies_dubbo_go(
    opts: *mut dh_server_options,
    dubbo_go: bool,
) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        let options = unsafe { options_mut(opts) }?;
        options.probe_bodies_go = dubbo_go;
        Ok(())
    }
}

/// Whether `/startup` answers 200 as soon as the server listens (true, the default); with
/// false it answers 503 until `dh_server_mark_started`.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `opts` is NULL.
///
/// # Safety
/// `opts` is a live handle not used by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn dh_server_options_set_started(
    opts: *mut dh_server_options,
    started: bool,
) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        let options = unsafe { options_mut(opts) }?;
        options.started = started;
        Ok(())
    }
}

/// Borrows the options behind a handle for a setter.
///
/// # Safety
/// `opts` is NULL or a live handle that no other thread uses during the borrow.
pub(crate) unsafe fn options_mut<'a>(
    opts: *mut dh_server_options,
) -> Result<&'a mut ServerOptions, crate::error::Failure> {
    // Safety: the caller promises `opts` is NULL or a live handle of this type, used by no
    // one else meanwhile (see `dh_server_options`), so a unique borrow is sound.
    unsafe { opts.cast::<ServerOptions>().as_mut() }.ok_or_else(|| crate::ffi::null("opts"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::*;

    #[test]
    fn new_set_free() {
        let mut opts = std::ptr::null_mut();
        unsafe {
            assert_eq!(
                dh_server_options_new(std::ptr::null_mut()),
                DH_NULL_PARAMETER
            );
            assert_eq!(dh_server_options_new(&mut opts), DH_OK);
            assert!(dh_server_options::try_ref(opts, "opts").unwrap().reflection);
            assert_eq!(dh_server_options_set_reflection(opts, false), DH_OK);
            assert!(!dh_server_options::try_ref(opts, "opts").unwrap().reflection);
            assert_eq!(
                dh_server_options_set_reflection(std::ptr::null_mut(), true),
                DH_NULL_PARAMETER
            );
            let o = dh_server_options::try_ref(opts, "opts").unwrap();
            assert!(o.probes && o.started && !o.probe_bodies_go && o.probe_addr.is_none());
            assert_eq!(dh_server_options_set_probes(opts, false), DH_OK);
            assert_eq!(dh_server_options_set_started(opts, false), DH_OK);
            assert_eq!(
                dh_server_options_set_probe_bodies_dubbo_go(opts, true),
                DH_OK
            );
            assert_eq!(
                dh_server_options_set_probe_addr(opts, c"127.0.0.1:0".as_ptr()),
                DH_OK
            );
            let o = dh_server_options::try_ref(opts, "opts").unwrap();
            assert!(!o.probes && !o.started && o.probe_bodies_go);
            assert_eq!(o.probe_addr.as_deref(), Some("127.0.0.1:0"));
            assert_eq!(
                dh_server_options_set_probe_addr(opts, std::ptr::null()),
                DH_OK
            );
            assert!(dh_server_options::try_ref(opts, "opts")
                .unwrap()
                .probe_addr
                .is_none());
            assert_eq!(
                dh_server_options_set_probe_addr(std::ptr::null_mut(), std::ptr::null()),
                DH_NULL_PARAMETER
            );
            dh_server_options_free(opts);
            dh_server_options_free(std::ptr::null_mut());
        }
    }
}
