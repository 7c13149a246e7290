//! Serving statuses, errors and gRPC status codes.

use core::fmt;

/// The health of one service, with the numbers `grpc.health.v1.HealthCheckResponse` uses.
///
/// # Examples
///
/// ```
/// use dubbo_health_core::ServingStatus;
///
/// assert_eq!(ServingStatus::from_i32(1), Some(ServingStatus::Serving));
/// assert_eq!(ServingStatus::NotServing.as_str_name(), "NOT_SERVING");
/// assert_eq!(ServingStatus::from_str_name("SERVICE_UNKNOWN"), Some(ServingStatus::ServiceUnknown));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ServingStatus {
    /// `UNKNOWN` (0): the host has not said.
    Unknown = 0,
    /// `SERVING` (1).
    Serving = 1,
    /// `NOT_SERVING` (2).
    NotServing = 2,
    /// `SERVICE_UNKNOWN` (3): only ever sent in `Watch` answers, for a name that is not
    /// registered. [`Registry::set`](crate::Registry::set) refuses it.
    ServiceUnknown = 3,
}

impl ServingStatus {
    /// Every status, in wire order.
    ///
    /// ```
    /// # use dubbo_health_core::ServingStatus;
    /// assert_eq!(ServingStatus::ALL.len(), 4);
    /// ```
    pub const ALL: [ServingStatus; 4] = [
        ServingStatus::Unknown,
        ServingStatus::Serving,
        ServingStatus::NotServing,
        ServingStatus::ServiceUnknown,
    ];

    /// The status with wire number `value`, or `None` for any other integer.
    ///
    /// ```
    /// # use dubbo_health_core::ServingStatus;
    /// assert_eq!(ServingStatus::from_i32(2), Some(ServingStatus::NotServing));
    /// assert_eq!(ServingStatus::from_i32(4), None);
    /// ```
    #[must_use]
    pub const fn from_i32(value: i32) -> Option<Self> {
        match value {
            0 => Some(Self::Unknown),
            1 => Some(Self::Serving),
            2 => Some(Self::NotServing),
            3 => Some(Self::ServiceUnknown),
            _ => None,
        }
    }

    /// The wire number.
    ///
    /// ```
    /// # use dubbo_health_core::ServingStatus;
    /// assert_eq!(ServingStatus::ServiceUnknown.as_i32(), 3);
    /// ```
    #[must_use]
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The name the proto gives this value (`"SERVING"`, …).
    ///
    /// ```
    /// # use dubbo_health_core::ServingStatus;
    /// assert_eq!(ServingStatus::Serving.as_str_name(), "SERVING");
    /// ```
    #[must_use]
    pub const fn as_str_name(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Serving => "SERVING",
            Self::NotServing => "NOT_SERVING",
            Self::ServiceUnknown => "SERVICE_UNKNOWN",
        }
    }

    /// Parses a proto value name (`"SERVING"`, …), ASCII case-insensitively.
    ///
    /// ```
    /// # use dubbo_health_core::ServingStatus;
    /// assert_eq!(ServingStatus::from_str_name("not_serving"), Some(ServingStatus::NotServing));
    /// assert_eq!(ServingStatus::from_str_name("up"), None);
    /// ```
    #[must_use]
    pub fn from_str_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str_name().eq_ignore_ascii_case(name))
    }

    #[inline]
    pub(crate) const fn from_bits(bits: u32) -> Self {
        match bits & 0b11 {
            0 => Self::Unknown,
            1 => Self::Serving,
            2 => Self::NotServing,
            _ => Self::ServiceUnknown,
        }
    }
}

impl fmt::Display for ServingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str_name())
    }
}

/// What a successful [`Registry::set`](crate::Registry::set) did.
///
/// ```
/// use dubbo_health_core::{FixedRegistry, ServingStatus, SetOutcome};
///
/// let registry = FixedRegistry::<8>::new();
/// assert_eq!(registry.set("a", ServingStatus::Serving), Ok(SetOutcome::Changed));
/// assert_eq!(registry.set("a", ServingStatus::Serving), Ok(SetOutcome::Unchanged));
/// registry.shutdown();
/// assert_eq!(registry.set("a", ServingStatus::Serving), Ok(SetOutcome::Ignored));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetOutcome {
    /// The name was registered or its status changed; its watchers were woken.
    Changed,
    /// The name already had this status; nobody was woken.
    Unchanged,
    /// The registry is shut down (draining): the call was ignored until
    /// [`Registry::resume`](crate::Registry::resume).
    Ignored,
}

/// Everything that can go wrong in the registry, each a thing the caller can act on.
///
/// ```
/// use dubbo_health_core::{Error, GrpcCode, FixedRegistry, ServingStatus, MAX_NAME};
///
/// let registry = FixedRegistry::<8>::new();
/// let long = "x".repeat(MAX_NAME + 1);
/// let err = registry.set(&long, ServingStatus::Serving).unwrap_err();
/// assert_eq!(err, Error::NameTooLong { len: 201 });
/// assert_eq!(err.grpc_code(), GrpcCode::InvalidArgument);
/// assert_eq!(err.to_string(), "service name is 201 bytes; the limit is 200");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The name is longer than [`MAX_NAME`](crate::MAX_NAME) bytes.
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// Every slot of the registry holds a name; clear one or make a larger registry.
    Full,
    /// `SERVICE_UNKNOWN` cannot be set: it only describes names that are not registered.
    InvalidStatus,
    /// The name is not registered.
    NotFound,
    /// The name cannot be used for this: an exported interface must be non-empty and
    /// contain no `/` or `:` (those belong to service keys), and `""` cannot require itself.
    InvalidName,
}

