//! Result codes, the per-thread last error message, and the library version.
//!
//! ```
//! use dubbo_health::*;
//!
//! unsafe {
//!     assert_eq!(dh_registry_new(std::ptr::null_mut()), DH_NULL_PARAMETER);
//!     let mut buf = [0 as std::ffi::c_char; 64];
//!     let mut len = 0;
//!     assert_eq!(dh_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len), DH_OK);
//!     let text = std::ffi::CStr::from_ptr(buf.as_ptr()).to_str().unwrap();
//!     assert_eq!(text, "`reg_out` is NULL");
//!     assert_eq!(std::ffi::CStr::from_ptr(dh_result_name(DH_NULL_PARAMETER)).to_str(), Ok("DH_NULL_PARAMETER"));
//! }
//! ```

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::ffi::c_char;

use crate::ffi::{bytes_out, write_out};

/// What every `dh_` function returns: `DH_OK` (0) or one of the negative `DH_*` codes.
///
/// Codes have fixed values that are never reused; a retired code stays listed here as a
/// comment. New codes may be added, so treat any unknown negative value as an error.
pub type dh_result = i32;

/// Success.
pub const DH_OK: dh_result = 0;
/// A panic inside the library was caught at the boundary; the call had no effect or only
/// part of it. `dh_last_error_message` has the panic message. This is a bug: please report it.
pub const DH_PANIC: dh_result = -1;
/// A pointer argument that must not be NULL was NULL.
pub const DH_NULL_PARAMETER: dh_result = -2;
/// A name was not valid UTF-8.
pub const DH_INVALID_UTF8: dh_result = -3;
/// A name was longer than `DH_MAX_NAME` (200) bytes.
pub const DH_NAME_TOO_LONG: dh_result = -4;
/// A status integer is not a `DH_STATUS_*` value, or is `DH_STATUS_SERVICE_UNKNOWN` where
/// a status is being set.
pub const DH_INVALID_STATUS: dh_result = -5;
/// The registry holds as many names as its capacity (`DH_DEFAULT_CAPACITY` unless made with
/// `dh_registry_new_with_capacity`); clear one first, or make a larger registry.
pub const DH_FULL: dh_result = -6;
/// The name is not registered.
pub const DH_NOT_FOUND: dh_result = -7;
/// An output buffer is too small; the length it needs was written to the `*_len` output.
pub const DH_BUFFER_TOO_SMALL: dh_result = -8;
/// A blocking call's timeout passed before anything happened.
pub const DH_TIMEOUT: dh_result = -9;
/// The watch has ended: `dh_watch_close` was called on it, its registry's watches were
/// ended (`dh_end_watches`, the last registry handle freed, a server stopped). No more
/// statuses will come; free it.
pub const DH_CLOSED: dh_result = -10;
/// No new status is ready yet (non-blocking calls only); wait on the watch's file
/// descriptor or callback, then try again.
pub const DH_WOULD_BLOCK: dh_result = -11;
/// An address string was not NUL-terminated UTF-8 of the form `IP:PORT`.
pub const DH_INVALID_ADDRESS: dh_result = -12;
/// An operating-system call failed (binding a port, creating an eventfd, ...);
/// `dh_last_error_message` has the system's message.
pub const DH_IO: dh_result = -13;
/// Request bytes were not a valid `grpc.health.v1.HealthCheckRequest`.
pub const DH_INVALID_REQUEST: dh_result = -14;
/// This build of the library or this platform does not have the function (for example
/// `dh_server_*` without the `server` feature, or `dh_watch_fd` off Linux).
pub const DH_UNSUPPORTED: dh_result = -15;
/// An argument is out of range in a way no other code names (a length larger than any
/// object, a callback already installed, ...).
pub const DH_INVALID_ARGUMENT: dh_result = -16;
/// The operation is not allowed in the handle's current state (for example stopping a
/// server twice).
pub const DH_INVALID_STATE: dh_result = -17;
/// A name cannot be used for this: `dh_export`'s interface is empty or contains `/` or `:`
/// (those belong to service keys), or `dh_require` was asked for `""` itself.
pub const DH_INVALID_NAME: dh_result = -18;

/// The `DH_*` name of a result code, as a static NUL-terminated string (`"DH_UNKNOWN_RESULT"`
/// for a value this version does not know).
///
/// Never NULL. Thread-safe. The string is static: do not free it.
#[no_mangle]
pub extern "C" fn dh_result_name(result: dh_result) -> *const c_char {
    ffi_panic_boundary! { result_name(result).as_ptr().cast::<c_char>() }
}

