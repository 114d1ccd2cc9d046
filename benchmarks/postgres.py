"""PostgreSQL store benchmark: `comms draft` against PostgreSQL and SQLite as whole
processes, and two `comms send` processes started together on one 500-tenant draft.

Usage: python benchmarks/postgres.py [--url postgresql://postgres@127.0.0.1:5432/test]
       [--runs 15] [--tenants 500] [--concurrency 16]

The URL (default: COMMS_TEST_POSTGRES_URL) names a database; the benchmark works in
schemas of its own there (``bench_<hex>``, migrated with `comms db migrate`, dropped at
the end), and in a throw-away folder for SQLite and the Switchboard stub.

A PostgreSQL store is always in team mode: each schema gets an admin (the first
`comms users add`, which needs no token), who adds a GDCMOC and an IMOC; every
PostgreSQL command presents one of their tokens in COMMS_TOKEN (drafts and sends as
the GDCMOC, approves as the IMOC).  The SQLite side stays local and tokenless.

1. ``comms draft investigation-start`` (a new revision each run) on each backend,
   alternating, after one warm-up run each: the median of each and their ratio
   (target: PostgreSQL within 1.5x SQLite).
2. The stub (`comms switchboard serve`, no rate limit) seeded with ``--tenants`` tenants;
   one S1 for all of them, drafted and approved; then two `comms send 1` processes started
   together.  Counted at the server: every tenant posted exactly once, no duplicates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout import start_stub, tenant

TOKEN = "postgres-benchmark-token"
# What `comms draft` imports whichever the backend.
COMMON = "import comms.cli, comms.commands.core, comms.service, comms.identity, jinja2"


def comms(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "comms", *args], env=env, cwd=cwd, text=True, capture_output=True
    )
    if done.returncode != 0:
        raise SystemExit(f"comms {' '.join(args[:3])} … exited {done.returncode}:\n{done.stderr}")
    return done


def schema_url(base: str, schema: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def add_team(env: dict[str, str], work: Path) -> dict[str, dict[str, str]]:
    """An admin (the store's first user: no token needed), who adds a GDCMOC and an IMOC,
    in the store of ``env``: the GDCMOC's and the IMOC's environments (``env`` with their
    COMMS_TOKEN), by role."""

    def add(name: str, role: str, as_env: dict[str, str]) -> str:
        return comms(["users", "add", name, "--role", role], as_env, work).stdout.strip()

    admin = {**env, "COMMS_TOKEN": add("ada", "admin", env)}
    people = (("gus", "gdcmoc"), ("sam", "imoc"))
    return {role: {**env, "COMMS_TOKEN": add(name, role, admin)} for name, role in people}


def draft_latency(base_env: dict[str, str], pg_url: str, work: Path, runs: int) -> bool:
    """Part 1: the median `comms draft` on each backend, alternating runs."""
    script = Path(sys.executable).with_name("comms")
    envs = {  # drafted as the GDCMOC on PostgreSQL (team mode), tokenless on SQLite
        "sqlite": {**base_env, "COMMS_DATABASE_URL": str(work / "draft.db")},
        "postgresql": add_team({**base_env, "COMMS_DATABASE_URL": pg_url}, work)["gdcmoc"],
    }
    for env in envs.values():
        comms(["tenants", "add", "acme", "--name", "Acme Corp"], env, work)
        comms(
            ["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "Sign-in"],
            env,
            work,
        )
    samples: dict[str, list[float]] = {name: [] for name in [*envs, "import"]}
    for n in range(runs + 1):
        # What psycopg costs before any query: importing it on top of what `comms draft`
        # imports on either backend (a one-shot command never imports the pool).
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"{COMMON}; import psycopg"], check=True)
        driver = time.perf_counter()
        subprocess.run([sys.executable, "-c", COMMON], check=True)
        if n:
            samples["import"].append((2 * driver - start - time.perf_counter()) * 1000)
        for name, env in envs.items():
            args = ["draft", "investigation-start", "--incident", "INC-1"]
            args += ["--set", f"impact=Users cannot sign in (run {n})"]
            start = time.perf_counter()
            done = subprocess.run([str(script), *args], env=env, cwd=work, capture_output=True)
            elapsed = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"{name}: comms draft failed: {done.stderr.decode()}")
            if n:  # the first run of each warms the file cache
                samples[name].append(elapsed * 1000)
    sqlite, pg = (statistics.median(samples[name]) for name in ("sqlite", "postgresql"))
    print(f"comms draft, median of {runs} whole processes each (alternating):")
    print(f"  sqlite                      {sqlite:7.1f} ms")
    print(f"  postgresql                  {pg:7.1f} ms   ({pg / sqlite:.2f}x; target <= 1.5x)")
    imports = statistics.median(samples["import"])
    print(f"  of which importing psycopg  {imports:7.1f} ms   (before any query)")
    return pg <= 1.5 * sqlite


def two_senders(base_env: dict[str, str], pg_url: str, work: Path, args: Any) -> bool:
    """Part 2: two `comms send` processes at once on one draft to ``args.tenants`` tenants."""
    ids = [tenant(i)["id"] for i in range(1, args.tenants + 1)]
    seed = work / "seed.json"
    seed.write_text(json.dumps({"tenants": [tenant(i) for i in range(1, args.tenants + 1)]}))
    team = add_team({**base_env, "COMMS_DATABASE_URL": pg_url}, work)
    env = team["gdcmoc"]
    server, url = start_stub(work, env, seed, 600_000)  # far above what comms sends
    try:
        (work / "comms.toml").write_text(
            f'[switchboard]\nbase_url = "{url}"\ntimeout_seconds = 10\n'
            "rate_limit_per_minute = 600000\nburst = 50\n\n"
            f"[send]\nconcurrency = {args.concurrency}\n"
        )
        comms(["tenants", "sync"], env, work)
        opening = ["incident", "open", "--severity", "S1", "--title", "Merge requests unavailable"]
        comms([*opening, *[a for t in ids for a in ("--tenant", t)]], env, work)
        impact = "impact=Users cannot open merge requests"
        comms(["draft", "investigation-start", "--incident", "INC-1", "--set", impact], env, work)
        comms(["review", "approve", "1"], team["imoc"], work)
        started = time.monotonic()
        senders = [
            subprocess.Popen(
                [sys.executable, "-m", "comms", "send", "1", "--format", "json"],
                env=env,
                cwd=work,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        results = []
        for sender in senders:
            out, err = sender.communicate(timeout=600)
            results.append((sender.returncode, time.monotonic() - started, out, err))
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as admin:
            counts = admin.get("/_admin/sends", params={"incident_reference": "INC-1"}).json()
    finally:
        server.terminate()
        server.wait(10)
    per_tenant: dict[str, int] = {}
    for row in counts["sends"]:
        per_tenant[row["tenant_id"]] = per_tenant.get(row["tenant_id"], 0) + row["count"]
    once = sum(1 for t in ids if per_tenant.get(t) == 1)
    print(f"two comms send processes on one {args.tenants}-tenant draft (PostgreSQL):")
    for n, (code, elapsed, out, err) in enumerate(results, 1):
        statuses: dict[str, int] = {}
        if code == 0:
            for row in json.loads(out)["deliveries"]:
                statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        detail = ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())) or err.strip()
        print(f"  sender {n}                    exit {code}, {elapsed:5.2f} s: {detail}")
    print(f"  tenants posted exactly once {once} of {args.tenants} (counted at the stub)")
    print(f"  duplicates                  {counts['duplicates']}")
    lost = sum(1 for t in ids if t not in per_tenant)
    print(f"  lost                        {lost}")
    return once == args.tenants and counts["duplicates"] == 0 and all(r[0] == 0 for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("COMMS_TEST_POSTGRES_URL"))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if not args.url:
        raise SystemExit("give --url postgresql://… or set COMMS_TEST_POSTGRES_URL")
    work = Path(tempfile.mkdtemp(prefix="comms-pg-bench-"))
    base_env = {**os.environ, "COMMS_AUTHOR": "gdcmoc", "HOME": str(work)}
    base_env["COMMS_SWITCHBOARD_TOKEN"] = TOKEN
    for name in (
        "COMMS_CONFIG",
        "COMMS_NOW",
        "COMMS_REVIEWER",
        "COMMS_SWITCHBOARD_URL",
        "COMMS_TOKEN",
    ):
        base_env.pop(name, None)
    # As installed: byte code cached, so neither backend is timed compiling its modules.
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    schemas = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    with psycopg.connect(args.url, autocommit=True) as admin:
        for schema in schemas:
            admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        urls = [schema_url(args.url, schema) for schema in schemas]
        for url in urls:
            comms(["db", "migrate"], {**base_env, "COMMS_DATABASE_URL": url}, work)
        fast = draft_latency(base_env, urls[0], work, args.runs)
        print()
        (work / "send").mkdir()
        once = two_senders(base_env, urls[1], work / "send", args)
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            for schema in schemas:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print("PASS" if fast and once else "FAIL")
    sys.exit(0 if fast and once else 1)


if __name__ == "__main__":
    main()
