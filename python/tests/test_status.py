"""Python's ServingStatus, the Rust core and the protobuf definitions agree; the wire codec
matches protobuf's own encoding."""

from __future__ import annotations

import enum

import pytest
from grpc_health.v1 import health_pb2
from health_list import decode_list, descriptor_list_response

from dubbo_health import Registry, RpcError, ServingStatus, wire
from dubbo_health._native import MAX_NAME

PB = health_pb2.HealthCheckResponse


def test_is_an_int_enum_with_the_wire_numbers() -> None:
    assert issubclass(ServingStatus, enum.IntEnum)
    assert [(s.name, s.value) for s in ServingStatus] == [
        ("UNKNOWN", 0),
        ("SERVING", 1),
        ("NOT_SERVING", 2),
        ("SERVICE_UNKNOWN", 3),
    ]
    assert str(ServingStatus.SERVING) == "SERVING"
    assert ServingStatus(2) is ServingStatus.NOT_SERVING


def test_matches_the_proto_enum() -> None:
    proto = PB.ServingStatus
    assert {s.name: s.value for s in ServingStatus} == dict(proto.items())


@pytest.mark.parametrize("status", list(ServingStatus))
def test_rust_and_python_agree(status: ServingStatus) -> None:
    # Rust encodes by its own numbering; protobuf decodes by the wire number.
    encoded = wire.encode_check_response(status)
    assert PB.FromString(encoded).status == status.value
    assert encoded == PB(status=status.value).SerializeToString()
    # and the registry hands back the very Python member for each number Rust stores
    if status is not ServingStatus.SERVICE_UNKNOWN:
        registry = Registry()
        registry.set("s", status.value)
        assert registry.get("s") is status
        assert registry.list()["s"] is status
        assert (
            wire.handle_check(
                registry, health_pb2.HealthCheckRequest(service="s").SerializeToString()
            )
            == encoded
        )


@pytest.mark.parametrize("status", [-1, 4, 2**70])
def test_encode_rejects_other_numbers(status: int) -> None:
    with pytest.raises(ValueError, match="not a serving status"):
        wire.encode_check_response(status)


@pytest.mark.parametrize(
    "name", ["", "a", "org.apache.dubbogo.samples.api.Greeter", "ü" * 100, "x" * MAX_NAME]
)
def test_decode_matches_protobuf(name: str) -> None:
    request = health_pb2.HealthCheckRequest(service=name).SerializeToString()
    assert wire.decode_check_request(request) == name


def test_decode_errors_carry_the_grpc_code() -> None:
    with pytest.raises(RpcError) as info:
        wire.decode_check_request(b"\x0a\x05ab")
    assert info.value.code == 3
    assert "malformed" in info.value.message
    too_long = health_pb2.HealthCheckRequest(service="x" * (MAX_NAME + 1)).SerializeToString()
    with pytest.raises(RpcError) as info:
        wire.decode_check_request(too_long)
    assert info.value.code == 3


def test_handle_check_and_list_errors() -> None:
    registry = Registry()
    request = health_pb2.HealthCheckRequest(service="nope").SerializeToString()
    with pytest.raises(RpcError) as info:
        wire.handle_check(registry, request)
    assert (info.value.code, str(info.value)) == (5, "unknown service (gRPC code 5)")
    for i in range(150):
        registry.set(f"n{i:03}", ServingStatus.SERVING)
    with pytest.raises(RpcError) as info:
        wire.handle_list(registry, b"")
    assert info.value.code == 8


def test_list_matches_protobuf_with_the_longest_names() -> None:
    registry = Registry()
    registry.clear("")
    for i in range(100):
        registry.set(f"{i:03}".ljust(MAX_NAME, "x"), ServingStatus(i % 3))
    expected = {k: v.value for k, v in registry.list().items()}
    encoded = wire.handle_list(registry, b"")
    assert decode_list(encoded) == expected
    # the descriptor-built class (used when health_pb2 predates List) agrees
    assert decode_list(encoded, descriptor_list_response()) == expected
    if hasattr(health_pb2, "HealthListResponse"):
        reference = health_pb2.HealthListResponse(
            statuses={k: PB(status=v) for k, v in expected.items()}
        )
        assert health_pb2.HealthListResponse.FromString(encoded) == reference
