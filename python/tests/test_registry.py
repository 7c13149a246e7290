"""The Registry API, every error, and the DESIGN.md semantics that need no watcher."""

from __future__ import annotations

import pickle
import threading

import pytest

from dubbo_health import (
    DEFAULT_CAPACITY,
    LIST_LIMIT,
    MAX_NAME,
    HealthError,
    InvalidStatusError,
    NameTooLongError,
    Registry,
    RegistryFull,
    ServiceNotFoundError,
    ServingStatus,
    SetOutcome,
)

GREETER = "org.apache.dubbogo.samples.api.Greeter"
SERVICE_KEY = "group/org.apache.Foo:1.0.0"


def test_constants() -> None:
    assert MAX_NAME == 200
    assert LIST_LIMIT == 100
    assert DEFAULT_CAPACITY == 16384


def test_new_registry_serves_the_empty_name(registry: Registry) -> None:
    assert registry.get("") is ServingStatus.SERVING
    assert len(registry) == 1
    assert "" in registry
    assert registry.list() == {"": ServingStatus.SERVING}
    assert registry.capacity == DEFAULT_CAPACITY
    assert not registry.is_shut_down


def test_set_get_and_outcomes(registry: Registry) -> None:
    assert registry.get(GREETER) is None
    assert GREETER not in registry
    assert registry.set(GREETER, ServingStatus.SERVING) is SetOutcome.CHANGED
    assert registry.set(GREETER, ServingStatus.SERVING) is SetOutcome.UNCHANGED
    assert registry.get(GREETER) is ServingStatus.SERVING
    assert registry.set(GREETER, 2) is SetOutcome.CHANGED  # plain ints are wire numbers
    assert registry.get(GREETER) is ServingStatus.NOT_SERVING
    assert registry.set(GREETER, ServingStatus.UNKNOWN) is SetOutcome.CHANGED
    assert registry.get(GREETER) is ServingStatus.UNKNOWN
    assert GREETER in registry
    assert len(registry) == 2


