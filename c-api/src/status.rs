//! Serving statuses, set outcomes and limits as C integers.
//!
//! ```
//! use dubbo_health::*;
//!
//! let mut reg = std::ptr::null_mut();
//! let mut outcome = -1;
//! unsafe {
//!     dh_registry_new(&mut reg);
//!     // SERVICE_UNKNOWN is only ever reported, never set; 7 is no status at all.
//!     assert_eq!(dh_set(reg, b"a".as_ptr(), 1, DH_STATUS_SERVICE_UNKNOWN, &mut outcome), DH_INVALID_STATUS);
//!     assert_eq!(dh_set(reg, b"a".as_ptr(), 1, 7, &mut outcome), DH_INVALID_STATUS);
//!     assert_eq!(dh_set(reg, b"a".as_ptr(), 1, DH_STATUS_SERVING, &mut outcome), DH_OK);
//!     assert_eq!(outcome, DH_SET_CHANGED);
//!     dh_registry_free(reg);
//! }
//! ```

use dubbo_health_core::{ServingStatus, SetOutcome};

use crate::error::{Failure, DH_INVALID_STATUS};

/// A serving status, with the numbers of `grpc.health.v1.HealthCheckResponse.ServingStatus`.
///
/// Functions that take a `dh_status` check it: any other value is `DH_INVALID_STATUS`.
pub type dh_status = i32;

/// `UNKNOWN` (0): the host has not said.
pub const DH_STATUS_UNKNOWN: dh_status = 0;
/// `SERVING` (1).
pub const DH_STATUS_SERVING: dh_status = 1;
/// `NOT_SERVING` (2).
pub const DH_STATUS_NOT_SERVING: dh_status = 2;
/// `SERVICE_UNKNOWN` (3): only ever reported by watches, for a name that is not
/// registered; `dh_set` refuses it.
pub const DH_STATUS_SERVICE_UNKNOWN: dh_status = 3;

/// What `dh_set` did.
pub type dh_set_outcome = i32;

/// The status changed (or the name was registered); watchers are woken.
pub const DH_SET_CHANGED: dh_set_outcome = 0;
/// The name already had this status; nothing happened.
pub const DH_SET_UNCHANGED: dh_set_outcome = 1;
/// The registry is shut down (`dh_shutdown`), so the call was ignored until `dh_resume`.
pub const DH_SET_IGNORED: dh_set_outcome = 2;

/// The longest name, in bytes, any function accepts.
pub const DH_MAX_NAME: usize = 200;
/// How many names a registry from `dh_registry_new` holds (the empty name `""` included);
/// `dh_registry_new_with_capacity` takes another capacity.
pub const DH_DEFAULT_CAPACITY: usize = 16384;
/// The largest capacity `dh_registry_new_with_capacity` accepts.
pub const DH_MAX_CAPACITY: usize = 16777215;
/// `List` answers `RESOURCE_EXHAUSTED` when more names than this are registered.
pub const DH_LIST_LIMIT: usize = 100;
/// The longest encoded `HealthCheckResponse`, in bytes.
pub const DH_CHECK_RESPONSE_MAX_LEN: usize = 2;
/// A buffer this large always holds an encoded `HealthListResponse` (at most
/// `DH_LIST_LIMIT` names of at most `DH_MAX_NAME` bytes, 210 bytes each).
pub const DH_LIST_RESPONSE_MAX_LEN: usize = DH_LIST_LIMIT * (DH_MAX_NAME + 10);
/// Request bytes longer than this are refused with gRPC `RESOURCE_EXHAUSTED`, as a
/// gRPC server with the default 4 MiB message limit would.
pub const DH_MAX_REQUEST_LEN: usize = 4 * 1024 * 1024;

const _: () = {
    assert!(DH_MAX_NAME == dubbo_health_core::MAX_NAME);
    assert!(DH_DEFAULT_CAPACITY == dubbo_health_core::DEFAULT_CAPACITY);
    assert!(DH_MAX_CAPACITY == dubbo_health_core::MAX_CAPACITY);
    assert!(DH_LIST_LIMIT == dubbo_health_core::LIST_LIMIT);
    // The formula above is for the header; the core's constant is the one definition.
    assert!(DH_LIST_RESPONSE_MAX_LEN == dubbo_health_core::wire::MAX_LIST_RESPONSE);
};

/// Converts a C status integer; out-of-range values are an error, never a Rust enum.
pub(crate) fn status_from_c(value: dh_status) -> Result<ServingStatus, Failure> {
    ServingStatus::from_i32(value).ok_or_else(|| {
        Failure::new(
            DH_INVALID_STATUS,
            format!("{value} is not a serving status (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING)"),
        )
    })
}

pub(crate) fn status_to_c(status: ServingStatus) -> dh_status {
    status.as_i32()
}

pub(crate) fn outcome_to_c(outcome: SetOutcome) -> dh_set_outcome {
    match outcome {
        SetOutcome::Changed => DH_SET_CHANGED,
        SetOutcome::Unchanged => DH_SET_UNCHANGED,
        SetOutcome::Ignored => DH_SET_IGNORED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_numbers_match_the_core() {
        for s in ServingStatus::ALL {
            assert_eq!(status_from_c(status_to_c(s)).unwrap(), s);
        }
        assert_eq!(status_to_c(ServingStatus::Unknown), DH_STATUS_UNKNOWN);
        assert_eq!(status_to_c(ServingStatus::Serving), DH_STATUS_SERVING);
        assert_eq!(
            status_to_c(ServingStatus::NotServing),
            DH_STATUS_NOT_SERVING
        );
        assert_eq!(
            status_to_c(ServingStatus::ServiceUnknown),
            DH_STATUS_SERVICE_UNKNOWN
        );
        for bad in [-1, 4, i32::MAX, i32::MIN] {
            assert!(status_from_c(bad).is_err());
        }
    }
}
