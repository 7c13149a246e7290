"""examples/greeter_server.py: a Greeter whose health follows its backend."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from conftest import probe

from dubbo_health import ServingStatus

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "greeter_server.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("greeter_server", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["", "dubbo", "ü" * 100])
def test_codec_round_trip(name: str) -> None:
    greeter = load_example()
    assert greeter.decode_string_field(greeter.encode_string_field(name)) == name


def test_health_flips_with_the_backend() -> None:
    greeter = load_example()
    app = greeter.App(port=0, check_interval=0.02).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    try:
        say_hello = channel.unary_unary(
            f"/{greeter.GREETER}/SayHello",
            request_serializer=greeter.encode_string_field,
            response_deserializer=greeter.decode_string_field,
        )
        assert say_hello("dubbo", timeout=5) == "Hello, dubbo!"
        assert probe(app.port, greeter.GREETER).returncode == 0
        with app.registry.watch(greeter.GREETER, timeout=5) as watch:
            assert next(watch) is ServingStatus.SERVING
            app.backend.fail()
            assert next(watch) is ServingStatus.NOT_SERVING  # the monitor noticed
            assert probe(app.port, greeter.GREETER).returncode == 4
            with pytest.raises(grpc.RpcError) as info:
                say_hello("dubbo", timeout=5)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
            app.backend.recover()
            assert next(watch) is ServingStatus.SERVING
        assert probe(app.port, greeter.GREETER).returncode == 0
        assert probe(app.port).returncode == 0
    finally:
        channel.close()
        app.stop(grace=1)
    assert app.registry.get(greeter.GREETER) is ServingStatus.NOT_SERVING


def test_runs_as_a_script_and_drains_on_sigterm() -> None:
    with subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", "0", "--fail-after", "0.3", "--down-for", "60"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("listening on 127.0.0.1:")
            port = int(line.rsplit(":", 1)[1])
            assert process.stdout.readline() == "backend down\n"
            for _ in range(50):  # the monitor checks every 0.2 s
                if probe(port, "org.apache.dubbogo.samples.api.Greeter").returncode == 4:
                    break
            else:
                pytest.fail("the Greeter never went NOT_SERVING")
            process.send_signal(signal.SIGTERM)
            assert process.wait(10) == 0
            assert process.stdout.read() == "stopped\n"
        finally:
            if process.poll() is None:
                process.kill()
