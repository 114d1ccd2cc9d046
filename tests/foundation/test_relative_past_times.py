"""For tests/foundation/: `--started -12m` (what `comms demo` prints) is accepted."""

from __future__ import annotations

import json

import pytest
from foundation_support import fails, ok


@pytest.mark.parametrize(
    ("typed", "started"), [("-12m", "14:18"), ("-1h30m", "13:00"), ("- 2h 5m", "12:25")]
)
def test_relative_past_start(tenant: str, typed: str, started: str) -> None:
    out = ok(
        [
            "incident",
            "open",
            "--tenant",
            tenant,
            "--severity",
            "S1",
            "--title",
            "x",
            "--started",
            typed,
            "--format",
            "json",
        ]
    )
    assert json.loads(out.stdout)["started_at"] == f"2026-11-27T{started}:00Z"


def test_relative_past_nonsense_is_usage(tenant: str) -> None:
    fails(
        [
            "incident",
            "open",
            "--tenant",
            tenant,
            "--severity",
            "S1",
            "--title",
            "x",
            "--started",
            "-12x",
        ],
        2,
        "--started",
    )
