"""Fixtures for the foundation suite; the helpers live in foundation_support.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from foundation_support import NOW, NOW_ISO, ok


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Pin the CLI's clock to NOW."""
    monkeypatch.setenv("COMMS_NOW", NOW_ISO)
    return NOW


@pytest.fixture
def tenant(clock: datetime) -> str:
    """A tenant in the test's store."""
    ok(["tenants", "add", "acme", "--name", "Acme Corp", "--contact", "ops@acme.example"])
    return "acme"


@pytest.fixture
def s1(tenant: str) -> str:
    """An open S1 incident's reference."""
    ok(["incident", "open", "--tenant", tenant, "--severity", "S1", "--title", "Sign-in failures"])
    return "INC-1"


@pytest.fixture
def renderer() -> Iterator[Any]:
    from comms.render import Renderer

    return Renderer()
