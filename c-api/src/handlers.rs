//! Bytes-level `grpc.health.v1.Health` handlers for C and C++ gRPC servers: the host
//! receives a request message (protobuf bytes, without the 5-byte gRPC frame header),
//! passes it here, and sends back the response bytes or the gRPC status these give.
//!
//! ```
//! use dubbo_health::*;
//!
//! let mut reg = std::ptr::null_mut();
//! let (mut out, mut len, mut code) = ([0u8; 64], 0, 0);
//! let request = b"\x0a\x07missing"; // HealthCheckRequest { service: "missing" }
//! unsafe {
//!     dh_registry_new(&mut reg);
//!     let rc = dh_handle_check(reg, request.as_ptr(), request.len(), out.as_mut_ptr(), out.len(), &mut len, &mut code);
//!     assert_eq!(rc, DH_OK);
//!     assert_eq!(code, 5); // NOT_FOUND, with its grpc-message in `out`
//!     assert_eq!(&out[..len], b"unknown service");
//!     dh_registry_free(reg);
//! }
//! ```

use std::fmt;
use std::sync::Arc;

use dubbo_health_core::wire::{self, RpcError};
use dubbo_health_core::GrpcCode;

use crate::error::{dh_result, Failure, DH_BUFFER_TOO_SMALL, DH_INVALID_REQUEST};
use crate::ffi::{bytes_in, bytes_out, check_out, write_out, ArcCastable, BoxCastable};
use crate::registry::{dh_registry, registry_ref};
use crate::status::{dh_status, status_from_c, DH_MAX_REQUEST_LEN};
use crate::watch::{dh_watch, timeout_from_ms, watch_ref, WatchHandle};

/// Writes `text` into `out`, cut at a character boundary if it does not fit; returns the
/// bytes written. Formats straight into `out`: no allocation.
fn write_message(text: impl fmt::Display, out: &mut [u8]) -> usize {
    struct Cut<'a> {
        out: &'a mut [u8],
        len: usize,
    }
    impl fmt::Write for Cut<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let mut n = s.len().min(self.out.len() - self.len);
            while !s.is_char_boundary(n) {
                n -= 1;
            }
            self.out[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            // Once cut, stop: what was written stays a prefix of the message.
            if n < s.len() {
                Err(fmt::Error)
            } else {
                Ok(())
            }
        }
    }
    let mut cut = Cut { out, len: 0 };
    let _ = fmt::write(&mut cut, format_args!("{text}"));
    cut.len
}

/// A core handler: `wire::handle_check` or `wire::handle_list`.
type Handler = fn(&dubbo_health_core::HeapRegistry, &[u8], &mut [u8]) -> Result<usize, RpcError>;

/// Shared body of `dh_handle_check` / `dh_handle_list`.
///
/// # Safety
/// As for those functions.
#[allow(clippy::too_many_arguments)] // the C signature plus the handler
unsafe fn handle(
    reg: *const dh_registry,
    req: *const u8,
    req_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
    grpc_code_out: *mut u32,
    call: Handler,
) -> Result<(), Failure> {
    check_out(out_len, "out_len")?;
    check_out(grpc_code_out, "grpc_code_out")?;
    // Safety (all): forwarded from the caller.
    let registry = unsafe { registry_ref(reg) }?;
    let out = unsafe { bytes_out(out, out_cap, "out") }?;
    let (code, len) = if req_len > DH_MAX_REQUEST_LEN {
        let text = format_args!("request is {req_len} bytes; the limit is {DH_MAX_REQUEST_LEN}");
        (GrpcCode::ResourceExhausted, write_message(text, out))
    } else {
        let req = unsafe { bytes_in(req, req_len, "req") }?;
        match call(registry, req, out) {
            Ok(n) => (GrpcCode::Ok, n),
            Err(RpcError::BufferTooSmall { needed }) => {
                unsafe { write_out(out_len, "out_len", needed) }?;
                return Err(Failure::new(
                    DH_BUFFER_TOO_SMALL,
                    format!("output buffer holds {} bytes, {needed} needed", out.len()),
                ));
            }
            Err(e) => (e.code(), write_message(e, out)),
        }
    };
    unsafe {
        write_out(out_len, "out_len", len)?;
        write_out(grpc_code_out, "grpc_code_out", code.as_u32())
    }
}

