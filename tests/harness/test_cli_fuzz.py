"""Property-based fuzzing of the whole command line, in-process through click's CliRunner.

Each example copies a store seeded through the CLI (three tenants, four incidents, drafts in
every review state), runs one to three random commands from comms' real command tree (walked
with click, not listed by hand) with random options and values, then runs every listing
command. Properties:

* no command ends in an unhandled exception (a traceback): ``result.exception`` is None or
  ``SystemExit``, and no output contains a traceback;
* every exit code is one of the documented 0-3;
* afterwards ``incident list --all``, ``drafts list``, ``tenants list``, ``review list``,
  ``cadence status``, ``cadence check`` (0, or 1 for overdue) and ``timeline REF`` for each
  seeded incident still work.

Values are unicode with zero-width and bidi controls, lone surrogates (what invalid UTF-8 in
argv decodes to), huge strings, empty strings, huge and negative integers, years 0001 and
9999, relative times and malformed NAME=VALUE. Switchboard, Zendesk, PagerDuty and any proxy
point at a refusing 127.0.0.1 port, so nothing leaves the machine and sends fail fast.

Bounded for CI: ``derandomize=True`` (the same examples on every run) and 150 examples, well
under a minute on two cores. ``COMMS_FUZZ_EXAMPLES=2000`` runs a longer campaign; every
failure message starts with the exact command line to paste.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sqlite3
import traceback
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comms.cli import cli

EXAMPLES = int(os.environ.get("COMMS_FUZZ_EXAMPLES", "150"))
NOW = "2026-11-27T15:00:00Z"
EXIT_CODES = {0, 1, 2, 3}
HANG_SECONDS = 30

# Commands that never return, and what keeps the rest of them finite.
SERVES_FOREVER = {("switchboard", "serve"), ("demo",)}
RUN_ONCE = {("cadence", "watch"): "--once"}

# -- the command tree -----------------------------------------------------------------------


def command_tree() -> list[tuple[tuple[str, ...], click.Command]]:
    """Every leaf command of ``comms`` with its path, as click itself resolves them."""
    found: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(command: click.Command, path: tuple[str, ...], ctx: click.Context) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"comms {' '.join(path)} lists '{name}' but cannot load it"
                walk(sub, (*path, name), click.Context(sub, parent=ctx, info_name=name))
        elif path not in SERVES_FOREVER:
            found.append((path, command))

    walk(cli, (), click.Context(cli, info_name="comms"))
    return found


TREE = command_tree()
GROUPS = sorted({path[:1] for path, _ in TREE if len(path) > 1})


def template_variables() -> list[str]:
    """Every variable any template declares (from the renderer, not from this file)."""
    from comms.render import Renderer

    renderer = Renderer()
    return sorted({v.name for n in renderer.names() for v in renderer.spec(n).variables})


VARIABLES = template_variables()

# -- values -----------------------------------------------------------------------------------

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e"]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068"]
BIDI += ["\u2069", "\u200e", "\u200f", "\u061c"]
ODD = [
    *ZERO_WIDTH,
    *BIDI,
    "\u0301",  # a combining accent with nothing to combine with
    "\U0001f525",
    "\U0001f469\u200d\U0001f4bb",
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew
    "\u0645\u0631\u062d\u0628\u0627",  # Arabic
    "\u0663\u0664",  # Arabic-Indic digits: int() accepts them
    "\uff11\uff12",  # full-width digits
    "\u2028",
    "\u2029",
    "\x85",
    "\r\n",
    "\r",
    "\t",
    "\x1b[31m",
    "\x7f",
    "{{ 7*7 }}",
    "{% raw %}",
    "{#",
    "Subject: injected",
    "%s%n",
    "' OR 1=1 --",
    "../../etc/passwd",
    "$(id)",
    "10.2.0.7",
    "db1001",
    "#inc-2291",
    "@jane",
    "glpat-abcdefghijklmnopqrst",
    "INC-1",
    "acme",
    "Acme Corp",
    "=",
    "-",
    "--",
    "--help",
]
SURROGATES = [
    "\udcff",
    "\udc80abc",
    "caf\udce9",
]  # invalid UTF-8 argv bytes, as Python decodes them

plain_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=30,
)
odd_text = st.lists(st.one_of(st.sampled_from(ODD), plain_text), min_size=1, max_size=6).map(
    "".join
)
huge_text = st.builds(
    lambda unit, times: (unit or "x") * times,
    st.one_of(st.sampled_from(ODD), plain_text),
    st.integers(2_000, 60_000),
).map(lambda s: s[:120_000])  # one argv string may hold up to 128 KiB on Linux
fuzz_text = st.one_of(
    plain_text,
    odd_text,
    odd_text,
    st.sampled_from(["", " ", "\u200b", "\u202e", "x" * 256, "\u00e9" * 128]),
    st.builds(lambda a, b, c: a + b + c, plain_text, st.sampled_from(SURROGATES), plain_text),
    huge_text,
)

INTEGERS = ["0", "-1", "-0", "+1", "1e3", "0x10", "1_000", " 2", "\u0663", "\uff11", "NaN", ""]
integers = st.one_of(
    st.integers(-3, 12).map(str),
    st.sampled_from(
        [str(2**31), str(2**63), str(2**64 + 1), str(10**30), str(-(10**30)), "9" * 5000]
    ),
    st.sampled_from(INTEGERS),
    fuzz_text,
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["inf", "-inf", "nan", "1e309", "-0.0", "0"]),
    integers,
)

TIMES = [
    "now",
    "NOW",
    "14:30",
    "14:30 UTC",
    "00:00",
    "23:59",
    "24:00",
    "99:99",
    "+45m",
    "-45m",
    "+0m",
    "in 2h",
    "+1d",
    "1d",
    "0m",
    "0s",
    "30 minutes",
    "+99999999999999d",
    "3000000d",
    "+106751991167300d",
    "0001-01-01T00:00Z",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999+00:00",
    "2026-11-27T14:30Z",
    "2026-11-27T14:30",
    "2026-11-27 14:30 UTC",
    "2026-02-30T10:00Z",
    "2026-11-27T14:30+25:00",
    "2026-11-27T14:30z",
    "1970-01-01T00:00Z",
    "2038-01-19T03:14:08Z",
]
times = st.one_of(
    st.sampled_from(TIMES),
    st.builds(
        lambda sign, n, unit: f"{sign}{n}{unit}",
        st.sampled_from(["+", "-", "in ", ""]),
        st.integers(0, 10**16),
        st.sampled_from(["s", "m", "h", "d", "min", "hours", "w", ""]),
    ),
    st.builds(
        lambda y, zone: f"{y:04d}-06-15T12:00{zone}",
        st.integers(1, 9999),
        st.sampled_from(["Z", "+14:00", "-14:00", "+00:00", ""]),
    ),
    fuzz_text,
)


def assignments() -> st.SearchStrategy[str]:
    """``--set`` values: well-formed for real variables, and every way to get it wrong."""
    name = st.one_of(st.sampled_from(VARIABLES), fuzz_text)
    value = st.one_of(fuzz_text, times)
    return st.one_of(
        st.builds(lambda n, v: f"{n}={v}", name, value),
        st.builds(lambda n, v: f"{n}={v}", st.sampled_from(VARIABLES), value),
        st.builds(lambda v: f"={v}", value),
        name,
        st.builds(lambda n, v: f"{n}=={v}", name, value),
        st.builds(lambda n: f"{n}= ", name),
        st.builds(lambda n: f" {n} =x", name),
    )


SINKS = ["stdout", "stdout:", "slack:", "slack:notaurl", "pagerduty:", "webhook:ftp://x"]
sinks = st.one_of(
    st.sampled_from(SINKS),
    st.builds(
        lambda kind, v: f"{kind}:{v}", st.sampled_from(["slack", "pagerduty", "webhook"]), fuzz_text
    ),
    st.builds(lambda n: f"slack:env:{n}", st.sampled_from(["NOT_SET", "HOME", ""])),
    fuzz_text,
)


@dataclass
class World:
    """What the seeded store holds, for values that hit real records."""

    refs: list[str]
    tenants: list[str]
    drafts: list[int]
    files: list[str] = field(default_factory=list)


def mostly(usual: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``usual`` about three times in four: commands get past parsing and reach the core."""
    return st.one_of(usual, usual, usual, odd)


