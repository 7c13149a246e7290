"""HTTP probes and the JSON Check: on serve()'s port, on a probe port, and Probes.answer()
for a host's own HTTP server (aiohttp, from examples/aiohttp_probes.py)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator

import pytest

import dubbo_health
from dubbo_health import Registry, ServingStatus

S = ServingStatus
GREETER = "org.apache.dubbogo.samples.api.Greeter"
KEYED = "grp/org.apache.Foo:1.0.0"
CHECK = "/grpc.health.v1.Health/Check"


def request(
    port: int, method: str, target: str, body: bytes | None = None, content_type: str | None = None
) -> tuple[int, str, bytes]:
    """One HTTP/1.1 request on a fresh connection: (status, content-type, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"content-type": content_type} if content_type else {}
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()
    finally:
        conn.close()


@pytest.fixture
def server(registry: Registry) -> Iterator[dubbo_health.Server]:
    with dubbo_health.serve(registry, "127.0.0.1:0") as running:
        yield running


def test_probes_follow_the_registry(registry: Registry, server: dubbo_health.Server) -> None:
    registry.set(GREETER, S.SERVING)
    registry.set(KEYED, S.NOT_SERVING)
    port = server.port
    for path in ("/live", "/ready", "/startup"):
        assert request(port, "GET", path) == (200, "text/plain; charset=utf-8", b"true")
    assert request(port, "GET", f"/ready?service={GREETER}")[0] == 200
    assert request(port, "GET", f"/ready/{KEYED}")[:3:2] == (503, b"false")
    assert request(port, "GET", "/ready?service=nope")[0] == 404
    assert request(port, "HEAD", "/ready")[::2] == (200, b"")
    assert request(port, "POST", "/ready")[0] == 405
    registry.set("", S.NOT_SERVING)
    assert request(port, "GET", "/ready")[::2] == (503, b"false")
    assert request(port, "GET", "/live")[0] == 200


def test_json_check_and_list(registry: Registry, server: dubbo_health.Server) -> None:
    registry.set("greet.GreetService", S.SERVING)
    port = server.port
    body = b'{"service":"greet.GreetService"}'
    assert request(port, "POST", CHECK, body, "application/json") == (
        200,
        "application/json",
        b'{"status":"SERVING"}',
    )
    status, _, answer = request(port, "POST", CHECK, b'{"service":"nope"}', "application/json")
    assert status == 404
    assert json.loads(answer)["code"] == "not_found"
    status, _, answer = request(port, "POST", CHECK, b"{", "application/json")
    assert (status, json.loads(answer)["code"]) == (400, "invalid_argument")
    list_path = "/grpc.health.v1.Health/List"
    status, _, answer = request(port, "POST", list_path, b"{}", "application/json")
    assert status == 200
    assert json.loads(answer) == {
        "statuses": {"": {"status": "SERVING"}, "greet.GreetService": {"status": "SERVING"}}
    }


def test_probe_port_started_flag_and_no_probes(registry: Registry) -> None:
    with dubbo_health.serve(
        registry, "127.0.0.1:0", probe_addr="127.0.0.1:0", started=False, probe_bodies="dubbo-go"
    ) as server:
        assert server.probe_port is not None
        assert server.probe_port != server.port
        assert server.probe_address == f"127.0.0.1:{server.probe_port}"
        assert not server.started
        not_started = (503, b"probe startup: not started")
        assert request(server.probe_port, "GET", "/startup")[::2] == not_started
        server.mark_started()
        assert server.started
        assert request(server.probe_port, "GET", "/startup")[::2] == (200, b"ok")
        assert request(server.port, "GET", "/live")[::2] == (200, b"ok")
    with dubbo_health.serve(registry, "127.0.0.1:0", probes=False) as server:
        assert server.probe_port is None
        assert request(server.port, "GET", "/ready")[0] == 404
    with pytest.raises(ValueError, match="probe_bodies"):
        dubbo_health.serve(registry, "127.0.0.1:0", probe_bodies="yaml")  # type: ignore[arg-type]


