"""The command line: a lazy table of click commands.

Subcommands load lazily so that ``comms --help`` imports click and nothing else heavy.
Commands get their store, publishers and clock from ``comms.bootstrap`` (the composition
root) through ``comms.commands.common.runtime``.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from comms.errors import CommsError

# name -> "module:attribute"; imported only when the command runs or its help is shown.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("comms.commands.demo:demo", "Walk the whole pipeline on a throw-away store."),
    "tenants": ("comms.commands.core:tenants", "Add, import and list tenants."),
    "incident": ("comms.commands.core:incident", "Open, list, show and update incidents."),
    "templates": ("comms.commands.core:templates", "List and show the message templates."),
    "draft": ("comms.commands.core:draft", "Draft a customer message from a template."),
    "drafts": ("comms.commands.core:drafts", "List, show and diff drafts and revisions."),
    "timeline": ("comms.commands.core:timeline", "Export an incident's event log for the RCA."),
    "review": (
        "comms.commands.delivery:review",
        "List, show, approve or send back drafts (the IMOC's side).",
    ),
    "send": (
        "comms.commands.delivery:send",
        "Send an approved draft exactly once; --resume finishes a broken send.",
    ),
    "cadence": (
        "comms.commands.cadence:cadence",
        "Update deadlines: status, check (cron), watch (alerts), snooze.",
    ),
    "lint": (
        "comms.commands.lint:lint",
        "Find internal details and weak wording; --fix strips them.",
    ),
    "switchboard": (
        "comms.commands.switchboard:switchboard",
        "Run the Switchboard API stub server.",
    ),
    "config": (
        "comms.commands.config:config",
        "Check comms.toml: every table and key, each problem with its line.",
    ),
    "db": ("comms.commands.db:db", "Migrate and check the database schema (PostgreSQL)."),
    "users": (
        "comms.commands.users:users",
        "Team mode: add users with a role, list, disable, rotate tokens.",
    ),
    "serve": (
        "comms.commands.serve:serve",
        "Team mode: the review pages and JSON API for a shared store.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click docs: lazy loading)."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attr = self.lazy[cmd_name][0].split(":")
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the table, so `comms --help` imports no subcommand module.
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Bytes the terminal could not decode arrive as lone surrogates (PEP 383); no store,
        # file name or channel can take them, so refuse them here, once, for every command.
        for number, arg in enumerate(args, 1):
            if any("\udc80" <= ch <= "\udcff" for ch in arg):
                raise click.UsageError(
                    f"argument {number} is not valid UTF-8 text; retype it or fix the "
                    "terminal's encoding (LANG)",
                    ctx,
                )
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CommsError as exc:
            raise CommsClickError(exc) from exc
        except click.ClickException as exc:
            # click's own messages quote what was typed ("'…' is not one of …"): mask secrets.
            from comms.lint.secrets import masked

            exc.message = masked(exc.message)  # type: ignore[misc]  # click sets it per instance
            raise
        except OSError as exc:
            # A path the operating system refuses (too long, a loop, no permission) that
            # reached the file system before a command could check it: one line, no traceback.
            raise CommsClickError(_os_error(exc)) from exc


def _os_error(exc: OSError) -> CommsError:
    import errno

    from comms.errors import StoreError, UsageError

    name = exc.filename if isinstance(exc.filename, str) else ""
    shown = name if len(name) <= 80 else name[:77] + "..."
    what = f"{shown}: {exc.strerror}" if shown else str(exc.strerror or exc)
    if exc.errno in (errno.ENAMETOOLONG, errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EISDIR):
        return UsageError(f"cannot use {what}; check the path")
    return StoreError(f"cannot use {what}")


class CommsClickError(click.ClickException):
    """Carries a CommsError's one-line message and documented exit code to click."""

    def __init__(self, error: CommsError) -> None:
        from comms.lint.secrets import masked

        # A value the error quotes (an unknown id, a bad time) is shown masked if a secret.
        super().__init__(masked(str(error)))
        # click's stubs declare exit_code a ClassVar, but click reads it from the instance
        # (``sys.exit(e.exit_code)``), which is how each error carries its own code.
        self.exit_code = error.exit_code  # type: ignore[misc]


EPILOG = """\b
Exit codes: 0 ok; 1 findings at or above the fail level, something overdue, or a
review rule refusing you (role, four eyes); 2 usage (bad option, unknown template,
missing variable); 3 operational failure (config, store, network, COMMS_TOKEN).

\b
Example:
  comms incident open --tenant acme --severity S1 --title "Web UI unavailable"
  comms draft investigation-start --incident INC-1 --set impact="Users cannot sign in"
"""


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="comms")
def cli() -> None:
    """Compose, check, review, send and track customer updates during incidents.

    Configuration: ./comms.toml, then the user config folder, or COMMS_CONFIG;
    COMMS_* environment variables override it (see README).
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="comms")


if __name__ == "__main__":  # pragma: no cover
    main()
