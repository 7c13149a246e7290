//! Dubbo on the registry: `dh_service_key`, `dh_export` / `dh_unexport`, and `dh_require` /
//! `dh_unrequire` (the empty name `""` derived from required services). The semantics are
//! the core's (`docs/core.md`, "Dubbo").
//!
//! ```
//! use dubbo_health::*;
//!
//! let mut reg = std::ptr::null_mut();
//! let mut status = -1;
//! let (foo, grp, v1) = (b"org.apache.Foo", b"grp", b"1.0.0");
//! unsafe {
//!     dh_registry_new(&mut reg);
//!     dh_require(reg, foo.as_ptr(), foo.len(), std::ptr::null_mut());
//!     dh_export(reg, foo.as_ptr(), foo.len(), grp.as_ptr(), 3, v1.as_ptr(), 5,
//!         DH_STATUS_SERVING, std::ptr::null_mut());
//!     let key = b"grp/org.apache.Foo:1.0.0";
//!     assert_eq!(dh_get(reg, key.as_ptr(), key.len(), &mut status), DH_OK);
//!     assert_eq!(status, DH_STATUS_SERVING);
//!     assert_eq!(dh_get(reg, std::ptr::null(), 0, &mut status), DH_OK); // "" follows Foo
//!     assert_eq!(status, DH_STATUS_SERVING);
//!     dh_unexport(reg, foo.as_ptr(), foo.len(), grp.as_ptr(), 3, v1.as_ptr(), 5,
//!         std::ptr::null_mut());
//!     assert_eq!(dh_get(reg, std::ptr::null(), 0, &mut status), DH_OK);
//!     assert_eq!(status, DH_STATUS_NOT_SERVING);
//!     dh_registry_free(reg);
//! }
//! ```

use dubbo_health_core::{service_key, KeyForm};

use crate::error::{dh_result, Failure, DH_BUFFER_TOO_SMALL, DH_INVALID_ARGUMENT};
use crate::ffi::{bytes_out, name_in, write_opt, write_out};
use crate::registry::{dh_registry, registry_ref};
use crate::status::{dh_set_outcome, dh_status, outcome_to_c, status_from_c};

/// Which Dubbo host's service key `dh_service_key` builds.
pub type dh_key_form = i32;

/// dubbo-go's form: `group/interface:version`, the group left out when empty, the version
/// left out when empty or `0.0.0`.
pub const DH_KEY_FORM_DUBBO_GO: dh_key_form = 0;
/// Dubbo Java's form: as dubbo-go's, but the version is kept whenever it is not empty
/// (`0.0.0` included).
pub const DH_KEY_FORM_DUBBO_JAVA: dh_key_form = 1;

fn form_from_c(form: dh_key_form) -> Result<KeyForm, Failure> {
    match form {
        DH_KEY_FORM_DUBBO_GO => Ok(KeyForm::DubboGo),
        DH_KEY_FORM_DUBBO_JAVA => Ok(KeyForm::DubboJava),
        _ => Err(Failure::new(
            DH_INVALID_ARGUMENT,
            format!("{form} is not a DH_KEY_FORM_* value"),
        )),
    }
}

/// Writes the service key of an export into `out` (not NUL-terminated) and its length into
/// `*out_len`: `group/interface:version` in the form `form` names. A buffer of
/// `DH_MAX_NAME` bytes always suffices. Allocation-free.
///
/// `group` and `version` may be NULL with length 0 (empty).
///
/// # Errors
/// * `DH_NAME_TOO_LONG`: the key (or one of its parts) is over `DH_MAX_NAME` bytes.
/// * `DH_BUFFER_TOO_SMALL`: `out_cap` is too small; `*out_len` is the length needed.
/// * `DH_INVALID_UTF8`: a part is not UTF-8.
/// * `DH_INVALID_ARGUMENT`: `form` is not a `DH_KEY_FORM_*` value.
/// * `DH_NULL_PARAMETER`: `out_len` is NULL, or a pointer is NULL with a non-zero length.
///
/// # Safety
/// Each `(pointer, length)` input is readable for its length; `out` is writable for
/// `out_cap` bytes; `out_len` is valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_service_key(
    iface: *const u8,
    iface_len: usize,
    group: *const u8,
    group_len: usize,
    version: *const u8,
    version_len: usize,
    form: dh_key_form,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> dh_result {
    ffi_fn! {
        crate::ffi::check_out(out_len, "out_len")?;
        // Safety (all): forwarded from the caller.
        let interface = unsafe { name_in(iface, iface_len) }?;
        let group = unsafe { name_in(group, group_len) }?;
        let version = unsafe { name_in(version, version_len) }?;
        let form = form_from_c(form)?;
        let key = service_key(interface, group, version, form)?;
        let buf = unsafe { bytes_out(out, out_cap, "out") }?;
        unsafe { write_out(out_len, "out_len", key.len()) }?;
        match buf.get_mut(..key.len()) {
            Some(dst) => {
                dst.copy_from_slice(key.as_bytes());
                Ok(())
            }
            None => Err(Failure::new(
                DH_BUFFER_TOO_SMALL,
                format!("output buffer holds {out_cap} bytes, {} needed", key.len()),
            )),
        }
    }
}