def enum_values(name: str) -> list[str]:
    """The values of the model enum a free-text option stands for (lint's --kind ...)."""
    from comms.models import MessageKind, Severity, Status

    enums: dict[str, Any] = {"kind": MessageKind, "severity": Severity, "status": Status}
    return [str(e.value) for e in enums[name]] if name in enums else []


def value_for(param: click.Parameter, world: World) -> st.SearchStrategy[str]:
    """A value strategy for one parameter, from its click type and its name."""
    kind, name = param.type, param.name or ""
    if isinstance(kind, click.Choice) or enum_values(name):
        choices = [str(c) for c in kind.choices] if isinstance(kind, click.Choice) else []
        choices = choices or enum_values(name)
        return mostly(
            st.sampled_from(choices),
            st.one_of(
                st.sampled_from(choices).map(str.upper),
                st.sampled_from(choices).map(lambda c: c + "\u200b"),
                fuzz_text,
            ),
        )
    if isinstance(kind, click.types.IntParamType):
        if "draft" in name or name in ("old", "new", "revision"):
            return mostly(st.sampled_from([str(d) for d in world.drafts]), integers)
        return integers
    if isinstance(kind, click.types.FloatParamType):
        return floats
    if isinstance(kind, click.Path) or "path" in name:
        return mostly(st.sampled_from(world.files), fuzz_text)
    if name == "ref":
        return mostly(st.sampled_from(world.refs), fuzz_text)
    if "tenant" in name:
        return mostly(st.sampled_from(world.tenants), fuzz_text)
    if name in ("at", "started", "interval", "duration"):
        return times
    if name == "assignments":
        return assignments()
    if name == "sinks":
        return sinks
    return fuzz_text


