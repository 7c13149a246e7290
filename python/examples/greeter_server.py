"""A grpcio Greeter service with gRPC health checking mounted beside it.

The Greeter depends on a (simulated) backend. A monitor thread pings the backend and flips
the Greeter's health to NOT_SERVING while the backend is down, so load balancers and
Kubernetes probes stop sending traffic; it flips back to SERVING once the backend recovers.

    python examples/greeter_server.py --port 50051 --fail-after 10 --down-for 5
    grpc-health-probe -addr=127.0.0.1:50051 -service=org.apache.dubbogo.samples.api.Greeter

No generated code is needed: the Greeter's two messages (a single string field each) are
encoded by hand, and the health service works on raw bytes. SIGTERM or Ctrl-C drains: every
service goes NOT_SERVING, open Watch streams end, then the server stops.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent import futures
from types import FrameType
from typing import Optional

import grpc

import dubbo_health
from dubbo_health.grpcio import add_to_server

GREETER = "org.apache.dubbogo.samples.api.Greeter"


def encode_string_field(value: str) -> bytes:
    """A protobuf message whose field 1 is the string `value` (HelloRequest / HelloReply)."""
    data = value.encode()
    length = len(data)
    prefix = bytearray([0x0A])
    while length >= 0x80:
        prefix.append((length & 0x7F) | 0x80)
        length >>= 7
    prefix.append(length)
    return bytes(prefix) + data


def decode_string_field(message: bytes) -> str:
    """Field 1 of a one-string message (other fields are not expected here)."""
    if not message:
        return ""
    if message[0] != 0x0A:
        raise ValueError("expected field 1 (string)")
    length, shift, i = 0, 0, 1
    while True:
        byte = message[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            break
        shift += 7
    return message[i : i + length].decode()


class Backend:
    """The dependency the Greeter needs; `fail()` and `recover()` simulate an outage."""

    def __init__(self) -> None:
        self._up = threading.Event()
        self._up.set()

    def ping(self) -> bool:
        return self._up.is_set()

    def fail(self) -> None:
        self._up.clear()

    def recover(self) -> None:
        self._up.set()


class App:
    """The Greeter server: grpcio server + health registry + backend monitor."""

    def __init__(self, port: int = 0, check_interval: float = 1.0) -> None:
        self.registry = dubbo_health.Registry()
        self.backend = Backend()
        self.registry.set(GREETER, dubbo_health.ServingStatus.SERVING)
        # Watch streams hold a thread each on a sync server: leave room for them.
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        greeter = grpc.method_handlers_generic_handler(
            GREETER,
            {
                "SayHello": grpc.unary_unary_rpc_method_handler(
                    self.say_hello,
                    request_deserializer=decode_string_field,
                    response_serializer=encode_string_field,
                )
            },
        )
        self.server.add_generic_rpc_handlers((greeter,))
        self.health = add_to_server(self.registry, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self._stopping = threading.Event()
        self._interval = check_interval
        self._monitor = threading.Thread(target=self._watch_backend, daemon=True)

    def start(self) -> App:
        self.server.start()
        self._monitor.start()
        return self

    def say_hello(self, name: str, context: grpc.ServicerContext) -> str:
        if not self.backend.ping():
            context.abort(grpc.StatusCode.UNAVAILABLE, "backend is down")
        return f"Hello, {name or 'world'}!"

    def check_backend(self) -> None:
        """One health round: the Greeter is as healthy as its backend."""
        status = dubbo_health.ServingStatus
        self.registry.set(GREETER, status.SERVING if self.backend.ping() else status.NOT_SERVING)

    def _watch_backend(self) -> None:
        while not self._stopping.wait(self._interval):
            self.check_backend()

    def stop(self, grace: float = 5.0) -> None:
        """Graceful drain: NOT_SERVING everywhere, Watch streams end, then the server stops."""
        self._stopping.set()
        self.registry.shutdown()  # every door, Check included, says NOT_SERVING
        self.health.stop(grace).wait(grace + 1)  # Watch streams end, then the server stops


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument(
        "--fail-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="simulate a backend outage after this many seconds",
    )
    parser.add_argument("--down-for", type=float, default=5.0, metavar="SECONDS")
    args = parser.parse_args(argv)

    app = App(port=args.port, check_interval=0.2).start()
    print(f"listening on 127.0.0.1:{app.port}", flush=True)
    done = threading.Event()

    def on_signal(_signum: int, _frame: Optional[FrameType]) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.fail_after is not None:

        def outage() -> None:
            if done.wait(args.fail_after):
                return
            print("backend down", flush=True)
            app.backend.fail()
            if not done.wait(args.down_for):
                print("backend up", flush=True)
                app.backend.recover()

        threading.Thread(target=outage, daemon=True).start()
    while not done.wait(0.5):
        pass
    app.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
