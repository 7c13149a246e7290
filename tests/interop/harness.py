"""Hosts and clients of the interop suite.

A *host* is a process serving grpc.health.v1 on 127.0.0.1 that prints ``listening HOST:PORT`` on
stderr and takes control lines on stdin (``set NAME STATUS``, ``clear NAME``, ``shutdown``,
``resume``; ``""`` is the empty name). After each control line the harness confirms, with its own
Check, that the host applied it, so hosts need not acknowledge anything.

A *client* is a real health client run as a subprocess; every client speaks the same small output
protocol (see goclient/main.go), and the clients that only give exit codes (grpc-health-probe,
``dubbo-health check``) are mapped onto it.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent / "clients"))
from pyclient import decode_list_response

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
BIN = HERE / "bin"
PYTHON = os.environ.get("PYTHON") or sys.executable
GOBIN = Path(os.environ.get("GOBIN") or Path.home() / "go" / "bin")


def go_tool(name: str) -> str:
    """A Go-installed tool: on PATH, else in GOBIN (~/go/bin)."""
    return shutil.which(name) or str(GOBIN / name)


STATUS_NAMES = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"]
GREETER = "org.apache.dubbogo.samples.api.Greeter"
SERVICE_KEY = "group/org.apache.Foo:1.0.0"
UTF8_NAME = "dubbo.健康/Grüße:1.0"

# What every host holds at the start of every client scenario.
INITIAL = {"": "SERVING", GREETER: "SERVING", SERVICE_KEY: "NOT_SERVING", UTF8_NAME: "SERVING"}


class HarnessError(Exception):
    """The host or a client did something the harness did not expect (not a scenario verdict)."""


# --------------------------------------------------------------------------------------------
# Raw gRPC access (the harness's own view of a host, and the hostile-input tests)
# --------------------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def check_request(name: str | bytes) -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    return b"\x0a" + varint(len(raw)) + raw if raw else b""


def decode_status(body: bytes) -> str:
    """HealthCheckResponse bytes -> status name (UNKNOWN when the field is absent, as proto3 says)."""
    if not body:
        return "UNKNOWN"
    if body[0] != 0x08 or len(body) < 2:
        raise HarnessError(f"unexpected HealthCheckResponse bytes {body!r}")
    n = body[1]
    return STATUS_NAMES[n] if n < len(STATUS_NAMES) else f"STATUS_{n}"


class Raw:
    """A grpcio channel calling methods with raw bytes (no generated code, any request body).

    With ``fresh``, every use of ``channel`` is a new connection of its own (for a host that
    answers only its newest client connection)."""

    def __init__(self, addr: str, fresh: bool = False) -> None:
        self.addr = addr
        self.fresh = fresh
        self._channel: grpc.Channel | None = None if fresh else self._open()

    def _open(self) -> grpc.Channel:
        options = [("grpc.enable_retries", 0)]
        if self.fresh:
            options.append(("grpc.use_local_subchannel_pool", 1))
        return grpc.insecure_channel(self.addr, options=options)

    @property
    def channel(self) -> grpc.Channel:
        if self.fresh:
            if self._channel is not None:
                self._channel.close()
            self._channel = self._open()
        assert self._channel is not None
        return self._channel

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def unary(
        self, method: str, body: bytes, timeout: float = 2.0, compression: grpc.Compression | None = None
    ) -> tuple[str, bytes | str]:
        """Returns ("OK", response bytes) or (code name, details)."""
        call = self.channel.unary_unary(method)
        try:
            return "OK", call(body, timeout=timeout, compression=compression)
        except grpc.RpcError as err:
            return err.code().name, err.details() or ""

    def check(self, name: str | bytes, timeout: float = 2.0, compression: grpc.Compression | None = None) -> str:
        """Status name, or "ERROR <CODE>"."""
        code, body = self.unary("/grpc.health.v1.Health/Check", check_request(name), timeout, compression)
        return decode_status(body) if code == "OK" else f"ERROR {code}"  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Hosts
# --------------------------------------------------------------------------------------------


@dataclass
class HostSpec:
    """How to start one kind of host."""

    name: str
    title: str
    argv: Callable[[], list[str]]
    build_hint: str
    # Watch streams the 5,000-stream test keeps open at once (a sync grpcio server parks one
    # pool thread per open Watch, so it gets batches smaller than its pool).
    watch_batch: int = 500
    # Watch streams the never-reading client opens.
    stall_streams: int = 100
    env: dict[str, str] = field(default_factory=dict)
    # The harness's own calls each open a new connection (a host that answers only its newest
    # client connection).
    fresh_connections: bool = False
    # Scenarios and attacks the host cannot take part in, with the reason (n/a in the matrix).
    lacks: dict[str, str] = field(default_factory=dict)
    # Scenarios and attacks the host itself fails, with the reason and the upstream reference:
    # they run as strict xfails, so a host release that fixes one shows up as a failure here.
    host_bugs: dict[str, str] = field(default_factory=dict)

    def missing(self) -> str | None:
        exe = self.argv()[0]
        if "/" in exe and not Path(exe).exists():
            return f"{exe} not built ({self.build_hint})"
        return None


class Host:
    """A running host process."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.proc: subprocess.Popen[bytes] | None = None
        self.addr = ""
        self.raw: Raw | None = None
        self.stderr_tail: list[str] = []
        self.stdout_lines: queue.Queue[str] = queue.Queue()
        self.bulk = 0
        self.scratch: set[str] = set()  # names set by scenarios, cleared before the next one
        self.baseline_rss: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        missing = self.spec.missing()
        if missing:
            raise HarnessError(f"host {self.name}: {missing}")
        env = {**os.environ, **self.spec.env}
        self.proc = subprocess.Popen(
            self.spec.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        ready: queue.Queue[str] = queue.Queue()

        def read_stderr() -> None:
            assert self.proc and self.proc.stderr
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                self.stderr_tail = (self.stderr_tail + [line])[-50:]
                m = re.search(r"listening (?:on )?(\S+:\d+)", line)
                if m:
                    ready.put(m.group(1))
            ready.put("")

        def read_stdout() -> None:
            assert self.proc and self.proc.stdout
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                m = re.search(r"listening (?:on )?(\S+:\d+)", line)
                if m:
                    ready.put(m.group(1))
                self.stdout_lines.put(line)

        threading.Thread(target=read_stderr, daemon=True).start()
        threading.Thread(target=read_stdout, daemon=True).start()
        try:
            addr = ready.get(timeout=timeout)
        except queue.Empty:
            addr = ""
        if not addr:
            self.stop()
            raise HarnessError(f"host {self.name} did not print 'listening ADDR': {self.diagnostics()}")
        self.addr = addr.replace("0.0.0.0", "127.0.0.1").replace("[::]", "127.0.0.1")
        self.raw = Raw(self.addr, fresh=self.spec.fresh_connections)
        self.wait_for(lambda: self.raw.check("", timeout=0.5) == "SERVING", "Check('') == SERVING", 10.0)
        for name, status in INITIAL.items():
            self.set(name, status)
        # Hosts may register names of their own (an example's Greeter): forget them, so every
        # host holds exactly INITIAL.
        code, body = self.raw.unary("/grpc.health.v1.Health/List", b"")
        if code == "OK":
            for name in decode_list_response(body):  # type: ignore[arg-type]
                if name not in INITIAL:
                    self.clear(name)

    def stop(self) -> None:
        if self.raw:
            self.raw.close()
            self.raw = None
        if not self.proc:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.stdin:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def diagnostics(self) -> str:
        rc = self.proc.poll() if self.proc else "stopped"
        return f"[exit status {rc}] stderr tail: " + " | ".join(self.stderr_tail[-8:])

    def rss_kib(self) -> int:
        assert self.proc
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise HarnessError("no VmRSS")

    # -- control -----------------------------------------------------------------------------
    def send(self, line: str) -> None:
        if not self.alive():
            raise HarnessError(f"host {self.name} is not running: {self.diagnostics()}")
        assert self.proc and self.proc.stdin
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    @staticmethod
    def token(name: str) -> str:
        if any(c.isspace() for c in name):
            raise HarnessError(f"names with blanks cannot go over the control channel: {name!r}")
        return name or '""'

    def wait_for(self, cond: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
        end = time.monotonic() + timeout
        while True:
            if cond():
                return
            if not self.alive():
                raise HarnessError(f"host {self.name} died while waiting for {what}: {self.diagnostics()}")
            if time.monotonic() > end:
                raise HarnessError(f"host {self.name}: {what} not reached within {timeout}s")
            time.sleep(0.002)

    def set(self, name: str, status: str, confirm: bool = True) -> None:
        self.send(f"set {self.token(name)} {status}")
        if name not in INITIAL and not name.startswith("bulk."):
            self.scratch.add(name)
        if confirm:
            self.wait_for(lambda: self.raw.check(name) == status, f"Check({name!r}) == {status} after set")

    def clear(self, name: str, confirm: bool = True) -> None:
        self.send(f"clear {self.token(name)}")
        self.scratch.discard(name)
        if confirm:
            self.wait_for(lambda: self.raw.check(name) == "ERROR NOT_FOUND", f"Check({name!r}) NOT_FOUND after clear")

    def shutdown(self) -> None:
        self.send("shutdown")
        self.wait_for(lambda: self.raw.check("") == "NOT_SERVING", "Check('') == NOT_SERVING after shutdown")

    def resume(self) -> None:
        self.send("resume")
        self.wait_for(lambda: self.raw.check("") == "SERVING", "Check('') == SERVING after resume")

    def ensure_bulk(self, n: int) -> None:
        """Exactly n extra names bulk.000.. registered (SERVING) besides INITIAL."""
        for i in range(self.bulk, n):
            self.set(f"bulk.{i:03d}", "SERVING", confirm=False)
        for i in range(n, self.bulk):
            self.clear(f"bulk.{i:03d}", confirm=False)
        if n > self.bulk:
            self.wait_for(lambda: self.raw.check(f"bulk.{n - 1:03d}") == "SERVING", "bulk names registered")
        elif n < self.bulk:
            last = f"bulk.{n:03d}"
            self.wait_for(lambda: self.raw.check(last) == "ERROR NOT_FOUND", "bulk names cleared")
        self.bulk = n


def cargo_bin(name: str) -> str:
    return str(TARGET / "debug" / name)


def cargo_example(name: str) -> str:
    return str(TARGET / "debug" / "examples" / name)


NEWEST_CONNECTION_ONLY = (
    "apache-dubbo 3.0.0b1 answers only the newest client connection: new calls on an older "
    "one hang (fixed upstream after the release, apache/dubbo-python#47)"
)

HOST_SPECS: dict[str, HostSpec] = {
    spec.name: spec
    for spec in [
        HostSpec(
            "cli",
            "`dubbo-health serve --control-stdin`",
            lambda: [cargo_bin("dubbo-health"), "serve", "--addr", "127.0.0.1:0", "--control-stdin"],
            "cargo build -p dubbo-health-cli --bins",
        ),
        HostSpec(
            "tonic-host",
            "tonic server with its own Greeter plus `HealthService` (tonic-adapter/cli/examples/greeter_host)",
            lambda: [cargo_example("greeter_host"), "--addr", "127.0.0.1:0", "--control-stdin"],
            "make interop-hosts",
        ),
        HostSpec(
            "c",
            "C program calling `dh_server_start` (tests/interop/hosts/chost.c)",
            lambda: [str(BIN / "chost")],
            "make interop-hosts",
        ),
        HostSpec(
            "grpcpp",
            "grpc++ `CallbackGenericService` host (c-api/examples/grpcpp-host)",
            lambda: [str(TARGET / "interop" / "grpcpp-host" / "grpcpp-host"), "127.0.0.1:0"],
            "make interop-hosts",
        ),
        HostSpec(
            "py-serve",
            "Python `dubbo_health.serve`",
            lambda: [PYTHON, str(HERE / "hosts" / "pyhost.py"), "serve"],
            "pip install ./python",
        ),
        HostSpec(
            "grpcio-sync",
            "grpcio sync server + `add_to_server`",
            lambda: [PYTHON, str(HERE / "hosts" / "pyhost.py"), "sync", "--workers", "64"],
            "pip install ./python",
            watch_batch=32,
            stall_streams=16,
        ),
        HostSpec(
            "grpcio-aio",
            "grpcio aio server + `add_to_server`",
            lambda: [PYTHON, str(HERE / "hosts" / "pyhost.py"), "aio"],
            "pip install ./python",
        ),
        HostSpec(
            "dubbo-rust",
            "dubbo-rust 0.4 triple server with its own Greeter plus `HealthService` through "
            "`dubbo_health_dubbo_rust::health_service` (tests/dubbo-rust-host)",
            lambda: [cargo_bin("dubbo-rust-host"), "--addr", "127.0.0.1:0", "--control-stdin"],
            "make build-dubbo-rust",
        ),
        HostSpec(
            "apache-dubbo",
            "apache-dubbo 3.0.0b1 `dubbo.Server` + `dubbo_health.dubbo.with_health` (its own "
            "connection for each of the harness's calls: the host answers only its newest one)",
            lambda: [PYTHON, str(HERE / "hosts" / "pyhost.py"), "dubbo", "--max-watches", "5"],
            'pip install "./python[dubbo]"',
            stall_streams=4,
            fresh_connections=True,
            lacks={
                "watch_5000": "apache-dubbo runs every call on one of 10 threads, so "
                "`dubbo_health.dubbo` keeps at most 5 Watch streams open and answers "
                "RESOURCE_EXHAUSTED beyond (python/tests/test_dubbo.py opens and drops 150)",
            },
            host_bugs={
                "two_connections": NEWEST_CONNECTION_ONLY,
                # grpc-go and grpcio keep the connection their health Watch runs on; once the
                # harness has connected since, their Check calls on it hang.
                "clienthealth": NEWEST_CONNECTION_ONLY,
                "grpclib": "apache-dubbo 3.0.0b1 answers every call with content-type "
                "`application/grpc+data` (dubbo/protocol/triple/constants.py, unchanged upstream), "
                'which grpclib refuses: UNKNOWN "Invalid content-type"',
                "over_4mib": "apache-dubbo 3.0.0b1 has no message size limit: it buffers the whole "
                "5 MiB request before any handler sees it (dubbo_health.dubbo then answers "
                "RESOURCE_EXHAUSTED), and the process keeps that memory: RSS more than 10% over "
                "the baseline",
            },
        ),
    ]
}

# Hosts of issue 8 that are not in the matrix, with the reason (shown in docs/interop.md).
HOSTS_LEFT_OUT: dict[str, str] = {}


def selected_hosts() -> list[str]:
    """INTEROP_HOSTS=cli,py-serve narrows the run (local use); CI runs every host."""
    wanted = os.environ.get("INTEROP_HOSTS")
    if not wanted:
        return list(HOST_SPECS)
    return [h for h in wanted.split(",") if h in HOST_SPECS]


class HostManager:
    """Keeps at most one host process alive: tests are ordered host by host."""

    def __init__(self) -> None:
        self.current: Host | None = None
        self.key: tuple[str, str] | None = None
        self.failed: dict[tuple[str, str], str] = {}

    def get(self, name: str, purpose: str) -> Host:
        key = (name, purpose)
        if key in self.failed:
            raise HarnessError(self.failed[key])
        if self.key == key and self.current and self.current.alive():
            return self.current
        if self.key == key and self.current:
            msg = f"host {name} exited during the run: {self.current.diagnostics()}"
            self.failed[key] = msg
            self.close()
            raise HarnessError(msg)
        self.close()
        host = Host(HOST_SPECS[name])
        try:
            host.start()
        except HarnessError as err:
            self.failed[key] = str(err)
            host.stop()
            raise
        self.current, self.key = host, key
        return host

    def close(self) -> None:
        if self.current:
            self.current.stop()
        self.current, self.key = None, None


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

_CODE_FROM_GO = {
    "OK": "OK",
    "Canceled": "CANCELLED",
    "Unknown": "UNKNOWN",
    "InvalidArgument": "INVALID_ARGUMENT",
    "DeadlineExceeded": "DEADLINE_EXCEEDED",
    "NotFound": "NOT_FOUND",
    "AlreadyExists": "ALREADY_EXISTS",
    "PermissionDenied": "PERMISSION_DENIED",
    "ResourceExhausted": "RESOURCE_EXHAUSTED",
    "FailedPrecondition": "FAILED_PRECONDITION",
    "Aborted": "ABORTED",
    "OutOfRange": "OUT_OF_RANGE",
    "Unimplemented": "UNIMPLEMENTED",
    "Internal": "INTERNAL",
    "Unavailable": "UNAVAILABLE",
    "DataLoss": "DATA_LOSS",
    "Unauthenticated": "UNAUTHENTICATED",
}


def code_in_text(text: str) -> str | None:
    """Find a gRPC code name in a client's message: grpc-go style (NotFound) or spec style (NOT_FOUND)."""
    if "does not implement the grpc health protocol" in text:
        return "UNIMPLEMENTED"
    if "health rpc did not complete" in text:
        return "DEADLINE_EXCEEDED"
    m = re.search(r"code = (\w+)", text)
    if m and m.group(1) in _CODE_FROM_GO:
        return _CODE_FROM_GO[m.group(1)]
    for spec_name in _CODE_FROM_GO.values():
        if spec_name != "OK" and re.search(rf"\b{spec_name}\b", text):
            return spec_name
    for go_name, spec_name in _CODE_FROM_GO.items():
        if go_name not in ("OK", "Unknown") and re.search(rf"\b{go_name}\b", text):
            return spec_name
    return None


class WatchProc:
    """A client's Watch running as a subprocess; each stdout line is one message (or END/TIMEOUT)."""

    def __init__(self, argv: list[str], parse: Callable[[str], str]) -> None:
        self.argv = argv
        self.parse = parse
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.stderr = b""

        def pump() -> None:
            assert self.proc.stdout
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                if line:
                    self.lines.put(line)
            self.lines.put("<EXIT>")

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout: float = 5.0) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no Watch message within {timeout}s; messages so far {self.seen}") from None
        if line == "<EXIT>":
            self.proc.wait(timeout=5)
            err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace").strip()
            raise AssertionError(
                f"watch client exited (status {self.proc.returncode}) after {self.seen}; stderr: {err[-300:]}"
            )
        msg = self.parse(line)
        self.seen.append(msg)
        return msg

    def expect(self, status: str, timeout: float = 5.0) -> None:
        got = self.next(timeout)
        if got != status:
            raise AssertionError(f"Watch message {len(self.seen)}: expected {status}, got {got}; all: {self.seen}")

    def quiet(self, seconds: float = 0.15) -> None:
        """No further message arrives (a duplicate would show up here)."""
        try:
            line = self.lines.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected extra Watch message {line!r} after {self.seen}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run(argv: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"client did not finish within {timeout}s: {argv}") from err


def first_line(cp: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in cp.stdout.splitlines() if ln.strip()]
    if not lines:
        raise AssertionError(f"client printed nothing (exit {cp.returncode}); stderr: {cp.stderr.strip()[-300:]}")
    return lines[0].strip()


def normalise_answer(line: str) -> str:
    """Protocol line -> "SERVING" / "ERROR NOT_FOUND" (details dropped)."""
    if line.startswith("ERROR "):
        return " ".join(line.split()[:2])
    return line.split()[0]


def parse_plain(line: str) -> str:
    if line.startswith("END ") or line == "TIMEOUT":
        return " ".join(line.split()[:2])
    return line.split()[0]


def parse_json_or_plain(line: str) -> str:
    """`dubbo-health watch --json` line -> status name (falls back to the plain protocol)."""
    if line.startswith("{"):
        obj = json.loads(line)
        for key in ("status", "serving_status", "state"):
            if key in obj:
                value = obj[key]
                return STATUS_NAMES[value] if isinstance(value, int) else str(value)
        raise AssertionError(f"watch --json line without a status: {line}")
    return parse_plain(line)


@dataclass
class Client:
    """One real health client. Each capability it lacks maps to the reason shown as "n/a"."""

    name: str
    title: str
    lacks: dict[str, str] = field(default_factory=dict)

    def missing(self) -> str | None:
        return None

    def check(self, addr: str, service: str, gzip: bool = False) -> str:
        raise NotImplementedError

    def watch(self, addr: str, service: str, count: int = 0, timeout: float = 20.0) -> WatchProc:
        raise NotImplementedError

    def list(self, addr: str) -> dict[str, str] | str:
        raise NotImplementedError


def _list_answer(line: str) -> dict[str, str] | str:
    if line.startswith("ERROR "):
        return normalise_answer(line)
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise AssertionError(f"list printed neither JSON nor ERROR: {line!r}") from err
    # Accept {name: status} and {"statuses": {name: status}}.
    if set(obj) == {"statuses"} and isinstance(obj["statuses"], dict):
        obj = obj["statuses"]
    return {
        k: (STATUS_NAMES[v] if isinstance(v, int) else (v["status"] if isinstance(v, dict) else v))
        for k, v in obj.items()
    }


class ProtocolClient(Client):
    """A client program speaking the suite's output protocol (goclient, node, pyclient)."""

    def __init__(
        self,
        name: str,
        title: str,
        prefix: Callable[[], list[str]],
        flag: str = "-",
        lacks: dict[str, str] | None = None,
        requires: list[Path] | None = None,
    ) -> None:
        super().__init__(name, title, lacks or {})
        self.prefix = prefix
        self.flag = flag
        self.requires = requires or []

    def missing(self) -> str | None:
        for part in self.prefix() + [str(p) for p in self.requires]:
            if "/" in part and not Path(part).exists():
                return f"{part} missing (run ci/install-80-interop.sh)"
        return None

    def argv(self, mode: str, addr: str, **kw: object) -> list[str]:
        out = self.prefix() + [mode, f"{self.flag}addr", addr]
        for k, v in kw.items():
            out += [f"{self.flag}{k}", str(v)]
        return out

    def check(self, addr: str, service: str, gzip: bool = False) -> str:
        argv = self.argv("check", addr, service=service) + ([f"{self.flag}gzip"] if gzip else [])
        return normalise_answer(first_line(run(argv)))

    def list(self, addr: str) -> dict[str, str] | str:
        return _list_answer(first_line(run(self.argv("list", addr))))

    def duration(self, seconds: float) -> str:
        """grpc-go flags take Go durations, the others seconds."""
        return f"{int(seconds)}s" if self.flag == "-" else str(int(seconds))

    def watch(self, addr: str, service: str, count: int = 0, timeout: float = 20.0) -> WatchProc:
        return WatchProc(
            self.argv("watch", addr, service=service, count=count, timeout=self.duration(timeout)), parse_plain
        )


class ExitCodeClient(Client):
    """grpc-health-probe and `dubbo-health check`: the answer is the exit code (0/2/3/4)."""

    def __init__(
        self,
        name: str,
        title: str,
        exe: Callable[[], str],
        flag: str,
        lacks: dict[str, str],
        extra: list[str] | None = None,
    ) -> None:
        super().__init__(name, title, lacks)
        self.exe = exe
        self.flag = flag
        self.extra = extra or []

    def missing(self) -> str | None:
        if not Path(self.exe()).exists():
            return f"{self.exe()} missing"
        return None

    def check(self, addr: str, service: str, gzip: bool = False) -> str:
        f = self.flag
        extra = [f"{f}gzip"] if gzip else []
        cp = run(
            [
                self.exe(),
                *self.check_prefix(),
                f"{f}addr",
                addr,
                f"{f}service",
                service,
                f"{f}rpc-timeout",
                "5s",
                *self.extra,
                *extra,
            ]
        )
        text = (cp.stderr + cp.stdout).strip()
        if cp.returncode == 0:
            return "SERVING"
        if cp.returncode == 4:
            m = re.search(r"(NOT_SERVING|UNKNOWN|SERVICE_UNKNOWN)", text)
            return m.group(1) if m else "NOT_SERVING"
        if cp.returncode == 3:
            return f"ERROR {code_in_text(text) or 'RPC_FAILED'}"
        if cp.returncode == 2:
            return "ERROR UNAVAILABLE"
        raise AssertionError(f"{self.name} exit status {cp.returncode}: {text[-300:]}")

    def check_prefix(self) -> list[str]:
        return []


class CliClient(ExitCodeClient):
    """`dubbo-health check` (exit codes as grpc-health-probe), `watch --json`, `list --json`."""

    def check_prefix(self) -> list[str]:
        return ["check"]

    def list(self, addr: str) -> dict[str, str] | str:
        cp = run([self.exe(), "list", "--addr", addr, "--json"])
        if cp.returncode != 0:
            text = (cp.stderr + cp.stdout).strip()
            return f"ERROR {code_in_text(text) or 'RPC_FAILED'}"
        return _list_answer(first_line(cp))

    def watch(self, addr: str, service: str, count: int = 0, timeout: float = 20.0) -> WatchProc:
        return WatchProc([self.exe(), "watch", "--addr", addr, "--service", service, "--json"], parse_json_or_plain)


CLIENTS: dict[str, Client] = {
    c.name: c
    for c in [
        ExitCodeClient(
            "grpc-health-probe",
            "grpc-health-probe v0.4.61",
            lambda: go_tool("grpc-health-probe"),
            "-",
            lacks={
                "watch": "grpc-health-probe only does Check",
                "list": "grpc-health-probe only does Check",
                "clienthealth": "grpc-health-probe only does Check",
            },
        ),
        ProtocolClient("grpc-go", "grpc-go 1.85 health client", lambda: [str(BIN / "goclient")], "-"),
        ProtocolClient(
            "grpcio",
            "grpcio-health-checking HealthStub",
            lambda: [PYTHON, str(HERE / "clients" / "pyclient.py"), "grpcio"],
            "--",
        ),
        ProtocolClient(
            "grpclib",
            "grpclib health client (List raw)",
            lambda: [PYTHON, str(HERE / "clients" / "pyclient.py"), "grpclib"],
            "--",
            lacks={
                "clienthealth": "grpclib has no client-side health checking",
                "gzip": "grpclib has no request compression",
            },
        ),
        ProtocolClient(
            "grpc-js",
            "@grpc/grpc-js + grpc-health-check",
            lambda: ["node", str(HERE / "node" / "client.js")],
            "--",
            lacks={"clienthealth": "grpc-js 1.14 does not implement healthCheckConfig"},
            requires=[HERE / "node" / "node_modules" / "grpc-health-check"],
        ),
        CliClient(
            "dubbo-health",
            "`dubbo-health check/watch/list`",
            lambda: cargo_bin("dubbo-health"),
            "--",
            lacks={"clienthealth": "the CLI has no client-side load balancing"},
        ),
    ]
}
