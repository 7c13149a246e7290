//! Plumbing shared by every exported function: the panic boundary, typed casts between
//! opaque handles and their Rust values, and argument checks.

use std::ffi::c_char;
use std::sync::Arc;

use crate::error::{dh_result, Failure, DH_NULL_PARAMETER, DH_OK, DH_PANIC};

// === panic boundary ===

/// The value an exported function returns when its body panicked.
pub(crate) trait PanicDefault {
    fn panic_value() -> Self;
}

impl PanicDefault for dh_result {
    fn panic_value() -> Self {
        DH_PANIC
    }
}

impl PanicDefault for *const c_char {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

impl PanicDefault for () {
    fn panic_value() -> Self {}
}

/// Runs the body, catching any panic: the panic message becomes the thread's last error
/// and the function returns [`PanicDefault::panic_value`] (`DH_PANIC` for a `dh_result`).
macro_rules! ffi_panic_boundary {
    ( $($body:tt)* ) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(ret) => ret,
            Err(payload) => {
                $crate::error::record_panic(payload.as_ref());
                $crate::ffi::PanicDefault::panic_value()
            }
        }
    };
}

/// The usual shape of an exported function: a panic boundary around a body that returns
/// `Result<(), Failure>`; `Ok` becomes `DH_OK`, `Err` records its message and returns its code.
macro_rules! ffi_fn {
    ( $($body:tt)* ) => {
        ffi_panic_boundary! {
            let run = || -> ::core::result::Result<(), $crate::error::Failure> { $($body)* };
            $crate::ffi::finish(run())
        }
    };
}

pub(crate) fn finish(r: Result<(), Failure>) -> dh_result {
    match r {
        Ok(()) => DH_OK,
        Err(f) => f.record(),
    }
}

// === handles ===

/// Ties an opaque C handle type to the Rust value behind it and to how it is owned.
///
/// Every cast between a handle pointer and its Rust value goes through the helpers of
/// [`BoxCastable`] or [`ArcCastable`], never through a bare `as`.
pub(crate) trait Castable {
    /// The Rust value a handle pointer points to.
    type RustType;
}

/// A handle owned through a `Box`: one owner, freed once.
pub(crate) trait BoxCastable: Castable + Sized {
    /// Moves `value` to the heap and returns the handle pointer the caller now owns.
    fn into_handle(value: Self::RustType) -> *mut Self {
        Box::into_raw(Box::new(value)).cast::<Self>()
    }

    /// Borrows the value behind `ptr`.
    ///
    /// # Safety
    /// `ptr` is NULL or came from [`BoxCastable::into_handle`] and has not been freed.
    unsafe fn try_ref<'a>(
        ptr: *const Self,
        what: &'static str,
    ) -> Result<&'a Self::RustType, Failure> {
        // Safety: the caller promises `ptr` is NULL or a live handle of this type, whose
        // pointee is a `Self::RustType` (see `into_handle`).
        unsafe { ptr.cast::<Self::RustType>().as_ref() }.ok_or_else(|| null(what))
    }

    /// Takes back ownership of the value behind `ptr` (NULL gives `None`).
    ///
    /// # Safety
    /// `ptr` is NULL or came from [`BoxCastable::into_handle`] and has not been freed; it
    /// must not be used again.
    unsafe fn take(ptr: *mut Self) -> Option<Box<Self::RustType>> {
        if ptr.is_null() {
            None
        } else {
            // Safety: see above; the caller gives up its ownership.
            Some(unsafe { Box::from_raw(ptr.cast::<Self::RustType>()) })
        }
    }
}

/// A handle owned through an `Arc`: each handle pointer is one strong reference.
pub(crate) trait ArcCastable: Castable + Sized {
    /// Returns a handle pointer that owns one strong reference to `value`.
    fn into_handle(value: Arc<Self::RustType>) -> *mut Self {
        Arc::into_raw(value).cast_mut().cast::<Self>()
    }

    /// Borrows the value behind `ptr`.
    ///
    /// # Safety
    /// `ptr` is NULL or came from [`ArcCastable::into_handle`] and its reference has not
    /// been released.
    unsafe fn try_ref<'a>(
        ptr: *const Self,
        what: &'static str,
    ) -> Result<&'a Self::RustType, Failure> {
        // Safety: the caller promises `ptr` is NULL or holds a live strong reference.
        unsafe { ptr.cast::<Self::RustType>().as_ref() }.ok_or_else(|| null(what))
    }

    /// A new strong reference to the value behind `ptr`.
    ///
    /// # Safety
    /// As for [`ArcCastable::try_ref`].
    unsafe fn try_clone_arc(
        ptr: *const Self,
        what: &'static str,
    ) -> Result<Arc<Self::RustType>, Failure> {
        if ptr.is_null() {
            return Err(null(what));
        }
        let ptr = ptr.cast::<Self::RustType>();
        // Safety: `ptr` holds a live strong reference, so the count is at least one.
        unsafe {
            Arc::increment_strong_count(ptr);
            Ok(Arc::from_raw(ptr))
        }
    }

    /// Releases the reference `ptr` holds (NULL is a no-op).
    ///
    /// # Safety
    /// As for [`ArcCastable::try_ref`]; `ptr` must not be used again.
    unsafe fn release(ptr: *const Self) {
        if !ptr.is_null() {
            // Safety: the caller gives up the strong reference `ptr` holds.
            drop(unsafe { Arc::from_raw(ptr.cast::<Self::RustType>()) });
        }
    }
}