/// Answers a `grpc.health.v1.Health/Check` call from its request bytes.
///
/// `req` holds the serialised `HealthCheckRequest` (no gRPC frame header; NULL is fine
/// when `req_len` is 0, which asks for the empty name). Returns `DH_OK` whenever the call
/// has an answer for the client, and sets `*grpc_code_out` (a gRPC status code):
/// * `0` (OK): `out[0..*out_len]` is the `HealthCheckResponse` to send (at most
///   `DH_CHECK_RESPONSE_MAX_LEN` bytes; 0 bytes is a valid message, status UNKNOWN);
/// * `5` (NOT_FOUND) for a name that is not registered, `3` (INVALID_ARGUMENT) for
///   malformed bytes or a name over 200 bytes, `8` (RESOURCE_EXHAUSTED) for a request
///   over `DH_MAX_REQUEST_LEN`: `out[0..*out_len]` is the UTF-8 status message to send
///   (cut to fit `out_cap`).
///
/// Never takes a lock, and never allocates when it returns `DH_OK` (whatever gRPC code it
/// gives).
///
/// # Errors
/// * `DH_BUFFER_TOO_SMALL`: the response does not fit; `*out_len` is the size needed and
///   `*grpc_code_out` is untouched.
/// * `DH_NULL_PARAMETER`: `reg`, `out_len` or `grpc_code_out` is NULL, or `req` / `out`
///   is NULL with a non-zero length.
///
/// # Safety
/// `reg` is a live handle; `req` is readable for `req_len` bytes; `out` is writable for
/// `out_cap` bytes; `out_len` and `grpc_code_out` are valid for writes.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_handle_check(
    reg: *const dh_registry,
    req: *const u8,
    req_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
    grpc_code_out: *mut u32,
) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        unsafe { handle(reg, req, req_len, out, out_cap, out_len, grpc_code_out, wire::handle_check) }
    }
}

/// Answers a `grpc.health.v1.Health/List` call from its request bytes, like
/// `dh_handle_check`: on `DH_OK`, `*grpc_code_out` is `0` with the `HealthListResponse`
/// in `out[0..*out_len]` (a buffer of `DH_LIST_RESPONSE_MAX_LEN` bytes always fits), or
/// `8` (RESOURCE_EXHAUSTED, more than `DH_LIST_LIMIT` names) / `3` (INVALID_ARGUMENT) with
/// the status message in `out`.
///
/// # Errors
/// * `DH_BUFFER_TOO_SMALL`: `*out_len` is the size needed at the time of the call (names
///   may be added before a retry; `DH_LIST_RESPONSE_MAX_LEN` always suffices);
///   `*grpc_code_out` is untouched, and `out[0..out_cap]` may hold the start of the answer.
/// * `DH_NULL_PARAMETER`: as for `dh_handle_check`.
///
/// # Safety
/// As for `dh_handle_check`.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_handle_list(
    reg: *const dh_registry,
    req: *const u8,
    req_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
    grpc_code_out: *mut u32,
) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        unsafe { handle(reg, req, req_len, out, out_cap, out_len, grpc_code_out, wire::handle_list) }
    }
}

