"""A raw gRPC call over HTTP/2 (the `h2` library): exactly the frames a test asks for,
which no gRPC client library will send (no message at all, a chosen `grpc-encoding`, a
compressed flag over bytes that are not gzip)."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, ResponseReceived, StreamEnded, StreamReset, TrailersReceived


def message(payload: bytes, compressed: bool = False) -> bytes:
    """One gRPC length-prefixed message."""
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


@dataclass
class Answer:
    """What came back: response headers and trailers merged, and the DATA received."""

    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    reset: bool = False

    @property
    def code(self) -> int:
        """The grpc-status, or -1 when there was none."""
        return int(self.headers.get("grpc-status", "-1"))

    def messages(self) -> list[bytes]:
        """The gRPC messages in the DATA."""
        out, rest = [], self.data
        while len(rest) >= 5:
            _, n = struct.unpack(">BI", rest[:5])
            out.append(rest[5 : 5 + n])
            rest = rest[5 + n :]
        return out


def call(
    port: int,
    method: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    max_messages: int = 1_000,
    timeout: float = 5.0,
) -> Answer:
    """Sends one request (HEADERS, then `body` as DATA with END_STREAM; an empty body ends
    the stream on the HEADERS) and reads until the stream ends, `max_messages` response
    messages came, or `timeout` passes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        request_headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", f"/grpc.health.v1.Health/{method}"),
            (":authority", f"127.0.0.1:{port}"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            *(headers or {}).items(),
        ]
        conn.send_headers(stream, request_headers, end_stream=not body)
        if body:
            conn.send_data(stream, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        answer = Answer()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            for event in conn.receive_data(chunk):
                if isinstance(event, (ResponseReceived, TrailersReceived)):
                    answer.headers.update(dict(event.headers))  # type: ignore[arg-type]
                elif isinstance(event, DataReceived):
                    answer.data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, StreamReset):
                    answer.reset = True
                    return answer
                elif isinstance(event, StreamEnded):
                    return answer
            sock.sendall(conn.data_to_send())
            if len(answer.messages()) >= max_messages:
                return answer
        return answer
    finally:
        sock.close()
