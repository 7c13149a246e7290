"""dubbo_health.serve(): the standalone Rust server, probed by real clients."""

from __future__ import annotations

import asyncio
import queue
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from conftest import probe, run_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from health_list import list_statuses

import dubbo_health
from dubbo_health import Registry, ServingStatus
from dubbo_health.grpcio import add_to_server

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


def test_stop_drains_its_own_watches_then_closes(registry: Registry) -> None:
    server = dubbo_health.serve(registry, "127.0.0.1:0")
    port = server.port
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        call = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert next(call).status == PB.SERVING
        unknown = health.Watch(health_pb2.HealthCheckRequest(service="nobody"), timeout=10)
        assert next(unknown).status == PB.SERVICE_UNKNOWN
        started = time.monotonic()
        server.stop(grace=5)
        assert time.monotonic() - started < 5
        # each watcher heard NOT_SERVING before its stream ended; open watches did not hold up stop
        assert [r.status for r in call] == [PB.NOT_SERVING]
        assert [r.status for r in unknown] == [PB.NOT_SERVING]
    assert not server.running
    # the registry is as it was: stopping one server drains that server only
    assert not registry.is_shut_down
    assert registry.get("") is S.SERVING
    assert probe(port, None, "-connect-timeout=300ms").returncode == 2  # nothing listens
    server.stop()  # twice is fine
    assert repr(server).endswith("stopped)")


def test_stop_leaves_python_watchers_running(registry: Registry) -> None:
    server = dubbo_health.serve(registry, "127.0.0.1:0")
    blocking = registry.watch("", timeout=5)
    assert next(blocking) is S.SERVING

    async def main() -> list[ServingStatus]:
        watch = registry.watch_async("")
        assert await watch.__anext__() is S.SERVING
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, server.stop, 5.0)
        registry.set("", S.NOT_SERVING)
        return [await watch.__anext__()]

    assert run_async(main()) == [S.NOT_SERVING]
    assert next(blocking) is S.NOT_SERVING
    blocking.close()


def test_context_manager_stops(registry: Registry) -> None:
    with dubbo_health.serve(registry, "127.0.0.1:0") as server:
        assert probe(server.port).returncode == 0
    assert not server.running
    assert not registry.is_shut_down


def _watch_statuses(channel: grpc.Channel, service: str) -> tuple[Any, queue.Queue[int]]:
    """A Watch whose messages land in a queue, read by a thread of its own."""
    seen: queue.Queue[int] = queue.Queue()
    call = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=service), timeout=30
    )

    def pump() -> None:
        try:
            for response in call:
                seen.put(response.status)
        except grpc.RpcError:
            pass
        seen.put(-1)  # the stream ended

    threading.Thread(target=pump, daemon=True).start()
    return call, seen


@pytest.mark.parametrize("stopped", ["serve", "grpcio"])
def test_one_registry_behind_serve_and_a_grpcio_mount_stops_one_at_a_time(
    registry: Registry, stopped: str
) -> None:
    registry.set(GREETER, S.SERVING)
    standalone = dubbo_health.serve(registry, "127.0.0.1:0")
    mounted = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    add_to_server(registry, mounted)
    mounted_port = mounted.add_insecure_port("127.0.0.1:0")
    mounted.start()
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{standalone.port}") as to_serve,
            grpc.insecure_channel(f"127.0.0.1:{mounted_port}") as to_mount,
        ):
            serve_call, serve_seen = _watch_statuses(to_serve, GREETER)
            mount_call, mount_seen = _watch_statuses(to_mount, GREETER)
            assert serve_seen.get(timeout=5) == PB.SERVING
            assert mount_seen.get(timeout=5) == PB.SERVING
            if stopped == "serve":
                standalone.stop(grace=5)
                stopped_seen, other_seen, other_channel = serve_seen, mount_seen, to_mount
            else:
                mounted.stop(grace=5).wait(10)
                stopped_seen, other_seen, other_channel = mount_seen, serve_seen, to_serve
            if stopped == "serve":
                # the standalone server's own watcher heard NOT_SERVING, then its stream ended
                assert stopped_seen.get(timeout=5) == PB.NOT_SERVING
            assert stopped_seen.get(timeout=5) == -1
            # the other door is untouched: set still works and its watcher hears each change
            assert not registry.is_shut_down
            registry.set(GREETER, S.NOT_SERVING)
            assert other_seen.get(timeout=5) == PB.NOT_SERVING
            registry.set(GREETER, S.SERVING)
            assert other_seen.get(timeout=5) == PB.SERVING
            health = health_pb2_grpc.HealthStub(other_channel)
            assert (
                health.Check(health_pb2.HealthCheckRequest(service=GREETER), timeout=5).status
                == PB.SERVING
            )
            serve_call.cancel()
            mount_call.cancel()
    finally:
        standalone.stop(grace=1)
        mounted.stop(grace=None)


def test_dropping_the_server_stops_it_without_draining(registry: Registry) -> None:
    server = dubbo_health.serve(registry, "127.0.0.1:0")
    port = server.port
    del server
    assert probe(port, None, "-connect-timeout=300ms").returncode == 2
    assert not registry.is_shut_down


