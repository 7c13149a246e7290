//! `Probes`: the HTTP probe and JSON Check answers, for a grpcio or aiohttp host's own
//! HTTP server.

use std::sync::Arc;

use dubbo_health_core::HeapRegistry;
use dubbo_health_tonic::probe;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::registry::Registry;
use crate::server::bodies_arg;

/// The probes (`/live`, `/ready`, `/startup`, `/ready?service=NAME`) and the JSON Check /
/// List over one registry, answered from request parts.
#[pyclass(module = "dubbo_health._native", frozen)]
#[derive(Debug)]
pub(crate) struct Probes {
    inner: probe::Probes<Arc<HeapRegistry>>,
}

/// `(status, [(name, value), ...], body)`.
type Answer<'py> = (u16, Vec<(String, String)>, Bound<'py, PyBytes>);

#[pymethods]
impl Probes {
    #[new]
    #[pyo3(signature = (registry, *, started = false, bodies = "dubbo-java"))]
    fn new(registry: &Registry, started: bool, bodies: &str) -> PyResult<Self> {
        let inner = probe::Probes::new(Arc::clone(&registry.inner)).bodies(bodies_arg(bodies)?);
        if started {
            inner.state().mark_started();
        }
        Ok(Self { inner })
    }

    /// `/startup` answers 200 from now on.
    fn mark_started(&self) {
        self.inner.state().mark_started();
    }

    /// `/ready` answers 503 from now on (call it when the host's drain begins).
    fn mark_stopping(&self) {
        self.inner.state().mark_stopping();
    }

    #[getter]
    fn started(&self) -> bool {
        self.inner.state().is_started()
    }

    #[getter]
    fn stopping(&self) -> bool {
        self.inner.state().is_stopping()
    }

    /// The answer to one request: `(status, headers, body)`; 404 for paths that are not
    /// probes or health calls. `headers` is a mapping or an iterable of (name, value) pairs.
    #[pyo3(signature = (method, path, query = None, headers = None, body = b"".as_slice()))]
    fn answer<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: Option<&Bound<'py, PyAny>>,
        body: &[u8],
    ) -> PyResult<Answer<'py>> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| PyValueError::new_err(format!("bad HTTP method {method:?}")))?;
        let mut map = HeaderMap::new();
        if let Some(headers) = headers {
            let pairs = if headers.hasattr("items")? {
                headers.call_method0("items")?
            } else {
                headers.clone()
            };
            for pair in pairs.try_iter()? {
                let (name, value): (String, String) = pair?.extract()?;
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| PyValueError::new_err(format!("bad header name {name:?}")))?;
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| PyValueError::new_err(format!("bad header value {value:?}")))?;
                map.append(name, value);
            }
        }
        let query = query.filter(|q| !q.is_empty());
        let response = self
            .inner
            .answer(&method, path, query, &map, body)
            .unwrap_or_else(|| {
                let mut r = http::Response::new(bytes::Bytes::from_static(b"not found\n"));
                *r.status_mut() = http::StatusCode::NOT_FOUND;
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r
            });
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok((
            response.status().as_u16(),
            headers,
            PyBytes::new(py, response.body()),
        ))
    }

    fn __repr__(&self) -> String {
        let py_bool = |b: bool| if b { "True" } else { "False" };
        format!(
            "Probes(started={}, stopping={})",
            py_bool(self.started()),
            py_bool(self.stopping())
        )
    }
}