// === argument checks ===

pub(crate) fn null(what: &'static str) -> Failure {
    Failure::new(DH_NULL_PARAMETER, format!("`{what}` is NULL"))
}

/// Writes `value` through an output pointer, or fails with `DH_NULL_PARAMETER`.
///
/// # Safety
/// `ptr` is NULL or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(
    ptr: *mut T,
    what: &'static str,
    value: T,
) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // Safety: checked non-NULL; the caller promises it is valid for writes.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Checks that an output pointer is not NULL, before any work is done.
pub(crate) fn check_out<T>(ptr: *mut T, what: &'static str) -> Result<(), Failure> {
    if ptr.is_null() {
        Err(null(what))
    } else {
        Ok(())
    }
}

/// Writes through an optional output pointer (NULL means "not wanted").
///
/// # Safety
/// `ptr` is NULL or valid for a write of `T`.
pub(crate) unsafe fn write_opt<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // Safety: non-NULL and valid for writes, by the caller's promise.
        unsafe { ptr.write(value) };
    }
}

/// Borrows `(ptr, len)` as bytes. `len == 0` accepts a NULL `ptr`.
///
/// # Safety
/// If `len > 0`, `ptr` is NULL or valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes_in<'a>(
    ptr: *const u8,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    if len > isize::MAX as usize {
        return Err(Failure::new(
            crate::error::DH_INVALID_ARGUMENT,
            format!("`{what}` length {len} is larger than any object"),
        ));
    }
    // Safety: non-NULL, `len` fits an object, and the caller promises `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows `(ptr, cap)` as an output buffer. `cap == 0` accepts a NULL `ptr`.
///
/// # Safety
/// If `cap > 0`, `ptr` is NULL or valid for writes of `cap` bytes for `'a`, and not aliased.
pub(crate) unsafe fn bytes_out<'a>(
    ptr: *mut u8,
    cap: usize,
    what: &'static str,
) -> Result<&'a mut [u8], Failure> {
    if cap == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    if cap > isize::MAX as usize {
        return Err(Failure::new(
            crate::error::DH_INVALID_ARGUMENT,
            format!("`{what}` capacity {cap} is larger than any object"),
        ));
    }
    // Safety: non-NULL, `cap` fits an object, and the caller promises `cap` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, cap) })
}

/// The name length `DH_NUL_TERMINATED` (`SIZE_MAX` in the header): the name is a
/// NUL-terminated string.
pub(crate) const NUL_TERMINATED: usize = usize::MAX;

/// Borrows a health-check name given as `(ptr, len)`: at most `MAX_NAME` bytes of UTF-8.
/// A `len` of [`NUL_TERMINATED`] means up to the first NUL byte (at most `MAX_NAME + 1`
/// bytes are read looking for it).
///
/// # Safety
/// As for [`bytes_in`]; with [`NUL_TERMINATED`], `ptr` is NULL or a NUL-terminated string.
pub(crate) unsafe fn name_in<'a>(ptr: *const u8, len: usize) -> Result<&'a str, Failure> {
    use dubbo_health_core::MAX_NAME;
    let len = if len == NUL_TERMINATED {
        if ptr.is_null() {
            return Err(null("name"));
        }
        // Safety: the caller promises a NUL-terminated string; the scan stops at its NUL
        // or after MAX_NAME + 1 bytes, all inside the string.
        match (0..=MAX_NAME).find(|&i| unsafe { *ptr.add(i) } == 0) {
            Some(len) => len,
            None => {
                return Err(Failure::new(
                    crate::error::DH_NAME_TOO_LONG,
                    format!("NUL-terminated name is longer than {MAX_NAME} bytes"),
                ))
            }
        }
    } else {
        len
    };
    if len > MAX_NAME {
        return Err(Failure::new(
            crate::error::DH_NAME_TOO_LONG,
            format!("name is {len} bytes, the limit is {MAX_NAME}"),
        ));
    }
    // Safety: forwarded from the caller.
    let bytes = unsafe { bytes_in(ptr, len, "name") }?;
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            crate::error::DH_INVALID_UTF8,
            format!("name is not valid UTF-8 ({e})"),
        )
    })
}
