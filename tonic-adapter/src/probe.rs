//! HTTP probes and the JSON form of `Check` and `List`, answered from the registry.
//!
//! [`Probes`] answers, over any HTTP (HTTP/1.1 or HTTP/2):
//!
//! | request | answer |
//! |---|---|
//! | `GET /live` | `200` while the process serves |
//! | `GET /ready` | `200` when `""` is `SERVING` and this server is not stopping, else `503` |
//! | `GET /startup` | `200` once the host [marked itself started](ProbeState::mark_started), else `503` |
//! | `GET /ready?service=NAME`, `GET /ready/NAME` | `200` `SERVING`, `503` otherwise (or stopping), `404` not registered, `400` over 200 bytes |
//! | `HEAD` of any of these | the same status and headers, no body |
//! | any other method on them | `405`, `Allow: GET, HEAD` |
//! | `POST /grpc.health.v1.Health/Check`, `application/json` | the Connect protocol's unary form: `{"status":"SERVING"}` |
//! | `POST /grpc.health.v1.Health/List`, `application/json` | `{"statuses":{"NAME":{"status":"SERVING"},...}}` |
//!
//! Probe bodies are Dubbo Java QoS's by default (`true` / `false`, `text/plain`), or
//! dubbo-go's (`ok` / `probe ready: not serving`) with [`ProbeBodies::DubboGo`]; Kubernetes
//! only looks at the status code. `NAME` is percent-decoded, and may contain `/`
//! (`/ready/grp/org.apache.Foo:1.0.0`).
//!
//! The JSON calls follow protobuf's JSON mapping: enum names as strings, `{}` (or
//! `{"service":null}`) is the empty name, an empty body is `invalid_argument` (connect-go's
//! and dubbo-go's "zero-length payload"). Unknown fields are ignored, as connect-go's codec
//! does (`DiscardUnknown`, so clients on a newer schema still get answers); dubbo-go's Triple
//! codec refuses them, so a request it takes is always taken here too. `application/proto` bodies (raw protobuf, Connect's other unary
//! codec) are answered too. Errors are Connect errors: an HTTP status from the code and
//! `{"code":"not_found","message":"unknown service"}`; `invalid_argument` is `400`,
//! `not_found` `404`, `resource_exhausted` (`List` over 100 names) `429`, `unimplemented`
//! (`Watch`, a streaming method) `501`; another content type is `415`.
//!
//! [`Standalone`](crate::Standalone) serves these on its own port (on by default, see
//! [`StandaloneBuilder::probes`](crate::StandaloneBuilder::probes)); a tonic host puts
//! [`ProbeLayer`] on its server, or calls [`Probes`] as a tower service.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use dubbo_health_core::{wire, Error, Registry, ServingStatus, StableDeref, Storage, LIST_LIMIT};
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use percent_encoding::percent_decode_str;
use tokio_util::sync::CancellationToken;

use crate::server::{BoxError, HttpHandler, PLAIN_BODY_LIMIT};

/// The probe body style: what `200` and `503` probe answers say.
///
/// ```
/// use dubbo_health_tonic::probe::ProbeBodies;
/// assert_eq!(ProbeBodies::default(), ProbeBodies::DubboJava);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProbeBodies {
    /// Dubbo Java QoS (`qos/command/impl/{Live,Ready,Startup}.java`): `true` / `false`.
    #[default]
    DubboJava,
    /// dubbo-go (`metrics/probe`): `ok` / `probe <name>: <reason>`.
    DubboGo,
}