/// Encodes a `HealthCheckResponse` carrying `status` into `out`, writing its length to
/// `*out_len` (at most `DH_CHECK_RESPONSE_MAX_LEN` bytes; `DH_STATUS_UNKNOWN` encodes as
/// 0 bytes). For hosts that take statuses from `dh_watch_try_next` and send them as
/// `Watch` responses.
///
/// # Errors
/// * `DH_INVALID_STATUS`: `status` is not a `DH_STATUS_*` value.
/// * `DH_BUFFER_TOO_SMALL`: `*out_len` is the size needed.
/// * `DH_NULL_PARAMETER`: `out_len` is NULL, or `out` is NULL with `out_cap > 0`.
///
/// # Safety
/// `out` is writable for `out_cap` bytes; `out_len` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_encode_check_response(
    status: dh_status,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> dh_result {
    ffi_fn! {
        check_out(out_len, "out_len")?;
        let status = status_from_c(status)?;
        // Safety (both): forwarded from the caller.
        let out = unsafe { bytes_out(out, out_cap, "out") }?;
        let n = encode(status, out, out_len)?;
        unsafe { write_out(out_len, "out_len", n) }
    }
}

/// Encodes, or on a short buffer writes the needed size to `out_len` and fails.
fn encode(
    status: dubbo_health_core::ServingStatus,
    out: &mut [u8],
    out_len: *mut usize,
) -> Result<usize, Failure> {
    wire::encode_check_response(status, out).map_err(|e| {
        let needed = match e {
            wire::EncodeError::BufferTooSmall { needed } => needed,
            #[allow(unreachable_patterns)]
            _ => crate::status::DH_CHECK_RESPONSE_MAX_LEN,
        };
        // Safety: the callers checked `out_len` is non-NULL; valid for writes by their
        // callers' promise.
        let _ = unsafe { write_out(out_len, "out_len", needed) };
        Failure::new(DH_BUFFER_TOO_SMALL, format!("{needed} bytes needed"))
    })
}

/// Opens a watch from the request bytes of a `grpc.health.v1.Health/Watch` call.
///
/// On success `*grpc_code_out` is 0 and the caller owns `*w_out` (free it with
/// `dh_watch_free` when the call ends or is cancelled). Take encoded responses from it
/// with `dh_watch_next_encoded`, or statuses with `dh_watch_try_next` /
/// `dh_watch_next` and encode them with `dh_encode_check_response`.
///
/// # Errors
/// * `DH_INVALID_REQUEST`: the bytes are not a valid `HealthCheckRequest` (or the name is
///   over 200 bytes, or the request over `DH_MAX_REQUEST_LEN`). `*grpc_code_out` is set to
///   the gRPC code to end the call with (3, INVALID_ARGUMENT, or 8, RESOURCE_EXHAUSTED),
///   `dh_last_error_message` gives the status message, and `*w_out` is untouched.
/// * `DH_NULL_PARAMETER`: `reg`, `w_out` or `grpc_code_out` is NULL, or `req` is NULL with
///   `req_len > 0`.
///
/// # Safety
/// `reg` is a live handle; `req` is readable for `req_len` bytes; `w_out` and
/// `grpc_code_out` are valid for writes.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_watch_from_request(
    reg: *const dh_registry,
    req: *const u8,
    req_len: usize,
    w_out: *mut *mut dh_watch,
    grpc_code_out: *mut u32,
) -> dh_result {
    ffi_fn! {
        check_out(w_out, "w_out")?;
        check_out(grpc_code_out, "grpc_code_out")?;
        // Safety (all): forwarded from the caller.
        let host = unsafe { dh_registry::try_ref(reg, "reg") }?;
        if req_len > DH_MAX_REQUEST_LEN {
            unsafe { write_out(grpc_code_out, "grpc_code_out", GrpcCode::ResourceExhausted.as_u32()) }?;
            return Err(Failure::new(
                DH_INVALID_REQUEST,
                format!("request is {req_len} bytes; the limit is {DH_MAX_REQUEST_LEN}"),
            ));
        }
        let req = unsafe { bytes_in(req, req_len, "req") }?;
        let name = match wire::decode_check_request(req) {
            Ok(name) => name,
            Err(e) => {
                unsafe { write_out(grpc_code_out, "grpc_code_out", GrpcCode::InvalidArgument.as_u32()) }?;
                return Err(Failure::new(DH_INVALID_REQUEST, e.to_string()));
            }
        };
        let watch = WatchHandle::new(Arc::clone(&host.registry), name)?;
        unsafe {
            write_out(grpc_code_out, "grpc_code_out", GrpcCode::Ok.as_u32())?;
            write_out(w_out, "w_out", dh_watch::into_handle(watch))
        }
    }
}