def test_dubbo_service_keys_and_unicode_names(registry: Registry) -> None:
    names = [SERVICE_KEY, "ünïcødé/服务", "with space", "x" * MAX_NAME, "€" * (MAX_NAME // 3)]
    for name in names:
        registry.set(name, ServingStatus.NOT_SERVING)
    for name in names:
        assert registry.get(name) is ServingStatus.NOT_SERVING
        assert registry[name] is ServingStatus.NOT_SERVING
    assert set(registry.list()) == {"", *names}


def test_check_and_getitem_raise_for_unknown(registry: Registry) -> None:
    assert registry.check("") is ServingStatus.SERVING
    with pytest.raises(ServiceNotFoundError, match="unknown service"):
        registry.check("nope")
    with pytest.raises(KeyError):
        registry["nope"]


@pytest.mark.parametrize("name", ["x" * (MAX_NAME + 1), "€" * 67])
def test_name_too_long_everywhere(registry: Registry, name: str) -> None:
    length = len(name.encode())
    assert length > MAX_NAME
    for call in (
        lambda: registry.set(name, ServingStatus.SERVING),
        lambda: registry.check(name),
        lambda: registry[name],
        lambda: registry.clear(name),
        lambda: registry.watch(name),
        lambda: registry.watch_async(name),
    ):
        with pytest.raises(NameTooLongError) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, HealthError)
        assert info.value.length == length
        assert info.value.limit == MAX_NAME
        assert str(info.value) == f"service name is {length} bytes; the limit is 200"
    # `get` is the question "what is its status?": no such name can be registered, so
    # None, as Rust's `Registry::get` answers; `check` (above) says why.
    assert registry.get(name) is None
    assert name not in registry
    assert len(registry) == 1


@pytest.mark.parametrize("status", [3, ServingStatus.SERVICE_UNKNOWN, -1, 4, 2**40, -(2**70)])
def test_invalid_status(registry: Registry, status: int) -> None:
    with pytest.raises(InvalidStatusError) as info:
        registry.set("a", status)
    assert isinstance(info.value, ValueError)
    assert "a" not in registry


@pytest.mark.parametrize("name", [1, b"bytes", None, ["a"]])
def test_name_must_be_str(registry: Registry, name: object) -> None:
    for call in (
        lambda: registry.set(name, 1),  # type: ignore[arg-type]
        lambda: registry.get(name),  # type: ignore[arg-type]
        lambda: registry.clear(name),  # type: ignore[arg-type]
        lambda: registry.watch(name),  # type: ignore[arg-type]
        lambda: registry.watch_async(name),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError):
            call()
    assert name not in registry


@pytest.mark.parametrize("status", ["SERVING", 1.0, None])
def test_status_must_be_int(registry: Registry, status: object) -> None:
    with pytest.raises(TypeError):
        registry.set("a", status)  # type: ignore[arg-type]


def test_contains_is_false_for_anything_else(registry: Registry) -> None:
    assert 1 not in registry
    assert None not in registry
    assert "x" * 500 not in registry


def test_clear(registry: Registry) -> None:
    registry.set("a", ServingStatus.SERVING)
    assert registry.clear("a") is True
    assert registry.clear("a") is False
    assert registry.get("a") is None
    assert "a" not in registry
    assert registry.clear("") is True
    assert len(registry) == 0
    assert registry.list() == {}
    registry.set("a", ServingStatus.NOT_SERVING)  # a cleared slot is reused, status is fresh
    assert registry.get("a") is ServingStatus.NOT_SERVING


def test_shutdown_and_resume(registry: Registry) -> None:
    registry.set("a", ServingStatus.SERVING)
    registry.set("b", ServingStatus.UNKNOWN)
    registry.shutdown()
    assert registry.is_shut_down
    assert registry.list() == {
        "": ServingStatus.NOT_SERVING,
        "a": ServingStatus.NOT_SERVING,
        "b": ServingStatus.NOT_SERVING,
    }
    assert registry.set("a", ServingStatus.SERVING) is SetOutcome.IGNORED
    assert registry.set("new", ServingStatus.SERVING) is SetOutcome.IGNORED
    assert registry.get("a") is ServingStatus.NOT_SERVING
    assert "new" not in registry
    registry.resume()
    assert not registry.is_shut_down
    assert registry.list() == {
        "": ServingStatus.SERVING,
        "a": ServingStatus.SERVING,
        "b": ServingStatus.SERVING,
    }
    assert registry.set("a", ServingStatus.NOT_SERVING) is SetOutcome.CHANGED


def test_full_registry_is_a_named_error(registry: Registry) -> None:
    for i in range(registry.capacity - 1):
        registry.set(f"svc-{i}", ServingStatus.SERVING)
    assert len(registry) == registry.capacity
    with pytest.raises(RegistryFull, match="full") as info:
        registry.set("one-too-many", ServingStatus.SERVING)
    assert isinstance(info.value, HealthError)
    registry.set("svc-0", ServingStatus.NOT_SERVING)  # existing names still update
    assert registry.clear("svc-1")
    assert registry.set("one-too-many", ServingStatus.SERVING) is SetOutcome.CHANGED
    assert len(registry.list()) == registry.capacity


def test_repr(registry: Registry) -> None:
    assert repr(registry) == 'Registry({"": SERVING})'
    registry.set("a", ServingStatus.NOT_SERVING)
    assert repr(registry) == 'Registry({"": SERVING, "a": NOT_SERVING})'
    registry.shutdown()
    assert repr(registry).endswith("shut_down=True)")
    for i in range(20):
        registry.set(f"n{i}", 1)
    registry.resume()
    for i in range(20):
        registry.set(f"n{i}", 1)
    assert repr(registry).endswith(", ...})")


def test_registries_are_independent() -> None:
    one, two = Registry(), Registry()
    one.set("a", ServingStatus.SERVING)
    assert "a" not in two


def test_shared_across_threads(registry: Registry) -> None:
    rounds = 300

    def writer(t: int) -> None:
        for i in range(rounds):
            registry.set(f"t{t}", ServingStatus.SERVING if i % 2 else ServingStatus.NOT_SERVING)
            assert registry.get(f"t{t}") is not None

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert registry.list() == {
        "": ServingStatus.SERVING,
        **{f"t{t}": ServingStatus.SERVING for t in range(4)},
    }


def test_list_is_a_snapshot(registry: Registry) -> None:
    snapshot = registry.list()
    registry.set("later", ServingStatus.SERVING)
    assert "later" not in snapshot
    snapshot["x"] = ServingStatus.UNKNOWN
    assert "x" not in registry


def test_errors_pickle() -> None:
    registry = Registry()
    with pytest.raises(NameTooLongError) as info:
        registry.set("x" * 300, ServingStatus.SERVING)
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is NameTooLongError
    assert (str(copy), copy.length, copy.limit) == (str(info.value), 300, MAX_NAME)