impl ProbeBodies {
    /// The style named `dubbo-java` or `dubbo-go` (what the Python and C doors take).
    ///
    /// ```
    /// use dubbo_health_tonic::probe::ProbeBodies;
    /// assert_eq!(ProbeBodies::from_name("dubbo-go"), Some(ProbeBodies::DubboGo));
    /// assert_eq!(ProbeBodies::from_name("yaml"), None);
    /// ```
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "dubbo-java" => Some(Self::DubboJava),
            "dubbo-go" => Some(Self::DubboGo),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct StateInner {
    started: AtomicBool,
    stopping: AtomicBool,
}

/// What the host tells its probes: whether it has started (`/startup`) and whether it is
/// stopping (`/ready` is then `503` whatever the registry says). Clones share one state.
///
/// ```
/// use dubbo_health_tonic::probe::ProbeState;
///
/// let state = ProbeState::new();
/// assert!(!state.is_started());
/// state.mark_started();
/// assert!(state.is_started());
/// state.mark_stopping();
/// assert!(state.is_stopping());
/// ```
#[derive(Clone, Debug, Default)]
pub struct ProbeState(Arc<StateInner>);

impl ProbeState {
    /// A state that is neither started nor stopping.
    ///
    /// ```
    /// let state = dubbo_health_tonic::probe::ProbeState::new();
    /// assert!(!state.is_stopping());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `/startup` answers `200` from now on.
    ///
    /// ```
    /// let state = dubbo_health_tonic::probe::ProbeState::new();
    /// state.mark_started();
    /// ```
    pub fn mark_started(&self) {
        self.0.started.store(true, Ordering::Release);
    }

    /// Whether [`mark_started`](Self::mark_started) was called.
    ///
    /// ```
    /// assert!(!dubbo_health_tonic::probe::ProbeState::new().is_started());
    /// ```
    #[must_use]
    pub fn is_started(&self) -> bool {
        self.0.started.load(Ordering::Acquire)
    }

    /// `/ready` (and every `/ready?service=`) answers `503` from now on: what a host calls
    /// when its own drain begins. [`Standalone`](crate::Standalone) does this by itself
    /// when it stops.
    ///
    /// ```
    /// let state = dubbo_health_tonic::probe::ProbeState::new();
    /// state.mark_stopping();
    /// ```
    pub fn mark_stopping(&self) {
        self.0.stopping.store(true, Ordering::Release);
    }

    /// Whether [`mark_stopping`](Self::mark_stopping) was called.
    ///
    /// ```
    /// assert!(!dubbo_health_tonic::probe::ProbeState::new().is_stopping());
    /// ```
    #[must_use]
    pub fn is_stopping(&self) -> bool {
        self.0.stopping.load(Ordering::Acquire)
    }
}

/// The probe and JSON answers over one registry (see the [module docs](self)). Cloning is
/// cheap; clones share the [`ProbeState`].
///
/// ```
/// use std::sync::Arc;
/// use dubbo_health_core::{HeapRegistry, ServingStatus};
/// use dubbo_health_tonic::probe::Probes;
/// use http::{HeaderMap, Method};
///
/// let registry = Arc::new(HeapRegistry::new());
/// let probes = Probes::new(Arc::clone(&registry));
/// let ready = probes.answer(&Method::GET, "/ready", None, &HeaderMap::new(), b"").unwrap();
/// assert_eq!(ready.status(), 200);
/// assert_eq!(ready.body().as_ref(), b"true");
/// registry.set("", ServingStatus::NotServing).unwrap();
/// let ready = probes.answer(&Method::GET, "/ready", None, &HeaderMap::new(), b"").unwrap();
/// assert_eq!(ready.status(), 503);
/// assert!(probes.answer(&Method::GET, "/other", None, &HeaderMap::new(), b"").is_none());
/// ```
pub struct Probes<R> {
    registry: R,
    state: ProbeState,
    bodies: ProbeBodies,
    /// The drain switch of the server these probes are part of, if any.
    drain: Option<CancellationToken>,
}

impl<R: Clone> Clone for Probes<R> {
    fn clone(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            state: self.state.clone(),
            bodies: self.bodies,
            drain: self.drain.clone(),
        }
    }
}

impl<R> fmt::Debug for Probes<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probes")
            .field("state", &self.state)
            .field("bodies", &self.bodies)
            .finish_non_exhaustive()
    }
}

/// What a request path asks for.
enum Route<'a> {
    Live,
    Startup,
    Ready(Option<std::borrow::Cow<'a, str>>),
    Check,
    List,
    Watch,
}