def test_ready_turns_503_when_the_server_drains(registry: Registry) -> None:
    """/ready on the probe port says 503 once stop() begins, though the registry says SERVING,
    and the probe port answers until the server has stopped."""
    import socket

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from h2.config import H2Configuration
    from h2.connection import H2Connection

    server = dubbo_health.serve(registry, "127.0.0.1:0", probe_addr="127.0.0.1:0")
    probe_port = server.probe_port
    assert probe_port is not None
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=""), timeout=10
    )
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    # A Check whose request never ends holds the drain open for its grace period.
    held = socket.create_connection(("127.0.0.1", server.port))
    h2 = H2Connection(H2Configuration(client_side=True))
    h2.initiate_connection()
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "test"),
        (":path", CHECK),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    h2.send_headers(1, headers, end_stream=False)
    held.sendall(h2.data_to_send())
    time.sleep(0.2)
    stopping = threading.Thread(target=server.stop, args=(2.0,))
    stopping.start()
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert request(probe_port, "GET", "/ready")[::2] == (503, b"false")
    assert request(probe_port, "GET", "/live")[0] == 200
    assert registry.get("") is S.SERVING
    assert stopping.is_alive(), "the unfinished Check holds the drain open"
    stopping.join(10)
    held.close()
    channel.close()
    with pytest.raises(ConnectionRefusedError):
        request(probe_port, "GET", "/live")


def test_answer_for_a_host_of_its_own(registry: Registry) -> None:
    probes = dubbo_health.Probes(registry)
    assert repr(probes) == "Probes(started=False, stopping=False)"
    assert probes.answer("GET", "/startup")[0] == 503
    probes.mark_started()
    status, headers, body = probes.answer("GET", "/startup")
    assert (status, body) == (200, b"true")
    assert ("content-type", "text/plain; charset=utf-8") in headers
    registry.set(KEYED, S.SERVING)
    assert probes.answer("GET", "/ready", "service=grp%2Forg.apache.Foo%3A1.0.0")[0] == 200
    assert probes.answer("GET", "/ready", "")[0] == 200
    json_ct = {"Content-Type": "application/json"}
    keyed = b'{"service":"' + KEYED.encode() + b'"}'
    status, headers, body = probes.answer("POST", CHECK, None, json_ct, keyed)
    assert (status, body) == (200, b'{"status":"SERVING"}')
    assert ("content-type", "application/json") in headers
    assert probes.answer("POST", CHECK, None, [("content-type", "text/plain")], b"{}")[0] == 415
    assert probes.answer("GET", "/elsewhere")[0] == 404
    probes.mark_stopping()
    assert probes.stopping
    assert probes.answer("GET", "/ready")[0] == 503
    assert probes.answer("GET", "/live")[0] == 200
    go = dubbo_health.Probes(registry, started=True, bodies="dubbo-go")
    assert go.answer("GET", "/live")[2] == b"ok"
    with pytest.raises(ValueError, match="method"):
        probes.answer("GE T", "/live")
    with pytest.raises(ValueError, match="bodies"):
        dubbo_health.Probes(registry, bodies="yaml")  # type: ignore[arg-type]


def test_aiohttp_host_serves_the_probes(registry: Registry) -> None:
    """examples/aiohttp_probes.py: aiohttp is installed by ci/install-40-python.sh."""
    import asyncio
    import sys
    from pathlib import Path

    from aiohttp import web

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    from aiohttp_probes import make_app

    probes = dubbo_health.Probes(registry, started=True)
    registry.set(GREETER, S.NOT_SERVING)
    ready = threading.Event()
    done = threading.Event()
    port: list[int] = []

    async def run() -> None:
        runner = web.AppRunner(make_app(probes))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.02)
        await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(run(),))
    thread.start()
    try:
        assert ready.wait(10)
        assert request(port[0], "GET", "/ready")[::2] == (200, b"true")
        assert request(port[0], "GET", f"/ready/{GREETER}")[0] == 503
        status, content_type, body = request(
            port[0], "POST", CHECK, b'{"service":"' + GREETER.encode() + b'"}', "application/json"
        )
        not_serving = (200, "application/json", b'{"status":"NOT_SERVING"}')
        assert (status, content_type, body) == not_serving
        assert request(port[0], "GET", "/nothing")[0] == 404
    finally:
        done.set()
        thread.join(10)


def test_serve_require_ties_ready_to_the_required_services(registry: Registry) -> None:
    """serve(require=[...]): "" and /ready follow the named services, registered or not."""
    with dubbo_health.serve(registry, "127.0.0.1:0", require=[GREETER, KEYED]) as server:
        assert registry.is_required(GREETER)
        assert registry.is_required(KEYED)
        assert registry.get("") == S.NOT_SERVING
        assert request(server.port, "GET", "/ready")[::2] == (503, b"false")
        registry.set(GREETER, S.SERVING)
        assert request(server.port, "GET", "/ready")[0] == 503
        registry.set(KEYED, S.SERVING)
        assert registry.get("") == S.SERVING
        assert request(server.port, "GET", "/ready")[::2] == (200, b"true")
        registry.set(KEYED, S.NOT_SERVING)
        assert request(server.port, "GET", "/ready")[0] == 503
    with pytest.raises(dubbo_health.InvalidNameError):
        dubbo_health.serve(registry, "127.0.0.1:0", require=[""])
