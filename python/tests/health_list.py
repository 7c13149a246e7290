"""Calling and decoding `grpc.health.v1.Health/List` with whatever grpcio-health-checking has.

Releases of grpcio-health-checking before the List RPC was added ship a `health_pb2` without
`HealthListResponse` and a `HealthStub` without `List`. The tests then call List through a raw
`channel.unary_unary` and decode the answer with a message class built at run time from a
descriptor (the `protobuf` package), so they hold on every grpcio version the package supports.
"""

from __future__ import annotations

from typing import Any, Callable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2

LIST_METHOD = "/grpc.health.v1.Health/List"


def descriptor_list_response() -> Any:
    """A `HealthListResponse` class built from a descriptor: map<string, HealthCheckResponse>."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="dubbo_health_tests/health_list.proto", package="dubbo_health_tests", syntax="proto3"
    )
    response = proto.message_type.add(name="HealthCheckResponse")
    # an int32 where the real proto has its enum: the same wire encoding, any value kept
    response.field.add(name="status", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    listing = proto.message_type.add(name="HealthListResponse")
    entry = listing.nested_type.add(name="StatusesEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    entry.field.add(
        name="value",
        number=2,
        type=field.TYPE_MESSAGE,
        type_name=".dubbo_health_tests.HealthCheckResponse",
        label=field.LABEL_OPTIONAL,
    )
    listing.field.add(
        name="statuses",
        number=1,
        type=field.TYPE_MESSAGE,
        type_name=".dubbo_health_tests.HealthListResponse.StatusesEntry",
        label=field.LABEL_REPEATED,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("dubbo_health_tests.HealthListResponse")
    )


def list_response_class() -> Any:
    """The library's `HealthListResponse` when it has one, else the descriptor-built one."""
    return getattr(health_pb2, "HealthListResponse", None) or descriptor_list_response()


def decode_list(data: bytes, response_class: Any = None) -> dict[str, int]:
    message = (response_class or list_response_class()).FromString(data)
    return {name: int(value.status) for name, value in message.statuses.items()}


def list_statuses(channel: grpc.Channel, timeout: float = 5) -> dict[str, int]:
    """Calls List (an empty HealthListRequest is zero bytes) and decodes the answer."""
    call: Callable[..., bytes] = channel.unary_unary(LIST_METHOD)
    return decode_list(call(b"", timeout=timeout))