/// Like `dh_watch_next`, but writes the next status as an encoded `HealthCheckResponse`
/// (the next `Watch` message to send) into `out[0..*out_len]`.
///
/// # Errors
/// * `DH_TIMEOUT`, `DH_CLOSED`: as for `dh_watch_next` (on `DH_CLOSED`, end the call with
///   status OK).
/// * `DH_BUFFER_TOO_SMALL`: `*out_len` is the size needed; the status is kept and returned
///   by the next call (`DH_CHECK_RESPONSE_MAX_LEN` bytes always suffice).
/// * `DH_NULL_PARAMETER`: `w` or `out_len` is NULL, or `out` is NULL with `out_cap > 0`.
///
/// # Safety
/// `w` is a live handle (not freed while this call runs); `out` is writable for `out_cap`
/// bytes; `out_len` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_watch_next_encoded(
    w: *const dh_watch,
    timeout_ms: i32,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> dh_result {
    ffi_fn! {
        check_out(out_len, "out_len")?;
        // Safety (all): forwarded from the caller.
        let watch = unsafe { watch_ref(w) }?;
        let out = unsafe { bytes_out(out, out_cap, "out") }?;
        let status = watch.next_blocking(timeout_from_ms(timeout_ms))?;
        match encode(status, out, out_len) {
            Ok(n) => unsafe { write_out(out_len, "out_len", n) },
            Err(e) => {
                watch.unread(status);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::*;
    use crate::registry::*;
    use std::ptr::{null, null_mut};

    #[test]
    fn messages_are_cut_at_a_character_boundary() {
        let mut out = [0u8; 4];
        assert_eq!(write_message("caf\u{e9}", &mut out), 3); // é does not fit
        assert_eq!(&out[..3], b"caf");
        let mut out = [0u8; 16];
        let n = write_message(format_args!("{} and {}", "one", "two"), &mut out);
        assert_eq!(&out[..n], b"one and two");
        let mut out = [0u8; 5];
        let n = write_message(format_args!("{}{}", "abc", "def"), &mut out);
        assert_eq!(&out[..n], b"abcde");
    }

    #[test]
    fn check_answers_ok_not_found_and_invalid() {
        let mut reg = null_mut();
        let mut out = [0u8; 64];
        let (mut len, mut code) = (0usize, 99u32);
        unsafe {
            assert_eq!(dh_registry_new(&mut reg), DH_OK);
            assert_eq!(
                dh_handle_check(reg, null(), 0, out.as_mut_ptr(), 64, &mut len, &mut code),
                DH_OK
            );
            assert_eq!((code, &out[..len]), (0, &b"\x08\x01"[..]));
            assert_eq!(
                dh_handle_check(
                    reg,
                    b"\x0a\x01x".as_ptr(),
                    3,
                    out.as_mut_ptr(),
                    64,
                    &mut len,
                    &mut code
                ),
                DH_OK
            );
            assert_eq!((code, &out[..len]), (5, &b"unknown service"[..]));
            assert_eq!(
                dh_handle_check(
                    reg,
                    b"\x0a\x05ab".as_ptr(),
                    4,
                    out.as_mut_ptr(),
                    64,
                    &mut len,
                    &mut code
                ),
                DH_OK
            );
            assert_eq!(code, 3);
            assert_eq!(
                dh_handle_check(reg, null(), 0, out.as_mut_ptr(), 1, &mut len, &mut code),
                DH_BUFFER_TOO_SMALL
            );
            assert_eq!(len, 2);
            dh_registry_free(reg);
        }
    }
}
