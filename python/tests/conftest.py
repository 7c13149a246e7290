"""Shared fixtures: registries, grpcio servers (sync and aio) with health mounted, the probe."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any, Callable, TypeVar

# grpcio's fork handlers can abort a child forked by subprocess before it execs (seen with
# Python 3.9, which forks where later versions use vfork); the tests never fork grpc itself.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import grpc
import pytest

import dubbo_health
from dubbo_health.grpcio import add_to_server

T = TypeVar("T")

PROBE_TIMEOUT = 10.0


@pytest.fixture
def registry() -> dubbo_health.Registry:
    return dubbo_health.Registry()


def probe_path() -> str:
    """grpc-health-probe: required (installed by ci/install-40-python.sh), never skipped."""
    found = shutil.which("grpc-health-probe") or str(Path.home() / "go/bin/grpc-health-probe")
    if not os.access(found, os.X_OK):
        pytest.fail("grpc-health-probe is not installed: run ci/install-40-python.sh")
    return found


def probe(port: int, service: str | None = None, *extra: str) -> subprocess.CompletedProcess[str]:
    """Runs grpc-health-probe against 127.0.0.1:port and returns the finished process."""
    args = [probe_path(), f"-addr=127.0.0.1:{port}", "-connect-timeout=2s", "-rpc-timeout=2s"]
    if service is not None:
        args.append(f"-service={service}")
    args.extend(extra)
    return subprocess.run(args, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False)


def run_async(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Runs `coro` in a fresh event loop; fails on any error the loop logged."""
    errors: list[dict[str, Any]] = []

    async def main() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        return await asyncio.wait_for(coro, timeout)

    result = asyncio.run(main())
    assert errors == []
    return result


class SyncServer:
    """A `grpc.server` with the health service mounted, on 127.0.0.1:0."""

    def __init__(self, registry: dubbo_health.Registry, workers: int = 8) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        self.health = add_to_server(registry, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        assert self.port > 0
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=None).wait(5)


class AioServer:
    """A `grpc.aio.server()` with the health service mounted, on its own event-loop thread."""

    def __init__(self, registry: dubbo_health.Registry) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self.call(self._start(registry))

    async def _start(self, registry: dubbo_health.Registry) -> int:
        self.server = grpc.aio.server()
        self.health = add_to_server(registry, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return port

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self) -> None:
        self.call(self.server.stop(None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(params=["sync", "aio"])
def grpcio_server(
    request: pytest.FixtureRequest, registry: dubbo_health.Registry
) -> Iterator[SyncServer | AioServer]:
    server: SyncServer | AioServer = (
        SyncServer(registry) if request.param == "sync" else AioServer(registry)
    )
    yield server
    server.stop()


@pytest.fixture
def channel_to() -> Iterator[Callable[[int], grpc.Channel]]:
    opened: list[grpc.Channel] = []

    def connect(port: int) -> grpc.Channel:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        opened.append(channel)
        return channel

    yield connect
    for channel in opened:
        channel.close()


def collect() -> None:
    for _ in range(3):
        gc.collect()
