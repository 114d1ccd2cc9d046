"""`comms lint`: report internal details and weak wording; `--fix` prints a customer-safe text."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from comms.errors import EXIT_FINDINGS, EXIT_OK, CommsError, UsageError

if TYPE_CHECKING:
    from comms.bootstrap import Runtime
    from comms.lint.config import LintConfig
    from comms.lint.engine import Finding

EPILOG = """\b
Exit codes: 0 clean; 1 findings at or above --fail-level; 2 usage (bad option, missing
or unreadable input file); 3 operational (bad config, broken store).

\b
Examples:
  comms lint note.txt
  pbpaste | comms lint --kind update --tenant acme -
  comms lint --fix --in-place draft.txt
  comms lint --format sarif drafts/*.txt > lint.sarif
"""


@click.command("lint", epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, metavar="[PATH ...|-]")
@click.option("--kind", help="Message kind (update, resolved, ...): also check required content.")
@click.option("--tenant", help="Tenant the message is for; every other known tenant is flagged.")
@click.option("--severity", help="Incident severity (S1..S4); open S1 needs a next-update time.")
@click.option("--status", help="Incident status (investigating ... resolved).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
)
@click.option("--fix", "do_fix", is_flag=True, help="Print the text with fixable findings removed.")
@click.option("--in-place", is_flag=True, help="With --fix: rewrite the files instead of printing.")
@click.option(
    "--fail-level",
    type=click.Choice(["error", "warning", "suggestion"]),
    help="Exit 1 when a finding is at or above this level (default: config, else error).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="comms.toml to use.",
)
def lint(
    paths: tuple[str, ...],
    kind: str | None,
    tenant: str | None,
    severity: str | None,
    status: str | None,
    fmt: str,
    do_fix: bool,
    in_place: bool,
    fail_level: str | None,
    config_path: Path | None,
) -> None:
    """Find internal details (hosts, IPs, people, channels, tickets, secrets...) and
    wording that is not impact-directed in customer text; --fix strips them.

    Reads each PATH, or standard input when PATH is '-' or missing.  Text output is
    `path:line:col: level rule message`; --format json prints one JSON object per finding
    (rule, level, message, start, end, line, column, match, replacement, path).
    """
    from comms.cli import CommsClickError

    try:
        code = _run(
            paths, kind, tenant, severity, status, fmt, do_fix, in_place, fail_level, config_path
        )
    except CommsError as exc:
        # Also when the command is used on its own, not through the comms group.
        raise CommsClickError(exc) from exc
    sys.exit(code)


def _run(
    paths: tuple[str, ...],
    kind: str | None,
    tenant: str | None,
    severity: str | None,
    status: str | None,
    fmt: str,
    do_fix: bool,
    in_place: bool,
    fail_level: str | None,
    config_path: Path | None,
) -> int:
    from comms.lint.engine import at_or_above
    from comms.lint.engine import lint as run_lint
    from comms.lint.fixer import fix as run_fix

    if in_place and not do_fix:
        raise UsageError("--in-place needs --fix")
    sources = list(paths) or ["-"]
    if in_place and "-" in sources:
        raise UsageError("--in-place cannot rewrite standard input; give file paths")
    if kind is not None:
        kind = _kind(kind)
    found, config = _load(config_path)
    audience, tenants = _audience(found, tenant)
    level = fail_level or (config.fail_level if config is not None else "error")
    options: dict[str, Any] = {
        "config": config,
        "kind": kind,
        "audience": audience,
        "tenants": tenants,
        "severity": severity,
        "status": status,
    }
    results: list[tuple[str, Finding]] = []
    for source in sources:
        name = "<stdin>" if source == "-" else source
        text = _read(source)
        if do_fix:
            result = run_fix(text, **options)
            if in_place:
                if result.text != text:
                    Path(source).write_text(result.text, encoding="utf-8", newline="")
            elif fmt == "text" and result.text:
                # End with a line break even when the input did not, so the summary that
                # follows on stderr starts on its own line.
                click.echo(result.text, nl=not result.text.endswith(("\n", "\r")))
            _report_fixes(name, result.summary())
            findings = result.remaining
        else:
            findings = run_lint(text, **options)
        results.extend((name, f) for f in findings)
    if fmt == "json":
        for name, f in results:
            click.echo(json.dumps({**f.to_dict(), "path": name}, ensure_ascii=False))
    elif fmt == "sarif":
        from comms.lint.sarif import to_sarif

        click.echo(json.dumps(to_sarif(results), indent=2, ensure_ascii=False))
    elif not do_fix or in_place:
        for name, f in results:
            click.echo(f"{name}:{f.line}:{f.column}: {f.level} {f.rule} {f.message}")
    else:
        for name, f in results:
            click.echo(f"{name}:{f.line}:{f.column}: {f.level} {f.rule} {f.message}", err=True)
    failing = at_or_above([f for _, f in results], level)
    return EXIT_FINDINGS if failing else EXIT_OK


def _report_fixes(name: str, summary: dict[str, int]) -> None:
    if summary:
        removed = ", ".join(f"{rule} x{n}" for rule, n in summary.items())
        click.echo(f"{name}: fixed {sum(summary.values())}: {removed}", err=True)


def _kind(value: str) -> str:
    from comms.models import MessageKind

    try:
        return MessageKind.parse(value).value
    except ValueError:
        names = ", ".join(k.value for k in MessageKind)
        raise UsageError(f"unknown --kind '{value}'; use one of: {names}") from None


def _read(source: str) -> str:
    """The text of a path or of stdin; a missing or unreadable file is a usage error."""
    if source == "-":
        stream = sys.stdin
        data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode("utf-8")
        name = "standard input"
    else:
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise UsageError(f"cannot read '{source}': no such file") from None
        except IsADirectoryError:
            raise UsageError(f"cannot read '{source}': it is a directory") from None
        except OSError as exc:
            raise UsageError(f"cannot read '{source}': {exc.strerror}") from None
        name = source
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _load(config_path: Path | None) -> tuple[Runtime, LintConfig | None]:
    """The runtime (for settings and the store) and the validated [lint] table."""
    if config_path is not None and not config_path.is_file():
        raise UsageError(f"config file '{config_path}' not found")
    from comms.commands.common import runtime

    found = runtime(config_path)
    return found, found.lint_config()


def _audience(runtime: Runtime, tenant: str | None) -> tuple[str | None, list[str]]:
    """The audience's display name and every other known tenant name or alias.

    Tenants come from the store when it exists; lint works without one (never creates it).
    """
    from comms.lint.audience import lint_audience

    store = runtime.existing_store()
    return lint_audience(store.list_tenants() if store is not None else [], tenant)
