"""Coverage-guided fuzzing (atheris / libFuzzer) of the linter, the renderer and the config.

Usage: python benchmarks/fuzz.py [--seconds 60] [--target lint|render|config ...]
       [--crash-dir DIR] [--seed N]
       python benchmarks/fuzz.py --replay FILE --target T     (re-run one saved input)

Needs ``pip install atheris`` (not a project dependency). Each target runs in its own
process for ``--seconds`` (default 60, so about three minutes for all three) and keeps going
after a failure, so one run reports every distinct defect it meets. Targets and what counts
as a failure:

    lint     comms.lint.lint and fix on any text, kind, audience, severity and status:
             any exception (lint "never raises on any text"); a finding outside the text;
             fix not idempotent (fixing its output changes it again); a fixable finding left
             after fix; a rule fix adds that the input did not have.
    render   comms.render.Renderer().render for every template with fuzzed values for its
             declared variables (and unknown names), on incidents with fuzzed titles:
             any exception but TemplateError / MissingVariablesError / UsageError; a line
             break in the rendered subject.
    config   comms.toml written to a temporary folder, as raw bytes or as generated TOML
             over the known tables and keys, then load_settings and every validator the
             CLI reaches through comms.bootstrap.Runtime (lint, cadence, review, send,
             alert sinks, both channels' publishers, the renderer): any exception but
             ConfigError / UsageError.

Prints executions, executions a second, failures and distinct failures per target. Each
distinct failure's input is written to ``--crash-dir`` as ``TARGET-SIGNATURE.bin`` with the
traceback beside it (``.txt``); a hang or a native crash is saved by libFuzzer as
``TARGET-timeout-…``/``TARGET-crash-…``. Exit status 1 when any target failed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
TARGETS = ("lint", "render", "config")


class PropertyError(AssertionError):
    """A documented property does not hold for this input."""


# -- lint ---------------------------------------------------------------------------------------

TENANT_NAMES = ["Acme Corp", "Globex", "Initech", "Z\u00fcrich AG"]
SEVERITIES = [None, "S1", "S2", "S3", "S4", "s1", "S9", ""]


def lint_target(data: bytes) -> None:
    """The first two bytes pick the options, the rest is the text (UTF-8, errors replaced)."""
    from comms.lint import fix, lint
    from comms.models import MessageKind, Status

    if len(data) < 2:
        return
    kinds = [None, *(k.value for k in MessageKind)]
    statuses = [None, *(s.value for s in Status), "bogus"]
    options: dict[str, Any] = {
        "kind": kinds[data[0] % len(kinds)],
        "severity": SEVERITIES[(data[0] >> 4) % len(SEVERITIES)],
        "status": statuses[data[1] % len(statuses)],
        "audience": ([None, *TENANT_NAMES])[(data[1] >> 4) % (len(TENANT_NAMES) + 1)],
        "tenants": TENANT_NAMES,
    }
    text = data[2:].decode("utf-8", "replace")
    findings = lint(text, **options)
    for f in findings:
        if not 0 <= f.start <= f.end <= len(text):
            raise PropertyError(f"finding {f.rule} spans {f.start}..{f.end} of {len(text)}")
        f.to_dict()
    result = fix(text, **options)
    again = fix(result.text, **options)
    if again.text != result.text:
        raise PropertyError(
            f"fix is not idempotent (options {options}):\n"
            f"  once:  {result.text[:400]!r}\n  twice: {again.text[:400]!r}"
        )
    fixable = [f for f in lint(result.text, **options) if f.fixable]
    if fixable:
        raise PropertyError(
            f"fix left fixable findings (options {options}): "
            + ", ".join(f"{f.rule} {result.text[f.start : f.end]!r}" for f in fixable[:5])
        )
    added = Counter(f.rule for f in result.remaining) - Counter(f.rule for f in findings)
    if added:
        raise PropertyError(
            f"fix added findings the input did not have: {dict(added)} (options {options}):\n"
            f"  input: {text[:600]!r}\n  fixed: {result.text[:600]!r}"
        )


def lint_seeds() -> list[bytes]:
    seeds = [
        b"\x00\x00Users on web-03 (10.2.0.7) cannot sign in, see #inc-2291 and @jane.",
        b"\x13\x21We are investigating. Next update by 16:00 UTC. The DBA restarted db1001.",
        b"\x24\x10glpat-abcdefghijklmnopqrst was leaked in https://ops.gitlab.net/x?y=1",
    ]
    for path in sorted(CORPUS.rglob("*.txt"))[:20] + sorted(CORPUS.rglob("*.md"))[:10]:
        seeds.append(b"\x11\x22" + path.read_bytes()[:3000])
    jsonl = CORPUS / "customer_facing" / "github_status_updates_2018_2020.jsonl"
    if jsonl.is_file():
        for line in jsonl.read_text(encoding="utf-8").splitlines()[:30]:
            seeds.append(b"\x01\x03" + json.loads(line).get("body", "").encode()[:3000])
    return seeds


# -- render -------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
TIMES = [
    "14:30",
    "+45m",
    "now",
    "0001-01-01T00:00Z",
    "9999-12-31T23:59Z",
    "+99999999999d",
    "2026-11-27T14:30",
    "24:00",
]
_RENDERER: Any = None


def render_target(data: bytes) -> None:
    """Pick a template and incident, fill some declared variables, render."""
    import atheris

    from comms.errors import MissingVariablesError, TemplateError, UsageError
    from comms.models import Incident, Severity, Status
    from comms.render import Renderer, automatic_context

    global _RENDERER
    if _RENDERER is None:
        _RENDERER = Renderer()
    fdp = atheris.FuzzedDataProvider(data)
    name = fdp.PickValueInList(_RENDERER.names())
    spec = _RENDERER.spec(name)
    values: dict[str, str] = {}
    for var in spec.variables:
        if not fdp.ConsumeBool():
            continue
        if var.type == "time" and fdp.ConsumeBool():
            values[var.name] = fdp.PickValueInList(TIMES)
        else:
            values[var.name] = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 300))
    if fdp.ConsumeIntInRange(0, 15) == 0:
        values[fdp.ConsumeUnicodeNoSurrogates(12)] = "x"
    status = fdp.PickValueInList(list(Status))
    try:
        incident = Incident(
            ref="INC-1",
            title=fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(1, 120)),
            severity=fdp.PickValueInList(list(Severity)),
            status=status,
            tenants=["acme"],
            started_at=NOW - timedelta(hours=1),
            created_at=NOW - timedelta(hours=1),
            updated_at=NOW,
            resolved_at=NOW if status is Status.RESOLVED else None,
        )
    except ValueError:  # the model refuses the title (pydantic's ValidationError is one)
        return
    context = automatic_context(incident=incident, now=NOW, interval_minutes=60)
    try:
        rendered = _RENDERER.render(name, values, context, NOW)
    except (TemplateError, MissingVariablesError, UsageError):
        return
    if any(c in rendered.subject for c in "\r\n\v\f\x85\u2028\u2029"):
        raise PropertyError(f"the subject of {name} has a line break: {rendered.subject!r}")


# -- config -------------------------------------------------------------------------------------


def config_keys() -> dict[str, list[str]]:
    """Known keys per table, read from the code where it says them."""
    import dataclasses

    from comms.adapters.rest import SwitchboardConfig
    from comms.adapters.zendesk import ZendeskConfig
    from comms.cadence import _CONFIG_KEYS
    from comms.lint.config import LintConfig
    from comms.settings import _SCALARS, _TABLES

    keys: dict[str, list[str]] = {name: ["unknown_key"] for name in _TABLES}
    keys[""] = [*_SCALARS, "unknown_key"]
    keys["switchboard"] += [f.name for f in dataclasses.fields(SwitchboardConfig)]
    keys["zendesk"] += list(ZendeskConfig.model_fields)
    keys["lint"] += list(LintConfig.model_fields)
    keys["cadence"] += list(_CONFIG_KEYS)
    # These tables are validated by hand-written code with no list to read.
    keys["review"] += ["required_for", "sirt_for_security", "s1_timeout_minutes"]
    keys["send"] += ["channels", "concurrency"]
    keys["updates"] += ["interval_minutes"]
    keys["alerts"] += ["sinks"]
    return keys


STRINGS = [
    "",
    " ",
    "S1",
    "s1",
    "60m",
    "off",
    "error",
    "warning",
    "switchboard",
    "zendesk",
    "stdout",
    "slack:https://127.0.0.1:9/x",
    "pagerduty:env:NOPE",
    "http://127.0.0.1:9",
    "ftp://x",
    "gitlab",
    "a@b.example",
    "22:00-07:00",
    "templates",
    "../../../etc",
    "packs.toml",
    "\u202e\u200b",
    "x" * 300,
    "Leak.IPAddress",
    "/dev/null",
]


def toml_value(fdp: Any, depth: int = 0) -> str:
    """One TOML value of a random type, often a plausible one."""
    choice = fdp.ConsumeIntInRange(0, 11 if depth < 2 else 8)
    if choice == 0:
        return json.dumps(fdp.PickValueInList(STRINGS))
    if choice == 1:
        return json.dumps(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40)))
    if choice == 2:
        return str(fdp.PickValueInList([0, 1, -1, 8, 64, 65, 60, 2**31, 2**63 - 1, -(2**63)]))
    if choice == 3:
        return str(fdp.ConsumeIntInRange(-(2**63), 2**63 - 1))
    if choice == 4:
        return fdp.PickValueInList(["true", "false", "nan", "inf", "-inf", "0.0", "1e308"])
    if choice == 5:
        return repr(fdp.ConsumeRegularFloat())
    if choice == 6:
        return fdp.PickValueInList(["1979-05-27T07:32:00Z", "07:32:00", "1979-05-27"])
    if choice in (7, 8):
        return json.dumps(fdp.PickValueInList(SEVERITIES[1:]))
    if choice in (9, 10):
        items = [toml_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
        return "[" + ", ".join(items) + "]"
    pairs = [
        f"{json.dumps(fdp.PickValueInList([*SEVERITIES[1:5], 'default', 'investigating', 'x']))}"
        f" = {toml_value(fdp, depth + 1)}"
        for _ in range(fdp.ConsumeIntInRange(0, 3))
    ]
    return "{ " + ", ".join(pairs) + " }"


def generated_toml(data: bytes) -> bytes:
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    keys = _CONFIG_KEYS_CACHE
    tables = sorted(keys)
    lines: list[str] = []
    scalars = [f"{k} = {toml_value(fdp)}" for k in keys[""] if fdp.ConsumeIntInRange(0, 3) == 0]
    lines += scalars
    for _ in range(fdp.ConsumeIntInRange(0, 5)):
        table = fdp.PickValueInList(tables[1:])
        lines.append(f"[{table}]")
        for _ in range(fdp.ConsumeIntInRange(0, 5)):
            lines.append(f"{fdp.PickValueInList(keys[table])} = {toml_value(fdp)}")
    return "\n".join(lines).encode("utf-8") + b"\n"


_CONFIG_KEYS_CACHE: dict[str, list[str]] = {}
# What a target made of its input, saved beside a failing input (the comms.toml it wrote).
LAST_INPUT: dict[str, bytes] = {}
_CONFIG_DIR: Path | None = None


def config_target(data: bytes) -> None:
    """Byte 0 even: the rest is comms.toml as is; odd: the rest drives generated TOML."""
    from comms.bootstrap import CHANNELS, Runtime
    from comms.errors import ConfigError, UsageError
    from comms.settings import load_settings

    global _CONFIG_DIR
    if not data:
        return
    if not _CONFIG_KEYS_CACHE:
        _CONFIG_KEYS_CACHE.update(config_keys())
    if _CONFIG_DIR is None:
        _CONFIG_DIR = Path(tempfile.mkdtemp(prefix="comms-fuzz-config-"))
        (_CONFIG_DIR / "packs.toml").write_text("", encoding="utf-8")
        (_CONFIG_DIR / "templates").mkdir()
    text = data[1:] if data[0] % 2 == 0 else generated_toml(data[1:])
    path = _CONFIG_DIR / "comms.toml"
    path.write_bytes(text)
    LAST_INPUT["comms.toml"] = text
    runtime = None
    try:
        settings = load_settings(path, environ={})
        runtime = Runtime(settings, environ={}, clock=lambda: NOW)
        runtime.lint_config()
        runtime.cadence_policy()
        runtime.review_policy()
        runtime.default_channels()
        runtime.concurrency()
        runtime.sinks()
        runtime.renderer()
        for channel in CHANNELS:
            # One channel's bad table must not hide the next one's.
            with contextlib.suppress(ConfigError, UsageError):
                runtime.publishers([channel])
    except (ConfigError, UsageError):
        return
    finally:
        if runtime is not None:
            runtime.close()


def config_seeds() -> list[bytes]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    seeds = []
    for block in readme.split("```toml")[1:]:
        seeds.append(b"\x00" + block.split("```")[0].encode())
    seeds.append(b'\x00[switchboard]\nbase_url = "http://127.0.0.1:8765"\ntoken = "t"\n')
    seeds.append(b"\x00[cadence.gap]\nS1 = 60\n[cadence]\nquiet_hours = '22:00-07:00'\n")
    seeds += [bytes([1]) + bytes([n]) * 64 for n in range(0, 256, 17)]
    return seeds


TARGET_FUNCTIONS: dict[str, Callable[[bytes], None]] = {
    "lint": lint_target,
    "render": render_target,
    "config": config_target,
}
SEEDS: dict[str, Callable[[], list[bytes]]] = {
    "lint": lint_seeds,
    "render": lambda: [bytes(range(256)), b"\x01" * 64, b"\xff" * 64],
    "config": config_seeds,
}

# -- one target under libFuzzer (child process) ---------------------------------------------------


def signature(exc: BaseException) -> str:
    """Exception type and the innermost comms frame: one per distinct defect, roughly."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/comms/" in f.filename or "/adapters/" in f.filename]
    where = ours[-1] if ours else frames[-1]
    place = f"{Path(where.filename).name}:{where.lineno}"
    if isinstance(exc, PropertyError):
        place = str(exc).split(":")[0][:60]
    return f"{type(exc).__name__} at {place}"


