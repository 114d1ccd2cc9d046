"""Fault-injection run: many deliveries through random 429 / 500 / slow / drop / after-commit
faults (and one kill -9 mid-send), counted at the server: duplicates and lost must both be 0.

Usage: python benchmarks/faults.py [--tenants 50] [--drafts 4] [--rate 0.3] [--seed 1]
       [--max-attempts 3] [--no-kill] [--keep-keys] [--keep DIR]

Starts `comms switchboard serve` itself (a real process on a free 127.0.0.1 port) with random
faults on every POST, split evenly between the kinds; a ``slow`` answer takes 1.5 s while comms
gives up after 1 s.  Opens ``--drafts`` S1 incidents, each for all ``--tenants`` tenants, and
sends one approved update per incident with the real `comms send` (a separate process); a
send that does not complete is followed by `comms send --resume` until nothing is left. The
second send is killed with SIGKILL while its requests are in flight; once the server has
finished what the killed sender started, it forgets every idempotency key (as a real server
does after its retention time; ``--keep-keys`` skips this), then the send is resumed.  Prints:

    sends attempted          deliveries comms set out to make (tenants x drafts)
    faults injected          by kind, from the server's counters
    POST requests received   every create/send attempt that reached the server, retries included
    posts received           sends the server recorded (what customers got)
    duplicates               sends beyond one per (tenant, incident): must be 0
    lost                     planned deliveries with no send at the server: must be 0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout import TOKEN, comms, start_stub, tenant

KINDS = ("429", "500", "slow", "drop", "after_commit")


def in_flight(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=5)
    try:
        return int(
            conn.execute("SELECT count(*) FROM deliveries WHERE state = 'in-flight'").fetchone()[0]
        )
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--drafts", type=int, default=4)
    parser.add_argument(
        "--rate", type=float, default=0.3, help="probability that a POST meets a fault"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the server's fault dice")
    parser.add_argument("--max-attempts", type=int, default=3, help="comms' attempts per request")
    parser.add_argument("--no-kill", action="store_true", help="do not kill -9 the second send")
    parser.add_argument(
        "--keep-keys",
        action="store_true",
        help="the server keeps its idempotency keys across the kill (default: it forgets them)",
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="comms-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "comms.db"
    env = {
        **os.environ,
        "COMMS_DATABASE_URL": str(db),
        "COMMS_AUTHOR": "gdcmoc",
        "COMMS_SWITCHBOARD_TOKEN": TOKEN,
        "HOME": str(work),
    }
    for name in ("COMMS_CONFIG", "COMMS_NOW", "COMMS_REVIEWER", "COMMS_SWITCHBOARD_URL"):
        env.pop(name, None)
    seed = work / "seed.json"
    seed.write_text(json.dumps({"tenants": [tenant(i) for i in range(1, args.tenants + 1)]}))
    ids = [tenant(i)["id"] for i in range(1, args.tenants + 1)]
    server, url = start_stub(work, env, seed, 60000)
    rounds = resumes = kills = expired = 0
    try:
        (work / "comms.toml").write_text(
            f'[switchboard]\nbase_url = "{url}"\ntimeout_seconds = 1.0\n'
            f"max_attempts = {args.max_attempts}\n\n"
            "[send]\nconcurrency = 8\n"
        )
        comms(["tenants", "sync"], env, work)
        for n in range(1, args.drafts + 1):
            comms(
                [
                    "incident",
                    "open",
                    "--severity",
                    "S1",
                    "--title",
                    f"Merge requests unavailable {n}",
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
                    f"INC-{n}",
                    "--set",
                    f"impact=Users cannot open merge requests (update {n})",
                ],
                env,
                work,
            )
            comms(["review", "approve", str(n)], {**env, "COMMS_REVIEWER": "imoc"}, work)

        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as admin:
            share = args.rate / len(KINDS)
            admin.post(
                "/_admin/faults",
                json={
                    "rates": dict.fromkeys(KINDS, share),
                    "match": "POST *",
                    "slow_seconds": 1.5,
                    "retry_after": 1,
                    "seed": args.seed,
                },
            ).raise_for_status()
            admin.delete("/_admin/stats").raise_for_status()
            started = time.monotonic()
            for n in range(1, args.drafts + 1):
                if n == 2 and not args.no_kill:
                    sender = subprocess.Popen(
                        [sys.executable, "-m", "comms", "send", str(n)],
                        env=env,
                        cwd=work,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    deadline = time.monotonic() + 30
                    while (
                        in_flight(db) < 4 and time.monotonic() < deadline and sender.poll() is None
                    ):
                        time.sleep(0.02)
                    time.sleep(0.3)
                    if sender.poll() is None:
                        os.kill(sender.pid, signal.SIGKILL)
                        kills += 1
                    sender.wait()
                    if kills and not args.keep_keys:
                        # Slow answers still sleeping at the server land first; then the keys
                        # of everything done so far are forgotten before the resume.
                        time.sleep(2)
                        forgot = admin.post("/_admin/idempotency/expire")
                        expired += int(forgot.raise_for_status().json()["expired"])
                    done = sender.returncode == 0
                    rounds += 1
                else:
                    done = comms(["send", str(n)], env, work, check=False).returncode == 0
                    rounds += 1
                tries = 0
                while not done:
                    tries += 1
                    if tries > 20:
                        raise SystemExit(f"draft {n} still not sent after 20 resumes")
                    done = comms(["send", "--resume"], env, work, check=False).returncode == 0
                    resumes += 1
            elapsed = time.monotonic() - started
            # Slow answers still sleeping at the server land after the client gave up: let them.
            time.sleep(2)
            stats = admin.get("/_admin/stats").json()
            counts = admin.get("/_admin/sends").json()
    finally:
        server.terminate()
        server.wait(10)

    per: Counter[tuple[str, str]] = Counter()
    for row in counts["sends"]:
        per[(row["tenant_id"], row["incident_reference"])] += row["count"]
    planned = [(t, f"INC-{n}") for n in range(1, args.drafts + 1) for t in ids]
    lost = sum(1 for p in planned if per[p] == 0)
    beyond = sum(c - 1 for c in per.values() if c > 1)
    conn = sqlite3.connect(db)
    states = Counter(s for (s,) in conn.execute("SELECT state FROM deliveries"))
    attempts = conn.execute("SELECT coalesce(sum(attempts), 0) FROM deliveries").fetchone()[0]
    sent_drafts = conn.execute("SELECT count(*) FROM drafts WHERE state = 'sent'").fetchone()[0]
    conn.close()
    faults = stats["faults"]
    print(
        f"sends attempted             {len(planned)} "
        f"({args.drafts} updates x {args.tenants} tenants)"
    )
    print(
        f"faults injected             {sum(faults.values())}: "
        + ", ".join(f"{k} {faults.get(k, 0)}" for k in KINDS)
    )
    print(f"kill -9 of a sender         {kills}")
    print(f"idempotency keys forgotten  {expired} (after the kill, before the resume)")
    print(f"comms send runs             {rounds} send + {resumes} --resume")
    print(f"delivery claims by comms    {attempts}")
    print(f"POST requests received      {stats['requests']} (retries included)")
    print(f"posts received              {counts['total']} (sends the server recorded)")
    print(f"duplicates                  {beyond} (server's own count: {counts['duplicates']})")
    print(f"lost                        {lost}")
    print(f"deliveries in the store     {dict(states)}; drafts sent {sent_drafts} of {args.drafts}")
    print(f"elapsed                     {elapsed:.1f} s")
    ok = (
        beyond == 0
        and counts["duplicates"] == 0
        and lost == 0
        and counts["total"] == len(planned)
        and states.get("delivered") == len(planned)
    )
    print("PASS" if ok else "FAIL")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
