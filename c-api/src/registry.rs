//! The registry handle: `dh_registry_new`, `dh_set`, `dh_get`, `dh_clear`, `dh_list`, ...
//!
//! ```
//! use dubbo_health::*;
//!
//! let mut reg = std::ptr::null_mut();
//! let mut status = -1;
//! unsafe {
//!     dh_registry_new(&mut reg);
//!     dh_shutdown(reg); // graceful drain: everything NOT_SERVING
//!     assert_eq!(dh_get(reg, std::ptr::null(), 0, &mut status), DH_OK);
//!     assert_eq!(status, DH_STATUS_NOT_SERVING);
//!     dh_resume(reg);
//!     assert_eq!(dh_get(reg, b"missing".as_ptr(), 7, &mut status), DH_NOT_FOUND);
//!     dh_registry_free(reg);
//! }
//! ```

use std::ffi::c_void;
use std::sync::Arc;

use dubbo_health_core::HeapRegistry;

use crate::error::{dh_result, Failure, DH_INVALID_ARGUMENT, DH_NOT_FOUND};
use crate::ffi::{check_out, name_in, write_opt, write_out, ArcCastable, Castable};
use crate::status::{
    dh_set_outcome, dh_status, outcome_to_c, status_from_c, status_to_c, DH_DEFAULT_CAPACITY,
};

/// A health registry: service name → serving status.
///
/// Opaque; made by `dh_registry_new`, shared with `dh_registry_clone`, released with
/// `dh_registry_free`. Every function on it is thread-safe.
#[derive(Debug)]
pub struct dh_registry {
    _private: [u8; 0],
}

/// What a `dh_registry` handle points to.
///
/// Watches and servers hold the inner `Arc<HeapRegistry>` directly, so the registry
/// stays alive while they do; the host's own handles (this struct, one `Arc` strong
/// reference per handle) decide when watches end.
#[derive(Debug)]
pub(crate) struct HostRegistry {
    pub(crate) registry: Arc<HeapRegistry>,
}

impl Castable for dh_registry {
    type RustType = HostRegistry;
}

impl ArcCastable for dh_registry {}

impl Drop for HostRegistry {
    fn drop(&mut self) {
        // The last host handle is gone: no one can change a status any more, so a watch
        // blocked in `dh_watch_next` would wait forever. End them all (DH_CLOSED).
        self.registry.end_watches();
    }
}

/// Makes a registry of `capacity` names. Its memory is allocated zeroed up front (about 290
/// bytes of address space per name) and becomes resident only as names are registered; the
/// registry value itself is small, so nothing large is built on the caller's stack.
pub(crate) fn new_registry(capacity: usize) -> Result<Arc<HeapRegistry>, Failure> {
    HeapRegistry::with_capacity(capacity)
        .map(Arc::new)
        .map_err(|e| Failure::new(DH_INVALID_ARGUMENT, e.to_string()))
}

/// Borrows the registry behind a handle.
///
/// # Safety
/// `reg` is NULL or a live `dh_registry` handle.
pub(crate) unsafe fn registry_ref<'a>(
    reg: *const dh_registry,
) -> Result<&'a HeapRegistry, Failure> {
    // Safety: forwarded from the caller.
    Ok(&unsafe { dh_registry::try_ref(reg, "reg") }?.registry)
}

/// Creates a registry holding only the empty name `""` (the whole server) as
/// `DH_STATUS_SERVING`, with room for `DH_DEFAULT_CAPACITY` names (`""` included). Use
/// `dh_registry_new_with_capacity` for another capacity.
///
/// On success the caller owns `*reg_out` and releases it with `dh_registry_free`.
///
/// Starts no thread and does no I/O: the registry's memory is one zeroed allocation, made
/// resident only as names are registered.
///
/// # Errors
/// * `DH_NULL_PARAMETER`: `reg_out` is NULL.
/// * `DH_INVALID_ARGUMENT`: the memory could not be allocated.
///
/// # Safety
/// `reg_out` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_registry_new(reg_out: *mut *mut dh_registry) -> dh_result {
    // Safety: forwarded from the caller.
    unsafe { dh_registry_new_with_capacity(DH_DEFAULT_CAPACITY, reg_out) }
}