def test_hostname_and_port_zero(registry: Registry) -> None:
    with dubbo_health.serve(registry, "localhost:0") as server:
        assert server.port > 0


def test_unix_socket(registry: Registry, tmp_path: Any) -> None:
    import os
    import subprocess

    from conftest import PROBE_TIMEOUT, probe_path

    path = tmp_path / "health.sock"
    registry.set(GREETER, S.SERVING)
    with dubbo_health.serve(registry, f"unix:{path}") as server:
        assert server.port == 0
        assert server.address == f"unix:{path}"
        assert path.is_socket()
        for service, code in [("", 0), (GREETER, 0), ("nope", 3)]:
            done = subprocess.run(
                [
                    probe_path(),
                    f"-addr=unix://{path}",
                    f"-service={service}",
                    "-connect-timeout=5s",
                ],
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
                check=False,
            )
            assert done.returncode == code, done.stderr
        # grpcio sends the socket path as :authority, which the HTTP/2 layer (h2) refuses as
        # malformed; grpc-go and the probe send "localhost", as this option does.
        options = [("grpc.default_authority", "localhost")]
        with grpc.insecure_channel(f"unix:{path}", options=options) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service=GREETER)
            assert health.Check(request, timeout=5).status == PB.SERVING
        # A second server on the live socket is refused; the first keeps it.
        with pytest.raises(OSError, match="in use"):
            dubbo_health.serve(registry, f"unix://{path}")
        assert path.is_socket()
    assert not os.path.exists(path)


@pytest.mark.parametrize("address", ["", "127.0.0.1", "127.0.0.1:port", "127.0.0.1:99999", "unix:"])
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


def _make_certs(directory: Any) -> None:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, made now."""
    import subprocess

    ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    ext = "basicConstraints=CA:FALSE\\nextendedKeyUsage=%s"
    ext += "\\nsubjectAltName=DNS:localhost,IP:127.0.0.1"
    script = "\n".join(
        [
            "set -e",
            f"mk_ca() {{ openssl req -x509 {ec} -keyout $1.key -out $1.pem -days 1 \\",
            "  -subj /CN=$1; }",
            "mk_leaf() {",
            f"  openssl req {ec} -keyout $2.key -out $2.csr -subj /CN=$2",
            f"  printf '{ext}\\n' $3 > $2.ext",
            "  openssl x509 -req -in $2.csr -CA $1.pem -CAkey $1.key -CAcreateserial \\",
            "    -out $2.pem -days 1 -extfile $2.ext",
            "}",
            "mk_ca ca; mk_leaf ca server serverAuth; mk_leaf ca client clientAuth",
        ]
    )
    subprocess.run(["sh", "-c", script], cwd=directory, check=True, capture_output=True, timeout=60)


def test_tls_and_mtls_with_grpcio(registry: Registry, tmp_path: Any) -> None:
    _make_certs(tmp_path)
    ca = (tmp_path / "ca.pem").read_bytes()
    registry.set(GREETER, S.SERVING)
    request = health_pb2.HealthCheckRequest(service=GREETER)
    with dubbo_health.serve(
        registry,
        "127.0.0.1:0",
        tls_cert=tmp_path / "server.pem",
        tls_key=str(tmp_path / "server.key"),
    ) as server:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca)
        with grpc.secure_channel(f"localhost:{server.port}", credentials) as channel:
            assert (
                health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status == PB.SERVING
            )
        assert (
            probe(server.port, GREETER, "-tls", f"-tls-ca-cert={tmp_path / 'ca.pem'}").returncode
            == 0
        )
        assert probe(server.port, GREETER).returncode == 2  # plaintext to a TLS port

    with dubbo_health.serve(
        registry,
        "127.0.0.1:0",
        tls_cert=tmp_path / "server.pem",
        tls_key=tmp_path / "server.key",
        tls_client_ca=tmp_path / "ca.pem",
    ) as server:
        mutual = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=(tmp_path / "client.key").read_bytes(),
            certificate_chain=(tmp_path / "client.pem").read_bytes(),
        )
        with grpc.secure_channel(f"localhost:{server.port}", mutual) as channel:
            assert (
                health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status == PB.SERVING
            )
        anonymous = grpc.ssl_channel_credentials(root_certificates=ca)
        with grpc.secure_channel(f"localhost:{server.port}", anonymous) as channel:
            with pytest.raises(grpc.RpcError) as info:
                health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_bad_tls_arguments(registry: Registry, tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="go together"):
        dubbo_health.serve(registry, "127.0.0.1:0", tls_cert="cert.pem")
    with pytest.raises(OSError, match=r"missing\.pem"):
        dubbo_health.serve(
            registry, "127.0.0.1:0", tls_cert=tmp_path / "missing.pem", tls_key=tmp_path / "k"
        )
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"junk\.pem"):
        dubbo_health.serve(
            registry, "127.0.0.1:0", tls_cert=tmp_path / "junk.pem", tls_key=tmp_path / "junk.pem"
        )