fn route<'a>(path: &'a str, query: Option<&'a str>) -> Option<Route<'a>> {
    Some(match path {
        "/live" => Route::Live,
        "/startup" => Route::Startup,
        "/ready" => Route::Ready(query.and_then(service_param)),
        "/grpc.health.v1.Health/Check" => Route::Check,
        "/grpc.health.v1.Health/List" => Route::List,
        "/grpc.health.v1.Health/Watch" => Route::Watch,
        _ => {
            let name = path.strip_prefix("/ready/")?;
            Route::Ready(Some(percent_decode_str(name).decode_utf8_lossy()))
        }
    })
}

/// The `service` parameter of a query string, percent-decoded (`+` is a space, as in forms).
fn service_param(query: &str) -> Option<std::borrow::Cow<'_, str>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == "service").then(|| {
            if value.contains('+') {
                let spaced = value.replace('+', " ");
                std::borrow::Cow::Owned(
                    percent_decode_str(&spaced).decode_utf8_lossy().into_owned(),
                )
            } else {
                percent_decode_str(value).decode_utf8_lossy()
            }
        })
    })
}

fn text(status: StatusCode, body: &'static str, head: bool) -> Response<Bytes> {
    let mut response = Response::new(if head {
        Bytes::new()
    } else {
        Bytes::from_static(body.as_bytes())
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A Connect error: the HTTP status of `code` and `{"code":..,"message":..}`.
fn connect_error(code: &'static str, message: &str) -> Response<Bytes> {
    let status = match code {
        "invalid_argument" => StatusCode::BAD_REQUEST,
        "not_found" => StatusCode::NOT_FOUND,
        "resource_exhausted" => StatusCode::TOO_MANY_REQUESTS,
        "unimplemented" => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({ "code": code, "message": message });
    json(status, body.to_string().into_bytes())
}

fn allow(methods: &'static str, body: &'static str) -> Response<Bytes> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, body, false);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(methods));
    response
}

/// The codec a request's `content-type` names: JSON, protobuf, or neither.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Json,
    Proto,
}

fn codec(headers: &HeaderMap) -> Option<Codec> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let base = value.split(';').next().unwrap_or("").trim();
    if base.eq_ignore_ascii_case("application/json") {
        Some(Codec::Json)
    } else if base.eq_ignore_ascii_case("application/proto") {
        Some(Codec::Proto)
    } else {
        None
    }
}

/// The `service` field of a JSON `HealthCheckRequest`.
fn json_service(body: &[u8]) -> Result<String, String> {
    if body.is_empty() {
        return Err("zero-length payload is not a valid JSON object".into());
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let serde_json::Value::Object(mut fields) = value else {
        return Err("the request is not a JSON object".into());
    };
    match fields.remove("service") {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(name)) => Ok(name),
        Some(_) => Err("service: not a string".into()),
    }
}

fn json_empty(body: &[u8]) -> Result<(), String> {
    if body.is_empty() {
        return Err("zero-length payload is not a valid JSON object".into());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err("the request is not a JSON object".into()),
        Err(e) => Err(format!("malformed JSON: {e}")),
    }
}

/// The JSON of one `HealthCheckResponse` (`UNKNOWN`, the default, is left out, as
/// protobuf's JSON mapping does).
fn status_json(status: ServingStatus) -> serde_json::Value {
    if status == ServingStatus::Unknown {
        serde_json::json!({})
    } else {
        serde_json::json!({ "status": status.as_str_name() })
    }
}