def run_child(
    target: str, seconds: float, stats_path: Path, crash_dir: Path, rest: list[str]
) -> None:
    import atheris

    with atheris.instrument_imports(include=["comms"]):
        import comms.adapters.rest
        import comms.adapters.zendesk
        import comms.bootstrap
        import comms.cadence
        import comms.lint.config
        import comms.lint.engine
        import comms.lint.fixer
        import comms.render
        import comms.review
        import comms.settings  # noqa: F401

    function = TARGET_FUNCTIONS[target]
    deadline = time.monotonic() + seconds
    stats: dict[str, Any] = {"target": target, "executions": 0, "failures": 0, "distinct": {}}

    def flush() -> None:
        stats_path.write_text(json.dumps(stats), encoding="utf-8")

    def one(data: bytes) -> None:
        if time.monotonic() > deadline:
            flush()
            os._exit(0)  # libFuzzer has no clean stop; the figures are on disk
        stats["executions"] += 1
        LAST_INPUT.clear()
        try:
            function(data)
        except Exception as exc:
            stats["failures"] += 1
            sig = signature(exc)
            if sig not in stats["distinct"]:
                digest = hashlib.sha1(sig.encode()).hexdigest()[:12]
                saved = crash_dir / f"{target}-{digest}.bin"
                saved.write_bytes(data)
                trace = "".join(traceback.format_exception(exc))
                replay = f"python benchmarks/fuzz.py --replay {saved} --target {target}"
                saved.with_suffix(".txt").write_text(f"{sig}\n\n{trace}\n{replay}\n", "utf-8")
                for name, made in LAST_INPUT.items():
                    saved.with_name(f"{saved.stem}-{name}").write_bytes(made)
                stats["distinct"][sig] = {"input": str(saved), "message": str(exc)[:300]}
                print(f"\n[{target}] new failure: {sig}\n  saved {saved}", file=sys.stderr)
                flush()
        if stats["executions"] % 2000 == 0:
            flush()

    flush()
    atheris.Setup([sys.argv[0], *rest], one)
    atheris.Fuzz()


