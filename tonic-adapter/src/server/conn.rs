//! One HTTP/2 connection: its streams live in the connection's own task.
//!
//! A [`H2Conn`] owns the `h2` connection and a slab of its calls. Each wake-up it
//! 1. reads what arrived and accepts every new stream (`poll_accept`, which also flushes
//!    what the previous round queued),
//! 2. polls exactly the streams and watch groups whose wakers fired (the [`ReadyQueue`]),
//!    which queue their frames in `h2`,
//! 3. goes back to 1 until nothing is queued. What `h2` writes meanwhile waits in memory
//!    (the connection's [`Cork`]) and leaves in one write when the wake-up is done: a
//!    probe's SETTINGS, SETTINGS ACK and answer are one segment, not three.
//!
//! Check and List are answered from the request bytes and leave the slab at once. The Watch
//! streams of one connection that watch the same name share one [`Group`]: one core `Watch`
//! (one waiter in the registry, so a flip wakes the connection once, not once per stream)
//! and the status it saw last. Each Watch stream is a [`WatchCall`] of a few words in the
//! slab — the `h2` send handle, its waker (for `h2`'s reset and flow-control news), the
//! status it sent last, and its place in the group's list — with no task, channel, encoder
//! or allocation of its own besides the waker. Deadlines (`grpc-timeout`) and the keepalive
//! PING share one timer per connection.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    future::Future,
    io,
    pin::Pin,
    sync::{atomic::Ordering, Arc},
    task::{Context, Poll, Wake, Waker},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use dubbo_health_core::{GrpcCode, Registry, ServingStatus, StableDeref, Storage, Watch};
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
    cork::Cork,
    ready::{ReadyQueue, StreamWake},
    Shared, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT,
};
use crate::grpc::{self, Status};

/// The longest `HealthCheckResponse` frame: the 5-byte prefix and 2 bytes.
const STATUS_FRAME_MAX: usize = 7;

/// Rounds of accept-and-poll in one wake-up before the task yields to others.
const ROUNDS_PER_WAKE: usize = 64;

/// Calls polled between two hand-overs to the socket, at most. A flip seen by tens of
/// thousands of Watch streams on one connection leaves in writes of a few kilobytes as it
/// goes, and `h2`'s queue of frames waiting to be written (whose slab keeps its size, about
/// 300 bytes a frame) stays a few hundred frames long instead of one frame per stream.
const FLUSH_EVERY: usize = 256;

/// No call: the end of a group's member list.
const NONE: u32 = u32::MAX;

/// Marks a ready-queue key as a group's (the rest is its key in the group slab); call keys
/// stay below it.
const GROUP: u32 = 1 << 31;

/// No status sent or seen yet.
const NO_STATUS: u8 = u8::MAX;

/// What a request's body is gathered for.
enum Body {
    /// A health call: its one request message.
    Grpc(grpc::Method, grpc::RequestBody),
    /// A plain-HTTP request for the handler: its head, and its body so far.
    Plain(Option<http::request::Parts>, BytesMut),
}

/// One open call on the connection.
enum Call {
    /// Reading the request message.
    Reading(Box<Reading>),
    /// A Watch sending statuses.
    Watch(WatchCall),
}

struct Reading {
    wake: Arc<StreamWake>,
    recv: RecvStream,
    respond: SendResponse<Bytes>,
    body: Body,
    /// Identifies this call among the deadlines (slab keys are reused).
    serial: u32,
}

/// A Watch stream: what it needs and nothing more. Its statuses come from its group.
struct WatchCall {
    wake: Arc<StreamWake>,
    send: SendStream<Bytes>,
    serial: u32,
    /// Its group's key.
    group: u32,
    /// Its neighbours in the group's member list.
    prev: u32,
    next: u32,
    /// The status sent last (`NO_STATUS` before the first). When it differs from the
    /// group's, the group's goes out as soon as the client's window allows (latest wins).
    sent: u8,
}