impl<S: Storage, R> Probes<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    /// Probes over `registry`, with a fresh [`ProbeState`] (not started) and Dubbo Java's
    /// bodies.
    ///
    /// ```
    /// use dubbo_health_core::FixedRegistry;
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let probes = dubbo_health_tonic::probe::Probes::new(&HEALTH);
    /// assert!(!probes.state().is_started());
    /// ```
    pub fn new(registry: R) -> Self {
        Self {
            registry,
            state: ProbeState::new(),
            bodies: ProbeBodies::default(),
            drain: None,
        }
    }

    /// The probe body style.
    ///
    /// ```
    /// use dubbo_health_core::FixedRegistry;
    /// use dubbo_health_tonic::probe::{ProbeBodies, Probes};
    /// use http::{HeaderMap, Method};
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let probes = Probes::new(&HEALTH).bodies(ProbeBodies::DubboGo);
    /// let live = probes.answer(&Method::GET, "/live", None, &HeaderMap::new(), b"").unwrap();
    /// assert_eq!(live.body().as_ref(), b"ok");
    /// ```
    #[must_use]
    pub fn bodies(mut self, bodies: ProbeBodies) -> Self {
        self.bodies = bodies;
        self
    }

    /// Shares `state` (to mark started or stopping from elsewhere).
    ///
    /// ```
    /// use dubbo_health_core::FixedRegistry;
    /// use dubbo_health_tonic::probe::{ProbeState, Probes};
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let state = ProbeState::new();
    /// let probes = Probes::new(&HEALTH).with_state(state.clone());
    /// state.mark_started();
    /// assert!(probes.state().is_started());
    /// ```
    #[must_use]
    pub fn with_state(mut self, state: ProbeState) -> Self {
        self.state = state;
        self
    }

    /// Ties `/ready` to a drain switch as well: `503` once it is cancelled.
    #[must_use]
    pub(crate) fn with_drain(mut self, drain: CancellationToken) -> Self {
        self.drain = Some(drain);
        self
    }

    /// The state these probes read.
    ///
    /// ```
    /// use dubbo_health_core::FixedRegistry;
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let probes = dubbo_health_tonic::probe::Probes::new(&HEALTH);
    /// probes.state().mark_started();
    /// ```
    pub fn state(&self) -> &ProbeState {
        &self.state
    }

    fn stopping(&self) -> bool {
        self.state.is_stopping()
            || self
                .drain
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
    }

    /// Whether these probes answer a request with this head (so a host that routes
    /// requests knows before it reads the body): the probe paths, and the health paths
    /// when the request is not gRPC.
    ///
    /// ```
    /// use dubbo_health_core::FixedRegistry;
    /// use http::HeaderMap;
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let probes = dubbo_health_tonic::probe::Probes::new(&HEALTH);
    /// assert!(probes.claims("/ready", &HeaderMap::new()));
    /// assert!(!probes.claims("/", &HeaderMap::new()));
    /// ```
    pub fn claims(&self, path: &str, headers: &HeaderMap) -> bool {
        match route(path, None) {
            None => false,
            Some(Route::Check | Route::List | Route::Watch) => {
                !crate::grpc::is_grpc_request(headers)
            }
            Some(_) => true,
        }
    }

    /// The answer to one request, or `None` when it is not a probe or JSON health path.
    /// `query` is the part after `?`, if any.
    ///
    /// ```
    /// use dubbo_health_core::FixedRegistry;
    /// use http::{header, HeaderMap, HeaderValue, Method};
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let probes = dubbo_health_tonic::probe::Probes::new(&HEALTH);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    /// let check = probes
    ///     .answer(&Method::POST, "/grpc.health.v1.Health/Check", None, &headers, br#"{"service":""}"#)
    ///     .unwrap();
    /// assert_eq!(check.body().as_ref(), br#"{"status":"SERVING"}"#);
    /// ```
    pub fn answer(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Response<Bytes>> {
        let route = route(path, query)?;
        Some(match route {
            Route::Check | Route::List | Route::Watch => {
                if method != Method::POST {
                    return Some(allow("POST", "method not allowed\n"));
                }
                match codec(headers) {
                    None => text(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "use content-type application/json, application/proto or application/grpc\n",
                        false,
                    ),
                    Some(codec) => match route {
                        Route::Check => self.check(codec, body),
                        Route::List => self.list(codec, body),
                        _ => connect_error(
                            "unimplemented",
                            "Watch is a streaming method: use gRPC",
                        ),
                    },
                }
            }
            probe => {
                let head = method == Method::HEAD;
                if method != Method::GET && !head {
                    return Some(allow("GET, HEAD", "method not allowed\n"));
                }
                let (up, go_down) = match probe {
                    Route::Live => (true, "probe live: stopped"),
                    Route::Startup => (self.state.is_started(), "probe startup: not started"),
                    Route::Ready(None) => (
                        !self.stopping() && self.registry.get("") == Some(ServingStatus::Serving),
                        "probe ready: not serving",
                    ),
                    Route::Ready(Some(name)) => match self.registry.check(&name) {
                        Err(Error::NotFound) => {
                            return Some(text(StatusCode::NOT_FOUND, "unknown service\n", head))
                        }
                        Err(_) => {
                            return Some(text(
                                StatusCode::BAD_REQUEST,
                                "service name over 200 bytes\n",
                                head,
                            ))
                        }
                        Ok(status) => (
                            !self.stopping() && status == ServingStatus::Serving,
                            "probe ready: not serving",
                        ),
                    },
                    _ => unreachable!("health paths are answered above"),
                };
                let (status, body) = match (up, self.bodies) {
                    (true, ProbeBodies::DubboJava) => (StatusCode::OK, "true"),
                    (false, ProbeBodies::DubboJava) => (StatusCode::SERVICE_UNAVAILABLE, "false"),
                    (true, ProbeBodies::DubboGo) => (StatusCode::OK, "ok"),
                    (false, ProbeBodies::DubboGo) => (StatusCode::SERVICE_UNAVAILABLE, go_down),
                };
                text(status, body, head)
            }
        })
    }

    fn check(&self, codec: Codec, body: &[u8]) -> Response<Bytes> {
        let name = match codec {
            Codec::Json => json_service(body),
            Codec::Proto => wire::decode_check_request(body)
                .map(str::to_owned)
                .map_err(|e| e.to_string()),
        };
        let name = match name {
            Ok(name) => name,
            Err(message) => return connect_error("invalid_argument", &message),
        };
        match self.registry.check(&name) {
            Ok(status) => match codec {
                Codec::Json => json(StatusCode::OK, status_json(status).to_string().into_bytes()),
                Codec::Proto => {
                    let mut response =
                        Response::new(Bytes::from_static(wire::check_response_bytes(status)));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/proto"),
                    );
                    response
                }
            },
            Err(Error::NotFound) => connect_error("not_found", "unknown service"),
            Err(e) => connect_error("invalid_argument", &e.to_string()),
        }
    }

    fn list(&self, codec: Codec, body: &[u8]) -> Response<Bytes> {
        let valid = match codec {
            Codec::Json => json_empty(body),
            Codec::Proto => wire::decode_list_request(body).map_err(|e| e.to_string()),
        };
        if let Err(message) = valid {
            return connect_error("invalid_argument", &message);
        }
        let too_many = || {
            connect_error(
                "resource_exhausted",
                &format!("more than {LIST_LIMIT} services; use Check or Watch"),
            )
        };
        match codec {
            Codec::Json => {
                let mut statuses = serde_json::Map::new();
                for entry in self.registry.iter() {
                    if statuses.len() == LIST_LIMIT {
                        return too_many();
                    }
                    statuses.insert(entry.name().to_owned(), status_json(entry.status()));
                }
                let body = if statuses.is_empty() {
                    serde_json::json!({})
                } else {
                    serde_json::json!({ "statuses": statuses })
                };
                json(StatusCode::OK, body.to_string().into_bytes())
            }
            Codec::Proto => {
                let mut out = vec![0u8; wire::MAX_LIST_RESPONSE];
                match wire::handle_list(&*self.registry, b"", &mut out) {
                    Ok(n) => {
                        out.truncate(n);
                        let mut response = Response::new(Bytes::from(out));
                        response.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/proto"),
                        );
                        response
                    }
                    Err(wire::RpcError::TooMany { .. }) => too_many(),
                    Err(e) => connect_error("internal", &e.to_string()),
                }
            }
        }
    }
}

