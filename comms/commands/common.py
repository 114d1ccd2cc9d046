"""Helpers shared by the CLI commands: settings, store, clock and output."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from comms.errors import UsageError

FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output for people (text) or scripts (json).",
)


def now() -> datetime:
    """The current time; ``COMMS_NOW`` (ISO 8601 with zone) pins it for replays and tests."""
    pinned = os.environ.get("COMMS_NOW")
    if pinned:
        from comms.times import from_iso

        try:
            moment = from_iso(pinned)
        except ValueError as exc:
            raise UsageError(f"COMMS_NOW='{pinned}' is not an ISO 8601 time with a zone") from exc
        return moment
    return datetime.now(UTC)


def settings(config: Path | None = None) -> Any:
    """Load settings once per process."""
    from comms.settings import load_settings

    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    cache = root.meta if root is not None else {}
    if "comms.settings" not in cache:
        cache["comms.settings"] = load_settings(config)
    return cache["comms.settings"]


def store() -> Any:
    """Open the configured store (SQLite by default)."""
    from comms.adapters.sqlite_store import SqliteStore, database_path

    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    cache = root.meta if root is not None else {}
    if "comms.store" not in cache:
        opened = SqliteStore(database_path(settings().database_url))
        if root is not None:
            root.call_on_close(opened.close)
        cache["comms.store"] = opened
    return cache["comms.store"]


def renderer() -> Any:
    """The template renderer with the team's override folder, if configured."""
    from comms.render import Renderer

    return Renderer(settings().templates_dir)


def emit_json(data: Any) -> None:
    """Print machine-readable output."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False))


def dump(model: Any) -> Any:
    """A domain record as JSON-ready data."""
    return model.to_dict()


def lint_config() -> Any:
    """The validated ``[lint]`` table, or None for the defaults.

    None skips pydantic (~45 ms of import) when there is nothing to validate; pack paths
    in the table are relative to the config file's folder.
    """
    table = settings().lint
    if not table:
        return None
    from comms.lint.command import lint_config as validate

    source = settings().source
    return validate(table, base_dir=source.parent if source else Path.cwd())
