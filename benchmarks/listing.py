"""Time `comms incident list` and `comms drafts list` as whole processes on a big store.

Usage: python benchmarks/listing.py [--incidents 100000] [--drafts 750000] [--runs 7]
       [--db PATH]

Builds a throw-away database with the store's own schema (SqliteStore creates it), then
bulk-inserts with executemany: ``--incidents`` incidents (a fifth of them open, the rest
resolved), ``--drafts`` drafts spread over them (each incident's older updates sent, its
latest one still open, some in review) with one or two revisions each.  Then runs each
listing several times as the user would type it and prints the medians against the 0.5 s
budget.  A listing shows one page (50, newest first) unless asked for ``--all``; before
paging, the same store took 1.5 s to print every incident and 13.6 s for every draft.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BUDGET_S = 0.5
NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
STATUSES = ("investigating", "identified", "mitigating", "monitoring")
BODY = (
    "We are investigating an issue affecting your GitLab Dedicated instance.\n\n"
    "What you may experience: Users cannot sign in to the web interface.\n"
    "Started: 2026-11-27 13:52 UTC\n\nCurrent status: We are investigating.\n"
    "Next update: by 2026-11-27 15:05 UTC, or sooner if the situation changes.\n"
)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(path: Path, incidents: int, drafts: int) -> None:
    """Create the schema through SqliteStore, then bulk-insert the data with sqlite3."""
    from comms.adapters.sqlite_store import SqliteStore

    SqliteStore(path).close()
    rng = random.Random(19)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    per_incident = drafts // incidents
    extra = drafts - per_incident * incidents  # the first `extra` incidents get one more
    draft_id = 0
    with db:
        for start in range(1, incidents + 1, 10_000):
            rows, draft_rows, revision_rows = [], [], []
            for seq in range(start, min(start + 10_000, incidents + 1)):
                ref = f"INC-{seq}"
                is_open = seq > incidents * 4 // 5  # the newest fifth are still open
                started = NOW - timedelta(minutes=(incidents - seq) * 7 + 30)
                status = rng.choice(STATUSES) if is_open else "resolved"
                resolved = None if is_open else iso(started + timedelta(hours=3))
                rows.append(
                    (
                        ref,
                        seq,
                        f"Incident {seq}: sign-in failures",
                        rng.choice(("S1", "S2", "S3", "S4")),
                        status,
                        json.dumps([f"tenant-{seq % 300}"]),
                        iso(started),
                        iso(started + timedelta(minutes=2)),
                        iso(started + timedelta(minutes=40)),
                        iso(started + timedelta(minutes=2)),
                        iso(started + timedelta(minutes=40)),
                        resolved,
                        "imoc" if resolved else None,
                    )
                )
                count = per_incident + (1 if seq <= extra else 0)
                for n in range(count):
                    draft_id += 1
                    at = iso(started + timedelta(minutes=10 + 30 * n))
                    last = n == count - 1
                    # Older kinds repeat once sent; only the latest draft may still be open.
                    state = "sent" if not (last and is_open) else rng.choice(("draft", "in-review"))
                    kind = "update" if n else "investigation-start"
                    draft_rows.append((draft_id, ref, kind, state, at, at))
                    for number in (1, 2) if n % 3 == 0 else (1,):
                        revision_rows.append(
                            (draft_id, number, f"Update: Incident {seq}", BODY, "{}", "bench", at)
                        )
            db.executemany(
                "INSERT INTO incidents (ref, seq, title, severity, status, tenants, started_at, "
                "created_at, updated_at, engaged_at, status_changed_at, resolved_at, "
                "resolved_by) VALUES (" + ", ".join("?" * 13) + ")",
                rows,
            )
            db.executemany(
                "INSERT INTO drafts (id, incident_ref, kind, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                draft_rows,
            )
            db.executemany(
                "INSERT INTO revisions (draft_id, number, subject, body, variables, author, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                revision_rows,
            )
    db.execute("ANALYZE")
    db.close()


def timed(cmd: list[str], env: dict[str, str], cwd: Path, runs: int) -> tuple[float, str]:
    """Median wall time of ``runs`` runs, and the first run's output line count."""
    warm = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if warm.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({warm.returncode}): {warm.stderr.strip()}")
    samples = []
    for _ in range(runs):
        begin = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - begin)
    note = f"{len(warm.stdout.splitlines())} lines"
    if warm.stderr.strip():
        note += f"; stderr: {warm.stderr.strip().splitlines()[-1]}"
    return statistics.median(samples), note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--drafts", type=int, default=750_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--db", type=Path, help="Reuse (or build once into) this database file.")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="comms-listing-bench-"))
    path = (args.db or folder / "bench.db").resolve()
    started = time.perf_counter()
    if not path.exists():
        build(path, args.incidents, args.drafts)
    built = time.perf_counter() - started
    env = {
        **os.environ,
        "COMMS_DATABASE_URL": str(path),
        "COMMS_NOW": iso(NOW),
        "XDG_CONFIG_HOME": str(folder),
        "HOME": str(folder),
        # As installed: compiled modules cached, outside the source tree.
        "PYTHONPYCACHEPREFIX": str(folder / "pycache"),
    }
    env.pop("COMMS_CONFIG", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    script = str(Path(sys.executable).with_name("comms"))
    print(
        f"database: {args.incidents} incidents, {args.drafts} drafts, "
        f"{path.stat().st_size / 1e6:.0f} MB, built in {built:.1f} s; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )
    newest = f"INC-{args.incidents}"
    listings = [
        (["incident", "list"], True),
        (["drafts", "list"], True),
        (["incident", "list", "--format", "json"], False),
        (["drafts", "list", "--format", "json"], False),
        (["drafts", "list", "--incident", newest], False),
        (["drafts", "list", "--state", "in-review"], False),
        (["incident", "list", "--offset", str(args.incidents // 10)], False),
    ]
    base = statistics.median(
        timed([sys.executable, "-c", "pass"], env, folder, args.runs)[0] for _ in range(3)
    )
    for argv, budgeted in listings:
        median, note = timed([script, *argv], env, folder, args.runs)
        verdict = ("ok" if median <= BUDGET_S else "OVER") if budgeted else "-"
        print(
            f"comms {' '.join(argv):<40} median {median:.3f} s of {args.runs} ({note}); "
            f"budget {BUDGET_S} s: {verdict}"
        )
    print(f"python -c pass: {base:.3f} s")


if __name__ == "__main__":
    main()