/// Creates a registry holding only the empty name `""` as `DH_STATUS_SERVING`, with room
/// for `capacity` names (`""` included): from 1 to `DH_MAX_CAPACITY`.
///
/// On success the caller owns `*reg_out` and releases it with `dh_registry_free`.
///
/// About 290 bytes of address space per name of capacity are reserved, zeroed, and become
/// resident only as names are registered: an empty registry of 1,000,000 names is a few pages.
/// Starts no thread and does no I/O.
///
/// # Errors
/// * `DH_NULL_PARAMETER`: `reg_out` is NULL.
/// * `DH_INVALID_ARGUMENT`: `capacity` is 0 or over `DH_MAX_CAPACITY`, or the memory could not
///   be allocated (`dh_last_error_message` says which).
///
/// # Safety
/// `reg_out` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_registry_new_with_capacity(
    capacity: usize,
    reg_out: *mut *mut dh_registry,
) -> dh_result {
    ffi_fn! {
        check_out(reg_out, "reg_out")?;
        let registry = new_registry(capacity)?;
        let handle = dh_registry::into_handle(Arc::new(HostRegistry { registry }));
        // Safety: checked non-NULL; valid for writes by the caller's promise.
        unsafe { write_out(reg_out, "reg_out", handle) }
    }
}

/// Makes another handle to the same registry, for a second owner.
///
/// On success the caller owns `*reg_out` (which may be the same pointer as `reg`) and
/// releases it with its own `dh_registry_free` call.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `reg` or `reg_out` is NULL.
///
/// # Safety
/// `reg` is a live handle; `reg_out` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_registry_clone(
    reg: *const dh_registry,
    reg_out: *mut *mut dh_registry,
) -> dh_result {
    ffi_fn! {
        check_out(reg_out, "reg_out")?;
        // Safety: forwarded from the caller.
        let arc = unsafe { dh_registry::try_clone_arc(reg, "reg") }?;
        // Safety: checked non-NULL; valid for writes by the caller's promise.
        unsafe { write_out(reg_out, "reg_out", dh_registry::into_handle(arc)) }
    }
}

/// Releases a registry handle. NULL is a no-op.
///
/// When the last handle made by `dh_registry_new` / `dh_registry_clone` is released, every
/// watch open on the registry ends: a blocked `dh_watch_next` returns `DH_CLOSED` (no one
/// could change a status any more, so it would otherwise wait forever). The registry's
/// memory stays alive until the last watch and server using it are freed too, so those
/// handles stay safe to use: watches report `DH_CLOSED`, a running server keeps answering
/// `Check` and `List` with the final statuses.
///
/// # Safety
/// `reg` is NULL or a live handle, and is not used again: do not call this twice on the
/// same handle.
///
/// Thread-safe with respect to other handles and other threads using other handles.
#[no_mangle]
pub unsafe extern "C" fn dh_registry_free(reg: *mut dh_registry) {
    ffi_panic_boundary! {
        // Safety: forwarded from the caller.
        unsafe { dh_registry::release(reg) }
    }
}

/// Sets the status of `name` (registering it if needed) and wakes its watchers.
///
/// `status` is `DH_STATUS_UNKNOWN`, `DH_STATUS_SERVING` or `DH_STATUS_NOT_SERVING`. If
/// `outcome_out` is not NULL it receives `DH_SET_CHANGED`, `DH_SET_UNCHANGED`, or
/// `DH_SET_IGNORED` while the registry is shut down (`dh_shutdown`); an ignored set is not
/// an error.
///
/// # Errors
/// * `DH_NULL_PARAMETER`: `reg` is NULL, or `name` is NULL with `name_len > 0`.
/// * `DH_NAME_TOO_LONG`: `name_len > DH_MAX_NAME`.
/// * `DH_INVALID_UTF8`: the name is not UTF-8.
/// * `DH_INVALID_STATUS`: `status` is `DH_STATUS_SERVICE_UNKNOWN` or not a status at all.
/// * `DH_FULL`: the name is new and the registry already holds as many names as its capacity.
///
/// # Safety
/// `reg` is a live handle; `name` is readable for `name_len` bytes; `outcome_out` is NULL
/// or valid for a write.
///
/// Thread-safe; never blocks on watchers (it only wakes them).
#[no_mangle]
pub unsafe extern "C" fn dh_set(
    reg: *const dh_registry,
    name: *const u8,
    name_len: usize,
    status: dh_status,
    outcome_out: *mut dh_set_outcome,
) -> dh_result {
    ffi_fn! {
        // Safety (all three): forwarded from the caller.
        let registry = unsafe { registry_ref(reg) }?;
        let name = unsafe { name_in(name, name_len) }?;
        let status = status_from_c(status)?;
        let outcome = registry.set(name, status)?;
        unsafe { write_opt(outcome_out, outcome_to_c(outcome)) };
        Ok(())
    }
}

