//! Compiles `proto/grpc/health/v1/health.proto` with `protox` (a protobuf compiler written in
//! Rust), so building this crate needs no system `protoc`.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/grpc/health/v1/health.proto";
    println!("cargo:rerun-if-changed={proto}");
    println!("cargo:rerun-if-changed=build.rs");

    let fds = protox::compile([proto], ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);

    tonic_prost_build::configure()
        // A BTreeMap keeps `HealthListResponse` encoding deterministic (sorted by name), so it
        // can be compared byte for byte with the core's encoder.
        .btree_map(".grpc.health.v1.HealthListResponse.statuses")
        .build_server(true)
        .build_client(true)
        .compile_fds(fds.clone())?;
    std::fs::write(
        out.join("health_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    Ok(())
}
