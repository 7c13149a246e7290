"""Every host × every real health client × every scenario of the health protocol.

Cells run host by host (one host process serves all of its cells), scenario by scenario.
A client that cannot express a scenario has no cell here; the matrix shows it as "n/a: reason".
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from harness import (
    CLIENTS,
    GREETER,
    HOST_SPECS,
    INITIAL,
    SERVICE_KEY,
    UTF8_NAME,
    Client,
    Host,
    HostManager,
    WatchProc,
    selected_hosts,
)


def scratch(client: Client, scenario: str) -> str:
    return f"interop.{client.name}.{scenario}"


def expect_check(client: Client, host: Host, service: str, expected: str) -> None:
    got = client.check(host.addr, service)
    assert got == expected, f"Check({service!r}): expected {expected}, got {got}"


def open_watch(client: Client, host: Host, service: str) -> WatchProc:
    return client.watch(host.addr, service, timeout=30)


# -- scenarios ---------------------------------------------------------------------------------


def check_root(host: Host, client: Client) -> None:
    expect_check(client, host, "", "SERVING")


def check_dubbo(host: Host, client: Client) -> None:
    expect_check(client, host, GREETER, "SERVING")


def check_key(host: Host, client: Client) -> None:
    expect_check(client, host, SERVICE_KEY, "NOT_SERVING")


def check_utf8(host: Host, client: Client) -> None:
    expect_check(client, host, UTF8_NAME, "SERVING")


def check_unknown(host: Host, client: Client) -> None:
    expect_check(client, host, "org.apache.dubbogo.samples.api.Unknown", "ERROR NOT_FOUND")


def check_shutdown(host: Host, client: Client) -> None:
    host.shutdown()
    try:
        expect_check(client, host, "", "NOT_SERVING")
        expect_check(client, host, GREETER, "NOT_SERVING")
    finally:
        host.resume()
    expect_check(client, host, GREETER, "SERVING")


def check_gzip(host: Host, client: Client) -> None:
    got = client.check(host.addr, GREETER, gzip=True)
    assert got == "SERVING", f"gzip-compressed Check: expected SERVING, got {got}"


def watch_first(host: Host, client: Client) -> None:
    w = open_watch(client, host, GREETER)
    try:
        t0 = time.monotonic()
        w.expect("SERVING")
        # The client process start is inside this bound; the server's first message is immediate.
        assert time.monotonic() - t0 < 5
        w.quiet()
    finally:
        w.close()


def watch_register(host: Host, client: Client) -> None:
    name = scratch(client, "register")
    w = open_watch(client, host, name)
    try:
        w.expect("SERVICE_UNKNOWN")
        host.set(name, "SERVING")
        w.expect("SERVING")
        w.quiet()
    finally:
        w.close()


def watch_flip(host: Host, client: Client) -> None:
    name = scratch(client, "flip")
    host.set(name, "SERVING")
    w = open_watch(client, host, name)
    try:
        w.expect("SERVING")
        host.set(name, "NOT_SERVING")
        w.expect("NOT_SERVING")
        host.set(name, "SERVING")
        w.expect("SERVING")
        host.set(name, "SERVING")  # unchanged: must not produce a message
        w.quiet()
    finally:
        w.close()


def watch_clear(host: Host, client: Client) -> None:
    name = scratch(client, "clear")
    host.set(name, "SERVING")
    w = open_watch(client, host, name)
    try:
        w.expect("SERVING")
        host.clear(name)
        w.expect("SERVICE_UNKNOWN")
        host.set(name, "NOT_SERVING")
        w.expect("NOT_SERVING")
        w.quiet()
    finally:
        w.close()


def watch_shutdown_resume(host: Host, client: Client) -> None:
    name = scratch(client, "shutdown")
    host.set(name, "SERVING")
    w = open_watch(client, host, name)
    try:
        w.expect("SERVING")
        host.shutdown()
        w.expect("NOT_SERVING")
        host.set(name, "SERVING", confirm=False)  # ignored while shut down
        w.quiet(0.2)
        host.resume()
        w.expect("SERVING")
        w.quiet()
    finally:
        w.close()


def list_small(host: Host, client: Client) -> None:
    host.ensure_bulk(0)
    got = client.list(host.addr)
    assert got == INITIAL, f"List: expected {INITIAL}, got {got}"


def list_100(host: Host, client: Client) -> None:
    host.ensure_bulk(100 - len(INITIAL))
    got = client.list(host.addr)
    expected = {**INITIAL, **{f"bulk.{i:03d}": "SERVING" for i in range(100 - len(INITIAL))}}
    assert isinstance(got, dict), f"List with 100 names: expected the 100 entries, got {got}"
    assert got == expected, (
        f"List with 100 names: {len(got)} entries, differences {set(got.items()) ^ set(expected.items())}"
    )


def list_101(host: Host, client: Client) -> None:
    host.ensure_bulk(101 - len(INITIAL))
    got = client.list(host.addr)
    summary = got if isinstance(got, str) else f"{len(got)} entries"
    assert got == "ERROR RESOURCE_EXHAUSTED", f"List with 101 names: expected RESOURCE_EXHAUSTED, got {summary}"


def client_health(host: Host, client: Client) -> None:
    name = scratch(client, "clienthealth")
    host.set(name, "SERVING")
    proc = WatchProc(
        client.argv("clienthealth", host.addr, service=name, timeout=client.duration(30)),  # type: ignore[attr-defined]
        lambda line: line,
    )
    try:
        proc.expect("UP", timeout=10)
        host.set(name, "NOT_SERVING")
        proc.expect("DOWN UNAVAILABLE", timeout=10)
        host.set(name, "SERVING")
        proc.expect("UP", timeout=10)
    finally:
        proc.close()


@dataclass
class Scenario:
    fn: Callable[[Host, Client], None]
    needs: str  # the client capability: check, gzip, watch, list, clienthealth
    title: str


SCENARIOS: dict[str, Scenario] = {
    "check_root": Scenario(check_root, "check", 'Check ""'),
    "check_dubbo": Scenario(check_dubbo, "check", "Check Dubbo interface"),
    "check_key": Scenario(check_key, "check", "Check group/iface:version (NOT_SERVING)"),
    "check_utf8": Scenario(check_utf8, "check", "Check UTF-8 name"),
    "check_unknown": Scenario(check_unknown, "check", "Check unknown → NOT_FOUND"),
    "check_shutdown": Scenario(check_shutdown, "check", "Check after shutdown/resume"),
    "check_gzip": Scenario(check_gzip, "gzip", "Check with gzip"),
    "watch_first": Scenario(watch_first, "watch", "Watch first message"),
    "watch_register": Scenario(watch_register, "watch", "Watch unknown → SERVICE_UNKNOWN → SERVING"),
    "watch_flip": Scenario(watch_flip, "watch", "Watch flip, no duplicate"),
    "watch_clear": Scenario(watch_clear, "watch", "Watch clear → SERVICE_UNKNOWN → re-register"),
    "watch_shutdown": Scenario(watch_shutdown_resume, "watch", "Watch shutdown → NOT_SERVING, resume"),
    "clienthealth": Scenario(client_health, "clienthealth", "client-side health checking"),
    "list_small": Scenario(list_small, "list", "List (4 names)"),
    "list_100": Scenario(list_100, "list", "List (100 names)"),
    "list_101": Scenario(list_101, "list", "List (101 → RESOURCE_EXHAUSTED)"),
}


def cells() -> list[object]:
    """Every host × scenario × client the two can express; cells the host itself fails (a
    scenario or a client named in harness.HostSpec.host_bugs) are strict xfails."""
    out = []
    for h in selected_hosts():
        spec = HOST_SPECS[h]
        for s, sc in SCENARIOS.items():
            if s in spec.lacks:
                continue
            for c, client in CLIENTS.items():
                if sc.needs in client.lacks:
                    continue
                bug = spec.host_bugs.get(s) or spec.host_bugs.get(c)
                marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
                out.append(pytest.param(h, s, c, id=f"{h}:{s}:{c}", marks=marks))
    return out


def restore(host: Host) -> None:
    """Bring the registry back to INITIAL if an earlier failing cell left it elsewhere."""
    if host.raw is None:
        return
    if host.raw.check("") != "SERVING":
        host.resume()
    for name in sorted(host.scratch):
        host.clear(name)
    for name, status in INITIAL.items():
        if host.raw.check(name) != status:
            host.set(name, status)


@pytest.mark.parametrize(("host_name", "scenario", "client_name"), cells())
def test_cell(
    host_name: str, scenario: str, client_name: str, hosts: HostManager, request: pytest.FixtureRequest
) -> None:
    request.node.user_properties.append(("cell", ("clients", host_name, client_name, scenario)))
    client = CLIENTS[client_name]
    missing = client.missing()
    assert missing is None, f"client {client_name}: {missing}"
    host = hosts.get(host_name, "clients")
    restore(host)
    SCENARIOS[scenario].fn(host, client)


@pytest.mark.parametrize("client_name", [c for c, cl in CLIENTS.items() if "check" not in cl.lacks])
def test_closed_port(client_name: str, request: pytest.FixtureRequest) -> None:
    """Nothing listening: every client reports a connection failure (grpc-health-probe: exit 2)."""
    request.node.user_properties.append(("cell", ("clients", "(closed port)", client_name, "check_root")))
    client = CLIENTS[client_name]
    missing = client.missing()
    assert missing is None, f"client {client_name}: {missing}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = client.check(f"127.0.0.1:{port}", "")
    assert got in ("ERROR UNAVAILABLE", "ERROR DEADLINE_EXCEEDED"), f"closed port: got {got}"
