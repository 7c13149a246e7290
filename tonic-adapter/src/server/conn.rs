//! One HTTP/2 connection: its streams live in the connection's own task.
//!
//! A [`H2Conn`] owns the `h2` connection and a slab of its calls. Each wake-up it
//! 1. reads what arrived and accepts every new stream (`poll_accept`, which also flushes
//!    what the previous round queued),
//! 2. polls exactly the streams whose wakers fired (the [`ReadyQueue`]), which queue their
//!    frames in `h2`,
//! 3. goes back to 1, so everything the streams queued leaves in one flush.
//!
//! Check and List are answered from the request bytes and leave the slab at once; a Watch
//! stays as a [`WatchCall`]: the core `Watch` (with its wait node inside), the `h2` send
//! handle and its waker — no task, no channel, no encoder. Deadlines (`grpc-timeout`) and
//! the keepalive PING share one timer per connection.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use dubbo_health_core::{GrpcCode, Registry, ServingStatus, StableDeref, Watch};
use futures_core::Stream;
use h2::{server::SendResponse, Ping, PingPong, RecvStream, SendStream};
use http::{Request, StatusCode};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::{Instant, Sleep},
};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::{
    answer,
    ready::{ReadyQueue, StreamWake},
    Shared, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT,
};
use crate::grpc::{self, Status};

/// The longest `HealthCheckResponse` frame: the 5-byte prefix and 2 bytes.
const STATUS_FRAME_MAX: usize = 7;

/// Rounds of accept-and-poll in one wake-up before the task yields to others.
const ROUNDS_PER_WAKE: usize = 64;

/// What a request's body is gathered for.
enum Body {
    /// A health call: its one request message.
    Grpc(grpc::Method, grpc::RequestBody),
    /// A plain-HTTP request for the handler: its head, and its body so far.
    Plain(Option<http::request::Parts>, BytesMut),
}

/// One open call on the connection.
enum Call<R> {
    /// Reading the request message.
    Reading(Box<Reading>),
    /// A Watch sending statuses.
    Watch(Pin<Box<WatchCall<R>>>),
}

struct Reading {
    wake: Arc<StreamWake>,
    recv: RecvStream,
    respond: SendResponse<Bytes>,
    body: Body,
    /// Identifies this call among the deadlines (slab keys are reused).
    serial: u32,
}

const NO_STATUS: u8 = u8::MAX;

/// A Watch stream: what it needs and nothing more.
struct WatchCall<R> {
    wake: Arc<StreamWake>,
    send: SendStream<Bytes>,
    serial: u32,
    /// The status sent last (`NO_STATUS` before the first).
    sent: u8,
    /// A status the core yielded that could not be sent yet for want of flow-control
    /// window (a client that does not read); sent when the window opens, unless a newer
    /// one replaced it (latest wins).
    pending: u8,
    watch: Watch<R, Box<str>>,
}

/// What polling a call did.
enum Progress {
    Pending,
    Done,
}

/// The connection future: serves the connection until it closes.
pub(super) struct H2Conn<R, IO> {
    h2: h2::server::Connection<IO, Bytes>,
    shared: Arc<Shared<R>>,
    calls: slab::Slab<Call<R>>,
    queue: Arc<ReadyQueue>,
    keys: Vec<u32>,
    serial: u32,
    deadlines: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    ping: Option<PingPong>,
    ping_at: Instant,
    pong_by: Option<Instant>,
    drain: Pin<Box<WaitForCancellationFutureOwned>>,
    draining: bool,
}

fn noop_waker() -> &'static Waker {
    Waker::noop()
}

