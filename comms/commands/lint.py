"""`comms lint`: report internal details and weak wording; `--fix` prints a customer-safe text.

`comms lint learn` builds a vocabulary of internal names from internal documents.
"""

from __future__ import annotations

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
  comms lint learn runbooks/ incidents/ -o lint-vocabulary.txt
  comms lint ./learn                  (a file named like the subcommand)
"""
_DEFAULT = " lint"  # the default command's name: never typed (a space), never listed


class LintGroup(click.Group):
    """`comms lint`: lint by default, or run a subcommand (`learn`).

    The first argument decides: a subcommand's name runs it; anything else (a path, '-',
    an option, or nothing) goes to the default command with every argument, so `comms
    lint note.txt` and `comms lint -` work as they always did.  A file named like a
    subcommand is linted as `./learn`.  `--help` shows the default command's help, with
    the subcommands listed after it.
    """

    def __init__(self, *args: Any, default: click.Command, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = [_DEFAULT, *args]
        return super().parse_args(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == _DEFAULT:
            return self.default
        return super().get_command(ctx, cmd_name)


class _DefaultCommand(click.Command):
    """The lint command inside the group: named, used and helped as `comms lint`."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        if parent is not None and isinstance(parent.command, LintGroup):
            info_name, parent = parent.info_name, parent.parent
        return super().make_context(info_name, args, parent=parent, **extra)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        rows = [(name, cmd.get_short_help_str(70)) for name, cmd in SUBCOMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.command(
    "lint",
    cls=_DefaultCommand,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
def check(
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
    from comms.lint.engine import at_or_above, locate
    from comms.lint.engine import lint as run_lint

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
    from comms.lint.compiled import cached
    from comms.settings import user_cache_dir

    results: list[tuple[str, Finding]] = []
    # Compiled regexes kept in the user's cache folder: a one-shot run skips compiling them.
    with cached(user_cache_dir()):
        for source in sources:
            name = "<stdin>" if source == "-" else source
            text = _read(source)
            if do_fix:
                from comms.lint.fixer import fix as run_fix

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
    # Lines and columns for every finding in one loop (thousands for a long text).
    locate([f for _, f in results])
    if fmt in ("json", "sarif"):
        import json

        if fmt == "json":
            lines = [
                json.dumps({**f.to_dict(), "path": name}, ensure_ascii=False) for name, f in results
            ]
        else:
            from comms.lint.sarif import to_sarif

            lines = [json.dumps(to_sarif(results), indent=2, ensure_ascii=False)]
        _echo(lines)
    else:
        # With --fix the text goes to stdout, so the findings left go to stderr.
        _echo(
            [f"{name}:{f.line}:{f.column}: {f.level} {f.rule} {f.message}" for name, f in results],
            err=do_fix and not in_place,
        )
    failing = at_or_above([f for _, f in results], level)
    return EXIT_FINDINGS if failing else EXIT_OK


def _echo(lines: list[str], *, err: bool = False) -> None:
    """Print the lines in one write: a long postmortem has thousands of findings."""
    if lines:
        click.echo("\n".join(lines), err=err)


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
    """The text of a path or of stdin; a missing or unreadable file is a usage error, and
    so is one over ``MAX_INPUT_BYTES``: reading stops there (``/dev/zero`` ends at once)."""
    from comms.limits import MAX_INPUT_BYTES, read_capped

    if source == "-":
        stream = sys.stdin
        name = "standard input"
        if hasattr(stream, "buffer"):
            data = read_capped(stream.buffer, name)
        else:
            import io

            text = stream.read(MAX_INPUT_BYTES + 1)  # characters, at least as many bytes
            data = read_capped(io.BytesIO(text.encode("utf-8")), name)
    else:
        try:
            with open(source, "rb") as file:
                data = read_capped(file, f"'{source}'")
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
    if config_path is not None:
        try:
            usable = config_path.is_file()
        except OSError as exc:  # a name too long, a folder we may not enter
            raise UsageError(f"config file '{config_path}': {exc.strerror}") from None
        if not usable:
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


LEARN_EPILOG = """\b
Reads text and Markdown: each PATH is a file, a folder (its .md, .markdown, .txt, .text,
.log, .rst and .adoc files, and files without an extension, at any depth; hidden ones
and licences skipped) or '-' for standard input.  Names under the configured public
domains and tenants' names are never learned.  Review the result: a learned name is an
error in every customer message once `[lint] vocabulary` points at the file.

\b
Exit codes: 0 learned (maybe nothing); 2 usage (no such path, unreadable input);
3 operational (bad config).

\b
Examples:
  comms lint learn runbooks/ incidents/ -o lint-vocabulary.txt
  comms lint learn chat-export.txt --format json
"""
_TEXT_SUFFIXES = frozenset([".md", ".markdown", ".txt", ".text", ".log", ".rst", ".adoc", ""])
_NOT_DOCUMENTS = frozenset(["license", "licence", "copying", "notice"])
MAX_LEARN_FILES = 10_000
MAX_LEARN_BYTES = 256 * 1024 * 1024


@click.command(
    "learn",
    short_help="Learn internal names from internal documents: a vocabulary file.",
    epilog=LEARN_EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the vocabulary file here (else it is printed).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per learned name (entry, category, count, documents, cues).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="comms.toml to use.",
)
def learn(paths: tuple[str, ...], output: Path | None, fmt: str, config_path: Path | None) -> None:
    """Learn internal names (user names, people, hosts, clusters, projects) from internal
    documents (runbooks, incident issues, postmortems, chat exports) and write a
    vocabulary file, one name a line, for `[lint] vocabulary` in comms.toml."""
    from comms.cli import CommsClickError

    try:
        _learn(paths, output, fmt, config_path)
    except CommsError as exc:
        raise CommsClickError(exc) from exc


def _learn(paths: tuple[str, ...], output: Path | None, fmt: str, config_path: Path | None) -> None:
    from comms.lint.engine import DEFAULT_PUBLIC_DOMAINS
    from comms.lint.learn import learn as learn_names
    from comms.lint.learn import render

    found, config = _load(config_path)
    public = list(config.public_domains if config is not None else DEFAULT_PUBLIC_DOMAINS)
    if config is not None:
        public += config.tenants
    store = found.existing_store()
    for tenant in store.list_tenants() if store is not None else []:
        public += [tenant.id, tenant.name, *tenant.aliases]
    texts = _documents(paths)
    entries = learn_names(texts, public=public)
    vocabulary = render(entries, documents=len(texts))
    if output is not None:
        try:
            output.write_text(vocabulary, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write '{output}': {exc.strerror}") from None
    if fmt == "json":
        import json

        for entry in entries:
            click.echo(json.dumps(entry.to_dict(), ensure_ascii=False))
    elif output is None:
        click.echo(vocabulary, nl=False)
    counts = {c: sum(e.category == c for e in entries) for c in ("handle", "person", "name")}
    where = f": {output}" if output is not None else ""
    click.echo(
        f"learned {len(entries)} names ({counts['handle']} user names, {counts['person']} "
        f"people, {counts['name']} other names) from {len(texts)} documents{where}",
        err=True,
    )


def _documents(paths: tuple[str, ...]) -> list[str]:
    """The texts to learn from: files as given (a bad one is a usage error), the text files
    under folders (one that is too big or not UTF-8 is skipped, with a note)."""
    texts: list[str] = []
    total = 0
    for source in paths:
        if source != "-" and Path(source).is_dir():
            for path in _walk(Path(source)):
                try:
                    texts.append(_read(str(path)))
                except UsageError as exc:
                    click.echo(f"skipped: {exc}", err=True)
                    continue
                total += len(texts[-1])
                if len(texts) > MAX_LEARN_FILES or total > MAX_LEARN_BYTES:
                    raise UsageError(
                        f"over {MAX_LEARN_FILES} files or 256 MiB to learn from; give fewer folders"
                    )
        else:
            texts.append(_read(source))
            total += len(texts[-1])
    return texts


def _walk(folder: Path) -> list[Path]:
    """Text files under ``folder``, sorted, without hidden files or folders and licences."""
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") for p in parts) or not path.is_file():
            continue
        if path.suffix.lower() not in _TEXT_SUFFIXES or path.stem.lower() in _NOT_DOCUMENTS:
            continue
        found.append(path)
    return found


SUBCOMMANDS: dict[str, click.Command] = {"learn": learn}
lint = LintGroup(
    "lint",
    default=check,
    commands=SUBCOMMANDS,
    help=check.help,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