pub(crate) fn result_name(result: dh_result) -> &'static str {
    match result {
        DH_OK => "DH_OK\0",
        DH_PANIC => "DH_PANIC\0",
        DH_NULL_PARAMETER => "DH_NULL_PARAMETER\0",
        DH_INVALID_UTF8 => "DH_INVALID_UTF8\0",
        DH_NAME_TOO_LONG => "DH_NAME_TOO_LONG\0",
        DH_INVALID_STATUS => "DH_INVALID_STATUS\0",
        DH_FULL => "DH_FULL\0",
        DH_NOT_FOUND => "DH_NOT_FOUND\0",
        DH_BUFFER_TOO_SMALL => "DH_BUFFER_TOO_SMALL\0",
        DH_TIMEOUT => "DH_TIMEOUT\0",
        DH_CLOSED => "DH_CLOSED\0",
        DH_WOULD_BLOCK => "DH_WOULD_BLOCK\0",
        DH_INVALID_ADDRESS => "DH_INVALID_ADDRESS\0",
        DH_IO => "DH_IO\0",
        DH_INVALID_REQUEST => "DH_INVALID_REQUEST\0",
        DH_UNSUPPORTED => "DH_UNSUPPORTED\0",
        DH_INVALID_ARGUMENT => "DH_INVALID_ARGUMENT\0",
        DH_INVALID_STATE => "DH_INVALID_STATE\0",
        DH_INVALID_NAME => "DH_INVALID_NAME\0",
        _ => "DH_UNKNOWN_RESULT\0",
    }
}

// === last error ===

thread_local! {
    /// The last error's text when it is a static string: set without allocating (this slot
    /// has no destructor, so even a thread's first error registers nothing).
    static LAST_STATIC: Cell<Option<&'static str>> = const { Cell::new(None) };
    /// The last error's text otherwise (`LAST_STATIC` is then `None`).
    static LAST_OWNED: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A failed call: the code it returns and the text `dh_last_error_message` gives.
#[derive(Debug)]
pub(crate) struct Failure {
    code: dh_result,
    message: Cow<'static, str>,
}

impl Failure {
    pub(crate) fn new(code: dh_result, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Stores the message as this thread's last error and returns the code. A static
    /// message is stored without allocating.
    pub(crate) fn record(self) -> dh_result {
        match self.message {
            Cow::Borrowed(text) => set_static_error(text),
            Cow::Owned(text) => set_last_error(&text),
        }
        self.code
    }
}

impl From<dubbo_health_core::Error> for Failure {
    fn from(e: dubbo_health_core::Error) -> Self {
        use dubbo_health_core::Error;
        let code = match e {
            Error::NameTooLong { .. } => DH_NAME_TOO_LONG,
            Error::Full => DH_FULL,
            Error::InvalidStatus => DH_INVALID_STATUS,
            Error::NotFound => DH_NOT_FOUND,
            Error::InvalidName => DH_INVALID_NAME,
            #[allow(unreachable_patterns)]
            _ => DH_INVALID_ARGUMENT,
        };
        Failure::new(code, e.to_string())
    }
}

fn set_static_error(message: &'static str) {
    let _ = LAST_STATIC.try_with(|slot| slot.set(Some(message)));
}

fn set_last_error(message: &str) {
    // `try_with`: during thread teardown the slot may be gone; then there is nowhere to keep it.
    let _ = LAST_OWNED.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            slot.clear();
            slot.push_str(message);
            let _ = LAST_STATIC.try_with(|slot| slot.set(None));
        }
    });
}

/// Runs `f` on the calling thread's last error text.
fn with_last_error<R>(f: impl FnOnce(&str) -> R) -> Option<R> {
    match LAST_STATIC.try_with(Cell::get).ok()? {
        Some(text) => Some(f(text)),
        None => LAST_OWNED.try_with(|slot| f(&slot.borrow())).ok(),
    }
}

pub(crate) fn record_panic(payload: &(dyn std::any::Any + Send)) {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    set_last_error(&format!("panic inside dubbo-health: {text}"));
}

