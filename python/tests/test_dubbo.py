"""dubbo_health.dubbo on a real apache-dubbo server (dubbo_host.py, a process of its own),
asked by real clients: grpcio-health-checking's HealthStub, grpc-health-probe and grpc-go.

apache-dubbo 3.0.0b1 answers only on the newest client connection (calls on an older one
hang; fixed upstream after the release, apache/dubbo-python#47). So a test opens a fresh
connection after any other client process has connected, and clients that run side by side
in one test share one connection, as one consumer process does.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import grpc
import pytest
from conftest import probe
from grpc_health.v1 import health_pb2, health_pb2_grpc
from health_list import list_statuses

from dubbo_health import LIST_LIMIT, MAX_NAME, Registry
from dubbo_health.dubbo import (
    DEFAULT_MAX_WATCHES,
    DEFAULT_POLL_INTERVAL,
    HOST_THREADS,
    MAX_REQUEST_SIZE,
    SERVICE_NAME,
    service_handler,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GREETER = "org.apache.dubbogo.samples.api.Greeter"
PB = health_pb2.HealthCheckResponse
CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
LIST = "/grpc.health.v1.Health/List"
SAY_HELLO = f"/{GREETER}/SayHello"
# A connection of its own for every channel (grpcio shares one between equal channels).
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1), ("grpc.enable_retries", 0)]


class DubboHost:
    """dubbo_host.py running, driven over stdin."""

    def __init__(self, *args: str) -> None:
        # The host logs to stderr; a file never fills up the way a pipe nobody reads does.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 -- closed by the fixtures
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "dubbo_host.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.fullmatch(r"listening (127\.0\.0\.1:(\d+))\n", line)
        if not match:
            self.proc.kill()
            self.end_input()
            pytest.fail(f"dubbo_host.py did not start: {line!r} {self.stderr()[-2000:]}")
        self.addr = match.group(1)
        self.port = int(match.group(2))
        self.channels: list[grpc.Channel] = []

    def control(self, line: str) -> str:
        """Sends one control line; returns what follows the answer's `ok`."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer.split(" ")[0] == "ok", f"{line!r}: {answer!r}"
        return answer[3:]

    def open_watches(self) -> int:
        return int(self.control("watches"))

    def wait_watches(self, count: int, timeout: float = 3.0) -> float:
        """Waits until `count` Watch streams are open; returns the seconds it took."""
        t0 = time.monotonic()
        while (now := self.open_watches()) != count:
            assert time.monotonic() - t0 < timeout, f"{now} Watch streams open, not {count}"
            time.sleep(0.02)
        return time.monotonic() - t0

    def channel(self) -> Any:  # grpc.Channel; its stubs type raw-bytes calls as Never
        """A new connection (the newest is the one the host answers)."""
        channel = grpc.insecure_channel(self.addr, options=OWN_CONNECTION)
        self.channels.append(channel)
        return channel

    def threads(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        raise AssertionError("no Threads line")

    def close_channels(self) -> None:
        for channel in self.channels:
            channel.close()
        self.channels.clear()

    def stop(self) -> int:
        self.close_channels()
        return self.end_input()

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def end_input(self) -> int:
        """Closes stdin (the host drains and exits) and waits for the exit status."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def module_host() -> Iterator[DubboHost]:
    host = DubboHost()
    yield host
    assert host.stop() == 0, host.stderr()[-3000:]
    host.log.close()


@pytest.fixture
def host(module_host: DubboHost) -> Iterator[DubboHost]:
    module_host.control("reset")
    yield module_host
    module_host.close_channels()
    module_host.wait_watches(0)  # the next test starts with every slot free


def stub(channel: grpc.Channel) -> health_pb2_grpc.HealthStub:
    return health_pb2_grpc.HealthStub(channel)


def check(channel: grpc.Channel, service: str) -> int:
    request = health_pb2.HealthCheckRequest(service=service)
    return int(stub(channel).Check(request, timeout=5).status)


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def say_hello(channel: Any, name: str) -> bytes:
    request = b"\x0a" + bytes([len(name)]) + name.encode()
    return bytes(channel.unary_unary(SAY_HELLO)(request, timeout=5))


class Watcher:
    """A Watch call whose messages a thread moves into a queue, so a test can wait with a
    time limit and see that no further message came."""

    def __init__(self, channel: grpc.Channel, service: str, timeout: float = 60) -> None:
        self.call = stub(channel).Watch(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
        self.messages: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        try:
            for response in self.call:
                self.messages.put(int(response.status))
            self.messages.put("end OK")
        except grpc.RpcError as err:
            self.messages.put(f"end {err.code().name}")

    def next(self, timeout: float = 5) -> Any:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no Watch message within {timeout} s") from None

    def quiet(self, seconds: float = 0.3) -> None:
        try:
            extra = self.messages.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected Watch message {extra!r}")

    def cancel(self) -> None:
        self.call.cancel()


def go_client() -> str:
    """tests/interop/bin/goclient, built here if missing (go is required, never skipped)."""
    exe = ROOT / "tests" / "interop" / "bin" / "goclient"
    if not exe.exists():
        go = shutil.which("go") or "/usr/local/go/bin/go"
        if not os.access(go, os.X_OK):
            pytest.fail("go is not installed: run ci/install-80-interop.sh")
        subprocess.run(
            [go, "build", "-o", str(exe), "."],
            cwd=ROOT / "tests" / "interop" / "goclient",
            check=True,
        )
    return str(exe)


def run_go(*args: str) -> list[str]:
    out = subprocess.run(
        [go_client(), *args], capture_output=True, text=True, timeout=30, check=False
    )
    return out.stdout.splitlines()


# -- the handler itself ----------------------------------------------------------------------


def test_service_handler_shape_and_arguments() -> None:
    registry = Registry()
    handler = service_handler(registry)
    assert handler.service_name == SERVICE_NAME == "grpc.health.v1.Health"
    assert sorted(handler.method_handlers) == ["Check", "List", "Watch"]
    assert 0 < DEFAULT_MAX_WATCHES < HOST_THREADS == 10
    service_handler(registry, max_watches=0)
    service_handler(registry, max_watches=HOST_THREADS - 1)
    for bad in (-1, HOST_THREADS, 100):
        with pytest.raises(ValueError, match="max_watches must be between 0 and 9"):
            service_handler(registry, max_watches=bad)
    with pytest.raises(TypeError):
        service_handler(registry, max_watches=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_interval"):
        service_handler(registry, poll_interval=0)
    with pytest.raises(ValueError, match="request_timeout"):
        service_handler(registry, request_timeout=-1)


# -- Check, Watch, List through real clients ---------------------------------------------------


def test_check_with_the_library_stub(host: DubboHost) -> None:
    channel = host.channel()
    assert check(channel, "") == PB.SERVING  # the host hands over its EOF marker for ""
    assert check(channel, GREETER) == PB.SERVING
    host.control(f"set {GREETER} NOT_SERVING")
    assert check(channel, GREETER) == PB.NOT_SERVING
    host.control(f"set {GREETER} UNKNOWN")
    assert check(channel, GREETER) == PB.UNKNOWN
    err = rpc_error(lambda: check(channel, "nope"))
    assert err.code() is grpc.StatusCode.NOT_FOUND
    err = rpc_error(lambda: check(channel, "x" * (MAX_NAME + 1)))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "201 bytes" in (err.details() or "")
    err = rpc_error(lambda: check(channel, "x" * MAX_NAME))
    assert err.code() is grpc.StatusCode.NOT_FOUND  # 200 bytes is a valid (unknown) name


def test_probe_exit_codes(host: DubboHost) -> None:
    host.control("set down NOT_SERVING")
    assert probe(host.port).returncode == 0
    result = probe(host.port, GREETER)
    assert result.returncode == 0, result.stderr
    assert "status: SERVING" in result.stderr
    assert probe(host.port, "down").returncode == 4
    assert probe(host.port, "nope").returncode == 3  # NOT_FOUND is an RPC failure
    assert probe(host.port, GREETER, "-gzip").returncode == 0
    host.control("shutdown")
    assert probe(host.port).returncode == 4
    assert probe(host.port, GREETER).returncode == 4


def test_grpc_go_check_watch_list(host: DubboHost) -> None:
    assert run_go("check", "-addr", host.addr, "-service", GREETER) == ["SERVING"]
    assert run_go("check", "-addr", host.addr, "-service", "nope")[0].startswith("ERROR NOT_FOUND")
    assert json.loads(run_go("list", "-addr", host.addr)[0]) == {"": "SERVING", GREETER: "SERVING"}
    with subprocess.Popen(
        [
            go_client(),
            "watch",
            "-addr",
            host.addr,
            "-service",
            "flip",
            "-count",
            "3",
            "-timeout",
            "20s",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as watch:
        try:
            assert watch.stdout is not None
            assert watch.stdout.readline() == "SERVICE_UNKNOWN\n"
            host.control("set flip SERVING")
            assert watch.stdout.readline() == "SERVING\n"
            host.control("set flip NOT_SERVING")
            assert watch.stdout.readline() == "NOT_SERVING\n"
            assert watch.wait(10) == 0
        finally:
            if watch.poll() is None:
                watch.kill()


def test_watch_follows_every_change(host: DubboHost) -> None:
    watcher = Watcher(host.channel(), "svc")
    assert watcher.next() == PB.SERVICE_UNKNOWN
    host.control("set svc SERVING")
    assert watcher.next() == PB.SERVING
    host.control("set svc SERVING")  # unchanged: no message
    watcher.quiet()
    host.control("set svc NOT_SERVING")
    assert watcher.next() == PB.NOT_SERVING
    host.control("clear svc")
    assert watcher.next() == PB.SERVICE_UNKNOWN
    host.control("set svc SERVING")
    assert watcher.next() == PB.SERVING
    # A burst: intermediate values may be skipped, never two equal in a row, the last wins.
    for i in range(200):
        host.control(f"set svc {'NOT_SERVING' if i % 2 == 0 else 'SERVING'}")
    host.control("set svc NOT_SERVING")
    seen = [PB.SERVING]
    while True:  # until no message comes for half a second
        try:
            seen.append(watcher.messages.get(timeout=0.5))
        except queue.Empty:
            break
    assert seen[-1] == PB.NOT_SERVING, seen
    assert all(a != b for a, b in zip(seen, seen[1:])), seen
    host.control("shutdown")
    host.control("set svc SERVING")  # ignored while shut down
    watcher.quiet()
    host.control("resume")
    assert watcher.next() == PB.SERVING
    host.control("end-watches")
    assert watcher.next() == "end OK"


def test_list(host: DubboHost) -> None:
    host.control("set group/org.apache.Foo:1.0.0 NOT_SERVING")
    channel = host.channel()
    assert list_statuses(channel) == {
        "": PB.SERVING,
        GREETER: PB.SERVING,
        "group/org.apache.Foo:1.0.0": PB.NOT_SERVING,
    }
    for i in range(LIST_LIMIT - 3):
        host.control(f"set n{i} SERVING")
    assert len(list_statuses(channel)) == LIST_LIMIT
    health: Any = stub(channel)
    response = health.List(health_pb2.HealthListRequest(), timeout=5)
    assert len(response.statuses) == LIST_LIMIT
    host.control("set one-too-many SERVING")
    err = rpc_error(lambda: list_statuses(channel))
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("method", ["Check", "Watch", "List"])
@pytest.mark.parametrize(
    "payload",
    [b"\x0a\x05ab", b"\x0a\x02\xff\xfe", b"\x0b", b"\x80", b"\x0a" + b"\x80" * 11],
    ids=["truncated", "bad-utf8", "wrong-wire-type", "bad-tag", "bad-varint"],
)
def test_malformed_request_is_invalid_argument(
    host: DubboHost, method: str, payload: bytes
) -> None:
    channel = host.channel()
    path = f"/grpc.health.v1.Health/{method}"
    if method == "List" and payload == b"\x0a\x02\xff\xfe":
        # HealthListRequest has no field 1: a well-formed unknown field, skipped
        channel.unary_unary(path)(payload, timeout=5)
        return
    call: Callable[[], object] = (
        (lambda: list(channel.unary_stream(path)(payload, timeout=5)))
        if method == "Watch"
        else (lambda: channel.unary_unary(path)(payload, timeout=5))
    )
    err = rpc_error(call)
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert check(channel, "") == PB.SERVING  # and the server keeps serving


def test_unknown_fields_and_oversized_requests(host: DubboHost) -> None:
    channel = host.channel()
    request = b"\x10\x07" + b"\x0a\x00" + b"\x7a\x03abc"  # service "" between unknown fields
    response: bytes = channel.unary_unary(CHECK)(request, timeout=5)
    assert health_pb2.HealthCheckResponse.FromString(response).status == PB.SERVING
    huge = b"\x12" + varint(MAX_REQUEST_SIZE) + b"x" * MAX_REQUEST_SIZE  # unknown field 2
    assert len(huge) > MAX_REQUEST_SIZE
    err = rpc_error(lambda: channel.unary_unary(CHECK)(huge, timeout=20))
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert check(channel, "") == PB.SERVING


# -- the user's own service, and the host's 10 threads ----------------------------------------


def test_greeter_answers_beside_health_with_every_watch_slot_taken(host: DubboHost) -> None:
    channel = host.channel()
    assert say_hello(channel, "dubbo") == b"\x0a\x0dHello, dubbo!"
    watchers = [Watcher(channel, GREETER) for _ in range(DEFAULT_MAX_WATCHES)]
    for watcher in watchers:
        assert watcher.next() == PB.SERVING
    extra = Watcher(channel, GREETER)
    assert extra.next() == "end RESOURCE_EXHAUSTED"
    for _ in range(20):  # the other threads are free: nothing waits behind the Watches
        t0 = time.monotonic()
        assert say_hello(channel, "dubbo") == b"\x0a\x0dHello, dubbo!"
        assert check(channel, GREETER) == PB.SERVING
        assert time.monotonic() - t0 < 0.2
    host.control(f"set {GREETER} NOT_SERVING")
    for watcher in watchers:
        assert watcher.next() == PB.NOT_SERVING


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def test_50_watch_clients_come_and_go_while_check_answers(host: DubboHost) -> None:
    """50 Watch calls opened at once and dropped, three times, on the connection a Check
    loop uses; Check and the Greeter keep answering within 100 ms and no thread is lost."""
    channel = host.channel()
    assert check(channel, "") == PB.SERVING
    threads: list[int] = []  # the host's, after each round (its pools grow in the first)
    latencies: dict[str, list[float]] = {"Check": [], "SayHello": []}
    failures: list[str] = []
    stop = threading.Event()

    def timed(method: str, call: Callable[[], object], expected: object) -> None:
        t0 = time.monotonic()
        try:
            got = call()
        except grpc.RpcError as err:
            got = err
        latencies[method].append(time.monotonic() - t0)
        if got != expected:
            failures.append(f"{method}: {got!r}")

    def check_loop() -> None:
        while not stop.is_set():
            timed("Check", lambda: check(channel, GREETER), PB.SERVING)
            timed("SayHello", lambda: say_hello(channel, "x"), b"\x0a\x09Hello, x!")
            time.sleep(0.01)

    checker = threading.Thread(target=check_loop)
    checker.start()
    try:
        for _round in range(3):
            watchers = [Watcher(channel, GREETER, timeout=30) for _ in range(50)]
            firsts = [w.next(timeout=10) for w in watchers]
            assert firsts.count(PB.SERVING) == DEFAULT_MAX_WATCHES, firsts
            assert firsts.count("end RESOURCE_EXHAUSTED") == 50 - DEFAULT_MAX_WATCHES
            for watcher in watchers:
                watcher.cancel()
            # The cancelled Watches notice within the poll interval and give their slots back.
            deadline = time.monotonic() + 3
            while True:
                probe_watch = Watcher(channel, GREETER)
                if probe_watch.next() == PB.SERVING:
                    probe_watch.cancel()
                    break
                assert time.monotonic() < deadline, "Watch slots did not come back"
                time.sleep(0.1)
            time.sleep(1)  # the probe Watch's slot too
            threads.append(host.threads())
    finally:
        stop.set()
        checker.join(10)
    assert failures == []
    for method, times in latencies.items():
        p95, worst = percentile(times, 0.95), max(times)
        median = percentile(times, 0.5)
        print(
            f"{method} during 150 Watch clients: {len(times)} calls, median {1000 * median:.1f} "
            f"ms, p95 {1000 * p95:.1f} ms, max {1000 * worst:.1f} ms"
        )
        assert len(times) > 50
        # Within 100 ms; the few calls that arrive with a burst of 50 Watch calls queue
        # behind their answers for a moment, and never longer than half a second.
        assert p95 < 0.1, f"{method}: 95th percentile {p95 * 1000:.0f} ms"
        assert worst < 0.5, f"{method}: slowest {worst * 1000:.0f} ms"
    # Every slot is free again, and the host holds no extra thread.
    watchers = [Watcher(channel, GREETER) for _ in range(DEFAULT_MAX_WATCHES)]
    assert [w.next() for w in watchers] == [PB.SERVING] * DEFAULT_MAX_WATCHES
    for watcher in watchers:
        watcher.cancel()
    assert max([*threads[1:], host.threads()]) <= threads[0], threads


def test_closed_connections_give_their_watch_slots_back(host: DubboHost) -> None:
    """Watch clients killed outright (their connections close without a cancel)."""
    procs = []
    for _ in range(DEFAULT_MAX_WATCHES):
        proc = subprocess.Popen(
            [go_client(), "watch", "-addr", host.addr, "-service", GREETER, "-timeout", "60s"],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "SERVING\n"
    channel = host.channel()  # newer than every Watch client's connection
    extra = Watcher(channel, GREETER)
    assert extra.next() == "end RESOURCE_EXHAUSTED"
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    # Nobody asks for a slot: the Watches notice on their own, within the poll interval.
    took = host.wait_watches(0, timeout=3)
    print(f"killed Watch clients: their {DEFAULT_MAX_WATCHES} Watches ended after {took:.2f} s")
    assert took < DEFAULT_POLL_INTERVAL + 0.5
    watchers = [Watcher(channel, GREETER) for _ in range(DEFAULT_MAX_WATCHES)]
    assert [w.next() for w in watchers] == [PB.SERVING] * DEFAULT_MAX_WATCHES


def test_a_new_watch_reclaims_the_slot_of_a_cancelled_one_at_once(host: DubboHost) -> None:
    """Cancelled Watches hold their slots until they look again; a new Watch that finds every
    slot taken looks for them, and gets a slot without waiting for the poll interval."""
    channel = host.channel()
    for _round in range(5):
        watchers = [Watcher(channel, GREETER) for _ in range(DEFAULT_MAX_WATCHES)]
        assert [w.next() for w in watchers] == [PB.SERVING] * DEFAULT_MAX_WATCHES
        for watcher in watchers:
            watcher.cancel()
        time.sleep(0.05)  # the cancels reach the host
        t0 = time.monotonic()
        again = Watcher(channel, GREETER)
        assert again.next() == PB.SERVING
        assert time.monotonic() - t0 < DEFAULT_POLL_INTERVAL
        again.cancel()
        host.wait_watches(0)


@pytest.fixture
def other_host(request: pytest.FixtureRequest) -> Iterator[DubboHost]:
    host = DubboHost(*request.param)
    yield host
    assert host.stop() == 0, host.stderr()[-3000:]
    host.log.close()


@pytest.mark.parametrize("other_host", [("--max-watches", "0")], indirect=True)
def test_max_watches_zero_turns_watch_off(other_host: DubboHost) -> None:
    channel = other_host.channel()
    assert Watcher(channel, "").next() == "end RESOURCE_EXHAUSTED"
    assert check(channel, "") == PB.SERVING


@pytest.mark.parametrize("other_host", [("--request-timeout", "0.5")], indirect=True)
def test_a_request_that_never_comes_frees_its_thread(other_host: DubboHost) -> None:
    """Calls whose request message never arrives (the client keeps the stream open) are
    answered DEADLINE_EXCEEDED after request_timeout instead of holding a thread each."""
    channel = other_host.channel()
    # A client-streaming call to Check that sends nothing and never half-closes.
    requests: queue.Queue[Optional[bytes]] = queue.Queue()

    def never() -> Iterator[bytes]:
        while (item := requests.get()) is not None:
            yield item

    stuck: list[Any] = [
        channel.stream_unary(CHECK).future(never(), timeout=20) for _ in range(HOST_THREADS + 2)
    ]
    codes = [f.exception(timeout=10) for f in stuck]
    for _ in stuck:
        requests.put(None)
    assert all(isinstance(c, grpc.RpcError) for c in codes)
    assert {c.code() for c in codes if isinstance(c, grpc.RpcError)} == {
        grpc.StatusCode.DEADLINE_EXCEEDED
    }
    t0 = time.monotonic()
    assert check(channel, "") == PB.SERVING
    assert time.monotonic() - t0 < 1


def test_drain_on_end_of_input_ends_watches_and_exits() -> None:
    host = DubboHost()
    try:
        watcher = Watcher(host.channel(), GREETER)
        assert watcher.next() == PB.SERVING
        assert host.end_input() == 0  # end of stdin: shutdown, end_watches, exit
        assert watcher.next() == PB.NOT_SERVING
        assert watcher.next() == "end OK"
    finally:
        host.stop()
        host.log.close()


# -- examples/dubbo_greeter.py ---------------------------------------------------------------


def test_example_greeter_flips_with_its_backend_and_drains_on_sigterm() -> None:
    example = HERE.parent / "examples" / "dubbo_greeter.py"
    argv = [sys.executable, str(example), "--port", "0", "--fail-after", "1.5", "--down-for", "60"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("listening on 127.0.0.1:"), line
            addr = line.split()[-1]
            port = int(addr.rsplit(":", 1)[1])
            channel = grpc.insecure_channel(addr, options=OWN_CONNECTION)
            assert say_hello(channel, "dubbo") == b"\x0a\x0dHello, dubbo!"
            watcher = Watcher(channel, GREETER)
            assert watcher.next() == PB.SERVING
            assert probe(port, GREETER).returncode == 0
            assert process.stdout.readline() == "backend down\n"
            assert watcher.next() == PB.NOT_SERVING  # the monitor noticed
            assert probe(port, GREETER).returncode == 4
            assert probe(port).returncode == 0  # the server as a whole still serves
            fresh = grpc.insecure_channel(addr, options=OWN_CONNECTION)
            err = rpc_error(lambda: say_hello(fresh, "dubbo"))
            assert err.code() is grpc.StatusCode.INTERNAL
            assert "backend is down" in (err.details() or "")
            process.send_signal(signal.SIGTERM)
            assert process.wait(10) == 0
            assert process.stdout.read() == "stopped\n"
            assert watcher.next() == "end OK"  # the drain ended the Watch
            channel.close()
            fresh.close()
        finally:
            if process.poll() is None:
                process.kill()
