//! gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) describing `grpc.health.v1`,
//! from the descriptor set the proto crate builds, served by
//! [`tonic-reflection`](https://docs.rs/tonic-reflection): what `grpcurl` and other tools ask
//! before they call a method.
//!
//! On a tonic host it is one `add_service` per version (grpcurl tries `v1`, then `v1alpha`):
//!
//! ```no_run
//! # use dubbo_health_core::FixedRegistry;
//! # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! tonic::transport::Server::builder()
//!     .add_service(dubbo_health_tonic::HealthService::new(&HEALTH).server())
//!     .add_service(dubbo_health_tonic::reflection::v1())
//!     .add_service(dubbo_health_tonic::reflection::v1alpha())
//!     .serve("127.0.0.1:20000".parse()?)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! A host that describes its own services too starts from [`builder`], which already holds
//! the health descriptors, and registers its own descriptor sets on it.

use std::{
    convert::Infallible,
    fmt,
    task::{Context, Poll},
};

use bytes::Bytes;
use tonic::body::Body as TonicBody;
use tonic_reflection::server::{v1, v1alpha, Builder};
use tower::util::{BoxCloneSyncService, ServiceExt};

#[doc(no_inline)]
pub use tonic_reflection;

/// The fully qualified name of the `v1` reflection service.
///
/// ```
/// assert_eq!(dubbo_health_tonic::reflection::V1_SERVICE, "grpc.reflection.v1.ServerReflection");
/// ```
pub const V1_SERVICE: &str = "grpc.reflection.v1.ServerReflection";

/// The fully qualified name of the `v1alpha` reflection service.
///
/// ```
/// assert_eq!(
///     dubbo_health_tonic::reflection::V1ALPHA_SERVICE,
///     "grpc.reflection.v1alpha.ServerReflection"
/// );
/// ```
pub const V1ALPHA_SERVICE: &str = "grpc.reflection.v1alpha.ServerReflection";

/// A reflection [`Builder`] that already describes `grpc.health.v1` (and, as
/// tonic-reflection does by default, the reflection service itself). Register the host's
/// own encoded descriptor sets on it, then `build_v1()` / `build_v1alpha()`.
///
/// ```
/// let v1 = dubbo_health_tonic::reflection::builder()
///     // .register_encoded_file_descriptor_set(my_service::FILE_DESCRIPTOR_SET)
///     .build_v1()
///     .unwrap();
/// # drop(v1);
/// ```
pub fn builder() -> Builder<'static> {
    Builder::configure()
        .register_encoded_file_descriptor_set(dubbo_health_proto::FILE_DESCRIPTOR_SET)
}

/// The `grpc.reflection.v1` service for `grpc.health.v1`, for tonic's `add_service`.
///
/// # Panics
///
/// Never: the descriptor set is built with this crate and a test decodes it.
///
/// ```
/// use tonic::server::NamedService;
/// fn name_of<S: NamedService>(_: &S) -> &'static str { S::NAME }
/// assert_eq!(name_of(&dubbo_health_tonic::reflection::v1()), "grpc.reflection.v1.ServerReflection");
/// ```
pub fn v1() -> v1::ServerReflectionServer<impl v1::ServerReflection> {
    builder()
        .build_v1()
        .expect("the health descriptor set decodes")
}

/// The `grpc.reflection.v1alpha` service for `grpc.health.v1` (older clients ask this one),
/// for tonic's `add_service`.
///
/// # Panics
///
/// Never: the descriptor set is built with this crate and a test decodes it.
///
/// ```
/// use tonic::server::NamedService;
/// fn name_of<S: NamedService>(_: &S) -> &'static str { S::NAME }
/// assert_eq!(
///     name_of(&dubbo_health_tonic::reflection::v1alpha()),
///     "grpc.reflection.v1alpha.ServerReflection"
/// );
/// ```
pub fn v1alpha() -> v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection> {
    builder()
        .build_v1alpha()
        .expect("the health descriptor set decodes")
}

type Inner = BoxCloneSyncService<http::Request<TonicBody>, http::Response<TonicBody>, Infallible>;

/// Both reflection versions behind one tower service that routes by path, for a server
/// that routes requests itself (a fallback route): [`handles`](Self::handles) says which
/// paths are its own; any other path is answered `UNIMPLEMENTED`.
///
/// ```
/// use dubbo_health_tonic::reflection::ReflectionService;
///
/// let service = dubbo_health_tonic::reflection::service();
/// assert!(ReflectionService::handles("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
/// assert!(ReflectionService::handles("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
/// assert!(!ReflectionService::handles("/grpc.health.v1.Health/Check"));
/// # drop(service);
/// ```
#[derive(Clone)]
pub struct ReflectionService {
    v1: Inner,
    v1alpha: Inner,
}

/// [`ReflectionService`] for `grpc.health.v1`.
///
/// ```
/// let service = dubbo_health_tonic::reflection::service();
/// # drop(service);
/// ```
pub fn service() -> ReflectionService {
    ReflectionService {
        v1: BoxCloneSyncService::new(v1()),
        v1alpha: BoxCloneSyncService::new(v1alpha()),
    }
}

impl ReflectionService {
    /// Whether `path` is a method of one of the two reflection services.
    ///
    /// ```
    /// use dubbo_health_tonic::reflection::ReflectionService;
    /// assert!(!ReflectionService::handles("/grpc.reflection.v2.ServerReflection/ServerReflectionInfo"));
    /// ```
    pub fn handles(path: &str) -> bool {
        Self::version(path).is_some()
    }

    /// `Some(true)` for v1, `Some(false)` for v1alpha.
    fn version(path: &str) -> Option<bool> {
        let service = path.strip_prefix('/')?.split_once('/')?.0;
        match service {
            V1_SERVICE => Some(true),
            V1ALPHA_SERVICE => Some(false),
            _ => None,
        }
    }
}

impl fmt::Debug for ReflectionService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReflectionService")
            .field("services", &[V1_SERVICE, V1ALPHA_SERVICE])
            .finish()
    }
}

impl<B> tower_service::Service<http::Request<B>> for ReflectionService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<TonicBody>;
    type Error = Infallible;
    type Future = tower::util::Oneshot<Inner, http::Request<TonicBody>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let inner = match Self::version(req.uri().path()) {
            Some(true) => self.v1.clone(),
            Some(false) => self.v1alpha.clone(),
            None => BoxCloneSyncService::new(tower::service_fn(|_req| async {
                Ok::<_, Infallible>(
                    tonic::Status::unimplemented("not a reflection method").into_http(),
                )
            })),
        };
        inner.oneshot(req.map(TonicBody::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_build_from_the_health_descriptor_set() {
        drop(v1());
        drop(v1alpha());
        drop(service());
    }

    #[test]
    fn paths_route_to_their_version() {
        assert_eq!(
            ReflectionService::version("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Some(true)
        );
        assert_eq!(
            ReflectionService::version(
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
            ),
            Some(false)
        );
        for other in [
            "",
            "/",
            "grpc.reflection.v1.ServerReflection/x",
            "/grpc.reflection.v1.ServerReflection",
            "/grpc.health.v1.Health/Check",
        ] {
            assert_eq!(ReflectionService::version(other), None, "{other}");
        }
    }
}
