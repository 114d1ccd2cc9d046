"""``comms switchboard``: run the Switchboard API stub server locally.

The stub (``comms.bootstrap.switchboard_stub``) is imported only when ``serve`` runs, so this module
costs click alone at import time.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from comms.errors import ConfigError, UsageError

TOKEN_ENV = "COMMS_SWITCHBOARD_TOKEN"


@click.group()
def switchboard() -> None:
    """Run the Switchboard API stub server (for demos, tests and benchmarks).

    \b
    Example:
      COMMS_SWITCHBOARD_TOKEN=dev comms switchboard serve --port 8765
    """


def _token(explicit: str | None) -> str:
    if explicit:
        return explicit
    from comms.settings import load_settings

    configured = load_settings().table("switchboard").get("token")
    if isinstance(configured, str) and configured:
        return configured
    raise UsageError(
        "the stub needs a bearer token: pass --token, "
        f"set {TOKEN_ENV}, or set token in [switchboard]"
    )


@switchboard.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one (the URL is printed).",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("switchboard.db"),
    show_default=True,
    help="The stub's own SQLite file (created if missing).",
)
@click.option(
    "--seed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='Tenants to load (JSON {"tenants": [...]}); an empty database gets the bundled example.',
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    show_envvar=True,
    help="Bearer token clients must send (never printed).",
)
@click.option(
    "--rate-limit",
    "rate_limit",
    metavar="N/min",
    help="Token-bucket limit, e.g. 600/min or 10/s; answers 429 with Retry-After.",
)
@click.option(
    "--burst", type=click.FloatRange(min=1), help="Bucket size (default: one second's worth)."
)
@click.option(
    "--fault",
    "fault_spec",
    metavar="KIND:P,...",
    help="Inject faults at random, e.g. 429:0.2,500:0.1,slow:0.1,drop:0.05 "
    "(kinds: 429 500 503 slow drop reset after_commit after_commit_500).",
)
@click.option(
    "--fault-match",
    default="*",
    show_default=True,
    metavar="GLOB",
    help="Only requests whose 'METHOD /path' matches get random faults, "
    "e.g. 'POST /api/v1/notifications/*/send'.",
)
@click.option(
    "--slow-seconds",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0, 60),
    help="How long a 'slow' fault sleeps.",
)
@click.option("--fault-seed", type=int, help="Seed the fault dice for a repeatable run.")
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(
    host: str,
    port: int,
    db_path: Path,
    seed: Path | None,
    token: str | None,
    rate_limit: str | None,
    burst: float | None,
    fault_spec: str | None,
    fault_match: str,
    slow_seconds: float,
    fault_seed: int | None,
    log_level: str,
) -> None:
    """Serve the Switchboard API stub until interrupted.

    \b
    Example:
      COMMS_SWITCHBOARD_TOKEN=dev comms switchboard serve --port 8765 --rate-limit 600/min
      curl -H 'Authorization: Bearer dev' http://127.0.0.1:8765/api/v1/tenants
    """
    from comms.bootstrap import switchboard_stub

    stub = switchboard_stub()
    secret = _token(token)
    try:
        per_minute = stub.parse_rate(rate_limit) if rate_limit else None
        rates = stub.parse_fault_spec(fault_spec) if fault_spec else {}
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    plan = stub.FaultPlan(
        rates=rates,
        match=fault_match,
        slow_seconds=slow_seconds,
        seed=fault_seed,
        rng=random.Random(fault_seed),
    )

    options: dict[str, Any] = {
        "token": secret,
        "host": host,
        "port": port,
        "seed": seed,
        "rate_limit": per_minute,
        "burst": burst,
        "faults": plan,
        "log_level": log_level,
        "announce": _announcer(db_path, per_minute, rates),
    }
    try:
        stub.serve(db_path, **options)
    except ValueError as exc:  # a malformed seed file
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise ConfigError(str(exc)) from exc
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot use {db_path}: {exc}; pass another --db") from exc


def _announcer(
    db_path: Path, per_minute: float | None, rates: dict[str, float]
) -> Callable[[str], None]:
    """Print where the stub listens, with its limits and faults, once it is up."""

    def announce(url: str) -> None:
        extras = []
        if per_minute:
            extras.append(f"limit {per_minute:g}/min")
        if rates:
            extras.append("faults " + ",".join(f"{k}:{v:g}" for k, v in rates.items()))
        suffix = f" ({'; '.join(extras)})" if extras else ""
        click.echo(f"Switchboard stub listening on {url}, database {db_path}{suffix}", err=True)

    return announce
