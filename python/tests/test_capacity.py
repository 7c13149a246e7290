"""Registry capacity chosen at run time: the default, the range, and a registry of 100,000."""

import pytest

from dubbo_health import DEFAULT_CAPACITY, Registry, RegistryFull, ServingStatus


def test_default_capacity_holds_ten_thousand_names() -> None:
    assert DEFAULT_CAPACITY == 16384
    assert Registry().capacity == DEFAULT_CAPACITY
    assert Registry(capacity=None).capacity == DEFAULT_CAPACITY
    registry = Registry()
    for i in range(10_000):
        registry.set(f"org.apache.dubbo.samples.Service{i}", ServingStatus.SERVING)
    assert len(registry) == 10_001


def test_capacity_range() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Registry(capacity=0)
    with pytest.raises(ValueError, match="from 1 to 16777215"):
        Registry(capacity=-1)
    with pytest.raises(ValueError, match="at most 16777215"):
        Registry(capacity=16_777_216)
    with pytest.raises(ValueError, match="from 1 to"):
        Registry(capacity=2**70)
    with pytest.raises(TypeError, match="capacity must be an int"):
        Registry(capacity="8")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="capacity must be an int"):
        Registry(capacity=True)
    one = Registry(capacity=1)
    assert one.capacity == 1
    assert one.get("") is ServingStatus.SERVING
    with pytest.raises(RegistryFull):
        one.set("a", ServingStatus.SERVING)


def test_a_registry_of_100000_names() -> None:
    registry = Registry(capacity=100_000)
    assert registry.capacity == 100_000
    names = [f"group/org.apache.dubbo.Service{i}:1.0.0" for i in range(1, 100_000)]
    for i, name in enumerate(names):
        registry.set(name, ServingStatus.SERVING if i % 3 else ServingStatus.NOT_SERVING)
    assert len(registry) == 100_000
    with pytest.raises(RegistryFull):
        registry.set("one-too-many", ServingStatus.SERVING)
    for i, name in enumerate(names):
        assert registry.get(name) is (ServingStatus.SERVING if i % 3 else ServingStatus.NOT_SERVING)
    assert registry.get("one-too-many") is None
    assert len(registry.list()) == 100_000
    assert registry.clear(names[7])
    registry.set("one-too-many", ServingStatus.SERVING)
    assert registry["one-too-many"] is ServingStatus.SERVING
