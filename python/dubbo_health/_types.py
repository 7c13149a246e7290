"""Pure-Python types shared by the native module and the public API."""

from __future__ import annotations

import enum

__all__ = [
    "HealthError",
    "InvalidStatusError",
    "NameTooLongError",
    "RegistryFull",
    "RpcError",
    "ServiceNotFoundError",
    "ServingStatus",
    "SetOutcome",
]


class ServingStatus(enum.IntEnum):
    """The health of one service, with the numbers ``grpc.health.v1`` uses on the wire."""

    UNKNOWN = 0
    """The host has not said."""
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3
    """Only ever seen in watch answers, for a name that is not registered; ``set`` refuses it."""

    def __str__(self) -> str:
        return self.name


class SetOutcome(enum.Enum):
    """What a successful :meth:`Registry.set` did."""

    CHANGED = "changed"
    """The name was registered or its status changed; its watchers were woken."""
    UNCHANGED = "unchanged"
    """The name already had this status; nobody was woken."""
    IGNORED = "ignored"
    """The registry is shut down (draining): the call was ignored until ``resume()``."""


class HealthError(ValueError):
    """Base class of the errors a registry raises for a bad argument or a full registry."""


class NameTooLongError(HealthError):
    """The service name is longer than ``MAX_NAME`` (200) bytes of UTF-8."""

    def __init__(self, message: str, length: int, limit: int) -> None:
        super().__init__(message)
        self.length = length
        """The name's length in bytes."""
        self.limit = limit
        """The largest length allowed, in bytes."""

    def __reduce__(self) -> tuple[type[NameTooLongError], tuple[str, int, int]]:
        return (type(self), (str(self), self.length, self.limit))


class RegistryFull(HealthError):
    """Every slot of the registry holds a name: clear one first."""


class InvalidStatusError(HealthError):
    """Not a status ``set`` accepts: only UNKNOWN, SERVING and NOT_SERVING can be set."""


class InvalidNameError(HealthError):
    """A name that cannot be used for this: an exported interface must be non-empty without
    ``/`` or ``:`` (those belong to service keys), and ``""`` cannot require itself."""


class KeyForm(str, enum.Enum):
    """Which Dubbo host's service key :func:`service_key` builds."""

    DUBBO_GO = "dubbo-go"
    """dubbo-go's ``group/interface:version``: the version left out when empty or ``0.0.0``."""
    DUBBO_JAVA = "dubbo-java"
    """Dubbo Java's: the version kept whenever it is not empty, ``0.0.0`` included."""


class ServiceNotFoundError(KeyError):
    """The name is not registered (``Registry.check`` and ``registry[name]``)."""

    def __str__(self) -> str:
        # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""


class RpcError(Exception):
    """A gRPC error status produced by the wire handlers: ``code`` is the numeric gRPC code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        """The gRPC status code number (3 INVALID_ARGUMENT, 5 NOT_FOUND, ...)."""
        self.message = message
        """The text to send as ``grpc-message``."""

    def __str__(self) -> str:
        return f"{self.message} (gRPC code {self.code})"
