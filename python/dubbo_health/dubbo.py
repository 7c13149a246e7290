"""Mount ``grpc.health.v1.Health`` (Check, Watch, List) on an apache-dubbo server.

apache-dubbo (``pip install "./python[dubbo]"``, the Apache dubbo-python project, Python
>= 3.11) serves Triple, which is gRPC on the wire. :func:`with_health` gives a server your own
service handlers plus the health service, on one port::

    import dubbo
    from dubbo.configs import ServiceConfig
    from dubbo_health.dubbo import with_health

    services = with_health(registry, greeter_handler)
    dubbo.Server(ServiceConfig(services, host="127.0.0.1", port=50051)).start()

``ServiceConfig`` takes one handler, while the protocol under it serves several: the object
:func:`with_health` returns is a list of handlers that also carries the first one's
``service_name`` (the name a registry advertises). :func:`service_handler` is the health
handler alone, for a server of its own.

The handlers work on raw bytes with the core's protobuf codec: no generated ``_pb2`` module
and no protobuf runtime. ``grpc-health-probe``, Kubernetes gRPC probes and every gRPC
client's health checking can then ask the Dubbo server itself.

>>> import dubbo_health
>>> from dubbo.proxy.handlers import RpcServiceHandler
>>> from dubbo_health.dubbo import SERVICE_NAME, with_health
>>> greeter = RpcServiceHandler("org.apache.dubbogo.samples.api.Greeter", [])
>>> services = with_health(dubbo_health.Registry(), greeter, max_watches=3)
>>> services.service_name
'org.apache.dubbogo.samples.api.Greeter'
>>> [s.service_name for s in services]
['org.apache.dubbogo.samples.api.Greeter', 'grpc.health.v1.Health']
>>> sorted(services[-1].method_handlers)
['Check', 'List', 'Watch']

What the host allows, and what this module does about it (apache-dubbo 3.0.0b1)
--------------------------------------------------------------------------------
- **Error codes.** A unary handler of the host can only return or raise, and raising always
  answers INTERNAL. The three methods are therefore registered in the server-streaming form
  (the wire is the same for a unary call) and end each call with the status they choose:
  NOT_FOUND for an unknown name, INVALID_ARGUMENT for malformed bytes or a name over 200
  bytes, RESOURCE_EXHAUSTED for a request over 4 MiB or for List over 100 names.
- **``Check("")``.** The host drops an empty request message and hands the handler its
  end-of-stream marker instead; that is read as the empty request (service ``""``). For the
  same reason a call with no request message at all is answered as ``Check("")`` too.
- **Ten threads.** The host runs every call, health and your own services alike, on one of
  10 threads (:data:`HOST_THREADS`, hard-coded in the host) and queues calls beyond that. A
  Watch keeps its thread for as long as it is open, so at most ``max_watches`` (default
  :data:`DEFAULT_MAX_WATCHES`) Watch streams are open at once; one more is answered
  RESOURCE_EXHAUSTED when every slot holds a live client. The other threads stay free for
  Check, List and your services.
- **Requests that never come.** A call whose request message does not arrive within
  ``request_timeout`` (default :data:`DEFAULT_REQUEST_TIMEOUT`) is answered
  DEADLINE_EXCEEDED, so a client that opens calls and sends nothing cannot hold the threads.
- **Dead clients.** The host never tells a handler that its client cancelled or went away,
  and a write to such a stream does not fail. Each Watch therefore looks at the host's own
  state for its stream, read-only, every ``poll_interval`` seconds (default
  :data:`DEFAULT_POLL_INTERVAL`), before each message, and whenever a new Watch finds every
  slot taken: a stream the client reset, or a connection that closed, ends the Watch and
  frees its thread (and its slot goes to the new Watch). No message is re-sent to
  find out (the protocol forbids two equal messages in a row). If the host's objects are not
  laid out as in 3.0.0b1, that check is off (a warning is logged once) and a dead client's
  Watch keeps its slot until the server drains.
- **Writes racing a cancel.** In 3.0.0b1 a message written to a stream the client has just
  reset stops the host from sending data on that whole connection. Checking the stream first
  leaves only the moment between that check and the host's write (about a millisecond): a
  client whose connection carries other calls can still lose them if it cancels a Watch
  exactly as the status changes.
- **Other host limits** (not something a handler can change): calls on an older client
  connection hang once a newer connection is open (fixed upstream after 3.0.0b1:
  apache/dubbo-python#47); ``Server`` has ``start()`` only, and no port 0; starting it
  switches the process to uvloop; a request whose HEADERS frame ends the stream is never
  answered; every answer has content-type ``application/grpc+data``, which grpclib clients
  refuse; an error status also goes out as an extra ``tri_rpc_status`` trailer.

Draining: ``services.drain()`` (the object :func:`with_health` returns) shuts the registry
down (every watcher sees NOT_SERVING), ends every Watch stream and waits for their threads,
so the process can exit without cutting the last messages off.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional, Protocol, Union

from dubbo.classes import EOF
from dubbo.protocol.triple.constants import GRpcCode
from dubbo.protocol.triple.status import TriRpcStatus
from dubbo.proxy.handlers import RpcMethodHandler, RpcServiceHandler

from . import _native
from ._native import Registry, Watch
from ._types import RpcError

__all__ = [
    "DEFAULT_MAX_WATCHES",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_REQUEST_TIMEOUT",
    "FLUSH_DELAY",
    "HOST_THREADS",
    "MAX_REQUEST_SIZE",
    "RECLAIM_WAIT",
    "SERVICE_NAME",
    "ServiceHandlers",
    "service_handler",
    "with_health",
]

SERVICE_NAME = "grpc.health.v1.Health"
"""The full gRPC service name the handler is mounted under."""

HOST_THREADS = 10
"""Threads apache-dubbo 3.0.0b1 runs calls on (hard-coded in the host)."""

DEFAULT_MAX_WATCHES = 5
"""Watch streams open at once by default: half of :data:`HOST_THREADS`."""

DEFAULT_POLL_INTERVAL = 0.5
"""Seconds between two looks at whether a Watch's client is still there."""

