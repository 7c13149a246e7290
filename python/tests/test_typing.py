"""Static types of the public API, checked by `mypy --strict` (and run as a test)."""

from __future__ import annotations

import asyncio
from typing import Optional

from typing_extensions import assert_type

import dubbo_health
from dubbo_health import AsyncWatch, Registry, ServingStatus, SetOutcome, Watch


def test_public_api_types() -> None:
    registry = Registry()
    assert_type(registry.set("a", ServingStatus.SERVING), SetOutcome)
    assert_type(registry.get("a"), Optional[ServingStatus])
    assert_type(registry.check("a"), ServingStatus)
    assert_type(registry["a"], ServingStatus)
    assert_type(registry.clear("a"), bool)
    assert_type(registry.list(), dict[str, ServingStatus])
    assert_type(len(registry), int)
    assert_type(registry.is_shut_down, bool)
    watch = registry.watch("", timeout=1.0)
    assert_type(watch, Watch)
    assert_type(next(watch), ServingStatus)
    watch.close()

    async def first() -> ServingStatus:
        async_watch = registry.watch_async("")
        assert_type(async_watch, AsyncWatch)
        async for status in async_watch:
            return status
        raise AssertionError("ended")

    assert asyncio.run(first()) is ServingStatus.SERVING
    with dubbo_health.serve(registry, "127.0.0.1:0") as server:
        assert_type(server.port, int)
        assert_type(server, dubbo_health.Server)