/// Copies the text of the calling thread's last error into `buf`, NUL-terminated.
///
/// Every call that returns an error code other than `DH_OK` sets the text; calls that
/// succeed leave it as it was, and so does this function. Before any error it is empty.
///
/// On success `*len_out` is the text's length in bytes, not counting the NUL.
///
/// # Errors
/// * `DH_NULL_PARAMETER`: `len_out` is NULL, or `buf` is NULL with `cap > 0`.
/// * `DH_INVALID_ARGUMENT`: `cap` is larger than any object (`> PTRDIFF_MAX`).
/// * `DH_BUFFER_TOO_SMALL`: `cap` is less than length + 1; `*len_out` is set to the
///   capacity needed (length + 1) and `buf` is left unchanged.
///
/// # Safety
/// `buf` is valid for writes of `cap` bytes (or NULL with `cap == 0`); `len_out` is valid
/// for a write.
///
/// Thread-safe: each thread has its own last error.
#[no_mangle]
pub unsafe extern "C" fn dh_last_error_message(
    buf: *mut c_char,
    cap: usize,
    len_out: *mut usize,
) -> dh_result {
    ffi_panic_boundary! {
        if len_out.is_null() {
            // Not through `Failure::record`: this function must not change the last error.
            return DH_NULL_PARAMETER;
        }
        // Safety: forwarded from the caller.
        let out = match unsafe { bytes_out(buf.cast::<u8>(), cap, "buf") } {
            Ok(out) => out,
            Err(f) => return f.code,
        };
        let copied = with_last_error(|text| {
            let needed = text.len() + 1;
            if out.len() < needed {
                return Err(needed);
            }
            out[..text.len()].copy_from_slice(text.as_bytes());
            out[text.len()] = 0;
            Ok(text.len())
        });
        let (code, len) = match copied {
            Some(Ok(len)) => (DH_OK, len),
            Some(Err(needed)) => (DH_BUFFER_TOO_SMALL, needed),
            None => return DH_INVALID_STATE,
        };
        // Safety: checked non-NULL above; valid for writes by the caller's promise.
        let _ = unsafe { write_out(len_out, "len_out", len) };
        code
    }
}

// === version ===

/// The library's version, e.g. `"0.1.0"`: a static NUL-terminated string, never NULL.
///
/// Compare it with the header's `DH_VERSION` to catch a header/library mismatch.
/// Thread-safe. Do not free it.
#[no_mangle]
pub extern "C" fn dh_version() -> *const c_char {
    ffi_panic_boundary! { concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast::<c_char>() }
}

/// Test hook, present only in debug builds of the library: panics inside the panic
/// boundary, so tests can check that a panic becomes `DH_PANIC` and never unwinds into C.
///
/// The header declares it only when `DH_DEBUG_HOOKS` is defined before including it.
#[cfg(debug_assertions)]
#[no_mangle]
pub extern "C" fn dh_debug_panic() -> dh_result {
    ffi_fn! {
        panic!("dh_debug_panic was called");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_nul_terminated() {
        let codes = [
            DH_OK,
            DH_PANIC,
            DH_NULL_PARAMETER,
            DH_INVALID_UTF8,
            DH_NAME_TOO_LONG,
            DH_INVALID_STATUS,
            DH_FULL,
            DH_NOT_FOUND,
            DH_BUFFER_TOO_SMALL,
            DH_TIMEOUT,
            DH_CLOSED,
            DH_WOULD_BLOCK,
            DH_INVALID_ADDRESS,
            DH_IO,
            DH_INVALID_REQUEST,
            DH_UNSUPPORTED,
            DH_INVALID_ARGUMENT,
            DH_INVALID_STATE,
            DH_INVALID_NAME,
        ];
        let mut names: Vec<_> = codes.iter().map(|&c| result_name(c)).collect();
        assert!(names
            .iter()
            .all(|n| n.ends_with('\0') && n.starts_with("DH_")));
        assert!(!names.contains(&"DH_UNKNOWN_RESULT\0"));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), codes.len());
        assert_eq!(result_name(-1000), "DH_UNKNOWN_RESULT\0");
    }

    fn last_error() -> String {
        let mut buf = [0 as c_char; 128];
        let mut len = 0;
        assert_eq!(
            unsafe { dh_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) },
            DH_OK
        );
        String::from_utf8(buf[..len].iter().map(|&c| c as u8).collect()).unwrap()
    }

    #[test]
    fn static_and_owned_messages_take_turns() {
        assert_eq!(last_error(), "");
        assert_eq!(
            Failure::new(DH_NOT_FOUND, "static one").record(),
            DH_NOT_FOUND
        );
        assert_eq!(last_error(), "static one");
        assert_eq!(
            Failure::new(DH_FULL, format!("owned {}", 2)).record(),
            DH_FULL
        );
        assert_eq!(last_error(), "owned 2");
        Failure::new(DH_NOT_FOUND, "static again").record();
        assert_eq!(last_error(), "static again");
        Failure::new(DH_FULL, String::from("owned again")).record();
        assert_eq!(last_error(), "owned again");
    }

    #[test]
    fn panic_becomes_dh_panic_with_message() {
        assert_eq!(dh_debug_panic(), DH_PANIC);
        let mut buf = [0 as c_char; 128];
        let mut len = 0;
        assert_eq!(
            unsafe { dh_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) },
            DH_OK
        );
        let text = std::str::from_utf8(unsafe {
            std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len)
        })
        .unwrap();
        assert!(text.contains("dh_debug_panic was called"), "{text}");
    }
}
