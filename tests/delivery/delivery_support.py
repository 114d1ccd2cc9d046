"""Helpers for the review and delivery suite: the Switchboard stub over real HTTP, the CLI
through CliRunner and as a subprocess, and reads of the real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result

TOKEN = "delivery-test-token"
REVIEWER = "sam-imoc"
SEND = "POST /api/v1/notifications/*/send"
CREATE = "POST /api/v1/notifications"


@dataclass
class Stub:
    """A running Switchboard stub: its URL, its SQLite file and an admin client."""

    url: str
    db_path: Path
    http: httpx.Client

    def faults(self, **config: Any) -> dict[str, Any]:
        """Replace the fault plan (``queue=[...]``, ``rates={...}``, ``slow_seconds=...``)."""
        response = self.http.post("/_admin/faults", json=config)
        response.raise_for_status()
        return dict(response.json())

    def stats(self) -> dict[str, Any]:
        """Requests, rate-limited answers, faults injected, sends."""
        return dict(self.http.get("/_admin/stats").json())

    def sends(self, incident: str | None = None) -> dict[str, Any]:
        """The sends the server recorded, grouped by tenant and idempotency key."""
        params = {"incident_reference": incident} if incident else {}
        return dict(self.http.get("/_admin/sends", params=params).json())

    def per_tenant(self, incident: str | None = None) -> Counter[str]:
        """How many times each tenant was sent something (for one incident)."""
        counts: Counter[str] = Counter()
        for row in self.sends(incident)["sends"]:
            counts[row["tenant_id"]] += row["count"]
        return counts

    def messages(self, tenant: str) -> list[str]:
        """The messages of every notification the server holds for ``tenant``, oldest first."""
        page = self.http.get(
            "/api/v1/notifications", params={"tenant_id": tenant, "limit": 100}
        ).json()
        return [n["message"] for n in page["data"]]


def invoke(args: Sequence[str], *, env: dict[str, str] | None = None) -> Result:
    """Run the real CLI in-process."""
    from comms.cli import cli

    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def ok(args: Sequence[str], **kwargs: Any) -> Result:
    """Run the CLI and insist on exit 0."""
    result = invoke(args, **kwargs)
    assert result.exit_code == 0, (
        f"comms {' '.join(args)} exited {result.exit_code}:\n{result.output}"
    )
    return result


def fails(args: Sequence[str], code: int, *needles: str, **kwargs: Any) -> str:
    """Run the CLI, insist on exit ``code`` and that the output names every needle."""
    result = invoke(args, **kwargs)
    assert result.exit_code == code, (
        f"comms {' '.join(args)} exited {result.exit_code}, not {code}:\n{result.output}"
    )
    for needle in needles:
        assert needle in result.output, f"{needle!r} not in:\n{result.output}"
    assert "Traceback" not in result.output
    return result.output


def as_reviewer(name: str = REVIEWER) -> dict[str, str]:
    """The environment of a reviewer other than the author."""
    return {"COMMS_REVIEWER": name}


def send_json(args: Sequence[str], code: int = 0) -> dict[str, Any]:
    """``comms send … --format json``, parsed."""
    result = invoke(["send", *args, "--format", "json"])
    assert result.exit_code == code, result.output
    return dict(json.loads(result.stdout))


def write_config(path: Path, **tables: dict[str, Any]) -> Path:
    """Write comms.toml with the given tables (values: str, int, float, bool, list of str)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {value(v)}" for k, v in table.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def tenant_record(index: int) -> dict[str, Any]:
    """A valid stub tenant whose name, id and host appear in no template text."""
    tid = f"zq{index:03d}"
    return {
        "id": tid,
        "name": f"Quokkaworks {index:03d}",
        "url": f"https://{tid}.dedicated.example",
        "gitlab_version": "17.5.2",
        "reference_architecture": "3k",
        "primary_region": "eu-west-1",
        "maintenance_window": "emea",
        "operational_emails": [f"ops@{tid}.example"],
        "csm": {"name": "Casey", "email": f"csm+{tid}@gitlab.example"},
        "ase": None,
    }


def write_seed(path: Path, count: int) -> Path:
    """A seed file of ``count`` generated tenants."""
    path.write_text(
        json.dumps({"tenants": [tenant_record(i) for i in range(1, count + 1)]}), encoding="utf-8"
    )
    return path


def prepare(
    tenants: Sequence[str],
    *,
    severity: str = "S1",
    security: bool = False,
    impact: str = "Users cannot load merge requests",
    next_update: str | None = None,
) -> int:
    """Sync tenants from the stub, open an incident for ``tenants``, draft its first update
    (promising ``next_update``, ISO 8601, instead of the default now plus an hour)."""
    ok(["tenants", "sync"])
    args = ["incident", "open", "--severity", severity, "--title", "Merge requests unavailable"]
    for tenant in tenants:
        args += ["--tenant", tenant]
    if security:
        args.append("--security")
    ok(args)
    out = ok(
        [
            "draft",
            "investigation-start",
            "--incident",
            latest_incident(),
            "--set",
            f"impact={impact}",
            *(["--set", f"next_update={next_update}"] if next_update else []),
            "--format",
            "json",
        ]
    ).stdout
    return int(json.loads(out)["id"])


def latest_incident() -> str:
    """The reference of the newest incident in the test's store."""
    rows = json.loads(ok(["incident", "list", "--format", "json"]).stdout)
    return str(max(rows, key=lambda r: int(str(r["ref"]).split("-")[-1]))["ref"])


def store_rows(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Read the comms store directly (a separate connection, as another process would)."""
    conn = sqlite3.connect(db, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def events(db: Path, kind: str) -> list[dict[str, Any]]:
    """The data of every event of type ``kind``."""
    return [
        json.loads(r[0])
        for r in store_rows(db, "SELECT data FROM events WHERE type = ? ORDER BY id", (kind,))
    ]


def draft_state(db: Path, draft_id: int) -> str:
    """The stored state of a draft."""
    return str(store_rows(db, "SELECT state FROM drafts WHERE id = ?", (draft_id,))[0][0])


def comms_process(
    args: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """Start ``python -m comms ARGS`` as a real process with this test's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "comms", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# -- the core without the CLI ---------------------------------------------------------------

AUTHOR = "gdcmoc"


def core_draft(
    store: Any,
    tenants: Sequence[str],
    *,
    now: Any,
    severity: str = "S1",
    security: bool = False,
    impact: str = "Users cannot load merge requests",
    next_update: str | None = None,
) -> Any:
    """Open an incident for ``tenants`` and draft its first update, through the core;
    ``next_update`` (ISO 8601) replaces the default promise of now plus an hour."""
    from comms import service
    from comms.models import MessageKind, Severity
    from comms.render import Renderer

    incident = service.open_incident(
        store,
        title="Merge requests unavailable",
        severity=Severity(severity),
        tenants=tenants,
        now=now,
        actor=AUTHOR,
        security=security,
    )
    composed = service.compose(
        store,
        Renderer(),
        ref=incident.ref,
        kind=MessageKind.INVESTIGATION_START,
        values={"impact": impact, **({"next_update": next_update} if next_update else {})},
        now=now,
        author=AUTHOR,
        interval_minutes=60,
        check=service.make_checker(None, store.list_tenants()),
    )
    return composed.draft


def event_data(store: Any, ref: str, kind: str) -> list[dict[str, Any]]:
    """The data of every event of type ``kind`` in incident ``ref``'s log."""
    return [e.data for e in store.events(ref) if e.type == kind]
