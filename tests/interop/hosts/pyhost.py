"""Python hosts of the interop suite, driven over stdin.

    python pyhost.py serve|sync|aio|dubbo [--addr 127.0.0.1:0] [--workers N] [--max-watches N]

serve  dubbo_health.serve(registry, addr): the standalone Rust server
sync   grpc.server(ThreadPoolExecutor) + dubbo_health.grpcio.add_to_server
aio    grpc.aio.server() + dubbo_health.grpcio.add_to_server
dubbo  an apache-dubbo server (dubbo.Server) + dubbo_health.dubbo.service_handler; apache-dubbo
       has no port 0, so port 0 means a free port picked here first

Prints ``listening HOST:PORT`` on stderr once the port is bound, then reads control lines
from stdin, answering each with ``ok`` or ``error <text>`` on stdout:

    set NAME STATUS | clear NAME | shutdown | resume      (NAME "" is the empty name)

End of stdin stops the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def parse_name(token: str) -> str:
    return "" if token == '""' else token


def apply(registry: Any, line: str) -> str:
    import dubbo_health

    parts = line.split()
    try:
        if len(parts) == 3 and parts[0] == "set":
            registry.set(parse_name(parts[1]), dubbo_health.ServingStatus[parts[2]])
        elif len(parts) == 2 and parts[0] == "clear":
            registry.clear(parse_name(parts[1]))
        elif parts == ["shutdown"]:
            registry.shutdown()
        elif parts == ["resume"]:
            registry.resume()
        else:
            return f"error unknown command {line!r}"
    except Exception as err:  # noqa: BLE001 -- reported to the harness, which decides what is wrong
        return f"error {type(err).__name__}: {err}"
    return "ok"


def control_loop(registry: Any, on_eof: Callable[[], None]) -> None:
    for raw in sys.stdin:
        line = raw.strip()
        if line:
            print(apply(registry, line), flush=True)
    on_eof()


def announce(port: int) -> None:
    print(f"listening 127.0.0.1:{port}", file=sys.stderr, flush=True)


def run_serve(addr: str) -> None:
    import dubbo_health

    registry = dubbo_health.Registry()
    server = dubbo_health.serve(registry, addr)
    try:
        announce(server.port)
        control_loop(registry, lambda: None)
    finally:
        server.stop()


def run_sync(addr: str, workers: int) -> None:
    import dubbo_health
    import dubbo_health.grpcio
    import grpc

    registry = dubbo_health.Registry()
    server = grpc.server(ThreadPoolExecutor(max_workers=workers))
    dubbo_health.grpcio.add_to_server(registry, server)
    port = server.add_insecure_port(addr)
    server.start()
    announce(port)
    control_loop(registry, lambda: None)
    server.stop(grace=1).wait()


def run_aio(addr: str) -> None:
    import dubbo_health
    import dubbo_health.grpcio
    import grpc

    async def main() -> None:
        registry = dubbo_health.Registry()
        server = grpc.aio.server()
        dubbo_health.grpcio.add_to_server(registry, server)
        port = server.add_insecure_port(addr)
        await server.start()
        announce(port)
        loop = asyncio.get_running_loop()
        eof = asyncio.Event()
        # The registry is thread-safe: the stdin thread calls it directly.
        threading.Thread(
            target=control_loop, args=(registry, lambda: loop.call_soon_threadsafe(eof.set)), daemon=True
        ).start()
        await eof.wait()
        await server.stop(grace=1)

    asyncio.run(main())


def free_port(host: str) -> int:
    """A port nobody listens on right now (apache-dubbo cannot bind port 0 itself)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def run_dubbo(addr: str, max_watches: int, poll_interval: float) -> None:
    import dubbo
    import dubbo_health
    from dubbo.configs import ServiceConfig
    from dubbo_health.dubbo import with_health

    registry = dubbo_health.Registry()
    health = with_health(registry, max_watches=max_watches, poll_interval=poll_interval)
    host, _, port_text = addr.rpartition(":")
    for attempt in range(5):
        port = int(port_text) or free_port(host)
        try:
            dubbo.Server(ServiceConfig(health, host=host, port=port)).start()
            break
        except Exception:  # the port was taken between free_port() and the bind
            if int(port_text) or attempt == 4:
                raise
    announce(port)

    control_loop(registry, lambda: health.drain(timeout=5))
    # The host cannot be stopped and joins its threads at exit; the Watch streams have ended.
    sys.stdout.flush()
    os._exit(0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["serve", "sync", "aio", "dubbo"])
    p.add_argument("--addr", default="127.0.0.1:0")
    p.add_argument("--workers", type=int, default=64)
    p.add_argument("--max-watches", type=int, default=5)
    p.add_argument("--poll-interval", type=float, default=0.5)
    args = p.parse_args()
    if args.mode == "serve":
        run_serve(args.addr)
    elif args.mode == "sync":
        run_sync(args.addr, args.workers)
    elif args.mode == "dubbo":
        run_dubbo(args.addr, args.max_watches, args.poll_interval)
    else:
        run_aio(args.addr)


if __name__ == "__main__":
    main()
