"""Speed of `comms lint`: all default packs over 1 MiB of English text, against proselint,
and the cold start that every `comms draft` pays.

    .venv/bin/python benchmarks/lint_speed.py [--runs 5] [--corpus PATH] [--cold-runs 9]

The text is the shared corpus's English prose (postmortems and status updates) repeated to
1 MiB.  comms runs in-process (packs compiled before timing, as in a long-lived process);
proselint 0.16 (`pip install proselint==0.16.0`) runs in-process on the same text, as its
CLI does (`LintFile(...).lint(config)` with every default check), uncapped.
Prints both medians and the ratio.

Cold start: `import comms.lint` plus the first `lint()` of a rendered S1 update, timed
inside fresh interpreters (interpreter start-up excluded), median of --cold-runs; target
<= 40 ms.  One untimed run first writes the .pyc files (unless PYTHONDONTWRITEBYTECODE is
set, in which case stale ones make every run recompile the modules it imports).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

MIB = 1024 * 1024


def english_text(corpus: Path) -> str:
    parts = []
    for path in sorted((corpus / "internal").rglob("*.md")):
        parts.append(path.read_text(encoding="utf-8", errors="replace"))
    for line in (corpus / "customer_facing" / "github_status_updates_2018_2020.jsonl").open():
        parts.append(json.loads(line)["body"])
    text = "\n\n".join(parts)
    return (text * (MIB // len(text) + 1))[:MIB]


DRAFT = """Subject: Update: Sign-in failures

This is an update on the issue affecting your GitLab Dedicated instance.

Current status: We are investigating.

What you may experience: Users cannot sign in

What we are doing: We are restoring sign-in

Next update: by 2026-11-27 15:00 UTC, or sooner if the situation changes.
"""
COLD = f"""
import time
start = time.perf_counter()
from comms.lint import lint
lint({DRAFT!r}, kind="update", severity="S1", status="investigating")
print(time.perf_counter() - start)
"""


def cold_start(runs: int) -> list[float]:
    """Seconds for import + first lint() in fresh interpreters (after one untimed run)."""
    import subprocess

    def once() -> float:
        done = subprocess.run(
            [sys.executable, "-c", COLD], capture_output=True, text=True, check=True
        )
        return float(done.stdout)

    once()
    return [once() for _ in range(runs)]


def time_runs(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--proselint-runs", type=int, default=1)
    parser.add_argument("--cold-runs", type=int, default=9)
    parser.add_argument(
        "--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus"
    )
    args = parser.parse_args()
    cold = cold_start(args.cold_runs)
    cold_median = statistics.median(cold) * 1000
    print(
        f"cold start (import comms.lint + first lint() of an update, fresh interpreter): "
        f"median {cold_median:.1f} ms over {args.cold_runs} runs "
        f"(target <= 40 ms: {'met' if cold_median <= 40 else 'NOT met'})"
    )
    text = english_text(args.corpus)
    print(f"text: {len(text):,} characters ({len(text.encode()):,} bytes UTF-8)")

    from comms.lint import lint

    # kind= makes the struct pack run too: all three default packs.
    lint("warm up: compile the packs once", kind="update")
    findings = lint(text, kind="update")
    ours = time_runs(lambda: lint(text, kind="update"), args.runs)
    ours_median = statistics.median(ours)
    print(
        f"comms lint (all default packs): median {ours_median:.3f} s over {args.runs} runs "
        f"({', '.join(f'{t:.3f}' for t in ours)}), {len(findings)} findings"
    )

    try:
        from proselint.checks import __register__
        from proselint.config import DEFAULT
        from proselint.registry import CheckRegistry
        from proselint.tools import LintFile
    except ImportError:
        print("proselint not installed: .venv/bin/pip install proselint==0.16.0", file=sys.stderr)
        return 2
    CheckRegistry().register_many(__register__)
    # Same work as `proselint check FILE`, minus interpreter start-up, and without the
    # default cap of 1000 results (which would let it stop early).
    config = {**DEFAULT, "max_errors": 10**9}

    def run_proselint() -> None:
        LintFile("bench.txt", text).lint(config)

    theirs = time_runs(run_proselint, args.proselint_runs)
    theirs_median = statistics.median(theirs)
    print(
        f"proselint 0.16 (in-process, LintFile.lint): median {theirs_median:.3f} s over "
        f"{args.proselint_runs} run(s)"
    )
    print(
        f"ratio: comms is {theirs_median / ours_median:.1f}x faster "
        f"(target >= 15x; absolute target <= 0.25 s: {'met' if ours_median <= 0.25 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
