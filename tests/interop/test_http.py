"""HTTP probes and the JSON Check on every host built on the standalone server, with real curl
(HTTP/1.1 and h2c) and grpc-health-probe on the same port, and a Kubernetes-style probe loop
during a drain."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from harness import GREETER, HOST_SPECS, SERVICE_KEY, Host, HostManager, go_tool, selected_hosts

# Hosts whose port is the standalone server's (CLI, dh_server_start, dubbo_health.serve): the
# probes are on there by default; the tonic host puts the tonic crate's ProbeLayer on its own
# server. The others mount the health service on a gRPC server of their own, whose HTTP
# routes are the host's (Probes.answer() for Python hosts).
PROBED = {"cli", "tonic-host", "c", "py-serve"}
MOUNTED = "the host's own gRPC server: probes are mounted by the host (ProbeLayer, Probes.answer)"

DUBBO_GO_SERVICE = "greet.GreetService"


def curl(*args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("curl")
    if exe is None:
        pytest.fail("curl is not installed: run ci/install-00-base.sh")
    return subprocess.run(
        [exe, "-sS", "--max-time", "5", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def ok(cp: subprocess.CompletedProcess[str], body: str) -> None:
    assert cp.returncode == 0, f"curl exit {cp.returncode}: {cp.stderr.strip()}"
    assert cp.stdout == body, f"body {cp.stdout!r}, expected {body!r}"


def url(host: Host, path: str) -> str:
    return f"http://{host.addr}{path}"


def curl_http1(host: Host) -> None:
    for path in ("/live", "/ready", "/startup", f"/ready/{GREETER}", f"/ready?service={GREETER}"):
        ok(curl("-f", "--http1.1", url(host, path)), "true")
    # -f fails (exit 22) on 503 and 404, which is what a probe script keys on.
    assert curl("-f", "--http1.1", url(host, "/ready?service=group%2Forg.apache.Foo%3A1.0.0")).returncode == 22
    assert curl("-f", "--http1.1", url(host, "/ready/nope")).returncode == 22
    cp = curl("--http1.1", "-o", "/dev/null", "-w", "%{http_code}", url(host, f"/ready/{SERVICE_KEY}"))
    assert cp.stdout == "503"
    cp = curl("--http1.1", "-I", url(host, "/ready"))
    assert cp.stdout.startswith("HTTP/1.1 200"), cp.stdout
    cp = curl("--http1.1", "-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}", url(host, "/ready"))
    assert cp.stdout == "405"


def curl_h2c(host: Host) -> None:
    cp = curl("-f", "--http2-prior-knowledge", "-w", " %{http_version}", url(host, "/ready"))
    ok(cp, "true 2")
    cp = curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", url(host, f"/ready/{SERVICE_KEY}"))
    assert cp.stdout == "503"


def dubbo_go_json(host: Host) -> None:
    host.set(DUBBO_GO_SERVICE, "SERVING")
    # The command dubbo-go's samples document, verbatim but for HOST:PORT.
    cp = curl(
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"service":"greet.GreetService"}',
        f"http://{host.addr}/grpc.health.v1.Health/Check",
    )
    ok(cp, '{"status":"SERVING"}')
    cp = curl(
        "--http2-prior-knowledge",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"service":"greet.GreetService"}',
        f"http://{host.addr}/grpc.health.v1.Health/Check",
    )
    ok(cp, '{"status":"SERVING"}')
    cp = curl(
        "-w",
        " %{http_code}",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"service":"nope"}',
        f"http://{host.addr}/grpc.health.v1.Health/Check",
    )
    assert cp.stdout == '{"code":"not_found","message":"unknown service"} 404', cp.stdout
    cp = curl(
        "-w",
        " %{http_code}",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{",
        url(host, "/grpc.health.v1.Health/Check"),
    )
    assert cp.stdout.startswith('{"code":"invalid_argument"') and cp.stdout.endswith(" 400"), cp.stdout


def same_port(host: Host) -> None:
    """grpc-health-probe and curl on one port at the same time, 20 rounds each."""
    probe = go_tool("grpc-health-probe")
    failures: list[str] = []

    def grpc_loop() -> None:
        for _ in range(20):
            cp = subprocess.run(
                [probe, f"-addr={host.addr}", f"-service={GREETER}", "-connect-timeout=2s", "-rpc-timeout=2s"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if cp.returncode != 0:
                failures.append(f"grpc-health-probe exit {cp.returncode}: {cp.stderr.strip()}")

    def http_loop() -> None:
        for i in range(20):
            cp = curl("-f", "--http2-prior-knowledge" if i % 2 else "--http1.1", url(host, "/ready"))
            if (cp.returncode, cp.stdout) != (0, "true"):
                failures.append(f"curl exit {cp.returncode}: {cp.stdout!r} {cp.stderr.strip()}")

    threads = [threading.Thread(target=grpc_loop), threading.Thread(target=http_loop)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures[:3]


def k8s_drain(host: Host) -> None:
    """Every 100 ms: a gRPC Check of "" and then GET /ready on a new connection (kubelet's
    httpGet). The drain (`shutdown`, what the CLI does on SIGTERM) starts after three rounds;
    /ready must say 503 in the round Check first says NOT_SERVING, or earlier."""
    assert host.raw
    checks: list[str] = []
    readies: list[str] = []
    try:
        for i in range(40):
            if i == 3:
                host.send("shutdown")
            checks.append(host.raw.check("", timeout=1.0))
            cp = curl("-o", "/dev/null", "-w", "%{http_code}", "--http1.1", url(host, "/ready"))
            readies.append(cp.stdout)
            if checks[-1] != "SERVING" and readies[-1] != "200" and i > 3:
                break
            time.sleep(0.1)
    finally:
        host.resume()
    assert checks[:3] == ["SERVING"] * 3 and readies[:3] == ["200"] * 3, (checks, readies)
    first_check = next(i for i, c in enumerate(checks) if c != "SERVING")
    first_ready = next(i for i, r in enumerate(readies) if r != "200")
    assert checks[first_check] == "NOT_SERVING", checks
    assert readies[first_ready] == "503", readies
    assert first_ready <= first_check, (checks, readies)
    # And /ready comes back with the registry.
    ok(curl("-f", url(host, "/ready")), "true")


@dataclass
class Http:
    fn: Callable[[Host], None]
    title: str


HTTP: dict[str, Http] = {
    "curl_http1": Http(
        curl_http1, "curl -f --http1.1: /live /ready /startup, one service by path and query, HEAD, 405"
    ),
    "curl_h2c": Http(curl_h2c, "curl -f --http2-prior-knowledge: /ready over h2c on the gRPC port"),
    "dubbo_go_json": Http(dubbo_go_json, "dubbo-go's documented JSON curl of Check (HTTP/1.1 and h2c), 404 and 400"),
    "same_port": Http(same_port, "grpc-health-probe and curl on the same port at the same time"),
    "k8s_drain": Http(k8s_drain, "Check + GET /ready every 100 ms through a drain: /ready 503 no later than Check"),
}


def cases() -> list[object]:
    return [pytest.param(h, s, id=f"{h}:{s}") for h in selected_hosts() if h in PROBED for s in HTTP]


@pytest.mark.parametrize(("host_name", "scenario"), cases())
def test_http(host_name: str, scenario: str, hosts: HostManager, request: pytest.FixtureRequest) -> None:
    request.node.user_properties.append(("cell", ("http", host_name, "curl", scenario)))
    host = hosts.get(host_name, "http")
    HTTP[scenario].fn(host)


def lacks(host_name: str) -> str | None:
    return None if host_name in PROBED else MOUNTED


assert PROBED <= set(HOST_SPECS)


def test_cli_sigterm_kubelet_loop() -> None:
    """The drain Kubernetes starts: SIGTERM to `dubbo-health serve`. Every 100 ms a gRPC Check
    of "" on a new connection and GET /ready on a new connection (as kubelet's grpc and httpGet
    probes do); after three rounds, SIGTERM. /ready stops saying 200 in the round Check stops
    saying SERVING, or earlier. (The CLI closes its port at SIGTERM, so both fail to connect in
    the same round; a probe port is what answers 503 through a drain, see the Rust and Python
    tests of `probe_addr`.)"""
    import re
    import signal

    from harness import Raw, cargo_bin

    proc = subprocess.Popen(
        [cargo_bin("dubbo-health"), "serve", "--addr", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr
        line = proc.stderr.readline().decode()
        m = re.search(r"listening (\S+:\d+)", line)
        assert m, line
        addr = m.group(1)
        checks: list[str] = []
        readies: list[str] = []
        for i in range(40):
            if i == 3:
                proc.send_signal(signal.SIGTERM)
            raw = Raw(addr, fresh=True)
            try:
                checks.append(raw.check("", timeout=1.0))
            finally:
                raw.close()
            cp = curl("-o", "/dev/null", "-w", "%{http_code}", "--http1.1", f"http://{addr}/ready")
            readies.append(cp.stdout if cp.returncode == 0 else f"curl exit {cp.returncode}")
            if i > 3 and checks[-1] != "SERVING" and readies[-1] != "200":
                break
            time.sleep(0.1)
        assert checks[:3] == ["SERVING"] * 3 and readies[:3] == ["200"] * 3, (checks, readies)
        first_check = next(i for i, c in enumerate(checks) if c != "SERVING")
        first_ready = next(i for i, r in enumerate(readies) if r != "200")
        assert first_ready <= first_check, (checks, readies)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
