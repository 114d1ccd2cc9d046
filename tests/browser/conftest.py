"""Fixtures of the browser suite: Debian's Chromium driven by Playwright, the Switchboard
stub and ``comms serve`` as real processes, and the CLI as processes.

Playwright's own browser download cannot work here: the tests launch ``/usr/bin/chromium``
(``apt-get install chromium``, which ``.ci/run`` does).  Without it, or without Playwright,
the suite fails in CI (``CI`` or ``COMMS_TEST_POSTGRES_URL`` set) and is skipped, saying
why, elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    STUB_TOKEN,
    Servers,
    comms,
    started,
    stop,
    unavailable,
)


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    """The stub with its example tenants, comms pointed at it (comms.toml), a team of an
    admin, an imoc and the gdcmoc, and ``comms serve`` on a free 127.0.0.1 port."""
    monkeypatch.setenv("COMMS_SWITCHBOARD_TOKEN", STUB_TOKEN)
    stub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "comms",
            "switchboard",
            "serve",
            "--port",
            "0",
            "--db",
            str(tmp_path / "switchboard.db"),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    served: subprocess.Popen[str] | None = None
    try:
        stub_url = started(stub, "listening on ")
        (tmp_path / "comms.toml").write_text(
            f'[switchboard]\nbase_url = "{stub_url}"\ntimeout_seconds = 5\n', encoding="utf-8"
        )
        comms("tenants", "sync")
        tokens = {"ana": comms("users", "add", "ana", "--role", "admin").stdout.strip()}
        for name, role in (("sam", "imoc"), ("gus", "gdcmoc")):
            added = comms("users", "add", name, "--role", role, env={"COMMS_TOKEN": tokens["ana"]})
            tokens[name] = added.stdout.strip()
        served = subprocess.Popen(
            [sys.executable, "-m", "comms", "serve", "--port", "0"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        yield Servers(stub_url, started(served, "listening on "), tokens)
    finally:
        if served is not None:
            stop(served)
        stop(stub)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium, launched by Playwright for one test: Playwright's synchronous API
    marks an event loop as running in this thread while it is started, which would break
    every later test of the same worker that runs one of its own (asyncio.run)."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page."""
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()
