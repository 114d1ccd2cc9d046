"""Helpers of the browser suite: the comms CLI as a process, servers' announced URLs, and
the Switchboard stub's count of what it sent."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
STUB_TOKEN = "browser-test-switchboard-token"
# pid -> the thread reading a server's standard error once it announced itself.
_DRAINS: dict[int, threading.Thread] = {}


def in_ci() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("COMMS_TEST_POSTGRES_URL"))


def unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason}: CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(reason)


def comms(*args: str, env: dict[str, str] | None = None, check: bool = True) -> Any:
    """Run the comms CLI as a process in the test's folder and environment."""
    result = subprocess.run(
        [sys.executable, "-m", "comms", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"comms {' '.join(args)}: {result.stderr}"
    return result


def started(process: subprocess.Popen[str], needle: str) -> str:
    """The URL a server process announces on standard error."""
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        if needle in line:
            # Keep reading what it logs, so that a full pipe never stalls the server.
            drain = threading.Thread(target=process.stderr.read, daemon=True)
            drain.start()
            _DRAINS[process.pid] = drain
            return line.split(needle, 1)[1].split()[0].rstrip(",")
    process.kill()
    raise AssertionError(f"no '{needle}' from {process.args}: {process.stderr.read()}")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    drain = _DRAINS.pop(process.pid, None)
    if drain is not None:
        drain.join(timeout=10)
    if process.stderr is not None:
        process.stderr.close()


@dataclass
class Servers:
    """The Switchboard stub and ``comms serve`` as processes, and the team's tokens."""

    stub: str
    comms: str
    tokens: dict[str, str]

    def sends(self) -> dict[str, int]:
        """How many times the stub sent each tenant something, on the stub's side."""
        with httpx.Client(
            base_url=self.stub, headers={"Authorization": f"Bearer {STUB_TOKEN}"}, timeout=10
        ) as client:
            rows = client.get("/_admin/sends").json()["sends"]
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["tenant_id"]] = counts.get(row["tenant_id"], 0) + row["count"]
        return counts
