"""Mount ``grpc.health.v1.Health`` (Check, Watch, List) on a grpcio server.

>>> import grpc
>>> from concurrent import futures
>>> import dubbo_health
>>> from dubbo_health.grpcio import add_to_server
>>> registry = dubbo_health.Registry()
>>> server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
>>> health = add_to_server(registry, server)
>>> port = server.add_insecure_port("127.0.0.1:0")
>>> server.start()
>>> health.stop(grace=5).wait(5)  # in place of server.stop(grace=5): drain, then stop
True
>>> registry.get("")  # the registry is untouched: other servers over it go on serving
<ServingStatus.SERVING: 1>

The handlers work on raw bytes with the core's protobuf codec, so neither this package
nor your code needs generated ``_pb2`` modules. Works with ``grpc.server(...)`` and
``grpc.aio.server()``.

Watch on a synchronous ``grpc.server``
--------------------------------------
grpcio runs each RPC of a synchronous server on a thread of its executor, and a Watch
stream keeps its thread until the client goes away (the thread waits with the GIL
released, so it costs memory, not CPU). With ``ThreadPoolExecutor(max_workers=10)``, ten
open Watch streams leave no thread for any other RPC. Either:

- serve from ``grpc.aio.server()``: an asyncio Watch costs no thread at all; or
- size the pool for the watchers you expect plus your own traffic, and pass
  ``maximum_concurrent_rpcs`` to ``grpc.server`` so extra RPCs are refused
  (RESOURCE_EXHAUSTED) instead of queued; or
- keep health off the application server: :func:`dubbo_health.serve` runs the health
  service on its own port from a Rust thread, watchers included.

Stopping
--------
A Watch stream only ends when its client goes away, so a plain ``server.stop(grace)`` waits
out the whole grace for open watchers and then cuts them off, without their ever hearing
that the server is going. :func:`add_to_server` returns the mount's stop path,
:class:`Mount`: ``health.stop(grace)`` (``await health.stop(grace)`` on ``grpc.aio``)
first drains the mount, each open Watch stream sending a last NOT_SERVING (unless it just
did) and ending with OK, then stops the server. ``health.drain()`` is the drain alone;
Watch streams that open after it get NOT_SERVING and end at once. The registry and other
servers over it are untouched; call ``registry.shutdown()`` as well to turn every status
NOT_SERVING everywhere.

gRPC's rules
------------
The handlers are registered as stream-request handlers, so they see how many request
messages a call carried: none, or more than one, on Check, Watch or List is answered with
``UNIMPLEMENTED`` (gRPC's status-code guide; grpcio's own unary handlers let a second
message through, and on ``grpc.aio`` a call with none hangs until its deadline). A message
of length 0 is one message: the name ``""``. Malformed request bytes are
``INVALID_ARGUMENT``.

What grpcio decides before a handler runs, the same on both server flavours (the tests
pin each): a request over the server's ``grpc.max_receive_message_length`` (4 MiB by
default) is ``RESOURCE_EXHAUSTED``; ``gzip`` and ``deflate`` requests are decompressed
(``grpc-accept-encoding: identity, deflate, gzip``), and one that does not decompress is
``INTERNAL``. A ``grpc-encoding`` grpcio does not know, or a compressed message without
one, is ``INTERNAL`` too: grpcio refuses the header itself, where gRPC's status-code guide
asks for ``UNIMPLEMENTED``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NoReturn, Union, overload

import grpc
import grpc.aio

from . import _native
from ._native import AsyncWatch, Registry, Watch
from ._types import RpcError, ServingStatus

__all__ = ["SERVICE_NAME", "AioMount", "Mount", "add_to_server"]

SERVICE_NAME = "grpc.health.v1.Health"
"""The full gRPC service name the handlers are mounted under."""

_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _status_code(number: int) -> grpc.StatusCode:
    return _STATUS_CODES.get(number, grpc.StatusCode.UNKNOWN)


def _identity(data: bytes) -> bytes:
    return data


class _Watches:
    """The open Watch streams of one mount, and whether the mount is draining."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[Watch | AsyncWatch] = set()
        self.draining = False

    def add(self, watch: Watch | AsyncWatch) -> bool:
        """Tracks ``watch``; ``False`` (not tracked) once the mount drains."""
        with self._lock:
            if not self.draining:
                self._open.add(watch)
            return not self.draining

    def discard(self, watch: Watch | AsyncWatch) -> None:
        with self._lock:
            self._open.discard(watch)

    def drain(self) -> None:
        with self._lock:
            self.draining = True
            watches, self._open = self._open, set()
        for watch in watches:  # each stream then sends its last NOT_SERVING and ends
            watch.close()


_NOT_SERVING = _native.encode_check_response(ServingStatus.NOT_SERVING)
_NO_REQUEST = "expected exactly one request message, got none"
_TOO_MANY_REQUESTS = "expected exactly one request message, got more"


def _method_handlers(
    check: Callable[..., Any], watch: Callable[..., Any], list_: Callable[..., Any]
) -> dict[str, grpc.RpcMethodHandler[bytes, bytes]]:
    """The three health methods as raw-bytes handlers (sync or aio behaviours alike), taking
    the request stream so that they can count its messages."""
    return {
        "Check": grpc.stream_unary_rpc_method_handler(
            check, request_deserializer=_identity, response_serializer=_identity
        ),
        "Watch": grpc.stream_stream_rpc_method_handler(
            watch, request_deserializer=_identity, response_serializer=_identity
        ),
        "List": grpc.stream_unary_rpc_method_handler(
            list_, request_deserializer=_identity, response_serializer=_identity
        ),
    }


