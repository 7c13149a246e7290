"""The asyncio watch: DESIGN.md's Watch rules, fan-out, cancellation and leaks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import threading
import time
import weakref

import pytest
from conftest import collect, run_async

from dubbo_health import AsyncWatch, Registry, ServingStatus

S = ServingStatus


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def take(watch: AsyncWatch, n: int) -> list[ServingStatus]:
    out: list[ServingStatus] = []
    async for status in watch:
        out.append(status)
        if len(out) == n:
            break
    return out


def test_async_for_follows_every_rule(registry: Registry) -> None:
    async def main() -> None:
        watch = registry.watch_async("later")
        assert watch.name == "later"
        assert await anext_(watch) is S.SERVICE_UNKNOWN
        registry.set("later", S.SERVING)
        assert await anext_(watch) is S.SERVING
        registry.set("later", S.SERVING)  # unchanged: nothing
        registry.set("later", S.NOT_SERVING)
        assert await anext_(watch) is S.NOT_SERVING
        registry.clear("later")
        assert await anext_(watch) is S.SERVICE_UNKNOWN
        registry.set("later", S.UNKNOWN)
        assert await anext_(watch) is S.UNKNOWN
        registry.shutdown()
        assert await anext_(watch) is S.NOT_SERVING
        registry.resume()
        assert await anext_(watch) is S.SERVING
        watch.close()

    run_async(main())


async def anext_(watch: AsyncWatch) -> ServingStatus:
    return await asyncio.wait_for(watch.__anext__(), 5)


def test_woken_by_a_set_on_the_loop_and_from_another_thread(registry: Registry) -> None:
    async def main() -> None:
        watch = registry.watch_async("a")
        assert await anext_(watch) is S.SERVICE_UNKNOWN
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, registry.set, "a", S.SERVING)
        assert await anext_(watch) is S.SERVING
        threading.Timer(0.02, registry.set, ("a", S.NOT_SERVING)).start()
        assert await anext_(watch) is S.NOT_SERVING

    run_async(main())


def test_latest_wins_and_no_duplicates(registry: Registry) -> None:
    async def main() -> None:
        watch = registry.watch_async("a")
        assert await anext_(watch) is S.SERVICE_UNKNOWN
        waiter = asyncio.ensure_future(anext_(watch))
        await asyncio.sleep(0)
        for i in range(1000):
            registry.set("a", S.SERVING if i % 2 else S.NOT_SERVING)
        registry.set("a", S.UNKNOWN)
        seen = [await waiter]
        while seen[-1] is not S.UNKNOWN:
            seen.append(await anext_(watch))
        assert len(seen) <= 3
        assert all(a is not b for a, b in zip(seen, seen[1:]))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(watch.__anext__(), 0.1)

    run_async(main())


def test_close_and_end_watches_stop_async_for(registry: Registry) -> None:
    async def main() -> None:
        closed = registry.watch_async("a")
        ended = registry.watch_async("b")
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, closed.close)
        loop.call_later(0.05, registry.end_watches)
        assert await asyncio.wait_for(take(closed, 10), 5) == [S.SERVICE_UNKNOWN]
        assert await asyncio.wait_for(take(ended, 10), 5) == [S.SERVICE_UNKNOWN]
        assert closed.closed
        assert ended.closed
        assert repr(closed) == 'AsyncWatch("a", closed)'
        with pytest.raises(StopAsyncIteration):
            await closed.__anext__()

    run_async(main())


def test_close_from_another_thread(registry: Registry) -> None:
    async def main() -> None:
        watch = registry.watch_async("a")
        threading.Timer(0.05, watch.close).start()
        assert await asyncio.wait_for(take(watch, 10), 5) == [S.SERVICE_UNKNOWN]

    run_async(main())


def test_one_anext_at_a_time(registry: Registry) -> None:
    async def main() -> None:
        watch = registry.watch_async("a")
        assert await anext_(watch) is S.SERVICE_UNKNOWN
        first = watch.__anext__()
        with pytest.raises(RuntimeError, match="already waiting"):
            watch.__anext__()
        registry.set("a", S.SERVING)
        assert await asyncio.wait_for(first, 5) is S.SERVING

    run_async(main())


def test_needs_a_running_loop(registry: Registry) -> None:
    watch = registry.watch_async("a")
    with pytest.raises(RuntimeError, match="no running event loop"):
        watch.__anext__()


def test_a_thousand_watchers_see_one_flip_without_threads(registry: Registry) -> None:
    registry.set("svc", S.SERVING)
    n = 1000

    async def main() -> None:
        threads_before = os_threads()
        ready = 0
        all_ready = asyncio.Event()

        async def watcher() -> list[ServingStatus]:
            nonlocal ready
            seen = []
            async for status in registry.watch_async("svc"):
                seen.append(status)
                if len(seen) == 1:
                    ready += 1
                    if ready == n:
                        all_ready.set()
                else:
                    break
            return seen

        tasks = [asyncio.ensure_future(watcher()) for _ in range(n)]
        await asyncio.wait_for(all_ready.wait(), 10)
        await asyncio.sleep(0)
        assert os_threads() == threads_before  # no thread per watcher
        registry.set("svc", S.NOT_SERVING)
        results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert results == [[S.SERVING, S.NOT_SERVING]] * n

    run_async(main())


def test_cancelled_watchers_are_freed(registry: Registry) -> None:
    n = 1000
    refs: list[weakref.ref[AsyncWatch]] = []

    async def main() -> None:
        async def watcher() -> None:
            watch = registry.watch_async("svc")
            refs.append(weakref.ref(watch))
            async for _ in watch:
                pass

        tasks = [asyncio.ensure_future(watcher()) for _ in range(n)]
        await asyncio.sleep(0.05)
        assert len(refs) == n
        for task in tasks:
            task.cancel()
        # (wait, not gather: an exception raised into this frame would keep every
        # cancelled frame alive through its traceback until this coroutine ends)
        await asyncio.wait(tasks, timeout=10)
        assert all(task.cancelled() for task in tasks)
        del tasks, task
        collect()
        assert [r for r in refs if r() is not None] == []
        # a change after the cancellation wakes nobody and logs nothing
        registry.set("svc", S.SERVING)
        await asyncio.sleep(0.05)

    run_async(main())


def test_dropped_watches_leave_nothing_behind(registry: Registry) -> None:
    """Open and drop thousands of watches, blocking and async, polled or not."""
    refs: list[weakref.ref[object]] = []

    async def main() -> None:
        for i in range(2000):
            watch = registry.watch_async(f"n{i % 7}")
            refs.append(weakref.ref(watch))
            if i % 2:
                assert await anext_(watch) is S.SERVICE_UNKNOWN
                pending = asyncio.ensure_future(watch.__anext__())
                await asyncio.sleep(0)
                pending.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await pending
                del pending
            del watch
        for i in range(2000):
            blocking = registry.watch(f"n{i % 7}", timeout=0)
            refs.append(weakref.ref(blocking))
            if i % 2:
                assert next(blocking) is S.SERVICE_UNKNOWN
            del blocking

    gc.disable()
    try:
        run_async(main())
        # Reference counting alone frees them: no cycle is left for the collector.
        assert [r for r in refs if r() is not None] == []
    finally:
        gc.enable()
    # and the registry still wakes new watchers as before
    with registry.watch("n1", timeout=5) as watch:
        assert next(watch) is S.SERVICE_UNKNOWN
        registry.set("n1", S.SERVING)
        assert next(watch) is S.SERVING


def test_works_across_event_loops(registry: Registry) -> None:
    watch = registry.watch_async("a")
    assert run_async(anext_(watch)) is S.SERVICE_UNKNOWN

    async def second() -> ServingStatus:
        asyncio.get_running_loop().call_later(0.02, registry.set, "a", S.SERVING)
        return await anext_(watch)

    assert run_async(second()) is S.SERVING


def test_a_cycle_through_the_pending_future_is_collected(registry: Registry) -> None:
    """future -> callback -> watch -> (native state) -> future: the collector sees it."""
    refs: list[weakref.ref[object]] = []

    async def main() -> None:
        watch = registry.watch_async("a")
        assert await anext_(watch) is S.SERVICE_UNKNOWN
        pending = watch.__anext__()

        def keep_alive(_future: object, keep: AsyncWatch = watch) -> None:
            assert keep is not None

        pending.add_done_callback(keep_alive)
        refs.extend([weakref.ref(watch), weakref.ref(pending)])
        del watch, pending, keep_alive
        collect()
        assert [r() for r in refs] == [None, None]

    run_async(main())


def test_a_set_without_the_gil_wakes_asyncio_while_the_loop_thread_holds_it(
    registry: Registry,
) -> None:
    """The asyncio waker runs on the setter's thread and needs no GIL.

    `set` releases the GIL while it wakes watchers; here the loop's thread takes the GIL
    at that moment and keeps it (a huge switch interval, pure bytecode, no sleeping) until
    the watch says it was woken. A crowd of blocking watches parked first on the same name
    is woken first, so the set is still waking when this thread has the GIL. A waker that
    needed the GIL (`call_soon_threadsafe`) could not run until this thread let go: the
    spin would time out.
    """
    crowd = [registry.watch("a") for _ in range(20_000)]

    async def main() -> None:
        watch = registry.watch_async("a")
        assert await anext_(watch) is S.SERVICE_UNKNOWN
        pending = watch.__anext__()
        assert not watch.woken
        started = [False]

        def setter() -> None:
            started[0] = True
            registry.set("a", S.SERVING)

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1000.0)
        try:
            thread = threading.Thread(target=setter)
            thread.start()
            deadline = time.monotonic() + 10
            while not started[0] and time.monotonic() < deadline:
                time.sleep(0.001)  # lets the setter run up to the GIL release in set()
            # From here this thread holds the GIL, and the setter is inside set().
            woken = False
            while time.monotonic() < deadline:
                if watch.woken:
                    woken = True
                    break
        finally:
            sys.setswitchinterval(interval)
        thread.join(10)
        assert started[0]
        assert woken, "the watch was not woken while this thread held the GIL"
        assert await asyncio.wait_for(pending, 5) is S.SERVING
        assert not watch.woken

    run_async(main())
    assert all(next(w) is S.SERVING for w in crowd)


def test_no_deadlock_between_gil_free_setters_and_a_busy_loop(registry: Registry) -> None:
    """Setter threads (set releases the GIL) race the loop thread, which keeps polling,
    cancelling and closing watches on the same name: everything ends, nothing hangs."""
    watchers, setters, rounds = 50, 3, 300

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def watcher() -> ServingStatus:
            last = None
            async for status in registry.watch_async("x"):
                assert status is not last
                last = status
                if status is S.UNKNOWN:
                    break
            assert last is not None
            return last

        async def churn(done: asyncio.Event) -> int:
            n = 0
            while not done.is_set():
                watch = registry.watch_async("x")
                await anext_(watch)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(watch.__anext__(), 0.001)
                watch.close()
                n += 1
            return n

        def set_many() -> None:
            for i in range(rounds):
                registry.set("x", S.SERVING if i % 2 else S.NOT_SERVING)

        tasks = [asyncio.ensure_future(watcher()) for _ in range(watchers)]
        done = asyncio.Event()
        churner = asyncio.ensure_future(churn(done))
        await asyncio.sleep(0.01)
        threads = [loop.run_in_executor(None, set_many) for _ in range(setters)]
        await asyncio.wait_for(asyncio.gather(*threads), 20)
        registry.set("x", S.UNKNOWN)
        assert await asyncio.wait_for(asyncio.gather(*tasks), 20) == [S.UNKNOWN] * watchers
        done.set()
        assert await asyncio.wait_for(churner, 5) > 0

    run_async(main(), timeout=60)


def test_watchers_on_two_loops_in_two_threads(registry: Registry) -> None:
    """Each loop is woken through its own hub; one set reaches both."""
    results: list[list[ServingStatus]] = []
    ready = threading.Barrier(3)
    lock = threading.Lock()

    def run_loop() -> None:
        async def main() -> list[ServingStatus]:
            watches = [registry.watch_async("svc") for _ in range(10)]
            firsts = [await anext_(w) for w in watches]
            pending = [w.__anext__() for w in watches]
            await asyncio.get_running_loop().run_in_executor(None, ready.wait)
            seconds = await asyncio.wait_for(asyncio.gather(*pending), 10)
            return firsts + list(seconds)

        seen = run_async(main())
        with lock:
            results.append(seen)

    threads = [threading.Thread(target=run_loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    ready.wait(10)
    registry.set("svc", S.SERVING)
    for thread in threads:
        thread.join(20)
    assert results == [[S.SERVICE_UNKNOWN] * 10 + [S.SERVING] * 10] * 2


def test_a_watch_left_pending_on_a_closed_loop_is_harmless(registry: Registry) -> None:
    watch = registry.watch_async("a")

    async def leave_pending() -> None:
        assert await anext_(watch) is S.SERVICE_UNKNOWN
        watch.__anext__()  # never awaited: the loop closes with it pending

    run_async(leave_pending())
    registry.set("a", S.SERVING)  # wakes a watch whose loop is gone: nothing happens
    registry.set("a", S.NOT_SERVING)

    async def again() -> ServingStatus:
        return await anext_(watch)

    # On a new loop it carries on with the latest status.
    assert run_async(again()) is S.NOT_SERVING
    watch.close()
    assert watch.closed