DEFAULT_REQUEST_TIMEOUT = 10.0
"""Seconds a call may take to deliver its request message before it is answered
DEADLINE_EXCEEDED (so a client that never sends one does not keep a thread)."""

MAX_REQUEST_SIZE = 4 * 1024 * 1024
"""The largest request accepted, as gRPC's default (the host itself has no limit)."""

RECLAIM_WAIT = 0.25
"""Seconds a new Watch waits for a slot it reclaimed from a client that is gone."""

FLUSH_DELAY = 0.1
"""Seconds :meth:`ServiceHandlers.drain` leaves the host's event loop to send the last
frames once every Watch has ended."""

_OK = 0
_DEADLINE_EXCEEDED = 4
_RESOURCE_EXHAUSTED = 8
_INTERNAL = 13

_log = logging.getLogger(__name__)


class _Stream(Protocol):
    """What the host hands a server-streaming handler (a ``TriReadWriteStream``)."""

    def read(self, timeout: Optional[float] = None) -> object: ...

    def write(self, data: bytes) -> None: ...

    def done_writing(self, **kwargs: object) -> None: ...


def _identity(data: bytes) -> bytes:
    return data


def _finish(stream: _Stream, code: int = _OK, message: str = "") -> None:
    """Ends the call with a gRPC status (trailers)."""
    if code == _OK:
        stream.done_writing()
        return
    # The host also sends this argument on as a trailer of its own (``tri_rpc_status``: it
    # removes "tri-rpc-status" instead); clients ignore it.
    status = TriRpcStatus(GRpcCode.from_code(code), description=message or None)
    stream.done_writing(tri_rpc_status=status)


class _Link:
    """The host's own view of one call's HTTP/2 stream and connection, read-only.

    apache-dubbo 3.0.0b1 hands a handler no cancellation signal, so this reads the state the
    host keeps anyway: the h2 library's stream state (closed once the client resets it) and
    the asyncio transport (closing once the connection is gone). Nothing is changed.
    """

    _warned = False

    def __init__(self, stream: object) -> None:
        self._h2 = None
        self._transport = None
        self._stream_id = -1
        try:
            h2_stream = stream._write_stream._call._server_stream._stream  # type: ignore[attr-defined]
            protocol = h2_stream._protocol
            self._h2 = protocol._h2_connection
            self._transport = protocol._transport
            self._stream_id = int(h2_stream.id)
            self._h2.streams.get  # noqa: B018 -- the attribute must exist
            self._transport.is_closing  # noqa: B018
        except (AttributeError, TypeError, ValueError):
            self._h2 = None
            if not _Link._warned:
                _Link._warned = True
                _log.warning(
                    "dubbo_health.dubbo: this apache-dubbo does not expose its stream state "
                    "as 3.0.0b1 does; Watch cannot notice clients that go away"
                )

    def client_gone(self) -> bool:
        """True once the client reset the stream or the connection closed."""
        if self._h2 is None:
            return False
        try:
            if self._transport is None or self._transport.is_closing():
                return True
            state = self._h2.streams.get(self._stream_id)
            return state is None or bool(state.closed)
        except Exception:  # state read from another thread: treat as unknown
            return False