def _sync_handlers(
    registry: Registry, watches: _Watches
) -> dict[str, grpc.RpcMethodHandler[bytes, bytes]]:
    def abort(context: grpc.ServicerContext, err: RpcError) -> NoReturn:
        context.abort(_status_code(err.code), err.message)
        raise AssertionError("context.abort returned")  # pragma: no cover

    def one_request(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        """The call's only request message, once the client has half-closed."""
        first = next(requests, None)
        if first is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, _NO_REQUEST)
        if next(requests, None) is not None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, _TOO_MANY_REQUESTS)
        return first

    def check(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        request = one_request(requests, context)
        try:
            return _native.handle_check(registry, request)
        except RpcError as err:
            abort(context, err)

    def list_(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        request = one_request(requests, context)
        try:
            return _native.handle_list(registry, request)
        except RpcError as err:
            abort(context, err)

    def watch(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        request = one_request(requests, context)
        try:
            name = _native.decode_check_request(request)
        except RpcError as err:
            abort(context, err)
        with registry.watch(name) as statuses:
            # Ends the iteration (and frees this thread) when the client goes away.
            if not context.add_callback(statuses.close):
                return
            if not watches.add(statuses):
                yield _NOT_SERVING
                return
            last = None
            try:
                for status in statuses:
                    last = status
                    yield _native.encode_check_response(status)
            finally:
                watches.discard(statuses)
            if watches.draining and last != ServingStatus.NOT_SERVING and context.is_active():
                yield _NOT_SERVING

    return _method_handlers(check, watch, list_)


def _aio_handlers(
    registry: Registry, watches: _Watches
) -> dict[str, grpc.RpcMethodHandler[bytes, bytes]]:
    async def abort(context: grpc.aio.ServicerContext[bytes, bytes], err: RpcError) -> NoReturn:
        await context.abort(_status_code(err.code), err.message)
        raise AssertionError("context.abort returned")  # pragma: no cover

    async def one_request(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        """The call's only request message, once the client has half-closed."""
        messages = requests.__aiter__()
        try:
            first = await messages.__anext__()
        except StopAsyncIteration:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, _NO_REQUEST)
        try:
            await messages.__anext__()
        except StopAsyncIteration:
            return first
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, _TOO_MANY_REQUESTS)

    async def check(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        request = await one_request(requests, context)
        try:
            return _native.handle_check(registry, request)
        except RpcError as err:
            await abort(context, err)

    async def list_(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        request = await one_request(requests, context)
        try:
            return _native.handle_list(registry, request)
        except RpcError as err:
            await abort(context, err)

    async def watch(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        request = await one_request(requests, context)
        try:
            name = _native.decode_check_request(request)
        except RpcError as err:
            await abort(context, err)
        statuses = registry.watch_async(name)
        if not watches.add(statuses):
            statuses.close()
            yield _NOT_SERVING
            return
        last = None
        try:
            # Cancelled when the client goes away; the watch is freed with it.
            async for status in statuses:
                last = status
                yield _native.encode_check_response(status)
        finally:
            watches.discard(statuses)
            statuses.close()
        if watches.draining and last != ServingStatus.NOT_SERVING:
            yield _NOT_SERVING

    return _method_handlers(check, watch, list_)


class Mount:
    """The stop path of the health service mounted on a ``grpc.server`` (what
    :func:`add_to_server` returns)."""

    def __init__(self, server: grpc.Server, watches: _Watches) -> None:
        self._server = server
        self._watches = watches

    def drain(self) -> None:
        """Ends this mount's Watch streams: each sends a last NOT_SERVING (unless that was
        its last message) and ends with OK; streams that open later do so at once. Check and
        List go on answering; the registry is not changed."""
        self._watches.drain()

    def stop(self, grace: float | None) -> threading.Event:
        """:meth:`drain`, then ``server.stop(grace)``: the event is set once the server has
        stopped, within ``grace`` seconds however many watchers were open."""
        self.drain()
        return self._server.stop(grace)


class AioMount:
    """The stop path of the health service mounted on a ``grpc.aio.server()`` (what
    :func:`add_to_server` returns for one)."""

    def __init__(self, server: grpc.aio.Server, watches: _Watches) -> None:
        self._server = server
        self._watches = watches

    def drain(self) -> None:
        """As :meth:`Mount.drain`; from any thread."""
        self._watches.drain()

    async def stop(self, grace: float | None) -> None:
        """:meth:`drain`, then ``await server.stop(grace)``."""
        self.drain()
        await self._server.stop(grace)


@overload
def add_to_server(registry: Registry, server: grpc.aio.Server) -> AioMount: ...
@overload
def add_to_server(registry: Registry, server: grpc.Server) -> Mount: ...
def add_to_server(
    registry: Registry, server: Union[grpc.Server, grpc.aio.Server]
) -> Union[Mount, AioMount]:
    """Mounts ``grpc.health.v1.Health`` for ``registry`` on ``server``.

    Call it before ``server.start()``. ``server`` is a ``grpc.server(...)`` or a
    ``grpc.aio.server()``; the aio flavour gets coroutine handlers. Returns the mount's
    stop path: call ``.stop(grace)`` on it instead of ``server.stop(grace)``.
    """
    watches = _Watches()
    mount: Union[Mount, AioMount]
    if isinstance(server, grpc.aio.Server):
        handlers = _aio_handlers(registry, watches)
        mount = AioMount(server, watches)
    else:
        handlers = _sync_handlers(registry, watches)
        mount = Mount(server, watches)
    generic = grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)
    server.add_generic_rpc_handlers((generic,))
    return mount
