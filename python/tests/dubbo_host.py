"""An apache-dubbo server for test_dubbo.py: a user Greeter plus the health service.

    python dubbo_host.py [--max-watches N] [--poll-interval S] [--request-timeout S]

apache-dubbo cannot bind port 0 and cannot be stopped, so the tests run it as a process of
its own on a free port picked here. Prints ``listening 127.0.0.1:PORT`` on stdout, then takes
one control line at a time on stdin and answers ``ok`` (or ``error ...``):

    set NAME STATUS | clear NAME | shutdown | resume | end-watches | reset | watches

``""`` is the empty name; ``reset`` brings the registry back to ``""`` and the Greeter
SERVING and nothing else; ``watches`` answers ``ok N``, the Watch streams open now. End of
stdin drains (shutdown, end-watches) and exits.
"""

from __future__ import annotations

import argparse
import socket
import sys

import dubbo
from dubbo.configs import ServiceConfig
from dubbo.proxy.handlers import RpcMethodHandler, RpcServiceHandler

import dubbo_health
from dubbo_health.dubbo import ServiceHandlers, with_health

GREETER = "org.apache.dubbogo.samples.api.Greeter"


def encode_string_field(value: str) -> bytes:
    """A protobuf message whose field 1 is `value` (HelloRequest / HelloReply)."""
    data = value.encode()
    n = len(data)
    prefix = bytearray([0x0A])
    while n >= 0x80:
        prefix.append((n & 0x7F) | 0x80)
        n >>= 7
    prefix.append(n)
    return bytes(prefix) + data


def decode_string_field(message: bytes) -> str:
    if not message:
        return ""
    length, shift, i = 0, 0, 1
    while True:
        byte = message[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            break
        shift += 7
    return message[i : i + length].decode()


def greeter_handler() -> RpcServiceHandler:
    def say_hello(name: str) -> str:
        return f"Hello, {name or 'world'}!"

    return RpcServiceHandler(
        GREETER,
        [
            RpcMethodHandler.unary(
                say_hello,
                method_name="SayHello",
                request_deserializer=decode_string_field,
                response_serializer=encode_string_field,
            )
        ],
    )


def reset(registry: dubbo_health.Registry) -> None:
    registry.resume()
    for name in registry.list():
        if name not in ("", GREETER):
            registry.clear(name)
    registry.set("", dubbo_health.ServingStatus.SERVING)
    registry.set(GREETER, dubbo_health.ServingStatus.SERVING)


def apply(registry: dubbo_health.Registry, services: ServiceHandlers, line: str) -> str:
    words = line.split()
    names = [("" if w == '""' else w) for w in words[1:]]
    try:
        if words[0] == "set" and len(names) == 2:
            registry.set(names[0], dubbo_health.ServingStatus[names[1]])
        elif words[0] == "clear" and len(names) == 1:
            registry.clear(names[0])
        elif words == ["shutdown"]:
            registry.shutdown()
        elif words == ["resume"]:
            registry.resume()
        elif words == ["end-watches"]:
            registry.end_watches()
        elif words == ["reset"]:
            reset(registry)
        elif words == ["watches"]:
            return f"ok {services.open_watches}"
        else:
            return f"error unknown command {line!r}"
    except (ValueError, KeyError) as err:
        return f"error {type(err).__name__}: {err}"
    return "ok"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-watches", type=int, default=5)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--request-timeout", type=float, default=10.0)
    args = parser.parse_args()

    registry = dubbo_health.Registry()
    reset(registry)
    services = with_health(
        registry,
        greeter_handler(),
        max_watches=args.max_watches,
        poll_interval=args.poll_interval,
        request_timeout=args.request_timeout,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    dubbo.Server(ServiceConfig(services, host="127.0.0.1", port=port)).start()
    print(f"listening 127.0.0.1:{port}", flush=True)
    for raw in sys.stdin:
        if raw.strip():
            print(apply(registry, services, raw.strip()), flush=True)
    if not services.drain(timeout=5):
        sys.exit(f"{services.open_watches} Watch streams did not end")


if __name__ == "__main__":
    main()