/// The Watch streams of one connection on one name: one core `Watch` for all of them.
struct Group<R> {
    wake: Arc<StreamWake>,
    watch: Pin<Box<Watch<R, Arc<str>>>>,
    /// The status the core watch yielded last.
    status: u8,
    /// The core watch ended (`Registry::end_watches`): so do the members.
    ended: bool,
    /// The status (or the end) changed since the members were last told.
    fan_out: bool,
    /// Whether `by_name` still maps the name here (not once the group ended).
    named: bool,
    /// The first member (`NONE` when there is none; the group goes with its last member).
    head: u32,
}

/// The groups of one connection, by key and by name.
struct Groups<R> {
    slab: slab::Slab<Group<R>>,
    by_name: HashMap<Arc<str>, u32>,
}

/// What polling a call did.
enum Progress {
    Pending,
    Done,
}

/// The connection future: serves the connection until it closes.
pub(super) struct H2Conn<R, IO> {
    h2: h2::server::Connection<IO, Bytes>,
    /// Holds what `h2` writes during a wake-up, for one write at its end.
    cork: Cork,
    shared: Arc<Shared<R>>,
    calls: slab::Slab<Call>,
    groups: Groups<R>,
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
    /// Calls polled since the last hand-over to the socket.
    polled: usize,
    /// How the connection ended, noticed in the middle of a round.
    ended: Option<io::Result<()>>,
}

