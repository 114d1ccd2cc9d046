"""Time `comms cadence check` as a whole process over 10,000 open incidents.

Usage: python benchmarks/cadence_check.py [--incidents 10000] [--active N] [--updates 20]
       [--resolved 5000] [--runs 7] [--budget 0.5] [--db PATH] [--no-bytecode]

Builds a throw-away database with the store's own schema (SqliteStore creates it), then
bulk-inserts with executemany: the open incidents, ``--updates`` sent updates each in the
event log (plus their draft revisions), and resolved history (half with RCAs done).

``--active`` of the open incidents (default: all) are busy: S1-S4 in every open status,
updated within the last 90 minutes, a mix of on-time, due-soon and overdue clocks, some
pubsec, 2% with two or three tenants of which the last update reached only some, and
half of the S1s still without mitigation with the Director escalation recorded.  The rest
are the long tail: S3/S4 incidents last updated days ago with no promise, which the check
must not even read.  Then runs `comms cadence check` several times and prints the median
against the budget (0.5 s for 10,000 open incidents; use ``--budget 1`` for 100,000).
Uses the `comms` console script beside the running interpreter; if `cadence` is not
registered in comms.cli yet, registers it in the child process first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
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


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(path: Path, incidents: int, updates: int, resolved: int, active: int) -> None:
    """Create the schema through SqliteStore, then bulk-insert the data with sqlite3."""
    from comms.adapters.sqlite_store import SqliteStore

    SqliteStore(path).close()
    rng = random.Random(5)
    rows, drafts, revisions, events = [], [], [], []
    draft_id = 0
    total = incidents + resolved
    for seq in range(1, total + 1):
        ref = f"INC-{seq}"
        is_open = seq <= incidents
        # The long tail: open S3/S4 incidents updated days ago, promising nothing.
        quiet = is_open and seq > active
        severity = rng.choice(("S3", "S4") if quiet else ("S1", "S1", "S2", "S2", "S3", "S4"))
        status = rng.choice(STATUSES) if is_open else "resolved"
        started = NOW - timedelta(minutes=rng.randint(20 + updates * 30, 60 * 24 * 20))
        created = started + timedelta(minutes=2)
        last = NOW - timedelta(minutes=rng.randint(0, 90) + (60 * 24 * 3 if quiet else 0))
        sent_times = [last - timedelta(minutes=30 * k) for k in range(updates)][::-1]
        promised = None if quiet else last + timedelta(minutes=rng.choice((30, 45, 60)))
        resolved_at = None if is_open else last + timedelta(minutes=5)
        pubsec = rng.random() < 0.1
        rca_done = None if is_open or rng.random() < 0.5 else (resolved_at + timedelta(days=2))
        tenants = [f"tenant-{seq % 300}"]
        if not quiet and rng.random() < 0.02:
            tenants += [f"tenant-{(seq + k) % 300}" for k in (101, 202)][: rng.randint(1, 2)]
        unmitigated = status in ("investigating", "identified")
        if is_open and severity == "S1" and unmitigated and rng.random() < 0.5:
            at = iso(started + timedelta(minutes=65))
            events.append((ref, at, "bench", "director.engaged", json.dumps({"by": "bench"})))
        rows.append(
            (
                ref,
                seq,
                f"Incident {seq}",
                severity,
                status,
                json.dumps(tenants),
                0,
                int(pubsec),
                iso(started),
                iso(created),
                iso(last),
                iso(created),
                iso(created),
                iso(created + timedelta(minutes=50))
                if status in ("mitigating", "monitoring")
                else None,
                None,
                iso(resolved_at) if resolved_at else None,
                None,
                iso(last),
                iso(promised) if promised else None,
                iso(rca_done) if rca_done else None,
                iso(rca_done) if rca_done else None,
            )
        )
        events.append(
            (
                ref,
                iso(created),
                "bench",
                "incident.opened",
                json.dumps(
                    {
                        "title": f"Incident {seq}",
                        "severity": severity,
                        "status": "investigating",
                        "tenants": tenants,
                    }
                ),
            )
        )
        for n, sent in enumerate(sent_times, 1):
            # With several tenants, the last update reached the first tenant only.
            reached = tenants[:1] if n == len(sent_times) and len(tenants) > 1 else tenants
            draft_id += 1
            drafts.append((draft_id, ref, "update", "sent", iso(sent), iso(sent)))
            revisions.append((draft_id, 1, "Update", "Body", "{}", "bench", iso(sent)))
            events.append(
                (
                    ref,
                    iso(sent),
                    "bench",
                    "update.sent",
                    json.dumps(
                        {
                            "draft_id": draft_id,
                            "revision": 1,
                            "kind": "update",
                            "channel": "switchboard",
                            "tenants": reached,
                            "sent_at": iso(sent),
                            "next_update_at": iso(promised)
                            if n == len(sent_times) and promised
                            else None,
                        }
                    ),
                )
            )
    import sqlite3

    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO incidents (ref, seq, title, severity, status, tenants, security, pubsec, "
            "started_at, created_at, updated_at, engaged_at, status_changed_at, mitigated_at, "
            "mitigated_by, resolved_at, resolved_by, last_update_at, promised_update_at, "
            "rca_internal_at, rca_external_at) VALUES (" + ", ".join("?" * 21) + ")",
            rows,
        )
        db.executemany(
            "INSERT INTO drafts (id, incident_ref, kind, state, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            drafts,
        )
        db.executemany(
            "INSERT INTO revisions "
            "(draft_id, number, subject, body, variables, author, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            revisions,
        )
        db.executemany(
            "INSERT INTO events (incident_ref, at, actor, type, data) VALUES (?, ?, ?, ?, ?)",
            events,
        )
    db.close()


def command() -> list[str]:
    import comms.cli

    script = str(Path(sys.executable).with_name("comms"))
    if "cadence" in comms.cli.COMMANDS:
        return [script, "cadence", "check"]
    shim = (
        "import comms.cli as c; c.COMMANDS.setdefault('cadence', "
        "('comms.commands.cadence:cadence', 'cadence')); c.main()"
    )
    return [sys.executable, "-c", shim, "cadence", "check"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000, help="Open incidents.")
    parser.add_argument(
        "--active", type=int, help="How many open incidents are busy (default: all); see above."
    )
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="Seconds (median).")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--resolved", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--db", type=Path, help="Reuse (or build once into) this database file.")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="Compile every module from source on each run (as with PYTHONDONTWRITEBYTECODE=1).",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="comms-cadence-bench-"))
    path = (args.db or folder / "bench.db").resolve()
    started = time.perf_counter()
    if not path.exists():
        active = args.incidents if args.active is None else min(args.active, args.incidents)
        build(path, args.incidents, args.updates, args.resolved, active)
    built = time.perf_counter() - started
    env = {
        **os.environ,
        "COMMS_DATABASE_URL": str(path),
        "COMMS_NOW": iso(NOW),
        "XDG_CONFIG_HOME": str(folder),
        "HOME": str(folder),
    }
    env.pop("COMMS_CONFIG", None)
    if not args.no_bytecode:
        # As installed: compiled modules are cached (pip writes .pyc for a wheel).  The cache
        # goes to the temp folder, so nothing is written into the source tree.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    cmd = command()
    warm = subprocess.run(cmd, env=env, cwd=folder, capture_output=True, text=True)
    if warm.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({warm.returncode}): {warm.stderr.strip()}")
    samples, cpu = [], []
    for _ in range(args.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        begin = time.perf_counter()
        done = subprocess.run(
            cmd, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        samples.append(time.perf_counter() - begin)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode not in (0, 1):
            sys.exit(f"cadence check failed: {done.stderr.decode().strip()}")
    base = statistics.median(_time([sys.executable, "-c", "pass"], env) for _ in range(args.runs))
    median = statistics.median(samples)
    import sqlite3

    with sqlite3.connect(path) as db:
        counts = db.execute(
            "SELECT (SELECT COUNT(*) FROM incidents WHERE status <> 'resolved'), "
            "(SELECT COUNT(*) FROM incidents WHERE status = 'resolved'), "
            "(SELECT COUNT(*) FROM events)"
        ).fetchone()
    print(
        f"database: {counts[0]} open + {counts[1]} resolved incidents, {counts[2]} events, "
        f"{path.stat().st_size / 1e6:.0f} MB, built in {built:.1f} s"
    )
    print(
        f"check said: {warm.stdout.strip().splitlines()[-1]} (exit {warm.returncode}); "
        f"{len(warm.stdout.splitlines()) - 1} deadlines listed"
    )
    print(
        f"comms cadence check: median {median:.3f} s of {args.runs} runs "
        f"(min {min(samples):.3f}, max {max(samples):.3f}); python -c pass {base:.3f} s "
        f"(x {median / base:.1f}); load average {os.getloadavg()[0]:.2f}; "
        f"{os.cpu_count()} cores; budget {args.budget} s: "
        f"{'ok' if median <= args.budget else 'OVER'}"
    )
    # CPU time is what the process itself costs; wall time also counts other load on the box.
    print(
        f"CPU time (user+sys) of the check process: median {statistics.median(cpu):.3f} s; "
        f"bytecode cache {'off' if args.no_bytecode else 'on'}"
    )


def _time(cmd: list[str], env: dict[str, str]) -> float:
    begin = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - begin


if __name__ == "__main__":
    main()
