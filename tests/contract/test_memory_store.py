"""What only the memory store promises: one store per ``memory://`` name in a process.

Everything else it does is the store contract, run on it with the other backends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from comms.adapters.memory_store import MemoryStore, discard
from comms.bootstrap import Runtime, open_alert_state, open_store
from tests.contract.support import ACME, open_incident


@pytest.fixture
def name() -> Iterator[str]:
    """A memory store name no other test uses."""
    unique = f"memory-test-{uuid.uuid4().hex}"
    yield unique
    discard(unique)


def test_the_store_and_the_alert_state_of_one_name_are_one_object(name: str) -> None:
    store = open_store(f"memory://{name}")
    assert open_alert_state(f"memory://{name}") is store
    assert open_store(f"memory://{name}") is store
    open_incident(store)
    assert open_alert_state(f"memory://{name}").incident_exists("INC-1") is True


def test_names_are_separate_stores(name: str) -> None:
    open_store(f"memory://{name}").put_tenant(ACME)
    other = f"{name}-other"
    try:
        assert open_store(f"memory://{other}").list_tenants() == []
    finally:
        discard(other)


def test_closing_keeps_the_data_and_discarding_forgets_it(name: str) -> None:
    store = open_store(f"memory://{name}")
    store.put_tenant(ACME)
    store.close()
    assert open_store(f"memory://{name}").list_tenants() == [ACME]
    discard(name)
    assert open_store(f"memory://{name}").list_tenants() == []


def test_a_runtime_on_a_memory_url_keeps_its_data_across_runtimes(name: str) -> None:
    environ = {"COMMS_DATABASE_URL": f"memory://{name}", "COMMS_AUTHOR": "test"}
    with Runtime(environ=environ) as first:
        first.store.put_tenant(ACME)
        assert first.alert_state is first.store
    with Runtime(environ=environ) as second:
        assert second.store.list_tenants() == [ACME]


def test_a_memory_store_can_be_built_directly() -> None:
    with MemoryStore() as store:
        open_incident(store)
        assert [r.ref for r in store.clock_rows()] == ["INC-1"]