/// Reads the status of `name` into `*status_out`. Never takes a lock and never allocates,
/// whether the name is registered or not.
///
/// # Errors
/// * `DH_NOT_FOUND`: the name is not registered (`*status_out` is untouched).
/// * `DH_NULL_PARAMETER`, `DH_NAME_TOO_LONG`, `DH_INVALID_UTF8`: as for `dh_set`.
///
/// # Safety
/// `reg` is a live handle; `name` is readable for `name_len` bytes; `status_out` is valid
/// for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_get(
    reg: *const dh_registry,
    name: *const u8,
    name_len: usize,
    status_out: *mut dh_status,
) -> dh_result {
    ffi_fn! {
        check_out(status_out, "status_out")?;
        // Safety (all): forwarded from the caller.
        let registry = unsafe { registry_ref(reg) }?;
        let name = unsafe { name_in(name, name_len) }?;
        match registry.get(name) {
            Some(status) => unsafe { write_out(status_out, "status_out", status_to_c(status)) },
            // A static message: this path does not allocate either.
            None => Err(Failure::new(DH_NOT_FOUND, "the name is not registered")),
        }
    }
}

/// Forgets `name`: its watchers get `DH_STATUS_SERVICE_UNKNOWN`, `dh_get` gives
/// `DH_NOT_FOUND`. Clearing a name that is not registered is not an error.
///
/// If `was_registered_out` is not NULL it receives 1 if the name was registered, else 0.
///
/// # Errors
/// `DH_NULL_PARAMETER`, `DH_NAME_TOO_LONG`, `DH_INVALID_UTF8`: as for `dh_set`.
///
/// # Safety
/// `reg` is a live handle; `name` is readable for `name_len` bytes; `was_registered_out`
/// is NULL or valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_clear(
    reg: *const dh_registry,
    name: *const u8,
    name_len: usize,
    was_registered_out: *mut i32,
) -> dh_result {
    ffi_fn! {
        // Safety (all): forwarded from the caller.
        let registry = unsafe { registry_ref(reg) }?;
        let name = unsafe { name_in(name, name_len) }?;
        let was = registry.clear(name)?;
        unsafe { write_opt(was_registered_out, i32::from(was)) };
        Ok(())
    }
}

/// Graceful drain: every registered name becomes `DH_STATUS_NOT_SERVING`, and later
/// `dh_set` calls are ignored (`DH_SET_IGNORED`) until `dh_resume`.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `reg` is NULL.
///
/// # Safety
/// `reg` is a live handle.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_shutdown(reg: *const dh_registry) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        unsafe { registry_ref(reg) }?.shutdown();
        Ok(())
    }
}

/// Ends a shutdown: every registered name becomes `DH_STATUS_SERVING` and `dh_set` works
/// again.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `reg` is NULL.
///
/// # Safety
/// `reg` is a live handle.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_resume(reg: *const dh_registry) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        unsafe { registry_ref(reg) }?.resume();
        Ok(())
    }
}

/// Writes 1 to `*shut_down_out` if the registry is shut down (`dh_shutdown` without a
/// later `dh_resume`), else 0.
///
/// # Errors
/// `DH_NULL_PARAMETER` if an argument is NULL.
///
/// # Safety
/// `reg` is a live handle; `shut_down_out` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_is_shut_down(
    reg: *const dh_registry,
    shut_down_out: *mut i32,
) -> dh_result {
    ffi_fn! {
        check_out(shut_down_out, "shut_down_out")?;
        // Safety (both): forwarded from the caller.
        let down = unsafe { registry_ref(reg) }?.is_shut_down();
        unsafe { write_out(shut_down_out, "shut_down_out", i32::from(down)) }
    }
}

/// Ends every watch open on the registry now: each delivers the change it still has
/// pending, then reports `DH_CLOSED`. Watches made later are not affected. Servers on the
/// registry end their gRPC `Watch` streams too.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `reg` is NULL.
///
/// # Safety
/// `reg` is a live handle.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_end_watches(reg: *const dh_registry) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        unsafe { registry_ref(reg) }?.end_watches();
        Ok(())
    }
}

/// Writes the number of registered names (the empty name included) to `*len_out`.
///
/// # Errors
/// `DH_NULL_PARAMETER` if an argument is NULL.
///
/// # Safety
/// `reg` is a live handle; `len_out` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_len(reg: *const dh_registry, len_out: *mut usize) -> dh_result {
    ffi_fn! {
        check_out(len_out, "len_out")?;
        // Safety (both): forwarded from the caller.
        let len = unsafe { registry_ref(reg) }?.len();
        unsafe { write_out(len_out, "len_out", len) }
    }
}

