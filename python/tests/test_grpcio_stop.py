"""The grpcio mount's stop path (``add_to_server(...).stop(grace)`` and ``.drain()``) with a
real grpcio client's Watch open: the watcher hears NOT_SERVING, its stream ends with OK, and
the server stops at once, where a plain ``server.stop(grace)`` waits out the grace and then
cuts the watcher off."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import grpc
from conftest import AioServer, SyncServer
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dubbo_health import Registry, ServingStatus

PB = health_pb2.HealthCheckResponse
GREETER = "org.apache.dubbogo.samples.api.Greeter"
GRACE = 20.0


def watch(channel: grpc.Channel, service: str) -> Any:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=30)


def check(channel: grpc.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)


def test_stop_drains_the_open_watch_then_stops_within_the_grace(
    grpcio_server: SyncServer | AioServer, registry: Registry, channel_to: Callable[..., Any]
) -> None:
    registry.set(GREETER, ServingStatus.SERVING)
    call = watch(channel_to(grpcio_server.port), GREETER)
    assert next(call).status == PB.SERVING

    start = time.monotonic()
    if isinstance(grpcio_server, SyncServer):
        stopped = grpcio_server.health.stop(GRACE)
    else:
        stopping = grpcio_server.health.stop(GRACE)
        future = asyncio.run_coroutine_threadsafe(stopping, grpcio_server.loop)

    assert [r.status for r in call] == [PB.NOT_SERVING]  # then the stream ends...
    assert call.code() is grpc.StatusCode.OK  # ...cleanly, not cut off
    if isinstance(grpcio_server, SyncServer):
        assert stopped.wait(GRACE / 2)
    else:
        future.result(GRACE / 2)
    assert time.monotonic() - start < GRACE / 2  # the grace was not waited out
    # Only this mount drained: the registry (other servers over it) is as it was.
    assert registry.check(GREETER) is ServingStatus.SERVING


def test_drain_ends_watches_once_and_leaves_check_serving(
    grpcio_server: SyncServer | AioServer, registry: Registry, channel_to: Callable[..., Any]
) -> None:
    channel = channel_to(grpcio_server.port)
    registry.set(GREETER, ServingStatus.SERVING)
    serving = watch(channel, GREETER)
    assert next(serving).status == PB.SERVING
    registry.set("down", ServingStatus.NOT_SERVING)
    down = watch(channel, "down")
    assert next(down).status == PB.NOT_SERVING

    grpcio_server.health.drain()  # from this thread, whatever the server's flavour
    assert [r.status for r in serving] == [PB.NOT_SERVING]
    assert [r.status for r in down] == []  # it had just said NOT_SERVING: not twice
    assert serving.code() is grpc.StatusCode.OK
    assert down.code() is grpc.StatusCode.OK

    late = watch(channel, GREETER)  # a Watch opened during the stop ends at once too
    assert [r.status for r in late] == [PB.NOT_SERVING]
    assert late.code() is grpc.StatusCode.OK
    assert check(channel, GREETER) == PB.SERVING  # Check still answers from the registry
