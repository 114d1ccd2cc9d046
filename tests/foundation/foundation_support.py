"""Helpers for the foundation suite, imported by its test modules: the real CLI through
click's runner and as a process, and the checks every customer-facing text must pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
NOW = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
NOW_ISO = "2026-11-27T14:30:00Z"

KINDS = (
    "investigation-start",
    "update",
    "escalated-response",
    "mitigation-in-progress",
    "resolved",
    "maintenance-planned",
    "maintenance-completed",
)

# The smallest set of values each template needs (its required variables).
MINIMAL: dict[str, dict[str, str]] = {
    "investigation-start": {"impact": "Users cannot sign in to the web interface"},
    "update": {"impact": "Users cannot sign in", "actions": "We are restoring the sign-in service"},
    "escalated-response": {
        "impact": "Users cannot sign in",
        "actions": "More engineers are restoring sign-in",
    },
    "mitigation-in-progress": {
        "impact": "Sign-in is slow",
        "actions": "We are moving your instance to its secondary region",
    },
    "resolved": {"resolution": "Sign-in works normally again"},
    "maintenance-planned": {
        "reason": "to apply a critical security update",
        "impact": "The web interface may be unavailable for up to 15 minutes",
        "window_start": "2026-11-27T16:00Z",
        "window_end": "2026-11-27T16:30Z",
    },
    "maintenance-completed": {"outcome": "Your instance is fully available and up to date"},
}

_CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")


def full_values(spec: Any) -> dict[str, str]:
    """A value for every variable the template declares, by type."""
    values: dict[str, str] = {}
    for var in spec.variables:
        if var.type == "list":
            values[var.name] = "Web UI, Git over SSH, CI pipelines"
        elif var.type == "time":
            values[var.name] = {
                "started_at": "2026-11-27T13:55Z",
                "resolved_at": "2026-11-27T14:25Z",
                "completed_at": "2026-11-27T14:20Z",
                "window_start": "2026-11-27T16:00Z",
                "window_end": "2026-11-27T16:30Z",
                "eta": "2026-11-27T15:15Z",
                "next_update": "2026-11-27T15:00Z",
            }.get(var.name, "+90m")
        else:
            values[var.name] = f"The {var.name.replace('_', ' ')} in customer terms"
    return values


def assert_customer_text(subject: str, body: str) -> None:
    """What no customer message may ever contain: unrendered template code, empty slots,
    a time without its zone, an empty subject, Python's None or an empty list."""
    assert subject.strip(), "empty subject"
    assert "\n" not in subject
    text = f"Subject: {subject}\n\n{body}"
    for marker in ("{{", "}}", "{%", "%}", "{#", "#}"):
        assert marker not in text, f"unrendered {marker!r} in:\n{text}"
    for line in text.splitlines():
        assert not line.rstrip().endswith(":"), f"label without a value: {line!r}"
        assert not re.search(r":\s*[.,]?\s*$", line), f"empty slot: {line!r}"
    for match in _CLOCK.finditer(text):
        after = text[match.end() : match.end() + 4]
        assert after == " UTC", f"time without its zone at {match.group()!r} in:\n{text}"
    assert not re.search(r"\bNone\b|\[\]|\bundefined\b", text), text
    assert body.endswith("\n")
    assert not body.endswith("\n\n\n")


def invoke(
    args: list[str], *, input: str | None = None, env: dict[str, str] | None = None
) -> Result:
    """Run the real CLI in-process; unexpected exceptions propagate (a traceback is a failure)."""
    from comms.cli import cli

    return CliRunner().invoke(
        cli, args, input=input, env=env, catch_exceptions=False, prog_name="comms"
    )


def ok(args: list[str], **kwargs: Any) -> Result:
    """Run the CLI and require exit 0."""
    result = invoke(args, **kwargs)
    assert result.exit_code == 0, f"comms {' '.join(args)} → {result.exit_code}\n{result.output}"
    return result


def fails(args: list[str], code: int, *needles: str, **kwargs: Any) -> str:
    """Run the CLI and require exit ``code`` with one error line containing every needle."""
    result = invoke(args, **kwargs)
    assert result.exit_code == code, (
        f"comms {' '.join(args)} → {result.exit_code}, wanted {code}\n{result.output}"
    )
    message = result.stderr.strip()
    assert "Traceback" not in result.output
    error_lines = [line for line in message.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1, f"wanted one error line:\n{message}"
    if code == 3:  # operational failures print exactly one line, nothing else
        assert message.count("\n") == 0, f"wanted one line:\n{message}"
    for needle in needles:
        assert needle in error_lines[0], f"{needle!r} not in {error_lines[0]!r}"
    return error_lines[0]


def run_comms(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``comms`` as a real process (the venv's console script) with the test's environment."""
    return subprocess.run(
        [str(VENV_BIN / "comms"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        check=False,
    )