class _Health:
    """The three handlers over one registry, with the Watch slots."""

    def __init__(
        self, registry: Registry, max_watches: int, poll_interval: float, request_timeout: float
    ) -> None:
        self._registry = registry
        self._max_watches = max_watches
        self._slots = threading.BoundedSemaphore(max_watches) if max_watches else None
        self._poll_interval = poll_interval
        self._request_timeout = request_timeout
        # The open Watch streams: their link to the host's state, and the registry watch.
        self._watching: dict[int, tuple[_Link, Watch]] = {}
        self._open_lock = threading.Lock()

    @property
    def open_watches(self) -> int:
        return len(self._watching)

    @property
    def max_watches(self) -> int:
        return self._max_watches

    def drain(self, timeout: float) -> bool:
        self._registry.shutdown()
        self._registry.end_watches()
        deadline = time.monotonic() + timeout
        while self._watching and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(FLUSH_DELAY)
        return not self._watching

    def _request(self, stream: _Stream) -> Union[bytes, RpcError]:
        """The request message, or the error to end the call with."""
        data = stream.read(timeout=self._request_timeout)
        if data is None:
            return RpcError(
                _DEADLINE_EXCEEDED,
                f"no request message within {self._request_timeout:g} s",
            )
        if data is EOF:
            # The host drops an empty message and passes on the end of the stream instead.
            return b""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return RpcError(_INTERNAL, f"unexpected request object {type(data).__name__}")
        if len(data) > MAX_REQUEST_SIZE:
            return RpcError(
                _RESOURCE_EXHAUSTED,
                f"request of {len(data)} bytes is over the limit of {MAX_REQUEST_SIZE} bytes",
            )
        return bytes(data)

    def _unary(self, stream: _Stream, method: str) -> None:
        request = self._request(stream)
        if isinstance(request, RpcError):
            _finish(stream, request.code, request.message)
            return
        try:
            if method == "Check":
                response = _native.handle_check(self._registry, request)
            else:
                response = _native.handle_list(self._registry, request)
        except RpcError as err:
            _finish(stream, err.code, err.message)
            return
        stream.write(response)
        _finish(stream)

    def check(self, stream: _Stream) -> None:
        self._unary(stream, "Check")

    def list_(self, stream: _Stream) -> None:
        self._unary(stream, "List")

    def watch(self, stream: _Stream) -> None:
        request = self._request(stream)
        if isinstance(request, RpcError):
            _finish(stream, request.code, request.message)
            return
        try:
            name = _native.decode_check_request(request)
        except RpcError as err:
            _finish(stream, err.code, err.message)
            return
        if not self._take_slot():
            _finish(
                stream,
                _RESOURCE_EXHAUSTED,
                f"{self._max_watches} Watch streams are open, the most this server allows "
                "(max_watches); try again later",
            )
            return
        try:
            self._stream_statuses(stream, name)
        finally:
            self._release_slot()

    def _release_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def _take_slot(self) -> bool:
        """A Watch slot; when all are taken, first reclaims those whose client is gone."""
        if self._slots is None:
            return False
        if self._slots.acquire(blocking=False):
            return True
        with self._open_lock:
            gone = [watch for link, watch in self._watching.values() if link.client_gone()]
        if not gone:
            return False
        for watch in gone:
            watch.close()  # its thread ends the call and gives the slot back
        return self._slots.acquire(timeout=RECLAIM_WAIT)

    def _stream_statuses(self, stream: _Stream, name: str) -> None:
        link = _Link(stream)
        with self._registry.watch(name, timeout=self._poll_interval) as statuses:
            key = id(statuses)
            with self._open_lock:
                self._watching[key] = (link, statuses)
            try:
                while True:
                    try:
                        status = next(statuses)
                    except TimeoutError:
                        if link.client_gone():
                            break
                        continue
                    except StopIteration:
                        break
                    if link.client_gone():
                        break
                    stream.write(_native.encode_check_response(status))
            finally:
                with self._open_lock:
                    del self._watching[key]
        # Also when the client is gone: without trailers the host would end the call itself,
        # logging an error.
        _finish(stream)


