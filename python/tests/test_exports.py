"""Dubbo service keys, export/unexport and ``""`` derived from required services, through the
Python door: the names of DUBBO.md's table, the errors, and what a watcher of ``""`` sees."""

from __future__ import annotations

import pytest

import dubbo_health
from dubbo_health import (
    InvalidNameError,
    InvalidStatusError,
    KeyForm,
    NameTooLongError,
    Registry,
    RegistryFull,
    ServingStatus,
    SetOutcome,
    service_key,
)

GREETER = "org.apache.dubbogo.samples.api.Greeter"
FOO = "org.apache.Foo"
SERVING = ServingStatus.SERVING
NOT_SERVING = ServingStatus.NOT_SERVING


def test_service_key_forms() -> None:
    assert service_key(GREETER) == GREETER
    assert service_key(GREETER, form=KeyForm.DUBBO_JAVA) == GREETER
    assert service_key(FOO, "grp", "1.0.0") == "grp/org.apache.Foo:1.0.0"
    assert service_key(FOO, "grp", "1.0.0", KeyForm.DUBBO_JAVA) == "grp/org.apache.Foo:1.0.0"
    assert service_key(FOO, "", "0.0.0") == FOO
    assert service_key(FOO, "", "0.0.0", KeyForm.DUBBO_JAVA) == "org.apache.Foo:0.0.0"
    assert service_key(FOO, "grp", "0.0.0", KeyForm.DUBBO_GO) == "grp/org.apache.Foo"
    assert service_key(FOO, version="2", form="dubbo-java") == "org.apache.Foo:2"
    with pytest.raises(NameTooLongError) as err:
        service_key("i" * 199, "g")
    assert err.value.length == 201
    with pytest.raises(ValueError, match="KeyForm"):
        service_key(FOO, form="dubbo-rust")


def test_export_sets_both_forms_and_the_bare_interface() -> None:
    registry = Registry()
    assert registry.export(FOO, "grp", "0.0.0") is SetOutcome.CHANGED
    assert registry.list() == {
        "": SERVING,
        "grp/org.apache.Foo": SERVING,
        "grp/org.apache.Foo:0.0.0": SERVING,
        FOO: SERVING,
    }
    assert registry.export(FOO, "grp", "0.0.0", SERVING) is SetOutcome.UNCHANGED
    registry.export(FOO, "grp", "1.0.0", ServingStatus.SERVING)
    assert registry.unexport(FOO, "grp", "0.0.0") is True
    assert registry.get("grp/org.apache.Foo") is NOT_SERVING
    assert registry.get("grp/org.apache.Foo:0.0.0") is NOT_SERVING
    # 1.0.0 still serves, so the interface does.
    assert registry.get(FOO) is SERVING
    # A plain set of an exported key moves the interface too.
    registry.set("grp/org.apache.Foo:1.0.0", NOT_SERVING)
    assert registry.get(FOO) is NOT_SERVING
    registry.set("grp/org.apache.Foo:1.0.0", SERVING)
    assert registry.unexport(FOO, "grp", "1.0.0") is True
    assert registry.get(FOO) is NOT_SERVING
    assert registry.unexport(FOO, "grp", "1.0.0") is False
    # dubbo-go with no group and version: the key is the interface itself.
    registry.export(GREETER)
    assert registry.get(GREETER) is SERVING
    assert len(registry) == 6


def test_export_errors() -> None:
    registry = Registry(capacity=4)
    for bad in ["", "grp/org.apache.Foo", "org.apache.Foo:1.0.0"]:
        with pytest.raises(InvalidNameError):
            registry.export(bad)
        with pytest.raises(InvalidNameError):
            registry.unexport(bad)
    assert issubclass(InvalidNameError, ValueError)
    with pytest.raises(NameTooLongError):
        registry.export("i" * 199, "g")
    with pytest.raises(InvalidStatusError):
        registry.export(FOO, status=ServingStatus.SERVICE_UNKNOWN)
    with pytest.raises(TypeError):
        registry.export(FOO, status="SERVING")  # type: ignore[arg-type]
    registry.set("x", SERVING)
    registry.set("y", SERVING)
    with pytest.raises(RegistryFull):
        registry.export(FOO, "g", "0.0.0")
    assert registry.list() == {"": SERVING, "x": SERVING, "y": SERVING}
    registry.shutdown()
    registry.clear("x")
    assert registry.export(FOO) is SetOutcome.IGNORED
    assert FOO not in registry


def test_root_follows_required_services() -> None:
    registry = Registry()
    watch = registry.watch("", timeout=5)
    assert next(watch) is SERVING
    assert registry.require(GREETER) is True
    assert registry.require(GREETER) is False
    assert registry.is_required(GREETER)
    # Unregistered counts as not serving; the placeholder is invisible.
    assert registry.get("") is NOT_SERVING
    assert GREETER not in registry
    assert len(registry) == 1
    assert next(watch) is NOT_SERVING
    registry.export(GREETER)
    assert next(watch) is SERVING
    registry.require("grp/org.apache.Foo:1.0.0")
    assert next(watch) is NOT_SERVING
    registry.export(FOO, "grp", "1.0.0")
    assert next(watch) is SERVING
    registry.clear(GREETER)
    assert next(watch) is NOT_SERVING
    registry.set(GREETER, SERVING)
    assert next(watch) is SERVING
    # Drain and back: resume re-derives "".
    registry.shutdown()
    assert next(watch) is NOT_SERVING
    registry.resume()
    assert next(watch) is SERVING
    assert registry.unrequire("grp/org.apache.Foo:1.0.0") is True
    assert registry.unrequire("grp/org.apache.Foo:1.0.0") is False
    assert not registry.is_required("grp/org.apache.Foo:1.0.0")
    with pytest.raises(InvalidNameError):
        registry.require("")
    with pytest.raises(NameTooLongError):
        registry.require("n" * 201)
    watch.close()


def test_public_names() -> None:
    for name in ["service_key", "KeyForm", "InvalidNameError"]:
        assert name in dubbo_health.__all__
    assert KeyForm.DUBBO_GO.value == "dubbo-go"