/// Exports interface `iface` (with `group` and `version`) as `status`, as a Dubbo host does when
/// it exports a service: sets the service key in dubbo-go's and Dubbo Java's forms (one name
/// when they are equal) and the bare interface, which is `DH_STATUS_SERVING` while **any**
/// export of it is, and `DH_STATUS_NOT_SERVING` once none is. A later `dh_set` / `dh_clear` /
/// `dh_shutdown` / `dh_resume` of a key moves the interface the same way.
///
/// If `outcome_out` is not NULL it receives `DH_SET_CHANGED`, `DH_SET_UNCHANGED` or
/// `DH_SET_IGNORED` (shut down: nothing changed).
///
/// # Errors
/// * `DH_INVALID_NAME`: `iface` is empty or contains `/` or `:`.
/// * `DH_NAME_TOO_LONG`: a key would be over `DH_MAX_NAME` bytes.
/// * `DH_INVALID_STATUS`: `status` is `DH_STATUS_SERVICE_UNKNOWN` or not a status.
/// * `DH_FULL`: the names do not fit. Nothing changes on any error.
/// * `DH_NULL_PARAMETER`, `DH_INVALID_UTF8`: as for `dh_set`.
///
/// # Safety
/// `reg` is a live handle; each `(pointer, length)` input is readable for its length;
/// `outcome_out` is NULL or valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_export(
    reg: *const dh_registry,
    iface: *const u8,
    iface_len: usize,
    group: *const u8,
    group_len: usize,
    version: *const u8,
    version_len: usize,
    status: dh_status,
    outcome_out: *mut dh_set_outcome,
) -> dh_result {
    ffi_fn! {
        // Safety (all): forwarded from the caller.
        let registry = unsafe { registry_ref(reg) }?;
        let interface = unsafe { name_in(iface, iface_len) }?;
        let group = unsafe { name_in(group, group_len) }?;
        let version = unsafe { name_in(version, version_len) }?;
        let status = status_from_c(status)?;
        let outcome = registry.export(interface, group, version, status)?;
        unsafe { write_opt(outcome_out, outcome_to_c(outcome)) };
        Ok(())
    }
}

/// Ends a `dh_export`: its keys become `DH_STATUS_NOT_SERVING` (still registered, so
/// watchers hear `NOT_SERVING`), and the bare interface is `DH_STATUS_NOT_SERVING` once no
/// export of it is serving. Works while shut down.
///
/// If `was_exported_out` is not NULL it receives 1 if the interface had this export, else 0.
///
/// # Errors
/// As for `dh_export` (`DH_INVALID_NAME`, `DH_NAME_TOO_LONG`, `DH_NULL_PARAMETER`,
/// `DH_INVALID_UTF8`).
///
/// # Safety
/// As for `dh_export`; `was_exported_out` is NULL or valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_unexport(
    reg: *const dh_registry,
    iface: *const u8,
    iface_len: usize,
    group: *const u8,
    group_len: usize,
    version: *const u8,
    version_len: usize,
    was_exported_out: *mut i32,
) -> dh_result {
    ffi_fn! {
        // Safety (all): forwarded from the caller.
        let registry = unsafe { registry_ref(reg) }?;
        let interface = unsafe { name_in(iface, iface_len) }?;
        let group = unsafe { name_in(group, group_len) }?;
        let version = unsafe { name_in(version, version_len) }?;
        let was = registry.unexport(interface, group, version)?;
        unsafe { write_opt(was_exported_out, i32::from(was)) };
        Ok(())
    }
}

/// Makes the empty name `""` depend on `name`: `""` is then `DH_STATUS_SERVING` exactly when
/// every required name is registered and `DH_STATUS_SERVING`, else `DH_STATUS_NOT_SERVING`,
/// and its watchers see each change. A required name not registered yet holds one slot of
/// the registry's capacity (invisible to `dh_get`, `dh_list`, `dh_len`).
///
/// If `added_out` is not NULL it receives 1 if the name was not required before, else 0.
///
/// # Errors
/// * `DH_INVALID_NAME`: `name` is empty (`""` cannot require itself).
/// * `DH_FULL`: the name is not registered and the registry has no free slot.
/// * `DH_NULL_PARAMETER`, `DH_NAME_TOO_LONG`, `DH_INVALID_UTF8`: as for `dh_set`.
///
/// # Safety
/// `reg` is a live handle; `name` is readable for `name_len` bytes; `added_out` is NULL or
/// valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_require(
    reg: *const dh_registry,
    name: *const u8,
    name_len: usize,
    added_out: *mut i32,
) -> dh_result {
    ffi_fn! {
        // Safety (all): forwarded from the caller.
        let registry = unsafe { registry_ref(reg) }?;
        let name = unsafe { name_in(name, name_len) }?;
        let added = registry.require(name)?;
        unsafe { write_opt(added_out, i32::from(added)) };
        Ok(())
    }
}

/// Undoes `dh_require`: `""` no longer depends on `name` (with nothing required any more, it
/// keeps its last status).
///
/// If `removed_out` is not NULL it receives 1 if the name was required, else 0.
///
/// # Errors
/// `DH_NULL_PARAMETER`, `DH_NAME_TOO_LONG`, `DH_INVALID_UTF8`: as for `dh_set`.
///
/// # Safety
/// `reg` is a live handle; `name` is readable for `name_len` bytes; `removed_out` is NULL or
/// valid for a write.
///
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn dh_unrequire(
    reg: *const dh_registry,
    name: *const u8,
    name_len: usize,
    removed_out: *mut i32,
) -> dh_result {
    ffi_fn! {
        // Safety (all): forwarded from the caller.
        let registry = unsafe { registry_ref(reg) }?;
        let name = unsafe { name_in(name, name_len) }?;
        let removed = registry.unrequire(name)?;
        unsafe { write_opt(removed_out, i32::from(removed)) };
        Ok(())
    }
}
