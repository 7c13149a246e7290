"""The grpcio program in README.md runs as written: it serves, a probe and a Watch see it, and
Ctrl-C drains it (the watch sees NOT_SERVING, then ends) and exits 0."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from conftest import probe
from grpc_health.v1 import health_pb2, health_pb2_grpc

README = Path(__file__).resolve().parent.parent / "README.md"
GREETER = "org.apache.dubbogo.samples.api.Greeter"
README_ADDR = "127.0.0.1:50051"


def grpcio_program() -> str:
    blocks: list[str] = re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.S | re.M)
    programs = [b for b in blocks if "add_to_server(registry, server)" in b]
    assert len(programs) == 1, "README.md has one grpcio program"
    assert "server.start()" in programs[0]
    assert README_ADDR in programs[0]
    return programs[0]


def test_grpcio_program_serves_and_drains_on_ctrl_c(tmp_path: Path) -> None:
    # The README's port, swapped for a free one so that the test runs beside anything.
    script = tmp_path / "server.py"
    script.write_text(grpcio_program().replace(README_ADDR, "127.0.0.1:0"))
    with subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.fullmatch(r"serving on port (\d+)\n", line)
            assert match, line
            port = int(match.group(1))
            assert probe(port).returncode == 0
            assert probe(port, GREETER).returncode == 0
            assert probe(port, "nope").returncode == 3  # NOT_FOUND

            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                watch = stub.Watch(health_pb2.HealthCheckRequest(service=GREETER), timeout=20)
                serving = health_pb2.HealthCheckResponse.SERVING
                assert next(watch).status == serving
                process.send_signal(signal.SIGINT)
                not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
                assert [r.status for r in watch] == [not_serving]  # then the stream ends
            assert process.wait(10) == 0
        finally:
            if process.poll() is None:
                process.kill()