# -- the driver ---------------------------------------------------------------------------------


def run_target(target: str, seconds: float, crash_dir: Path, seed: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"comms-fuzz-{target}-"))
    corpus = work / "corpus"
    corpus.mkdir()
    for n, data in enumerate(SEEDS[target]()):
        (corpus / f"seed-{n}").write_bytes(data)
    stats_path = work / "stats.json"
    libfuzzer = [
        f"-seed={seed}",
        f"-max_total_time={int(seconds) + 60}",  # a backstop: the child stops itself first
        "-timeout=20",  # one input running longer is a hang, saved as TARGET-timeout-…
        "-rss_limit_mb=4096",
        "-max_len=8192",
        f"-artifact_prefix={crash_dir}/{target}-",
        "-print_final_stats=0",
        str(corpus),
    ]
    started = time.monotonic()
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            target,
            "--seconds",
            str(seconds),
            "--stats",
            str(stats_path),
            "--crash-dir",
            str(crash_dir),
            "--",
            *libfuzzer,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    stats.setdefault("target", target)
    stats.setdefault("executions", 0)
    stats.setdefault("failures", 0)
    stats.setdefault("distinct", {})
    stats["elapsed"] = elapsed
    stats["returncode"] = child.returncode
    if child.returncode != 0:  # a hang, a native crash or memory: libFuzzer saved the input
        tail = child.stdout[-3000:]
        artifacts = sorted(
            str(p)
            for p in crash_dir.glob(f"{target}-*")
            if any(k in p.name for k in ("-crash-", "-timeout-", "-oom-", "-leak-"))
        )
        stats["distinct"][f"process exit {child.returncode}"] = {
            "input": ", ".join(artifacts) or "(none saved)",
            "message": tail,
        }
        stats["failures"] += 1
    return stats


