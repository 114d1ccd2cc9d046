"""Shared fixtures: every test runs against its own SQLite file and no config file (tests that need one write it)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def env_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point comms at a throw-away store and config; no test reads the developer's files."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("COMMS_DATABASE_URL", str(tmp_path / "comms.db"))
    monkeypatch.setenv("COMMS_AUTHOR", "test-gdcmoc")
    monkeypatch.chdir(tmp_path)
    for name in ("COMMS_CONFIG", "COMMS_TEMPLATES_DIR", "COMMS_REVIEWER", "EDITOR", "VISUAL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path
