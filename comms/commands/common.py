"""What the CLI commands share: the process's ``Runtime`` and output helpers.

Every command gets its store, publishers, sinks, clock and settings from one
``comms.bootstrap.Runtime`` per process, closed when the command ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from comms.bootstrap import Runtime
    from comms.ports import Page, Store
    from comms.render import Renderer
    from comms.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output for people (text) or scripts (json).",
)


class Whole(click.IntRange):
    """A whole number in a range; says "not a valid integer" (not "integer range")."""

    name = "integer"


# The largest number a store holds (SQLite's INTEGER is 64 bits).
LARGEST = 2**63 - 1
# A draft or revision number as typed: 99999999999999999999 is one usage line, never an
# overflow deep inside.
RECORD_ID = Whole(1, LARGEST)

# Listings show a page at a time, newest first: a store keeps years of incidents.
PAGE_SIZE = 50


def page_options(what: str) -> Callable[[F], F]:
    """``--limit`` and ``--offset`` for a listing of ``what`` (``--all`` is the command's)."""

    def decorate(command: F) -> F:
        command = click.option(
            "--offset",
            type=Whole(0, LARGEST),
            default=0,
            help=f"Skip this many {what} first (the next page).",
        )(command)
        return click.option(
            "--limit",
            type=Whole(1, LARGEST),
            default=PAGE_SIZE,
            show_default=True,
            help=f"Show at most this many {what}.",
        )(command)

    return decorate


def page_notes(page: Page[Any], what: str, *, limit: int | None, offset: int) -> None:
    """On stderr, so that stdout stays the listing: the stored rows that could not be read
    (one line naming them), and how to see the next page."""
    if page.skipped:
        names = ", ".join(page.skipped)
        click.echo(
            f"warning: skipped {what.rstrip('s') if len(page.skipped) == 1 else what} {names}: "
            "stored in a form this comms cannot read",
            err=True,
        )
    if page.more and limit is not None:
        click.echo(
            f"(more {what}: --offset {offset + limit} shows the next {limit}, --all every one)",
            err=True,
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


def emit_json(data: Any) -> None:
    """Print machine-readable output."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False))


def dump(model: Any) -> Any:
    """A domain record as JSON-ready data."""
    return model.to_dict()
