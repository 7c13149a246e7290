//! The `grpc.health.v1` protocol (`Check`, `Watch`, `List`) as prost messages and tonic
//! client/server stubs.
//!
//! `proto/grpc/health/v1/health.proto` is vendored unchanged from `grpc/grpc-proto` and compiled
//! at build time with [`protox`](https://docs.rs/protox), so no system `protoc` is needed.
//! `HealthListResponse::statuses` is a [`BTreeMap`](std::collections::BTreeMap), so a list
//! response always encodes in name order.
//!
//! ```
//! use dubbo_health_proto::pb::{health_check_response::ServingStatus, HealthCheckResponse};
//! use prost::Message;
//!
//! let resp = HealthCheckResponse { status: ServingStatus::Serving as i32 };
//! assert_eq!(resp.encode_to_vec(), [0x08, 0x01]);
//! assert_eq!(resp.status(), ServingStatus::Serving);
//! ```

#[rustfmt::skip]
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    rustdoc::bare_urls,
    rustdoc::invalid_html_tags,
    rustdoc::broken_intra_doc_links
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.rs"));
}

/// The generated `grpc.health.v1` types: messages, the `health_check_response::ServingStatus`
/// enum, the `health_server` module (the `Health` trait and `HealthServer`) and the
/// `health_client` module (`HealthClient`).
///
/// ```
/// use dubbo_health_proto::pb::{HealthCheckRequest, HealthListResponse, HealthCheckResponse};
/// use prost::Message;
///
/// let req = HealthCheckRequest { service: "org.apache.dubbogo.samples.api.Greeter".into() };
/// let bytes = req.encode_to_vec();
/// assert_eq!(HealthCheckRequest::decode(&bytes[..]).unwrap(), req);
///
/// let mut list = HealthListResponse::default();
/// list.statuses.insert("b".into(), HealthCheckResponse { status: 1 });
/// list.statuses.insert("a".into(), HealthCheckResponse { status: 2 });
/// // Entries encode in name order: "a" first.
/// assert_eq!(&list.encode_to_vec()[..9], &[0x0a, 0x07, 0x0a, 0x01, b'a', 0x12, 0x02, 0x08, 0x02]);
/// ```
pub mod pb {
    pub use crate::generated::*;
}

/// The encoded `google.protobuf.FileDescriptorSet` of `grpc/health/v1/health.proto`, for gRPC
/// server reflection or any tool that needs the schema at run time.
///
/// ```
/// use prost::Message;
///
/// let set = prost_types::FileDescriptorSet::decode(dubbo_health_proto::FILE_DESCRIPTOR_SET).unwrap();
/// assert_eq!(set.file[0].package(), "grpc.health.v1");
/// ```
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/health_descriptor.bin"));

/// Fully qualified name of the health service, as it appears in request paths
/// (`/grpc.health.v1.Health/Check`).
///
/// ```
/// assert_eq!(dubbo_health_proto::SERVICE_NAME, "grpc.health.v1.Health");
/// ```
pub const SERVICE_NAME: &str = "grpc.health.v1.Health";

#[cfg(test)]
mod tests {
    use super::pb::{
        health_check_response::ServingStatus, health_client::HealthClient,
        health_server::HealthServer, HealthCheckRequest, HealthCheckResponse, HealthListRequest,
        HealthListResponse,
    };
    use prost::Message;

    #[test]
    fn descriptor_set_describes_the_three_methods() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        assert_eq!(set.file.len(), 1);
        let file = &set.file[0];
        assert_eq!(file.name(), "grpc/health/v1/health.proto");
        let service = &file.service[0];
        assert_eq!(service.name(), "Health");
        let methods: Vec<_> = service.method.iter().map(|m| m.name()).collect();
        assert_eq!(methods, ["Check", "List", "Watch"]);
        let watch = &service.method[2];
        assert!(watch.server_streaming());
        assert!(!watch.client_streaming());
        let messages: Vec<_> = file.message_type.iter().map(|m| m.name()).collect();
        assert_eq!(
            messages,
            [
                "HealthCheckRequest",
                "HealthCheckResponse",
                "HealthListRequest",
                "HealthListResponse"
            ]
        );
    }

    #[test]
    fn service_name_matches_generated_server() {
        use tonic::server::NamedService;
        assert_eq!(
            <HealthServer<Dummy> as NamedService>::NAME,
            super::SERVICE_NAME
        );
        // The client type is nameable too.
        let _ = std::mem::size_of::<HealthClient<tonic::transport::Channel>>;
    }

    #[test]
    fn status_numbers_are_the_wire_numbers() {
        assert_eq!(ServingStatus::Unknown as i32, 0);
        assert_eq!(ServingStatus::Serving as i32, 1);
        assert_eq!(ServingStatus::NotServing as i32, 2);
        assert_eq!(ServingStatus::ServiceUnknown as i32, 3);
        assert_eq!(
            ServingStatus::from_str_name("NOT_SERVING"),
            Some(ServingStatus::NotServing)
        );
    }

    #[test]
    fn list_encoding_is_sorted_and_round_trips() {
        let mut list = HealthListResponse::default();
        for (name, status) in [("zeta", 2), ("", 1), ("group/org.apache.Foo:1.0.0", 1)] {
            list.statuses
                .insert(name.into(), HealthCheckResponse { status });
        }
        let bytes = list.encode_to_vec();
        assert_eq!(HealthListResponse::decode(&bytes[..]).unwrap(), list);
        assert_eq!(
            HealthListRequest::default().encode_to_vec(),
            Vec::<u8>::new()
        );
        let req = HealthCheckRequest {
            service: "é".into(),
        };
        assert_eq!(req.encode_to_vec(), [0x0a, 0x02, 0xc3, 0xa9]);
    }

    #[derive(Debug)]
    struct Dummy;

    #[tonic::async_trait]
    impl super::pb::health_server::Health for Dummy {
        async fn check(
            &self,
            _: tonic::Request<HealthCheckRequest>,
        ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
        async fn list(
            &self,
            _: tonic::Request<HealthListRequest>,
        ) -> Result<tonic::Response<HealthListResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
        type WatchStream = tonic::codegen::BoxStream<HealthCheckResponse>;
        async fn watch(
            &self,
            _: tonic::Request<HealthCheckRequest>,
        ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
            Err(tonic::Status::unimplemented("test"))
        }
    }
}
