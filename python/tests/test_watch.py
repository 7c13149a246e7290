"""The blocking watch iterator: DESIGN.md's Watch rules, close, timeout, GIL and signals."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

from dubbo_health import Registry, ServingStatus, Watch

S = ServingStatus


def later(delay: float, action: object) -> threading.Timer:
    timer = threading.Timer(delay, action)  # type: ignore[arg-type]
    timer.start()
    return timer


def test_first_item_is_the_current_status(registry: Registry) -> None:
    with registry.watch("") as watch:
        assert next(watch) is S.SERVING
    registry.set("a", S.NOT_SERVING)
    with registry.watch("a") as watch:
        assert watch.name == "a"
        assert next(watch) is S.NOT_SERVING


def test_unknown_name_first_gets_service_unknown_then_follows(registry: Registry) -> None:
    with registry.watch("later", timeout=5) as watch:
        assert next(watch) is S.SERVICE_UNKNOWN
        registry.set("later", S.SERVING)
        assert next(watch) is S.SERVING
        registry.set("later", S.NOT_SERVING)
        assert next(watch) is S.NOT_SERVING
        registry.clear("later")
        assert next(watch) is S.SERVICE_UNKNOWN
        registry.set("later", S.SERVING)
        assert next(watch) is S.SERVING


def test_change_from_another_thread_wakes_the_waiter(registry: Registry) -> None:
    with registry.watch("a", timeout=5) as watch:
        assert next(watch) is S.SERVICE_UNKNOWN
        timer = later(0.05, lambda: registry.set("a", S.SERVING))
        assert next(watch) is S.SERVING
        timer.join()


def test_never_two_equal_items_in_a_row(registry: Registry) -> None:
    registry.set("a", S.SERVING)
    with registry.watch("a", timeout=0.2) as watch:
        assert next(watch) is S.SERVING
        registry.set("a", S.SERVING)  # unchanged
        registry.set("a", S.NOT_SERVING)
        registry.set("a", S.SERVING)  # back where it was: nothing to report
        with pytest.raises(TimeoutError):
            next(watch)


def test_latest_wins_under_a_burst(registry: Registry) -> None:
    with registry.watch("a", timeout=0.3) as watch:
        assert next(watch) is S.SERVICE_UNKNOWN
        for i in range(1000):
            registry.set("a", S.SERVING if i % 2 else S.NOT_SERVING)
        registry.set("a", S.UNKNOWN)
        seen = [next(watch)]
        while seen[-1] is not S.UNKNOWN:
            seen.append(next(watch))
        assert len(seen) <= 3  # intermediate values were skipped, the final one is last
        assert all(a is not b for a, b in zip(seen, seen[1:]))
        with pytest.raises(TimeoutError):
            next(watch)  # nothing more is pending


def test_shutdown_resume_and_end(registry: Registry) -> None:
    registry.set("a", S.SERVING)
    with registry.watch("a", timeout=5) as watch:
        assert next(watch) is S.SERVING
        registry.shutdown()
        assert next(watch) is S.NOT_SERVING
        registry.resume()
        assert next(watch) is S.SERVING
        registry.set("a", S.NOT_SERVING)
        registry.end_watches()
        # the pending change is still delivered, then the iteration ends
        assert list(watch) == [S.NOT_SERVING]
        assert watch.closed


def test_end_watches_ends_unknown_name_watchers(registry: Registry) -> None:
    watch = registry.watch("nobody", timeout=5)
    assert next(watch) is S.SERVICE_UNKNOWN
    later(0.05, registry.end_watches)
    with pytest.raises(StopIteration):
        next(watch)


def test_close_from_another_thread_ends_a_blocked_next(registry: Registry) -> None:
    watch = registry.watch("a")
    assert next(watch) is S.SERVICE_UNKNOWN
    assert not watch.closed
    later(0.1, watch.close)
    start = time.monotonic()
    assert list(watch) == []
    assert time.monotonic() - start < 2
    assert watch.closed
    watch.close()  # twice is fine
    with pytest.raises(StopIteration):
        next(watch)


def test_context_manager_closes(registry: Registry) -> None:
    with registry.watch("a") as watch:
        assert repr(watch) == 'Watch("a", open)'
    assert watch.closed
    assert repr(watch) == 'Watch("a", closed)'
    assert list(watch) == []


def test_timeout_raises_and_the_iterator_stays_usable(registry: Registry) -> None:
    with registry.watch("a", timeout=0.05) as watch:
        assert next(watch) is S.SERVICE_UNKNOWN
        start = time.monotonic()
        with pytest.raises(TimeoutError, match='"a"'):
            next(watch)
        assert 0.04 < time.monotonic() - start < 2
        registry.set("a", S.SERVING)
        assert next(watch) is S.SERVING


def test_timeout_zero_polls(registry: Registry) -> None:
    with registry.watch("", timeout=0) as watch:
        assert next(watch) is S.SERVING
        with pytest.raises(TimeoutError):
            next(watch)


@pytest.mark.parametrize("timeout", [-1.0, float("nan"), float("inf")])
def test_bad_timeout(registry: Registry, timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        registry.watch("a", timeout=timeout)


def test_waiting_releases_the_gil(registry: Registry) -> None:
    """Another Python thread runs at full speed while one waits in next()."""

    def spin(n: int) -> float:
        start = time.perf_counter()
        x = 0
        for i in range(n):
            x += i
        return time.perf_counter() - start

    n = 2_000_000
    alone = spin(n)
    got: list[ServingStatus] = []
    watch = registry.watch("a", timeout=20)
    assert next(watch) is S.SERVICE_UNKNOWN
    waiter = threading.Thread(target=lambda: got.append(next(watch)))
    waiter.start()
    time.sleep(0.05)  # let it block
    assert waiter.is_alive()
    beside = spin(n)
    assert waiter.is_alive()
    registry.set("a", S.SERVING)
    waiter.join(5)
    assert got == [S.SERVING]
    # Holding the GIL while waiting would stall `spin` until the set above: it never ends.
    assert beside < alone * 3 + 0.5, (alone, beside)


def test_many_threads_wait_on_their_own_watches(registry: Registry) -> None:
    results: list[ServingStatus] = []
    lock = threading.Lock()
    watches = [registry.watch("flip", timeout=10) for _ in range(32)]
    for watch in watches:
        assert next(watch) is S.SERVICE_UNKNOWN

    def wait(watch: Watch) -> None:
        status = next(watch)
        with lock:
            results.append(status)

    threads = [threading.Thread(target=wait, args=(w,)) for w in watches]
    for thread in threads:
        thread.start()
    registry.set("flip", S.NOT_SERVING)
    for thread in threads:
        thread.join(10)
    assert results == [S.NOT_SERVING] * 32


def test_ctrl_c_interrupts_a_blocked_next(registry: Registry) -> None:
    watch = registry.watch("a")
    assert next(watch) is S.SERVICE_UNKNOWN
    assert threading.current_thread() is threading.main_thread()
    later(0.1, _thread.interrupt_main)
    with pytest.raises(KeyboardInterrupt):
        next(watch)
    # still usable afterwards
    registry.set("a", S.SERVING)
    assert next(watch) is S.SERVING
    watch.close()


def test_watch_keeps_the_registry_alive() -> None:
    watch = Registry().watch("")
    assert next(watch) is S.SERVING
    watch.close()


def test_close_wakes_a_waiter_on_another_thread_at_once(registry: Registry) -> None:
    watch = registry.watch("a")
    assert next(watch) is S.SERVICE_UNKNOWN
    ended = threading.Event()

    def drain() -> None:
        for _ in watch:
            pass
        ended.set()

    waiter = threading.Thread(target=drain)
    waiter.start()
    time.sleep(0.05)  # let it block in next()
    start = time.monotonic()
    watch.close()
    assert ended.wait(5)
    # woken by close() itself, not by the periodic re-check
    assert time.monotonic() - start < 0.5
    waiter.join(5)


def test_two_threads_on_one_watch_share_its_statuses_and_both_see_close(
    registry: Registry,
) -> None:
    watch = registry.watch("a", timeout=10)
    assert next(watch) is S.SERVICE_UNKNOWN
    got: list[ServingStatus] = []
    lock = threading.Lock()

    def drain() -> None:
        for status in watch:
            with lock:
                got.append(status)

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)  # both parked in next()
    registry.set("a", S.SERVING)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    watch.close()  # wakes both threads: each ends its loop
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
    assert got == [S.SERVING]  # one status, taken by one of them
