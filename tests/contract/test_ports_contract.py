"""Every implementation provides every member of its ports, with a compatible signature.

The members are read from the Protocols in ``comms.ports`` themselves, so a method added
to a port fails here until every backend has it.  Store and alert-state backends are the
classes the ``comms.bootstrap`` registries open: a new backend is checked once registered.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Generic, Protocol

import pytest

from comms import bootstrap, ports
from comms.adapters.alert_sinks import PagerDutySink, SlackSink, StdoutSink, WebhookSink
from comms.adapters.rest import SwitchboardPublisher
from comms.adapters.zendesk import ZendeskPublisher
from tests.contract.fakes import FakePublisher

STORE_PORTS = (
    ports.TenantStore,
    ports.IncidentStore,
    ports.DraftStore,
    ports.ReviewStore,
    ports.DeliveryLedger,
    ports.NoteLedger,
    ports.ClockSource,
    ports.UserStore,
    ports.Store,
)


def registered(registry: dict[str, str]) -> list[type]:
    """The classes a registry's openers return (read from their return annotations)."""
    classes = []
    for target in dict.fromkeys(registry.values()):
        module_name, _, function = target.partition(":")
        module = importlib.import_module(module_name)
        returned = inspect.signature(getattr(module, function)).return_annotation
        classes.append(getattr(module, returned) if isinstance(returned, str) else returned)
    return classes


IMPLEMENTATIONS: dict[type, list[type]] = {
    **{port: registered(bootstrap.STORES) for port in STORE_PORTS},
    ports.AlertState: registered(bootstrap.ALERT_STATES),
    ports.Publisher: [FakePublisher, SwitchboardPublisher, ZendeskPublisher],
    ports.TenantDirectory: [SwitchboardPublisher],
    ports.AlertSink: [StdoutSink, SlackSink, PagerDutySink, WebhookSink],
}
CASES = [
    pytest.param(port, cls, id=f"{port.__name__}-{cls.__name__}")
    for port, classes in IMPLEMENTATIONS.items()
    for cls in classes
]


def members(port: type) -> dict[str, Any]:
    """The public methods (name → function) and attributes (name → None) a port declares."""
    found: dict[str, Any] = {}
    for base in reversed(port.__mro__):
        if base in (object, Protocol, Generic) or not getattr(base, "_is_protocol", False):
            continue
        for name in getattr(base, "__annotations__", {}):
            found.setdefault(name, None)
        for name, value in vars(base).items():
            if not name.startswith("_") and callable(value):
                found[name] = value
    return {name: value for name, value in found.items() if not name.startswith("_")}


def mismatches(declared: Any, provided: Any) -> list[str]:
    """How ``provided`` cannot be called everywhere ``declared`` can (empty if it can)."""
    want = inspect.signature(declared).parameters
    have = inspect.signature(provided).parameters
    problems = []
    positional = [n for n, p in want.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    offered = [n for n, p in have.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    if offered[: len(positional)] != positional:
        problems.append(f"positional parameters {offered} instead of {positional}")
    for name, param in want.items():
        mine = have.get(name)
        if mine is None:
            problems.append(f"no parameter '{name}'")
        elif param.kind is param.KEYWORD_ONLY and mine.kind not in (
            mine.KEYWORD_ONLY,
            mine.POSITIONAL_OR_KEYWORD,
        ):
            problems.append(f"'{name}' cannot be passed by keyword")
        elif param.default is not param.empty and mine.default is mine.empty:
            problems.append(f"'{name}' has no default")
    for name, mine in have.items():
        optional = mine.default is not mine.empty or mine.kind in (
            mine.VAR_POSITIONAL,
            mine.VAR_KEYWORD,
        )
        if name not in want and not optional:
            problems.append(f"extra required parameter '{name}'")
    return problems


def test_the_ports_declare_what_their_docstring_draws() -> None:
    assert set(members(ports.Store)) >= {"transaction", "close", "put_tenant", "claim_delivery"}
    assert "name" in members(ports.Publisher)
    assert set(members(ports.Store)) == set().union(
        *(members(p) for p in STORE_PORTS[:-1]), {"transaction", "pinned", "close"}
    )


@pytest.mark.parametrize(("port", "cls"), CASES)
def test_each_implementation_provides_every_member_of_its_port(port: type, cls: type) -> None:
    problems = []
    for name, declared in members(port).items():
        provided = getattr(cls, name, None)
        if provided is None:
            problems.append(f"{name}: missing")
        elif declared is not None:
            if not callable(provided):
                problems.append(f"{name}: not a method")
                continue
            problems.extend(f"{name}: {p}" for p in mismatches(declared, provided))
    assert problems == [], f"{cls.__name__} does not implement {port.__name__}"


@pytest.mark.parametrize("port", [ports.Store, ports.AlertState], ids=lambda p: p.__name__)
def test_the_contract_suite_calls_every_method_of_the_storage_ports(port: type) -> None:
    suite = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*_contract.py"))
    untested = [name for name in members(port) if f".{name}(" not in suite]
    assert untested == [], f"no contract test calls {port.__name__}.{untested}"