/// The probes as the standalone server's plain-HTTP handler: probe and JSON paths are
/// answered here, the rest goes to the host's own handler (or gets `404`).
pub(crate) struct ProbeHandler<R> {
    pub(crate) probes: Probes<R>,
    pub(crate) next: Option<Arc<dyn HttpHandler>>,
}

impl<S: Storage, R> HttpHandler for ProbeHandler<R>
where
    R: StableDeref<Target = Registry<S>> + Send + Sync + 'static,
{
    fn handle(&self, request: http::Request<Bytes>) -> Response<Bytes> {
        let (head, body) = request.into_parts();
        let answer = self.probes.answer(
            &head.method,
            head.uri.path(),
            head.uri.query(),
            &head.headers,
            &body,
        );
        match (answer, &self.next) {
            (Some(answer), _) => answer,
            (None, Some(next)) => next.handle(http::Request::from_parts(head, body)),
            (None, None) => text(StatusCode::NOT_FOUND, "not found\n", false),
        }
    }
}

/// The future of a [`Probes`] or [`ProbeMiddleware`] call.
pub type ProbeFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

async fn answer_request<S: Storage, R, B>(
    probes: Probes<R>,
    request: http::Request<B>,
) -> Response<Bytes>
where
    R: StableDeref<Target = Registry<S>>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let (head, body) = request.into_parts();
    let body = match Limited::new(body, PLAIN_BODY_LIMIT).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large\n",
                false,
            )
        }
    };
    probes
        .answer(
            &head.method,
            head.uri.path(),
            head.uri.query(),
            &head.headers,
            &body,
        )
        .unwrap_or_else(|| text(StatusCode::NOT_FOUND, "not found\n", false))
}