@st.composite
def invocation(draw: Any, world: World) -> list[str]:
    """One command line: a real command, some of its options in any order, its arguments."""
    path, command = draw(st.sampled_from(TREE))
    if draw(st.integers(0, 99)) < 3:  # a group alone, or with a made-up subcommand
        return [*path[:1], *draw(st.sampled_from([[], ["no-such-command"], ["--help"]]))]
    args = list(path)
    options = [p for p in command.params if isinstance(p, click.Option)]
    for option in draw(st.permutations(options)):
        if not draw(st.integers(0, 99)) < (90 if option.required else 35):
            continue
        spelling = draw(st.sampled_from([*option.opts, *option.secondary_opts]))
        if option.is_flag:
            args.append(spelling)
            continue
        repeats = draw(st.integers(1, 3)) if option.multiple else 1
        for _ in range(repeats):
            args += [spelling, draw(value_for(option, world))]
    positional: list[str] = []
    for argument in (p for p in command.params if isinstance(p, click.Argument)):
        if argument.nargs == -1:
            positional += draw(st.lists(value_for(argument, world), max_size=3))
        elif draw(st.integers(0, 99)) < (95 if argument.required else 60):
            positional.append(draw(value_for(argument, world)))
    if positional and draw(st.booleans()):
        args.append("--")  # every positional value is taken as is, even '-x'
    args += positional
    extra = draw(st.integers(0, 99))
    if extra < 4:
        args.insert(draw(st.integers(len(path), len(args))), "--help")
    elif extra < 7:
        args.insert(draw(st.integers(len(path), len(args))), "--no-such-option")
    if path in RUN_ONCE and RUN_ONCE[path] not in args:
        args.insert(len(path), RUN_ONCE[path])
    return args


stdin_data = st.one_of(
    st.just(""),
    fuzz_text,
    st.binary(max_size=200),  # not UTF-8, NUL bytes
)

# -- running ------------------------------------------------------------------------------------


class HangError(Exception):
    """A command did not finish within HANG_SECONDS."""


@contextmanager
def hang_guard() -> Iterator[None]:
    """Interrupt a command that runs for more than HANG_SECONDS (main thread only)."""

    def interrupt(_signum: int, _frame: Any) -> None:
        raise HangError(f"no answer within {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(args: Sequence[str], env: dict[str, str | None], stdin: str | bytes = "") -> Result:
    if isinstance(stdin, str):  # lone surrogates stand for undecodable bytes, as in argv
        stdin = stdin.encode("utf-8", "surrogateescape")
    with hang_guard():
        return CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=True)


def shell_word(arg: str) -> str:
    """``arg`` quoted for bash, exactly: lone surrogates become the bytes they stand for, and
    control or invisible characters are spelled out in $'…' so that a paste reproduces them."""
    if not any(unicodedata.category(c).startswith("C") for c in arg):
        return shlex.quote(arg)
    out = []
    for byte in arg.encode("utf-8", "surrogateescape"):
        char = chr(byte)
        out.append(char if 0x20 <= byte < 0x7F and char not in "'\\" else f"\\x{byte:02x}")
    return "$'" + "".join(out) + "'"


def shown(args: Sequence[str]) -> str:
    """The exact command line, for bash."""
    return " ".join(shell_word(a) for a in ["comms", *args])


