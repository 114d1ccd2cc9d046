"""Fan-out benchmark: one update to 500 tenants through the Switchboard stub at 6,000 requests
a minute, through the real `comms send` as a separate process.

Usage: python benchmarks/fanout.py [--tenants 500] [--limit 6000] [--pace 6000] [--burst 50]
       [--concurrency 16] [--keep DIR]

Starts `comms switchboard serve` itself (a real process on a free 127.0.0.1 port, seeded with
``--tenants`` generated tenants, rate limit ``--limit``/min with the stub's default bucket of
one second's worth), configures comms to pace at ``--pace``/min with ``--burst``, syncs the
tenants, opens an S1 incident for all of them, drafts and approves one update, then times
`comms send 1` and prints, from the server's own counters:

    tenants served once     (must equal --tenants)
    duplicates              (must be 0)
    429s received           (must be 0; counted at the server)
    elapsed                 (the `comms send` process, start to exit)
    achieved request rate   requests / elapsed (PASS needs >= 90% of the limit), and over
                            the send phase (first to last API request the server handled)

A delivery is two requests (create the notification, send it), so 500 tenants are 1,000
requests: ten seconds at best at 6,000 a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

TOKEN = "fanout-benchmark-token"


def tenant(index: int) -> dict[str, Any]:
    tid = f"bench{index:04d}"
    return {
        "id": tid,
        "name": f"Benchmark Tenant {index:04d}",
        "url": f"https://{tid}.dedicated.example",
        "gitlab_version": "17.5.2",
        "reference_architecture": "3k",
        "primary_region": "us-east-1",
        "maintenance_window": "amer-1",
        "operational_emails": [f"ops@{tid}.example", f"oncall@{tid}.example"],
        "csm": {"name": "Casey", "email": f"csm+{tid}@gitlab.example"},
        "ase": None,
    }


def comms(
    args: list[str], env: dict[str, str], cwd: Path, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "comms", *args],
        env=env,
        cwd=cwd,
        text=True,
        capture_output=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise SystemExit(
            f"comms {' '.join(args[:3])} … exited {done.returncode}:\n"
            f"{done.stderr}{done.stdout[-2000:]}"
        )
    return done


def start_stub(
    work: Path, env: dict[str, str], seed: Path, limit: float
) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "comms",
            "switchboard",
            "serve",
            "--port",
            "0",
            "--db",
            str(work / "switchboard.db"),
            "--seed",
            str(seed),
            "--rate-limit",
            f"{limit:g}/min",
        ],
        env=env,
        cwd=work,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert server.stderr is not None
    line = server.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+", line)
    if not found:
        server.kill()
        raise SystemExit(f"the stub did not start: {line}{server.stderr.read()}")
    return server, found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument(
        "--limit", type=float, default=6000, help="the stub's limit, requests a minute"
    )
    parser.add_argument("--pace", type=float, default=6000, help="comms' pacing, requests a minute")
    parser.add_argument("--burst", type=float, default=50, help="comms' pacing burst")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="comms-fanout-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "COMMS_DATABASE_URL": str(work / "comms.db"),
        "COMMS_AUTHOR": "gdcmoc",
        "COMMS_SWITCHBOARD_TOKEN": TOKEN,
        "HOME": str(work),
    }
    for name in ("COMMS_CONFIG", "COMMS_NOW", "COMMS_REVIEWER", "COMMS_SWITCHBOARD_URL"):
        env.pop(name, None)
    seed = work / "seed.json"
    seed.write_text(json.dumps({"tenants": [tenant(i) for i in range(1, args.tenants + 1)]}))
    server, url = start_stub(work, env, seed, args.limit)
    try:
        (work / "comms.toml").write_text(
            f'[switchboard]\nbase_url = "{url}"\ntimeout_seconds = 10\n'
            f"rate_limit_per_minute = {args.pace:g}\nburst = {args.burst:g}\n\n"
            f"[send]\nconcurrency = {args.concurrency}\n"
        )
        ids = [tenant(i)["id"] for i in range(1, args.tenants + 1)]
        comms(["tenants", "sync"], env, work)
        comms(
            [
                "incident",
                "open",
                "--severity",
                "S1",
                "--title",
                "Merge requests unavailable",
                *[a for t in ids for a in ("--tenant", t)],
            ],
            env,
            work,
        )
        comms(
            [
                "draft",
                "investigation-start",
                "--incident",
                "INC-1",
                "--set",
                "impact=Users cannot open merge requests",
            ],
            env,
            work,
        )
        comms(["review", "approve", "1"], {**env, "COMMS_REVIEWER": "imoc"}, work)

        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as admin:
            admin.delete("/_admin/stats").raise_for_status()
            started, wall_start = time.monotonic(), datetime.now(UTC)
            sent = comms(["send", "1", "--format", "json"], env, work, check=False)
            elapsed, wall_end = time.monotonic() - started, datetime.now(UTC)
            stats = admin.get("/_admin/stats").json()
            counts = admin.get("/_admin/sends", params={"incident_reference": "INC-1"}).json()
            notes = []
            cursor = None
            while True:
                page = admin.get(
                    "/api/v1/notifications",
                    params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                ).json()
                notes += page["data"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
    finally:
        server.terminate()
        server.wait(10)

    per_tenant: dict[str, int] = {}
    for row in counts["sends"]:
        per_tenant[row["tenant_id"]] = per_tenant.get(row["tenant_id"], 0) + row["count"]
    served_once = sum(1 for t in ids if per_tenant.get(t) == 1)
    lost = sum(1 for t in ids if t not in per_tenant)
    receipts = json.loads(sent.stdout)["deliveries"] if sent.returncode == 0 else []
    # The send phase as the server saw it: first notification created to last one sent.
    first = min(datetime.fromisoformat(n["created_at"]) for n in notes)
    last = max(datetime.fromisoformat(n["sent_at"]) for n in notes if n["sent_at"])
    phase = (last - first).total_seconds()
    api_requests = stats["requests"]
    limit_per_s = args.limit / 60
    print(f"comms send exit code        {sent.returncode}")
    print(f"tenants                     {args.tenants}")
    print(f"tenants served once         {served_once}")
    print(
        f"duplicates                  {counts['duplicates']} (sends beyond one per tenant: "
        f"{sum(per_tenant.values()) - len(per_tenant)})"
    )
    print(f"lost                        {lost}")
    print(f"receipts (--format json)    {sum(1 for r in receipts if r['status'] == 'delivered')}")
    print(f"429s received               {stats['rate_limited']} (counted at the server)")
    print(f"API requests                {api_requests}")
    print(f"elapsed                     {elapsed:.2f} s (comms send process, start to exit)")
    print(f"send phase at the server    {phase:.2f} s (first create to last send)")
    print(
        f"before the first request    {(first - wall_start).total_seconds():.2f} s "
        "(process start, imports, the send gate, planning every delivery)"
    )
    print(
        f"after the last request      {(wall_end - last).total_seconds():.2f} s "
        "(last receipts, draft marked sent, report, exit)"
    )
    print(
        f"limit                       {args.limit:g}/min = {limit_per_s:.1f}/s; comms paced at "
        f"{args.pace:g}/min, burst {args.burst:g}, concurrency {args.concurrency}"
    )
    print(
        f"achieved rate, whole run    {api_requests / elapsed:.1f}/s = "
        f"{api_requests / elapsed / limit_per_s:.1%} of the limit"
    )
    print(
        f"achieved rate, send phase   {(api_requests - 1) / phase:.1f}/s = "
        f"{(api_requests - 1) / phase / limit_per_s:.1%} of the limit (the first "
        f"{args.burst:g} go out as a burst, which the server's bucket of {limit_per_s:g} allows)"
    )
    ok = (
        served_once == args.tenants
        and counts["duplicates"] == 0
        and lost == 0
        and stats["rate_limited"] == 0
        and api_requests / elapsed >= 0.9 * limit_per_s  # the whole run, the cautious figure
    )
    print("PASS" if ok else "FAIL")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