def service_handler(
    registry: Registry,
    *,
    max_watches: int = DEFAULT_MAX_WATCHES,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> RpcServiceHandler:
    """The ``grpc.health.v1.Health`` service handler for ``registry``.

    ``ServiceConfig(service_handler(registry), host=..., port=...)`` serves health alone;
    :func:`with_health` serves it beside your own services.

    ``max_watches`` Watch streams may be open at once (0 turns Watch off: every Watch is
    answered RESOURCE_EXHAUSTED); it must stay below :data:`HOST_THREADS` so Check and your
    own services always have a thread. ``poll_interval`` is how often, in seconds, an idle
    Watch looks whether its client has gone; ``request_timeout`` bounds the wait for a call's
    request message.

    Raises ``ValueError`` for a ``max_watches`` outside ``0 .. HOST_THREADS - 1`` or a
    non-positive interval or timeout.

    >>> import dubbo_health
    >>> service_handler(dubbo_health.Registry(), max_watches=10)
    Traceback (most recent call last):
    ...
    ValueError: max_watches must be between 0 and 9 (the host runs calls on 10 threads), not 10
    """
    _check_options(max_watches, poll_interval, request_timeout)
    return _handler(_Health(registry, max_watches, poll_interval, request_timeout))


def _check_options(max_watches: int, poll_interval: float, request_timeout: float) -> None:
    if isinstance(max_watches, bool) or not isinstance(max_watches, int):
        raise TypeError(f"max_watches must be an int, not {type(max_watches).__name__}")
    if not 0 <= max_watches < HOST_THREADS:
        raise ValueError(
            f"max_watches must be between 0 and {HOST_THREADS - 1} (the host runs calls on "
            f"{HOST_THREADS} threads), not {max_watches}"
        )
    if not poll_interval > 0:
        raise ValueError(f"poll_interval must be positive, not {poll_interval}")
    if not request_timeout > 0:
        raise ValueError(f"request_timeout must be positive, not {request_timeout}")


def _handler(health: _Health) -> RpcServiceHandler:
    def method(handler: object, name: str) -> RpcMethodHandler:
        return RpcMethodHandler.server_stream(
            handler,
            method_name=name,
            request_deserializer=_identity,
            response_serializer=_identity,
        )

    return RpcServiceHandler(
        SERVICE_NAME,
        [
            method(health.check, "Check"),
            method(health.watch, "Watch"),
            method(health.list_, "List"),
        ],
    )


class ServiceHandlers(list):  # type: ignore[type-arg]
    """Several ``RpcServiceHandler`` for one ``ServiceConfig``, the health service last: a
    list (the host's protocol serves every handler of an iterable) whose ``service_name`` is
    the first handler's (the one ``ServiceConfig`` puts in the URL a registry advertises).
    Made by :func:`with_health`."""

    def __init__(self, handlers: list[RpcServiceHandler], health: _Health) -> None:
        super().__init__(handlers)
        self._health = health

    @property
    def service_name(self) -> str:
        """The first handler's service name."""
        return str(self[0].service_name)

    @property
    def open_watches(self) -> int:
        """Watch streams open now (each holds one of the host's threads)."""
        return self._health.open_watches

    @property
    def max_watches(self) -> int:
        """The most Watch streams open at once; one more is answered RESOURCE_EXHAUSTED."""
        return self._health.max_watches

    def drain(self, timeout: float = 5.0) -> bool:
        """Graceful stop of the health service, before the process exits (the host itself
        cannot be stopped): ``shutdown()`` the registry (every watcher hears NOT_SERVING),
        end every Watch stream, and wait up to ``timeout`` seconds for their threads to
        return. True when they all did.

        The host writes the last frames from its event loop a moment after a handler
        returns, so this waits :data:`FLUSH_DELAY` more once the Watches are done.
        """
        return self._health.drain(timeout)


def with_health(
    registry: Registry,
    *services: RpcServiceHandler,
    max_watches: int = DEFAULT_MAX_WATCHES,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> ServiceHandlers:
    """``services`` followed by the health service of ``registry``, for one
    ``ServiceConfig(..., host=..., port=...)``: one port serves them all.

    The keyword arguments are :func:`service_handler`'s. Raises ``ValueError`` when two
    services have the same name (one would hide the other) or one is named
    :data:`SERVICE_NAME`.

    >>> import dubbo_health
    >>> from dubbo.proxy.handlers import RpcServiceHandler
    >>> with_health(dubbo_health.Registry(), RpcServiceHandler(SERVICE_NAME, []))
    Traceback (most recent call last):
    ...
    ValueError: a service of your own is named grpc.health.v1.Health
    """
    names = [str(s.service_name) for s in services]
    if SERVICE_NAME in names:
        raise ValueError(f"a service of your own is named {SERVICE_NAME}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"services named more than once: {', '.join(twice)}")
    _check_options(max_watches, poll_interval, request_timeout)
    health = _Health(registry, max_watches, poll_interval, request_timeout)
    return ServiceHandlers([*services, _handler(health)], health)