def problem(
    args: Sequence[str],
    result: Result,
    stdin: str | bytes,
    before: Sequence[str],
    codes: set[int] = EXIT_CODES,
) -> str:
    """Why ``result`` breaks a property, or '' when it does not."""
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    try:
        output = result.output
    except ValueError:  # click could not decode what the command wrote
        output = repr(result.stdout_bytes + result.stderr_bytes)
    if not crashed and result.exit_code in codes and "Traceback (most recent" not in output:
        return ""
    lines = [f"$ {shown(args)}"]
    if stdin:
        lines.append(f"  (standard input: {stdin[:200]!r}{'…' if len(stdin) > 200 else ''})")
    lines.append(f"  exit code {result.exit_code} (expected one of {sorted(codes)})")
    if crashed:
        assert result.exc_info is not None
        lines.append("  unhandled exception:")
        lines += [
            "    " + line
            for line in "".join(traceback.format_exception(*result.exc_info)).splitlines()[-25:]
        ]
    lines += ["  output (last 1,500 characters):", "    " + output[-1500:].replace("\n", "\n    ")]
    if before:
        lines.append("  after, in the same store:")
        lines += [f"    $ {line}" for line in before]
    lines.append(
        f"  environment: COMMS_NOW={NOW}, the seeded store of tests/harness/test_cli_fuzz.py"
    )
    return "\n".join(lines)


# -- the seeded world ---------------------------------------------------------------------------

SEED_COMMANDS: list[list[str]] = [
    [
        "tenants",
        "add",
        "acme",
        "--name",
        "Acme Corp",
        "--url",
        "https://acme.gitlab-dedicated.com",
        "--contact",
        "ops@acme.example",
        "--csm",
        "csm@gitlab.example",
    ],
    ["tenants", "add", "globex", "--name", "Globex", "--contact", "ops@globex.example", "--pubsec"],
    [
        "tenants",
        "add",
        "zurich-7",
        "--name",
        "Z\u00fcrich \u00dcnicode AG",
        "--geo",
        "--contact",
        "ops@zurich.example",
        "--alias",
        "ZUG",
    ],
    [
        "incident",
        "open",
        "--tenant",
        "acme",
        "--severity",
        "S1",
        "--title",
        "Sign-in failures",
        "--started",
        "13:52",
    ],
    [
        "incident",
        "open",
        "--tenant",
        "globex",
        "--tenant",
        "acme",
        "--severity",
        "S2",
        "--title",
        "Slow merge requests",
        "--security",
    ],
    ["incident", "open", "--tenant", "acme", "--severity", "S4", "--title", "Docs search slow"],
    [
        "incident",
        "open",
        "--tenant",
        "zurich-7",
        "--severity",
        "S3",
        "--title",
        "Pipelines d\u00e9layed",
        "--ref",
        "IR-2041",
    ],
    [
        "draft",
        "investigation-start",
        "--incident",
        "INC-1",
        "--set",
        "impact=Users cannot sign in to the web interface.",
    ],
    ["review", "approve", "1"],
    [
        "draft",
        "investigation-start",
        "--incident",
        "INC-2",
        "--set",
        "impact=Merge requests load slowly.",
    ],
    ["review", "submit", "2"],
    [
        "draft",
        "investigation-start",
        "--incident",
        "IR-2041",
        "--set",
        "impact=Pipelines start late.",
    ],
    ["review", "request-changes", "3", "--note", "Say which pipelines."],
    ["incident", "set", "INC-1", "--status", "identified"],
    ["draft", "update", "--incident", "INC-1", "--set", "actions=We are restoring sign-in."],
    ["incident", "set", "INC-3", "--status", "monitoring", "--confirmed-by", "Sam (IMOC)"],
    ["incident", "set", "INC-3", "--status", "resolved", "--confirmed-by", "Sam (IMOC)"],
    ["draft", "resolved", "--incident", "INC-3", "--set", "resolution=Search is fast again."],
]

FILES: dict[str, bytes] = {
    "notes.txt": b"Users on web-03 (10.2.0.7) cannot sign in, see #inc-2291.\n",
    "clean.txt": b"We are investigating slow sign-ins. Next update by 16:00 UTC.\n",
    "vars.toml": 'impact = "Users cannot push."\nactions = "Restarting \u200b the service."\n'.encode(),
    "vars.json": json.dumps({"impact": "\u202eesrever", "eta": "0001-01-01T00:00Z"}).encode(),
    "tenants.json": json.dumps(
        {"tenants": [{"id": "initech", "name": "Initech", "contacts": [{"email": "a@b.example"}]}]}
    ).encode(),
    "bad.toml": b"[lint\nfail_level = 3\n",
    "lint.toml": b'[lint]\nfail_level = "warning"\nroster = ["Jane Doe"]\n',
    "binary.bin": b"\xff\xfe\x00\x00caf\xe9\x80",
    "empty.txt": b"",
    "z\u00fcrich \u200b.txt": "Z\u00fcrich users see errors.".encode(),
}
# Short Switchboard and Zendesk settings so a send to the refusing port gives up at once
# instead of backing off five times.
CONFIG = """\
[switchboard]
timeout_seconds = 1.0
max_attempts = 1

[zendesk]
subdomain = "gitlab"
email = "comms-bot@example.com"
timeout = 1.0
max_attempts = 1
"""
# $EDITOR for `draft --edit`: appends internal details to the draft, as a careless edit would.
EDITOR = "#!/bin/sh\nprintf '\\nSee #inc-42 on db1001 (10.2.0.7).\\n' >> \"$1\"\n"