impl<S: Storage, R, IO> H2Conn<R, IO>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    pub(super) fn new(
        h2: h2::server::Connection<IO, Bytes>,
        cork: Cork,
        shared: Arc<Shared<R>>,
    ) -> Self {
        let mut h2 = h2;
        let ping = h2.ping_pong();
        let now = Instant::now();
        let drain = Box::pin(shared.drain.clone().cancelled_owned());
        Self {
            h2,
            cork,
            shared,
            calls: slab::Slab::new(),
            groups: Groups {
                slab: slab::Slab::new(),
                by_name: HashMap::new(),
            },
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
            polled: 0,
            ended: None,
        }
    }

    /// Hands what the calls queued to the socket (`h2` writes it and flushes), and takes in
    /// what arrived: frames, and new streams, which are accepted.
    fn flush(&mut self, cx: &mut Context<'_>) {
        self.polled = 0;
        while self.ended.is_none() {
            match self.h2.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => self.accept(request, respond),
                Poll::Ready(Some(Err(e))) => self.ended = Some(connection_result(e)),
                Poll::Ready(None) => self.ended = Some(Ok(())),
                Poll::Pending => return,
            }
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
        let Some(key) = u32::try_from(entry.key()).ok().filter(|k| *k < GROUP) else {
            let status = Status::new(GrpcCode::ResourceExhausted, "too many streams");
            let _ = respond.send_response(status.trailers_only(()), true);
            return;
        };
        if let Some(at) = deadline {
            self.deadlines.push(Reverse((at, key, serial)));
        }
        entry.insert(Call::Reading(Box::new(Reading {
            wake: StreamWake::queued(&self.queue, key),
            recv,
            respond,
            body,
            serial,
        })));
        self.shared.open_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Polls what `key` from the ready queue names: a group or a call.
    fn poll_key(&mut self, key: u32, cx: &mut Context<'_>) {
        if key & GROUP == 0 {
            self.poll_call(key, cx);
            return;
        }
        let g = key & !GROUP;
        let Some(group) = self.groups.slab.get_mut(g as usize) else {
            return;
        };
        group.wake.unqueue();
        group.refresh();
        if !group.fan_out {
            return;
        }
        group.fan_out = false;
        // Every member hears the news in this same round; a member that ends leaves the
        // list (and the last one takes the group with it), so the next is read first.
        let mut member = group.head;
        while member != NONE {
            let next = match self.calls.get(member as usize) {
                Some(Call::Watch(call)) => call.next,
                _ => NONE,
            };
            self.poll_call(member, cx);
            member = next;
        }
    }

    /// Polls the call at `key` (if it is still there).
    fn poll_call(&mut self, key: u32, cx: &mut Context<'_>) {
        self.polled += 1;
        if self.polled >= FLUSH_EVERY {
            self.flush(cx);
        }
        let k = key as usize;
        let read = match self.calls.get_mut(k) {
            None => return,
            Some(Call::Watch(call)) => {
                let group = &self.groups.slab[call.group as usize];
                if let Progress::Done = poll_watch(call, group, self.draining) {
                    self.remove(k);
                }
                return;
            }
            Some(Call::Reading(reading)) => {
                reading.wake.unqueue();
                let waker = Waker::from(Arc::clone(&reading.wake));
                let mut stream_cx = Context::from_waker(&waker);
                read_request(
                    reading,
                    &mut stream_cx,
                    &self.shared,
                    &mut self.groups,
                    &self.queue,
                    self.draining,
                )
            }
        };
        match read {
            Poll::Pending => {}
            Poll::Ready(None) => self.remove(k),
            Poll::Ready(Some((send, g))) => {
                let Some(Call::Reading(reading)) = self.calls.get(k) else {
                    unreachable!("read_request was polled for this call")
                };
                let group = &mut self.groups.slab[g as usize];
                let call = WatchCall {
                    wake: Arc::clone(&reading.wake),
                    send,
                    serial: reading.serial,
                    group: g,
                    prev: NONE,
                    next: group.head,
                    sent: NO_STATUS,
                };
                if let Some(Call::Watch(head)) = self.calls.get_mut(group.head as usize) {
                    head.prev = key;
                }
                group.head = key;
                // Drops the request side (body, respond handle) it no longer needs.
                self.calls[k] = Call::Watch(call);
                // Its first status goes out in this same round.
                self.poll_call(key, cx);
            }
        }
    }

    /// Removes the call at `key`, and its group with its last member.
    fn remove(&mut self, key: usize) {
        if let Call::Watch(call) = self.calls.remove(key) {
            match self.calls.get_mut(call.prev as usize) {
                Some(Call::Watch(prev)) => prev.next = call.next,
                _ => self.groups.slab[call.group as usize].head = call.next,
            }
            if let Some(Call::Watch(next)) = self.calls.get_mut(call.next as usize) {
                next.prev = call.prev;
            }
            self.groups.drop_if_empty(call.group);
        }
        self.shared.open_calls.fetch_sub(1, Ordering::Relaxed);
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
                let _ = w.send.send_trailers(status.trailers());
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

    /// Writes what the cork held (and reads what arrived meanwhile), then holds again;
    /// returns how the connection ended, if it did.
    fn write_held(&mut self, cx: &mut Context<'_>) -> Option<io::Result<()>> {
        self.cork.release();
        self.flush(cx);
        self.cork.hold();
        self.ended.take()
    }

    /// Polls the streams and groups on the ready queue; returns whether there were any.
    fn poll_ready_keys(&mut self, cx: &mut Context<'_>) -> bool {
        let mut keys = std::mem::take(&mut self.keys);
        self.queue.take(&mut keys);
        let any = !keys.is_empty();
        for &key in &keys {
            self.poll_key(key, cx);
        }
        keys.clear();
        self.keys = keys;
        any
    }

    /// The server is stopping: GOAWAY, and every Watch gets its last NOT_SERVING and ends.
    fn start_drain(&mut self, cx: &mut Context<'_>) {
        self.draining = true;
        self.h2.graceful_shutdown();
        let watches: Vec<u32> = self
            .calls
            .iter()
            .filter(|(_, call)| matches!(call, Call::Watch(_)))
            .map(|(key, _)| key as u32)
            .collect();
        for key in watches {
            self.poll_call(key, cx);
        }
    }
}

impl<S: Storage, R> Group<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    /// Catches up with the core watch (and leaves the group's waker with it).
    fn refresh(&mut self) {
        if self.ended {
            return;
        }
        let waker = Waker::from(Arc::clone(&self.wake));
        let mut cx = Context::from_waker(&waker);
        loop {
            match self.watch.as_mut().poll_next(&mut cx) {
                Poll::Ready(Some(status)) => {
                    if status as u8 != self.status {
                        self.status = status as u8;
                        self.fan_out = true;
                    }
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    self.fan_out = true;
                    return;
                }
                Poll::Pending => return,
            }
        }
    }
}