impl<const N: usize, R, IO> H2Conn<R, IO>
where
    R: StableDeref<Target = Registry<N>> + Clone + Send + Sync + 'static,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    pub(super) fn new(h2: h2::server::Connection<IO, Bytes>, shared: Arc<Shared<R>>) -> Self {
        let mut h2 = h2;
        let ping = h2.ping_pong();
        let now = Instant::now();
        let drain = Box::pin(shared.drain.clone().cancelled_owned());
        Self {
            h2,
            shared,
            calls: slab::Slab::new(),
            queue: Arc::default(),
            keys: Vec::new(),
            serial: 0,
            deadlines: BinaryHeap::new(),
            timer: Box::pin(tokio::time::sleep_until(now + KEEPALIVE_INTERVAL)),
            timer_at: Some(now + KEEPALIVE_INTERVAL),
            ping,
            ping_at: now + KEEPALIVE_INTERVAL,
            pong_by: None,
            drain,
            draining: false,
        }
    }

    /// A stream arrived: answer what can be answered from the head, else keep it.
    fn accept(&mut self, request: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
        let (head, recv) = request.into_parts();
        let health = grpc::Method::from_path(head.uri.path());
        let mut deadline = None;
        let body = if !grpc::is_grpc_request(&head.headers) {
            if self.shared.http.is_some() {
                Body::Plain(Some(head), BytesMut::new())
            } else if health.is_some() {
                // A health path without a gRPC content-type: the gRPC answer (HTTP 415).
                if let Err(status) = grpc::accept(&head.method, head.uri.path(), &head.headers) {
                    let _ = respond.send_response(status.trailers_only(()), true);
                }
                return;
            } else {
                let mut response = Some(answer::plain(StatusCode::NOT_FOUND, "not found\n"));
                send_plain(&mut respond, &mut response);
                return;
            }
        } else if health.is_none() && self.shared.fallback.is_some() {
            if let Some(fallback) = &self.shared.fallback {
                let request = Request::from_parts(head, recv);
                tokio::spawn(super::fallback::run(fallback.clone(), request, respond));
            }
            return;
        } else {
            match grpc::accept(&head.method, head.uri.path(), &head.headers) {
                Ok(call) => {
                    // A deadline past any real one is no deadline (and cannot overflow).
                    deadline = call
                        .timeout
                        .filter(|t| *t < Duration::from_secs(10 * 365 * 86_400))
                        .map(|t| Instant::now() + t);
                    Body::Grpc(
                        call.method,
                        grpc::RequestBody::new(call.encoding, self.shared.max_request_size),
                    )
                }
                Err(status) => {
                    let _ = respond.send_response(status.trailers_only(()), true);
                    return;
                }
            }
        };
        self.serial = self.serial.wrapping_add(1);
        let serial = self.serial;
        let entry = self.calls.vacant_entry();
        let Ok(key) = u32::try_from(entry.key()) else {
            let status = Status::new(GrpcCode::ResourceExhausted, "too many streams");
            let _ = respond.send_response(status.trailers_only(()), true);
            return;
        };
        if let Some(at) = deadline {
            self.deadlines.push(Reverse((at, key, serial)));
        }
        entry.insert(Call::Reading(Box::new(Reading {
            wake: StreamWake::new(&self.queue, key),
            recv,
            respond,
            body,
            serial,
        })));
        self.shared
            .open_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Polls the call at `key` (if it is still there).
    fn poll_call(&mut self, key: u32) {
        let k = key as usize;
        let progress = match self.calls.get_mut(k) {
            None => return,
            Some(Call::Reading(reading)) => {
                reading.wake.unqueue();
                let waker = Waker::from(Arc::clone(&reading.wake));
                let mut cx = Context::from_waker(&waker);
                match read_request(reading, &mut cx, &self.shared) {
                    Poll::Pending => Progress::Pending,
                    Poll::Ready(None) => Progress::Done,
                    Poll::Ready(Some((send, watch))) => {
                        let call = WatchCall {
                            wake: Arc::clone(&reading.wake),
                            send,
                            serial: reading.serial,
                            sent: NO_STATUS,
                            pending: NO_STATUS,
                            watch,
                        };
                        // Drops the request side (body, respond handle) it no longer needs.
                        self.calls[k] = Call::Watch(Box::pin(call));
                        let Some(Call::Watch(call)) = self.calls.get_mut(k) else {
                            unreachable!("inserted just now")
                        };
                        // Its first status goes out in this same round.
                        poll_watch(call.as_mut(), self.draining)
                    }
                }
            }
            Some(Call::Watch(call)) => poll_watch(call.as_mut(), self.draining),
        };
        if let Progress::Done = progress {
            self.remove(k);
        }
    }

    fn remove(&mut self, key: usize) {
        self.calls.remove(key);
        self.shared
            .open_calls
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Ends the calls whose `grpc-timeout` passed; returns whether the connection must close
    /// (an unanswered keepalive PING).
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            let next = self
                .deadlines
                .peek()
                .map(|Reverse((at, _, _))| *at)
                .into_iter()
                .chain(Some(self.pong_by.unwrap_or(self.ping_at)))
                .min();
            if next != self.timer_at {
                if let Some(at) = next {
                    self.timer.as_mut().reset(at);
                }
                self.timer_at = next;
            }
            if self.timer_at.is_none() || self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let now = Instant::now();
            while let Some(Reverse((at, key, serial))) = self.deadlines.peek().copied() {
                if at > now {
                    break;
                }
                self.deadlines.pop();
                self.expire(key, serial);
            }
            if let Some(by) = self.pong_by {
                if by <= now {
                    return true;
                }
            } else if self.ping_at <= now {
                match self.ping.as_mut().map(|p| p.send_ping(Ping::opaque())) {
                    Some(Ok(())) => self.pong_by = Some(now + KEEPALIVE_TIMEOUT),
                    _ => self.ping_at = now + KEEPALIVE_INTERVAL,
                }
            }
            // Re-arm for what is next.
            self.timer_at = None;
        }
    }

    /// The deadline of the call `key`/`serial` passed: answer DEADLINE_EXCEEDED.
    fn expire(&mut self, key: u32, serial: u32) {
        let k = key as usize;
        let status = Status::deadline_exceeded();
        match self.calls.get_mut(k) {
            Some(Call::Reading(r)) if r.serial == serial => {
                let _ = r.respond.send_response(status.trailers_only(()), true);
            }
            Some(Call::Watch(w)) if w.serial == serial => {
                let _ = send_of(w.as_mut()).send_trailers(status.trailers());
            }
            _ => return,
        }
        self.remove(k);
    }

    fn poll_pong(&mut self, cx: &mut Context<'_>) {
        if self.pong_by.is_some() {
            if let Some(ping) = self.ping.as_mut() {
                if ping.poll_pong(cx).is_ready() {
                    self.pong_by = None;
                    self.ping_at = Instant::now() + KEEPALIVE_INTERVAL;
                }
            }
        }
    }

    /// The server is stopping: GOAWAY, and every Watch gets its last NOT_SERVING and ends.
    fn start_drain(&mut self) {
        self.draining = true;
        self.h2.graceful_shutdown();
        let watches: Vec<u32> = self
            .calls
            .iter()
            .filter(|(_, call)| matches!(call, Call::Watch(_)))
            .map(|(key, _)| key as u32)
            .collect();
        for key in watches {
            self.poll_call(key);
        }
    }
}

