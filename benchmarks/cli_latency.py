"""Time comms commands as whole processes against `python -c pass` in the same run.

Usage: python benchmarks/cli_latency.py [--runs 21]

Uses the `comms` console script beside the running interpreter (e.g. .venv/bin/comms),
a throw-away database and a pinned clock; prints the median of each command, its
ratio to `python -c pass`, and the budget from issue 2.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_MS = {"comms --help": 80, "comms draft update": 250}


def timed(cmd: list[str], env: dict[str, str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {done.stderr.decode().strip()}")
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    comms = str(Path(sys.executable).with_name("comms"))
    folder = Path(tempfile.mkdtemp(prefix="comms-bench-"))
    env = {
        **os.environ,
        "COMMS_DATABASE_URL": str(folder / "bench.db"),
        "COMMS_AUTHOR": "bench",
        "COMMS_NOW": "2026-11-27T14:00:00Z",
        "XDG_CONFIG_HOME": str(folder),
    }
    env.pop("COMMS_CONFIG", None)
    setup = [
        [comms, "tenants", "add", "acme", "--name", "Acme Corp"],
        [
            comms,
            "incident",
            "open",
            "--tenant",
            "acme",
            "--severity",
            "S1",
            "--title",
            "Sign-in failures",
        ],
    ]
    for cmd in setup:
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, cwd=folder)
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "comms --help": [comms, "--help"],
        "comms templates list": [comms, "templates", "list"],
        "comms draft update": [
            comms,
            "draft",
            "update",
            "--incident",
            "INC-1",
            "--set",
            "impact=Users cannot sign in",
            "--set",
            "actions=We are restoring sign-in",
        ],
    }
    # Warm the OS caches and the store once so the first sample is not an outlier.
    for cmd in cases.values():
        subprocess.run(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder
        )
    results = {name: timed(cmd, env, args.runs) for name, cmd in cases.items()}
    base = results["python -c pass"]
    print(f"median of {args.runs} runs, {os.cpu_count()} cores, {sys.executable}")
    print(f"{'command':<24} {'median ms':>10} {'× python -c pass':>18} {'budget ms':>10}")
    for name, ms in results.items():
        budget = BUDGET_MS.get(name)
        verdict = "" if budget is None else (" ok" if ms <= budget else " OVER")
        print(f"{name:<24} {ms:>10.1f} {ms / base:>18.2f} {budget or '':>10}{verdict}")


if __name__ == "__main__":
    main()
