"""Python peers of the interop suite: grpcio-health-checking's HealthStub and grpclib's health client.

Same command line and output protocol as ../goclient (see its header):
    python pyclient.py grpcio|grpclib check|watch|list --addr HOST:PORT [--service NAME]
                       [--count K] [--timeout SECONDS]
    python pyclient.py grpcio clienthealth --addr HOST:PORT --service NAME [--timeout SECONDS]
Each library runs in its own process: both ship a generated ``grpc/health/v1/health.proto`` and
protobuf refuses to load the same symbols twice in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_grpcio(args: argparse.Namespace) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def status_name(resp: health_pb2.HealthCheckResponse) -> str:
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    if args.mode == "clienthealth":
        grpcio_client_health(args)
        return
    with grpc.insecure_channel(args.addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            if args.mode == "check":
                compression = grpc.Compression.Gzip if args.gzip else None
                request = health_pb2.HealthCheckRequest(service=args.service)
                emit(status_name(stub.Check(request, timeout=args.timeout, compression=compression)))
            elif args.mode == "list":
                resp = stub.List(health_pb2.HealthListRequest(), timeout=args.timeout)
                emit(json.dumps({k: status_name(v) for k, v in resp.statuses.items()}, ensure_ascii=False))
            else:
                call = stub.Watch(health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
                for n, resp in enumerate(call, 1):
                    emit(status_name(resp))
                    if args.count and n >= args.count:
                        call.cancel()
                        return
                emit("END OK")
        except grpc.RpcError as err:
            code = err.code()
            if args.mode == "watch":
                emit("TIMEOUT" if code == grpc.StatusCode.DEADLINE_EXCEEDED else f"END {code.name} {err.details()}")
            else:
                emit(f"ERROR {code.name} {err.details()}")


def grpcio_client_health(args: argparse.Namespace) -> None:
    """gRPC core's client-side health checking: with healthCheckConfig the channel watches the
    service and stops using a subchannel that is not SERVING (RPCs fail UNAVAILABLE)."""
    import time

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    config = {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": args.service}}
    options = [("grpc.service_config", json.dumps(config)), ("grpc.enable_retries", 0)]
    with grpc.insecure_channel(args.addr, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + args.timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
                state = "UP"
            except grpc.RpcError as err:
                state = f"DOWN {err.code().name}"
            if state != last:
                emit(state)
                last = state
            time.sleep(0.02)
        emit("TIMEOUT")


class _RawCodec:
    """grpclib codec passing bytes through: its bundled health proto has no List method."""

    __content_subtype__ = "proto"

    def encode(self, message: bytes, message_type: object) -> bytes:
        return message

    def decode(self, data: bytes, message_type: object) -> bytes:
        return data


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of a protobuf message (varint and length-delimited only)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i : i + length], i + length
        else:
            raise ValueError(f"unexpected wire type {wire}")
        yield field, wire, value


def decode_list_response(data: bytes) -> dict[str, int]:
    """HealthListResponse{map<string, HealthCheckResponse> statuses = 1} -> {name: status number}."""
    out: dict[str, int] = {}
    for field, _, entry in _fields(data):
        if field != 1:
            continue
        name, status = "", 0
        for f, _, v in _fields(entry):
            if f == 1:
                name = v.decode("utf-8")
            elif f == 2:
                for ff, _, vv in _fields(v):
                    if ff == 1:
                        status = vv
        out[name] = status
    return out


async def run_grpclib(args: argparse.Namespace) -> None:
    from grpclib import GRPCError
    from grpclib.client import Channel
    from grpclib.const import Cardinality
    from grpclib.health.v1 import health_pb2
    from grpclib.health.v1.health_grpc import HealthStub

    host, _, port = args.addr.rpartition(":")
    names = health_pb2.HealthCheckResponse.ServingStatus.Name
    try:
        if args.mode == "list":
            async with Channel(host, int(port), codec=_RawCodec()) as channel:  # type: ignore[arg-type]
                async with channel.request(
                    "/grpc.health.v1.Health/List", Cardinality.UNARY_UNARY, bytes, bytes, timeout=args.timeout
                ) as stream:
                    await stream.send_message(b"", end=True)
                    data = await stream.recv_message()
                    await stream.recv_trailing_metadata()
                emit(
                    json.dumps({k: names(v) for k, v in decode_list_response(data or b"").items()}, ensure_ascii=False)
                )
            return
        async with Channel(host, int(port)) as channel:
            stub = HealthStub(channel)
            if args.mode == "check":
                resp = await stub.Check(health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
                emit(names(resp.status))
                return
            async with stub.Watch.open(timeout=args.timeout) as stream:
                await stream.send_message(health_pb2.HealthCheckRequest(service=args.service), end=True)
                n = 0
                async for resp in stream:
                    emit(names(resp.status))
                    n += 1
                    if args.count and n >= args.count:
                        await stream.cancel()
                        return
                emit("END OK")
    except GRPCError as err:
        prefix = "END" if args.mode == "watch" else "ERROR"
        emit(f"{prefix} {err.status.name} {err.message}")
    except TimeoutError:
        emit("TIMEOUT" if args.mode == "watch" else "ERROR DEADLINE_EXCEEDED client timeout")
    except (ConnectionError, OSError) as err:
        emit(f"ERROR UNAVAILABLE {err}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("lib", choices=["grpcio", "grpclib"])
    p.add_argument("mode", choices=["check", "watch", "list", "clienthealth"])
    p.add_argument("--addr", required=True)
    p.add_argument("--service", default="")
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--gzip", action="store_true", help="check: gzip-compress the request (grpcio only)")
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()
    if args.lib == "grpcio":
        run_grpcio(args)
    else:
        asyncio.run(run_grpclib(args))


if __name__ == "__main__":
    main()
