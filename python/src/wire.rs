//! Bytes-level handlers over the core codec, for any Python gRPC server (`dubbo_health.grpcio`).

use dubbo_health_core::wire;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::pyobjects;
use crate::registry::Registry;

fn rpc_error(py: Python<'_>, err: &wire::RpcError) -> PyErr {
    pyobjects::rpc_error(py, err.code().as_u32(), err.to_string())
}

/// Answers a `Check` request (the serialized `HealthCheckRequest`) with the serialized
/// `HealthCheckResponse`; raises `RpcError(code, message)` for a gRPC error status.
#[pyfunction]
pub(crate) fn handle_check<'py>(
    py: Python<'py>,
    registry: &Registry,
    request: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = [0u8; 8];
    match wire::handle_check(&registry.inner, request, &mut out) {
        Ok(n) => Ok(PyBytes::new(py, &out[..n])),
        Err(err) => Err(rpc_error(py, &err)),
    }
}

/// Answers a `List` request with the serialized `HealthListResponse`; raises
/// `RpcError(code, message)` for a gRPC error status (RESOURCE_EXHAUSTED over the limit).
#[pyfunction]
pub(crate) fn handle_list<'py>(
    py: Python<'py>,
    registry: &Registry,
    request: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    // Always big enough: more than LIST_LIMIT entries is an error, not a longer answer.
    let mut out = vec![0u8; wire::MAX_LIST_RESPONSE];
    match wire::handle_list(&registry.inner, request, &mut out) {
        Ok(n) => Ok(PyBytes::new(py, &out[..n])),
        Err(err) => Err(rpc_error(py, &err)),
    }
}

/// Decodes a `HealthCheckRequest` and returns its `service` name; raises
/// `RpcError(INVALID_ARGUMENT, message)` for malformed bytes.
#[pyfunction]
pub(crate) fn decode_check_request(py: Python<'_>, request: &[u8]) -> PyResult<String> {
    wire::decode_check_request(request)
        .map(str::to_owned)
        .map_err(|err| {
            pyobjects::rpc_error(
                py,
                dubbo_health_core::GrpcCode::InvalidArgument.as_u32(),
                err.to_string(),
            )
        })
}

/// The serialized `HealthCheckResponse` for `status` (a `ServingStatus` or its number).
#[pyfunction]
pub(crate) fn encode_check_response<'py>(
    py: Python<'py>,
    status: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let status = crate::registry::parse_status(py, status)?;
    Ok(PyBytes::new(py, wire::check_response_bytes(status)))
}