impl<S: Storage, R> Groups<R>
where
    R: StableDeref<Target = Registry<S>> + Clone,
{
    /// The group a new Watch of `name` joins, up to date, so that the stream's first message
    /// is the current status: the connection's group of that name, or a new one.
    fn join(&mut self, registry: &R, queue: &Arc<ReadyQueue>, name: &str) -> Result<u32, Status> {
        if let Some(&g) = self.by_name.get(name) {
            let group = &mut self.slab[g as usize];
            group.refresh();
            if group.fan_out {
                // Its members hear the news when the group is polled, in a moment.
                Wake::wake_by_ref(&group.wake);
            }
            if !group.ended {
                return Ok(g);
            }
            // Its watch ended (`end_watches`) before this stream came: the stream gets a
            // watch of its own, which that call does not end.
            group.named = false;
            self.by_name.remove(name);
        }
        let name: Arc<str> = Arc::from(name);
        let watch = Watch::new(registry.clone(), Arc::clone(&name))?;
        let entry = self.slab.vacant_entry();
        let g = u32::try_from(entry.key())
            .ok()
            .filter(|g| *g < GROUP)
            .ok_or_else(|| Status::new(GrpcCode::ResourceExhausted, "too many streams"))?;
        let mut group = Group {
            wake: StreamWake::idle(queue, g | GROUP),
            watch: Box::pin(watch),
            status: NO_STATUS,
            ended: false,
            fan_out: false,
            named: true,
            head: NONE,
        };
        // The first poll yields the current status at once.
        group.refresh();
        group.fan_out = false;
        entry.insert(group);
        self.by_name.insert(name, g);
        Ok(g)
    }

    /// Drops the group `g` if no stream is left in it.
    fn drop_if_empty(&mut self, g: u32) {
        if self
            .slab
            .get(g as usize)
            .is_some_and(|group| group.head == NONE)
        {
            let group = self.slab.remove(g as usize);
            if group.named {
                self.by_name.remove(group.watch.name());
            }
        }
    }
}