impl<R, IO> Drop for H2Conn<R, IO> {
    fn drop(&mut self) {
        // The connection closed (or its task was aborted) with calls still open: they go
        // with it.
        self.shared
            .open_calls
            .fetch_sub(self.calls.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// How a connection ended: a peer that hangs up or breaks the protocol is not a server
/// failure; other I/O errors are reported.
fn connection_result(e: h2::Error) -> io::Result<()> {
    match e.into_io() {
        Some(e)
            if !matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            ) =>
        {
            Err(e)
        }
        _ => Ok(()),
    }
}

/// `send` is an ordinary field of the pinned `WatchCall`; only `watch` is pinned.
fn send_of<R>(call: Pin<&mut WatchCall<R>>) -> &mut SendStream<Bytes> {
    // Safety: `send` is never pinned (it is `Unpin` and not structurally pinned); `watch`
    // is not moved out of the call here.
    &mut unsafe { call.get_unchecked_mut() }.send
}

type NewWatch<R> = (SendStream<Bytes>, Watch<R, Box<str>>);

/// Reads the request body and answers Check, List and plain requests; a Watch that may
/// start comes back as its send handle and core stream.
fn read_request<const N: usize, R>(
    reading: &mut Reading,
    cx: &mut Context<'_>,
    shared: &Shared<R>,
) -> Poll<Option<NewWatch<R>>>
where
    R: StableDeref<Target = Registry<N>> + Clone,
{
    loop {
        match reading.recv.poll_data(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let _ = reading.recv.flow_control().release_capacity(chunk.len());
                match &mut reading.body {
                    Body::Grpc(_, body) => {
                        if let Err(status) = body.push(&chunk) {
                            let _ = reading
                                .respond
                                .send_response(status.trailers_only(()), true);
                            return Poll::Ready(None);
                        }
                    }
                    Body::Plain(_, body) => {
                        if body.len() + chunk.len() > super::PLAIN_BODY_LIMIT {
                            let mut response = Some(answer::plain(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "request body too large\n",
                            ));
                            send_plain(&mut reading.respond, &mut response);
                            return Poll::Ready(None);
                        }
                        body.extend_from_slice(&chunk);
                    }
                }
            }
            // Reset by the client, or the connection failed: nothing to answer.
            Poll::Ready(Some(Err(_))) => return Poll::Ready(None),
            Poll::Ready(None) => break,
            Poll::Pending => return Poll::Pending,
        }
    }
    let (method, body) = match &mut reading.body {
        Body::Plain(head, body) => {
            let head = head
                .take()
                .expect("a plain request keeps its head until answered");
            let request = Request::from_parts(head, body.split().freeze());
            let mut response = Some(match &shared.http {
                Some(handler) => handler.handle(request),
                None => answer::plain(StatusCode::NOT_FOUND, "not found\n"),
            });
            send_plain(&mut reading.respond, &mut response);
            return Poll::Ready(None);
        }
        Body::Grpc(method, body) => (*method, body),
    };
    let registry: &Registry<N> = &shared.registry;
    let answer = body.finish().and_then(|message| match method {
        grpc::Method::Check => {
            grpc::check(registry, message).map(|frame| Answer::Message(Bytes::from_static(frame)))
        }
        grpc::Method::List => grpc::list(registry, message).map(Answer::Message),
        grpc::Method::Watch => {
            let name = grpc::decode_name(message)?;
            Ok(Answer::Watch(Watch::new(
                shared.registry.clone(),
                Box::from(name),
            )?))
        }
    });
    match answer {
        Ok(Answer::Message(frame)) => {
            if let Ok(mut send) = reading.respond.send_response(grpc::response(()), false) {
                let _ = send.send_data(frame, false);
                let _ = send.send_trailers(grpc::ok_trailers());
            }
            Poll::Ready(None)
        }
        Ok(Answer::Watch(watch)) => {
            match reading.respond.send_response(grpc::response(()), false) {
                Ok(send) => Poll::Ready(Some((send, watch))),
                Err(_) => Poll::Ready(None),
            }
        }
        Err(status) => {
            let _ = reading
                .respond
                .send_response(status.trailers_only(()), true);
            Poll::Ready(None)
        }
    }
}

enum Answer<R> {
    Message(Bytes),
    Watch(Watch<R, Box<str>>),
}

fn send_plain(respond: &mut SendResponse<Bytes>, response: &mut Option<http::Response<Bytes>>) {
    let Some(response) = response.take() else {
        return;
    };
    let (head, body) = response.into_parts();
    let empty = body.is_empty();
    if let Ok(mut send) = respond.send_response(http::Response::from_parts(head, ()), empty) {
        if !empty {
            let _ = send.send_data(body, true);
        }
    }
}

/// Polls one Watch: sends the newest status if it changed and the client's window allows,
/// ends it when the server drains or the registry ends its watches, notices a reset.
fn poll_watch<const N: usize, R>(call: Pin<&mut WatchCall<R>>, draining: bool) -> Progress
where
    R: StableDeref<Target = Registry<N>>,
{
    // Safety: only `watch` is structurally pinned, and it is only used through
    // `Pin::new_unchecked` below; nothing is moved out of the call.
    let call = unsafe { call.get_unchecked_mut() };
    call.wake.unqueue();
    let waker = Waker::from(Arc::clone(&call.wake));
    let mut cx = Context::from_waker(&waker);
    // First with a no-op waker: tells whether the client reset the stream, and keeps the
    // capacity requests below from waking this stream needlessly (h2 wakes the registered
    // task when it grants capacity). The real waker is registered at the end.
    if call
        .send
        .poll_reset(&mut Context::from_waker(noop_waker()))
        .is_ready()
    {
        return Progress::Done;
    }
    // Safety: `watch` is pinned inside the boxed call, which never moves.
    let mut watch = unsafe { Pin::new_unchecked(&mut call.watch) };
    let mut ended = false;
    if draining {
        ended = true;
        call.pending = ServingStatus::NotServing as u8;
    } else {
        loop {
            match watch.as_mut().poll_next(&mut cx) {
                Poll::Ready(Some(status)) => call.pending = status as u8,
                Poll::Ready(None) => {
                    ended = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
    }
    if call.pending != NO_STATUS {
        if call.pending == call.sent {
            call.pending = NO_STATUS;
        } else {
            let room = if ended {
                // The last message goes out whatever the window: h2 holds it until the
                // client reads, and the stream ends after it.
                true
            } else {
                call.send.reserve_capacity(STATUS_FRAME_MAX);
                call.send.capacity() >= STATUS_FRAME_MAX
            };
            if room {
                let status = ServingStatus::from_i32(i32::from(call.pending))
                    .unwrap_or(ServingStatus::Unknown);
                if call
                    .send
                    .send_data(grpc::status_bytes(status), false)
                    .is_err()
                {
                    return Progress::Done;
                }
                call.sent = call.pending;
                call.pending = NO_STATUS;
            }
        }
    }
    if ended {
        let _ = call.send.send_trailers(grpc::ok_trailers());
        return Progress::Done;
    }
    match call.send.poll_reset(&mut cx) {
        Poll::Ready(_) => Progress::Done,
        Poll::Pending => Progress::Pending,
    }
}

impl<const N: usize, R, IO> Future for H2Conn<R, IO>
where
    R: StableDeref<Target = Registry<N>> + Clone + Send + Sync + 'static,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.queue.register(cx.waker());
        for _ in 0..ROUNDS_PER_WAKE {
            if !this.draining && this.drain.as_mut().poll(cx).is_ready() {
                this.start_drain();
            }
            // Reads frames, flushes what the last round queued, hands over new streams.
            loop {
                match this.h2.poll_accept(cx) {
                    Poll::Ready(Some(Ok((request, respond)))) => this.accept(request, respond),
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(connection_result(e)),
                    Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Pending => break,
                }
            }
            this.poll_pong(cx);
            if this.poll_timer(cx) {
                // The peer did not answer a keepalive PING in time.
                return Poll::Ready(Ok(()));
            }
            let mut keys = std::mem::take(&mut this.keys);
            this.queue.take(&mut keys);
            if keys.is_empty() {
                this.keys = keys;
                return Poll::Pending;
            }
            for &key in &keys {
                this.poll_call(key);
            }
            keys.clear();
            this.keys = keys;
        }
        // Still busy: let other connections run, and come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