def replay(path: Path, target: str) -> int:
    """Run one saved input without libFuzzer; print its traceback."""
    try:
        TARGET_FUNCTIONS[target](path.read_bytes())
    except Exception:
        traceback.print_exc()
        return 1
    print(f"{path}: no failure in {target}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per target (default 60)")
    parser.add_argument(
        "--target", action="append", choices=TARGETS, help="repeatable; default all"
    )
    parser.add_argument("--crash-dir", type=Path, default=None, help="default: a new temp folder")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's seed (default 1)")
    parser.add_argument("--replay", type=Path, help="re-run one saved input of --target")
    parser.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        run_child(args.child, args.seconds, args.stats, args.crash_dir, args.rest)
        return
    if args.replay:
        if not args.target or len(args.target) != 1:
            parser.error("--replay needs exactly one --target")
        sys.exit(replay(args.replay, args.target[0]))
    try:
        import atheris  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/fuzz.py needs atheris: .venv/bin/pip install atheris")
    crash_dir = args.crash_dir or Path(tempfile.mkdtemp(prefix="comms-fuzz-crashes-"))
    crash_dir.mkdir(parents=True, exist_ok=True)
    targets = args.target or list(TARGETS)
    print(f"fuzzing {', '.join(targets)} for {args.seconds:g} s each; failures go to {crash_dir}")
    results = [run_target(t, args.seconds, crash_dir, args.seed) for t in targets]
    print()
    print(f"{'target':<8} {'executions':>11} {'exec/s':>8} {'failures':>9} {'distinct':>9}")
    for r in results:
        rate = r["executions"] / max(r["elapsed"], 1e-9)
        print(
            f"{r['target']:<8} {r['executions']:>11,} {rate:>8,.0f} {r['failures']:>9,} "
            f"{len(r['distinct']):>9}"
        )
    failed = False
    for r in results:
        for sig, info in r["distinct"].items():
            failed = True
            print(f"\n[{r['target']}] {sig}\n  input: {info['input']}")
            print("  " + info["message"].strip().replace("\n", "\n  ")[:1200])
    print("\nFAIL" if failed else "\nPASS: no failure found")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