impl<R, IO> Drop for H2Conn<R, IO> {
    fn drop(&mut self) {
        // The connection closed (or its task was aborted) with calls still open: they go
        // with it.
        self.shared
            .open_calls
            .fetch_sub(self.calls.len(), Ordering::Relaxed);
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

/// Reads the request body and answers Check, List and plain requests; a Watch that may
/// start comes back as its send handle and the group it joined.
fn read_request<S: Storage, R>(
    reading: &mut Reading,
    cx: &mut Context<'_>,
    shared: &Shared<R>,
    groups: &mut Groups<R>,
    queue: &Arc<ReadyQueue>,
    draining: bool,
) -> Poll<Option<(SendStream<Bytes>, u32)>>
where
    R: StableDeref<Target = Registry<S>> + Clone,
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
    let registry: &Registry<S> = &shared.registry;
    let answer = body.finish().and_then(|message| match method {
        grpc::Method::Check => {
            grpc::check(registry, message).map(|frame| Answer::Message(Bytes::from_static(frame)))
        }
        grpc::Method::List => grpc::list(registry, message).map(Answer::Message),
        grpc::Method::Watch => {
            let name = grpc::decode_name(message)?;
            if draining {
                // The server is stopping: this Watch hears NOT_SERVING and ends at once.
                Ok(Answer::Last(grpc::status_bytes(ServingStatus::NotServing)))
            } else {
                groups
                    .join(&shared.registry, queue, name)
                    .map(Answer::Watch)
            }
        }
    });
    match answer {
        Ok(Answer::Message(frame)) | Ok(Answer::Last(frame)) => {
            if let Ok(mut send) = reading.respond.send_response(grpc::response(()), false) {
                let _ = send.send_data(frame, false);
                let _ = send.send_trailers(grpc::ok_trailers());
            }
            Poll::Ready(None)
        }
        Ok(Answer::Watch(g)) => match reading.respond.send_response(grpc::response(()), false) {
            Ok(send) => Poll::Ready(Some((send, g))),
            Err(_) => {
                groups.drop_if_empty(g);
                Poll::Ready(None)
            }
        },
        Err(status) => {
            let _ = reading
                .respond
                .send_response(status.trailers_only(()), true);
            Poll::Ready(None)
        }
    }
}

enum Answer {
    /// A unary answer: one message, then OK.
    Message(Bytes),
    /// A Watch during the drain: its last message, then OK.
    Last(Bytes),
    /// A Watch in the group with this key.
    Watch(u32),
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

/// Polls one Watch: sends its group's status if this stream has not sent it yet and the
/// client's window allows, ends it when the server drains or the registry ends its watches,
/// notices a reset.
fn poll_watch<R>(call: &mut WatchCall, group: &Group<R>, draining: bool) -> Progress {
    call.wake.unqueue();
    // First with a no-op waker: tells whether the client reset the stream, and keeps the
    // capacity requests below from waking this stream needlessly (h2 wakes the registered
    // task when it grants capacity). The real waker is registered at the end.
    if call
        .send
        .poll_reset(&mut Context::from_waker(Waker::noop()))
        .is_ready()
    {
        return Progress::Done;
    }
    let (status, ended) = if draining {
        (ServingStatus::NotServing as u8, true)
    } else {
        (group.status, group.ended)
    };
    if status != NO_STATUS && status != call.sent {
        let room = if ended {
            // The last message goes out whatever the window: h2 holds it until the client
            // reads, and the stream ends after it.
            true
        } else {
            call.send.reserve_capacity(STATUS_FRAME_MAX);
            call.send.capacity() >= STATUS_FRAME_MAX
        };
        // Without room (a client that does not read), h2 wakes this stream when the window
        // opens, and the group's status *then* goes out: latest wins.
        if room {
            let status =
                ServingStatus::from_i32(i32::from(status)).unwrap_or(ServingStatus::Unknown);
            if call
                .send
                .send_data(grpc::status_bytes(status), false)
                .is_err()
            {
                return Progress::Done;
            }
            call.sent = status as u8;
        }
    }
    if ended {
        let _ = call.send.send_trailers(grpc::ok_trailers());
        return Progress::Done;
    }
    let waker = Waker::from(Arc::clone(&call.wake));
    match call.send.poll_reset(&mut Context::from_waker(&waker)) {
        Poll::Ready(_) => Progress::Done,
        Poll::Pending => Progress::Pending,
    }
}

impl<S: Storage, R, IO> Future for H2Conn<R, IO>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.queue.register(cx.waker());
        // What `h2` writes in this wake-up waits in memory (see `cork`) ...
        this.cork.hold();
        for _ in 0..ROUNDS_PER_WAKE {
            if !this.draining && this.drain.as_mut().poll(cx).is_ready() {
                this.start_drain(cx);
            }
            // Reads frames, hands what the last round queued to `h2`, takes new streams.
            this.flush(cx);
            if let Some(result) = this.ended.take() {
                // `h2` shut the I/O down, which wrote what was held.
                return Poll::Ready(result);
            }
            this.poll_pong(cx);
            if this.poll_timer(cx) {
                // The peer did not answer a keepalive PING in time.
                return Poll::Ready(Ok(()));
            }
            if !this.poll_ready_keys(cx) {
                // ... and leaves in one write when there is nothing more to do: the
                // SETTINGS ACK, every answer and every status of the wake-up together.
                if let Some(result) = this.write_held(cx) {
                    return Poll::Ready(result);
                }
                // That read may have brought new streams.
                if !this.poll_ready_keys(cx) {
                    return Poll::Pending;
                }
            }
        }
        // Still busy: write what is held, let other connections run, and come back.
        if let Some(result) = this.write_held(cx) {
            return Poll::Ready(result);
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