def seed(root: Path, env: dict[str, str | None]) -> World:
    """Build the seeded store and files in ``root`` through the CLI; fail on any hiccup."""
    for args in SEED_COMMANDS:
        result = run(args, env)
        assert result.exit_code == 0, problem(args, result, "", []) or result.output
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    (root / "a-folder").mkdir()
    (root / "comms.toml").write_text(CONFIG, encoding="utf-8")
    editor = root / "edit.sh"
    editor.write_text(EDITOR, encoding="utf-8")
    editor.chmod(0o755)
    refs = [
        r["ref"]
        for r in json.loads(run(["incident", "list", "--all", "--format", "json"], env).stdout)
    ]
    drafts = [d["id"] for d in json.loads(run(["drafts", "list", "--format", "json"], env).stdout)]
    tenants = [
        t["id"] for t in json.loads(run(["tenants", "list", "--format", "json"], env).stdout)
    ]
    with sqlite3.connect(root / "comms.db") as conn:  # fold the WAL in: the copy is one file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    files = [*FILES, "a-folder", "missing.txt", "-", "comms.toml", "comms.db"]
    return World(refs=sorted(refs), tenants=tenants, drafts=drafts, files=files)


def listings(world: World) -> list[tuple[list[str], set[int]]]:
    """The listing commands that must keep working, with the exit codes each may give."""
    checks: list[tuple[list[str], set[int]]] = [
        (["incident", "list", "--all"], {0}),
        (["drafts", "list"], {0}),
        (["tenants", "list"], {0}),
        (["review", "list"], {0}),
        (["cadence", "status"], {0}),
        (["cadence", "check"], {0, 1}),  # 1: something is overdue (documented)
    ]
    checks += [(["timeline", ref], {0}) for ref in world.refs]
    return checks


def check(
    commands: Sequence[Sequence[str]],
    stdin: str | bytes,
    work: Path,
    env: dict[str, str | None],
    world: World,
) -> str:
    """Run ``commands`` then the listings in the store copy at ``work``; return what broke a
    property ('' when nothing did). Changes the working directory to ``work``."""
    env = {**env, "COMMS_DATABASE_URL": str(work / "comms.db"), "EDITOR": str(work / "edit.sh")}
    os.chdir(work)
    done: list[str] = []
    for args in commands:
        why = problem(args, run(args, env, stdin), stdin, done)
        if why:
            return f"a command broke a property:\n{why}"
        done.append(shown(args))
    for args, codes in listings(world):
        why = problem(args, run(args, env), "", done, codes)
        if why:
            return f"a listing command stopped working:\n{why}"
    return ""


# -- the test -----------------------------------------------------------------------------------


def test_every_command_line_ends_cleanly_and_leaves_the_store_usable(
    tmp_path: Path, closed_port: int, cli_env: Any
) -> None:
    template = tmp_path / "seeded"
    template.mkdir()
    world = seed(template, {**cli_env(template), "COMMS_NOW": NOW})
    assert world.refs == ["INC-1", "INC-2", "INC-3", "IR-2041"]
    counter = iter(range(10**9))

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=timedelta(seconds=HANG_SECONDS),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=False,
    )
    @given(
        commands=st.lists(invocation(world), min_size=1, max_size=4),
        stdin=stdin_data,
    )
    def example(commands: list[list[str]], stdin: str | bytes) -> None:
        work = tmp_path / f"example-{next(counter)}"
        shutil.copytree(template, work)
        try:
            why = check(commands, stdin, work, {**cli_env(work), "COMMS_NOW": NOW}, world)
        finally:
            os.chdir(tmp_path)
            shutil.rmtree(work, ignore_errors=True)
        assert not why, why

    example()


def test_the_walk_finds_every_command_of_the_table() -> None:
    """The fuzzer's view of the command tree is click's, including lazily loaded groups."""
    from comms.cli import COMMANDS

    tops = {path[0] for path, _ in TREE} | {p[0] for p in SERVES_FOREVER}
    assert tops == set(COMMANDS)
    assert len(TREE) >= 25, [" ".join(p) for p, _ in TREE]
    assert ("cadence", "watch") in {p for p, _ in TREE}
    assert GROUPS
