"""gRPC health checking (``grpc.health.v1.Health``) for Python services.

One :class:`Registry` holds the status of every service of the process; it answers
``Check``, ``Watch`` and ``List`` through the standalone server :func:`serve` or through a
grpcio server it is mounted on (:func:`dubbo_health.grpcio.add_to_server`).

>>> from dubbo_health import Registry, ServingStatus
>>> registry = Registry()
>>> registry.get("")
<ServingStatus.SERVING: 1>
>>> registry.set("org.apache.dubbogo.samples.api.Greeter", ServingStatus.NOT_SERVING)
<SetOutcome.CHANGED: 'changed'>
>>> "org.apache.dubbogo.samples.api.Greeter" in registry
True
>>> watch = registry.watch("org.apache.dubbogo.samples.api.Greeter")
>>> next(watch)
<ServingStatus.NOT_SERVING: 2>
>>> watch.close()

Serving it on a port of its own (port 0 picks a free one); leaving the block drains that
server (its Watch streams get a last NOT_SERVING and end) and stops it, leaving the registry
as it was (call ``registry.shutdown()`` first for a drain every door sees):

>>> import dubbo_health
>>> with dubbo_health.serve(registry, "127.0.0.1:0") as server:
...     server.port > 0
True
>>> registry.is_shut_down
False

Dubbo: export on start, unexport on stop; ``""`` can follow the services it requires:

>>> registry.require("org.apache.Foo")
True
>>> registry.export("org.apache.Foo", "grp", "1.0.0")
<SetOutcome.CHANGED: 'changed'>
>>> registry.get("grp/org.apache.Foo:1.0.0"), registry.get("org.apache.Foo"), registry.get("")
(<ServingStatus.SERVING: 1>, <ServingStatus.SERVING: 1>, <ServingStatus.SERVING: 1>)
>>> registry.unexport("org.apache.Foo", "grp", "1.0.0")
True
>>> registry.get("")
<ServingStatus.NOT_SERVING: 2>
>>> dubbo_health.service_key("org.apache.Foo", "", "0.0.0", dubbo_health.KeyForm.DUBBO_JAVA)
'org.apache.Foo:0.0.0'
"""

from __future__ import annotations

from ._native import (
    DEFAULT_CAPACITY,
    LIST_LIMIT,
    MAX_NAME,
    AsyncWatch,
    Probes,
    Registry,
    Server,
    Watch,
    __version__,
    serve,
    service_key,
)
from ._types import (
    HealthError,
    InvalidNameError,
    InvalidStatusError,
    KeyForm,
    NameTooLongError,
    RegistryFull,
    RpcError,
    ServiceNotFoundError,
    ServingStatus,
    SetOutcome,
)

__all__ = [
    "DEFAULT_CAPACITY",
    "LIST_LIMIT",
    "MAX_NAME",
    "AsyncWatch",
    "HealthError",
    "InvalidNameError",
    "InvalidStatusError",
    "KeyForm",
    "NameTooLongError",
    "Probes",
    "Registry",
    "RegistryFull",
    "RpcError",
    "Server",
    "ServiceNotFoundError",
    "ServingStatus",
    "SetOutcome",
    "Watch",
    "__version__",
    "serve",
    "service_key",
]
