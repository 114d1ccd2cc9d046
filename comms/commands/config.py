"""`comms config check`: the whole of comms.toml, every table with its full check."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from comms.commands.common import FORMAT_OPTION, emit_json
from comms.errors import EXIT_OK, EXIT_OPERATIONAL


@click.group()
def config() -> None:
    """Check the configuration file.

    \b
    Example:
      comms config check
    """


@config.command("check")
@click.option(
    "--config",
    "path",
    type=click.Path(path_type=Path),
    default=None,
    help="The file to check (default: COMMS_CONFIG, ./comms.toml, the user config folder).",
)
@FORMAT_OPTION
def config_check(path: Path | None, fmt: str) -> None:
    """Check every table and key of comms.toml, as the commands that use them will.

    Prints the file it read, then each problem as FILE:LINE: PROBLEM, or "ok".  Other
    commands check keys and types when they start and stop at the first problem; this also
    runs the checks that need the Switchboard, Zendesk and lint modules (URLs, ranges,
    pack files).  Tokens come from the environment at send time and are not required.
    Exit 0 when the file is fine, 3 when it has problems.

    \b
    Example:
      comms config check
      COMMS_CONFIG=/srv/comms/comms.toml comms config check --format json
    """
    from comms.bootstrap import check_config

    report = check_config(path)
    if fmt == "json":
        emit_json(report.to_dict())
    else:
        for line in report.lines():
            click.echo(line)
    sys.exit(EXIT_OK if report.ok else EXIT_OPERATIONAL)