/// Called by `dh_list` once per registered name: `userdata` as given to `dh_list`, the
/// name as `(name, name_len)` (UTF-8, not NUL-terminated, valid only during the call) and
/// its status. Return 0 to go on, anything else to stop early.
pub type dh_list_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        name: *const u8,
        name_len: usize,
        status: dh_status,
    ) -> i32,
>;

/// Calls `callback` once for every registered name, in no particular order.
///
/// The registry is read without a lock, so the callback may call any `dh_` function, on
/// this registry too; names set or cleared meanwhile may or may not be reported.
///
/// # Errors
/// `DH_NULL_PARAMETER` if `reg` or `callback` is NULL.
///
/// # Safety
/// `reg` is a live handle; `callback` is safe to call with `userdata`.
///
/// Thread-safe; the callback runs on the calling thread.
#[no_mangle]
pub unsafe extern "C" fn dh_list(
    reg: *const dh_registry,
    callback: dh_list_callback,
    userdata: *mut c_void,
) -> dh_result {
    ffi_fn! {
        // Safety: forwarded from the caller.
        let registry = unsafe { registry_ref(reg) }?;
        let callback = callback.ok_or_else(|| crate::ffi::null("callback"))?;
        for entry in registry.iter() {
            let name = entry.name();
            // Safety: the caller promises the callback may be called with `userdata`; the
            // name stays alive for the call.
            let stop = unsafe { callback(userdata, name.as_ptr(), name.len(), status_to_c(entry.status())) };
            if stop != 0 {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::*;
    use crate::status::*;
    use std::ptr::{null, null_mut};

    #[test]
    fn new_set_get_clear_free() {
        let mut reg = null_mut();
        unsafe {
            assert_eq!(dh_registry_new(&mut reg), DH_OK);
            let mut st = -1;
            assert_eq!(dh_get(reg, null(), 0, &mut st), DH_OK);
            assert_eq!(st, DH_STATUS_SERVING);
            let mut outcome = -1;
            assert_eq!(
                dh_set(reg, b"a".as_ptr(), 1, DH_STATUS_NOT_SERVING, &mut outcome),
                DH_OK
            );
            assert_eq!(outcome, DH_SET_CHANGED);
            assert_eq!(
                dh_set(reg, b"a".as_ptr(), 1, 7, null_mut()),
                DH_INVALID_STATUS
            );
            assert_eq!(
                dh_set(reg, b"\xff".as_ptr(), 1, 1, null_mut()),
                DH_INVALID_UTF8
            );
            let mut was = -1;
            assert_eq!(dh_clear(reg, b"a".as_ptr(), 1, &mut was), DH_OK);
            assert_eq!(was, 1);
            assert_eq!(dh_get(reg, b"a".as_ptr(), 1, &mut st), DH_NOT_FOUND);
            assert_eq!(dh_get(null(), b"a".as_ptr(), 1, &mut st), DH_NULL_PARAMETER);
            dh_registry_free(reg);
            dh_registry_free(null_mut());
        }
    }

    #[test]
    fn capacity_is_checked_and_used() {
        let mut reg = null_mut();
        unsafe {
            assert_eq!(
                dh_registry_new_with_capacity(0, &mut reg),
                DH_INVALID_ARGUMENT
            );
            assert!(reg.is_null());
            assert_eq!(
                dh_registry_new_with_capacity(DH_MAX_CAPACITY + 1, &mut reg),
                DH_INVALID_ARGUMENT
            );
            assert!(reg.is_null());
            assert_eq!(
                dh_registry_new_with_capacity(2, null_mut()),
                DH_NULL_PARAMETER
            );
            assert_eq!(dh_registry_new_with_capacity(2, &mut reg), DH_OK);
            assert_eq!(dh_set(reg, b"a".as_ptr(), 1, 1, null_mut()), DH_OK);
            assert_eq!(dh_set(reg, b"b".as_ptr(), 1, 1, null_mut()), DH_FULL);
            dh_registry_free(reg);
            assert_eq!(dh_registry_new(&mut reg), DH_OK);
            assert!(matches!(registry_ref(reg), Ok(r) if r.capacity() == DH_DEFAULT_CAPACITY));
            dh_registry_free(reg);
        }
    }
}