/// A tower service answering the probes and the JSON calls; any other path gets `404`.
/// Request bodies are read up to [`PLAIN_BODY_LIMIT`] (`413` past it).
///
/// ```
/// use dubbo_health_core::FixedRegistry;
/// use tower::ServiceExt;
/// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let probes = dubbo_health_tonic::probe::Probes::new(&HEALTH);
/// let request = http::Request::get("/live").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
/// let response = probes.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # });
/// ```
impl<S: Storage, R, B> tower_service::Service<http::Request<B>> for Probes<R>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ProbeFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let probes = self.clone();
        Box::pin(async move { Ok(answer_request(probes, request).await.map(Full::new)) })
    }
}

/// A tower layer for a tonic host's server: the probes and JSON calls are answered in
/// front of the host's routes, every other request (gRPC included) goes through untouched.
/// Turn on `accept_http1` so Kubernetes' HTTP/1.1 probes reach it.
///
/// ```no_run
/// use std::sync::Arc;
/// use dubbo_health_core::HeapRegistry;
/// use dubbo_health_tonic::{probe::{ProbeLayer, Probes}, HealthService};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Arc::new(HeapRegistry::new());
/// let probes = Probes::new(Arc::clone(&registry));
/// probes.state().mark_started();
/// tonic::transport::Server::builder()
///     .accept_http1(true)
///     .layer(ProbeLayer::new(probes))
///     .add_service(HealthService::new(registry).server())
///     .serve("127.0.0.1:50051".parse()?)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ProbeLayer<R> {
    probes: Probes<R>,
}

impl<R> ProbeLayer<R> {
    /// The layer over `probes`.
    ///
    /// ```
    /// use dubbo_health_core::FixedRegistry;
    /// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
    /// let layer = dubbo_health_tonic::probe::ProbeLayer::new(dubbo_health_tonic::probe::Probes::new(&HEALTH));
    /// # drop(layer);
    /// ```
    pub fn new(probes: Probes<R>) -> Self {
        Self { probes }
    }
}

impl<R: Clone, T> tower::Layer<T> for ProbeLayer<R> {
    type Service = ProbeMiddleware<R, T>;

    fn layer(&self, inner: T) -> Self::Service {
        ProbeMiddleware {
            probes: self.probes.clone(),
            inner,
        }
    }
}

/// The service [`ProbeLayer`] makes: probes in front of `inner`.
#[derive(Clone, Debug)]
pub struct ProbeMiddleware<R, T> {
    probes: Probes<R>,
    inner: T,
}

impl<S: Storage, R, T, B, ResB> tower_service::Service<http::Request<B>> for ProbeMiddleware<R, T>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
    T: tower_service::Service<http::Request<B>, Response = Response<ResB>>,
    T::Future: Send + 'static,
    T::Error: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    ResB: http_body::Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<tonic::body::Body>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, T::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if self.probes.claims(request.uri().path(), request.headers()) {
            let probes = self.probes.clone();
            return Box::pin(async move {
                Ok(answer_request(probes, request)
                    .await
                    .map(|b| tonic::body::Body::new(Full::new(b))))
            });
        }
        let future = self.inner.call(request);
        Box::pin(async move { Ok(future.await?.map(tonic::body::Body::new)) })
    }
}
