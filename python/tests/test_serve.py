"""dubbo_health.serve(): the standalone Rust server, probed by real clients."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from conftest import probe, run_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from health_list import list_statuses

import dubbo_health
from dubbo_health import Registry, ServingStatus

S = ServingStatus
PB = health_pb2.HealthCheckResponse
GREETER = "org.apache.dubbogo.samples.api.Greeter"


@pytest.fixture
def server(registry: Registry) -> Iterator[dubbo_health.Server]:
    with dubbo_health.serve(registry, "127.0.0.1:0") as running:
        yield running


@pytest.fixture
def channel(server: dubbo_health.Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as opened:
        yield opened


def test_server_object(server: dubbo_health.Server) -> None:
    assert server.port > 0
    assert server.address == f"127.0.0.1:{server.port}"
    assert server.running
    assert repr(server) == f"Server('127.0.0.1:{server.port}', running)"


def test_check_watch_list(registry: Registry, channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    registry.set(GREETER, S.NOT_SERVING)
    request = health_pb2.HealthCheckRequest
    assert health.Check(request(service=""), timeout=5).status == PB.SERVING
    assert health.Check(request(service=GREETER), timeout=5).status == PB.NOT_SERVING
    with pytest.raises(grpc.RpcError) as info:
        health.Check(request(service="nope"), timeout=5)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    assert list_statuses(channel) == {"": PB.SERVING, GREETER: PB.NOT_SERVING}
    call = health.Watch(request(service=GREETER), timeout=10)
    assert next(call).status == PB.NOT_SERVING
    registry.set(GREETER, S.SERVING)
    assert next(call).status == PB.SERVING
    call.cancel()


def test_probe_exit_codes(registry: Registry, server: dubbo_health.Server) -> None:
    registry.set("down", S.NOT_SERVING)
    assert probe(server.port).returncode == 0
    assert probe(server.port, "down").returncode == 4
    assert probe(server.port, "nope").returncode == 3
    registry.set("down", S.SERVING)
    assert probe(server.port, "down").returncode == 0


def test_stop_drains_then_closes(registry: Registry) -> None:
    server = dubbo_health.serve(registry, "127.0.0.1:0")
    port = server.port
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        call = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert next(call).status == PB.SERVING
        unknown = health.Watch(health_pb2.HealthCheckRequest(service="nobody"), timeout=10)
        assert next(unknown).status == PB.SERVICE_UNKNOWN
        server.stop(grace=5)
        # the watcher saw NOT_SERVING before its stream ended; open watches did not hold up stop
        assert [r.status for r in call] == [PB.NOT_SERVING]
        assert list(unknown) == []
    assert not server.running
    assert registry.is_shut_down
    assert registry.get("") is S.NOT_SERVING
    assert probe(port, None, "-connect-timeout=300ms").returncode == 2  # nothing listens
    server.stop()  # twice is fine
    assert repr(server).endswith("stopped)")
    registry.resume()
    assert registry.get("") is S.SERVING


def test_stop_wakes_python_watchers(registry: Registry) -> None:
    server = dubbo_health.serve(registry, "127.0.0.1:0")
    blocking = registry.watch("")
    assert next(blocking) is S.SERVING

    async def main() -> list[ServingStatus]:
        watch = registry.watch_async("")
        assert await watch.__anext__() is S.SERVING
        loop = asyncio.get_running_loop()
        stopper = loop.run_in_executor(None, server.stop, 5.0)
        seen = [status async for status in watch]
        await stopper
        return seen

    assert run_async(main()) == [S.NOT_SERVING]
    assert list(blocking) == [S.NOT_SERVING]


def test_context_manager_stops(registry: Registry) -> None:
    with dubbo_health.serve(registry, "127.0.0.1:0") as server:
        assert probe(server.port).returncode == 0
    assert not server.running
    assert registry.is_shut_down


def test_dropping_the_server_stops_it_without_draining(registry: Registry) -> None:
    server = dubbo_health.serve(registry, "127.0.0.1:0")
    port = server.port
    del server
    assert probe(port, None, "-connect-timeout=300ms").returncode == 2
    assert not registry.is_shut_down


def test_hostname_and_port_zero(registry: Registry) -> None:
    with dubbo_health.serve(registry, "localhost:0") as server:
        assert server.port > 0


@pytest.mark.parametrize("address", ["", "127.0.0.1", "127.0.0.1:port", "127.0.0.1:99999"])
def test_bad_address(registry: Registry, address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        dubbo_health.serve(registry, address)


def test_port_in_use_is_an_oserror(registry: Registry) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            dubbo_health.serve(registry, f"127.0.0.1:{taken.getsockname()[1]}")


@pytest.mark.parametrize("grace", [-1.0, float("nan")])
def test_bad_grace(server: dubbo_health.Server, grace: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        server.stop(grace=grace)
    assert server.running


def test_serving_from_threads(registry: Registry, server: dubbo_health.Server) -> None:
    errors: list[BaseException] = []

    def flip(i: int) -> None:
        try:
            for j in range(50):
                registry.set(f"t{i}", S.SERVING if j % 2 else S.NOT_SERVING)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=flip, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert probe(server.port, "t0").returncode == 0


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x0a\x05ab", grpc.StatusCode.INVALID_ARGUMENT),
        (b"\x12\x80\x80\x80\x03" + b"x" * (5 << 20), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
    ids=["truncated", "5MiB"],
)
def test_bad_requests_keep_the_server_serving(
    server: dubbo_health.Server, payload: bytes, code: grpc.StatusCode
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        raw_check: Any = channel.unary_unary("/grpc.health.v1.Health/Check")
        with pytest.raises(grpc.RpcError) as info:
            raw_check(payload, timeout=10)
        assert info.value.code() is code
    assert probe(server.port).returncode == 0