impl Error {
    /// The gRPC status code this error is answered with on the wire.
    ///
    /// ```
    /// # use dubbo_health_core::{Error, GrpcCode};
    /// assert_eq!(Error::NotFound.grpc_code(), GrpcCode::NotFound);
    /// assert_eq!(Error::Full.grpc_code(), GrpcCode::ResourceExhausted);
    /// ```
    #[must_use]
    pub const fn grpc_code(&self) -> GrpcCode {
        match self {
            Self::NameTooLong { .. } | Self::InvalidStatus | Self::InvalidName => {
                GrpcCode::InvalidArgument
            }
            Self::Full => GrpcCode::ResourceExhausted,
            Self::NotFound => GrpcCode::NotFound,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameTooLong { len } => write!(
                f,
                "service name is {len} bytes; the limit is {}",
                crate::MAX_NAME
            ),
            Self::Full => f.write_str("health registry is full"),
            Self::InvalidStatus => f.write_str("SERVICE_UNKNOWN cannot be set"),
            Self::NotFound => f.write_str("unknown service"),
            Self::InvalidName => f.write_str(
                "name not allowed here: an exported interface is non-empty without '/' or ':', \
                 and \"\" cannot require itself",
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Why a registry of the requested capacity could not be made.
///
/// ```
/// use dubbo_health_core::{CapacityError, HeapRegistry, MAX_CAPACITY};
///
/// assert_eq!(HeapRegistry::with_capacity(0).unwrap_err(), CapacityError::Zero);
/// let err = HeapRegistry::with_capacity(MAX_CAPACITY + 1).unwrap_err();
/// assert_eq!(err, CapacityError::TooLarge { requested: MAX_CAPACITY + 1 });
/// assert_eq!(
///     err.to_string(),
///     "a registry holds at most 16777215 names; 16777216 were asked for"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CapacityError {
    /// A capacity of 0: a registry needs room for `""` at least.
    Zero,
    /// Over [`MAX_CAPACITY`](crate::MAX_CAPACITY).
    TooLarge {
        /// The capacity asked for.
        requested: usize,
    },
    /// The allocator could not provide the registry's memory.
    OutOfMemory {
        /// The size of the allocation that failed, in bytes.
        bytes: usize,
    },
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero => f.write_str("a registry needs a capacity of at least 1 (for \"\")"),
            Self::TooLarge { requested } => write!(
                f,
                "a registry holds at most {} names; {requested} were asked for",
                crate::MAX_CAPACITY
            ),
            Self::OutOfMemory { bytes } => {
                write!(f, "could not allocate {bytes} bytes for the registry")
            }
        }
    }
}

impl core::error::Error for CapacityError {}

macro_rules! grpc_codes {
    ($($(#[$doc:meta])* $variant:ident = $n:literal, $name:literal;)*) => {
        /// The gRPC status codes, with their wire numbers.
        ///
        /// ```
        /// # use dubbo_health_core::GrpcCode;
        /// assert_eq!(GrpcCode::ResourceExhausted.as_u32(), 8);
        /// assert_eq!(GrpcCode::from_u32(5), Some(GrpcCode::NotFound));
        /// assert_eq!(GrpcCode::InvalidArgument.name(), "INVALID_ARGUMENT");
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum GrpcCode {
            $($(#[$doc])* $variant = $n,)*
        }

        impl GrpcCode {
            /// The wire number.
            #[must_use]
            pub const fn as_u32(self) -> u32 {
                self as u32
            }

            /// The code with wire number `value`, if there is one.
            #[must_use]
            pub const fn from_u32(value: u32) -> Option<Self> {
                match value {
                    $($n => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The canonical upper-case name (`"NOT_FOUND"`, …).
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

grpc_codes! {
    /// Not an error.
    Ok = 0, "OK";
    /// The operation was cancelled.
    Cancelled = 1, "CANCELLED";
    /// Unknown error.
    Unknown = 2, "UNKNOWN";
    /// The client sent a bad argument (a malformed request, a name that is too long).
    InvalidArgument = 3, "INVALID_ARGUMENT";
    /// The deadline passed.
    DeadlineExceeded = 4, "DEADLINE_EXCEEDED";
    /// The service name is not registered.
    NotFound = 5, "NOT_FOUND";
    /// The entity already exists.
    AlreadyExists = 6, "ALREADY_EXISTS";
    /// The caller may not do this.
    PermissionDenied = 7, "PERMISSION_DENIED";
    /// Too much: more than `LIST_LIMIT` names for `List`, or a request over the size limit.
    ResourceExhausted = 8, "RESOURCE_EXHAUSTED";
    /// The system is not in a state for this operation.
    FailedPrecondition = 9, "FAILED_PRECONDITION";
    /// The operation was aborted.
    Aborted = 10, "ABORTED";
    /// Out of range.
    OutOfRange = 11, "OUT_OF_RANGE";
    /// Not implemented (an unknown method).
    Unimplemented = 12, "UNIMPLEMENTED";
    /// An internal error.
    Internal = 13, "INTERNAL";
    /// The service is unavailable.
    Unavailable = 14, "UNAVAILABLE";
    /// Data loss.
    DataLoss = 15, "DATA_LOSS";
    /// No valid credentials.
    Unauthenticated = 16, "UNAUTHENTICATED";
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
