"""What the CLI commands share: the process's ``Runtime`` and output helpers.

Every command gets its store, publishers, sinks, clock and settings from one
``comms.bootstrap.Runtime`` per process, closed when the command ends.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from comms.bootstrap import Runtime
    from comms.lint.config import LintConfig
    from comms.ports import Store
    from comms.render import Renderer
    from comms.settings import Settings

FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output for people (text) or scripts (json).",
)

_KEY = "comms.runtime"


def runtime(config: Path | None = None) -> Runtime:
    """This process's runtime, built on first use and closed with the click context."""
    from comms.bootstrap import Runtime

    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    if root is None:  # used outside click (a library caller's script): not cached
        return Runtime(config=config)
    if _KEY not in root.meta:
        built = Runtime(config=config)
        root.call_on_close(built.close)
        root.meta[_KEY] = built
    found: Runtime = root.meta[_KEY]
    return found


def now() -> datetime:
    """The current time; ``COMMS_NOW`` (ISO 8601 with zone) pins it for replays and tests."""
    return runtime().now()


def settings() -> Settings:
    """The validated settings."""
    return runtime().settings


def store() -> Store:
    """The configured store (SQLite by default)."""
    return runtime().store


def renderer() -> Renderer:
    """The template renderer with the team's override folder, if configured."""
    return runtime().renderer()


def lint_config() -> LintConfig | None:
    """The validated ``[lint]`` table, or None for the defaults."""
    return runtime().lint_config()


def emit_json(data: Any) -> None:
    """Print machine-readable output."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False))


def dump(model: Any) -> Any:
    """A domain record as JSON-ready data."""
    return model.to_dict()
