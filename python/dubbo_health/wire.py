"""The ``grpc.health.v1`` protobuf codec and request handlers, on raw bytes.

For hosting the health service on a gRPC server other than grpcio (see
:mod:`dubbo_health.grpcio` for grpcio itself). Errors come as :class:`~dubbo_health.RpcError`
carrying the gRPC status code to answer with.

>>> from dubbo_health import Registry, ServingStatus
>>> from dubbo_health import wire
>>> registry = Registry()
>>> wire.handle_check(registry, b"")  # service "" -> SERVING
b'\\x08\\x01'
>>> wire.decode_check_request(b"\\n\\x03foo")
'foo'
>>> wire.encode_check_response(ServingStatus.NOT_SERVING)
b'\\x08\\x02'
"""

from __future__ import annotations

from ._native import decode_check_request, encode_check_response, handle_check, handle_list

__all__ = ["decode_check_request", "encode_check_response", "handle_check", "handle_list"]
