"""Review server under load: the queue page and the draft page of `comms serve` on a
PostgreSQL store holding 10,000 incidents and 100,000 revisions, under 20 concurrent
loopback clients.

Usage: python benchmarks/serve_load.py [--url postgresql://postgres@127.0.0.1:5432/test]
       [--incidents 10000] [--revisions 100000] [--clients 20] [--requests 2000]
       [--servers 2] [--think 0] [--keep] [--reseed] [--cpu N]

The URL (default: COMMS_TEST_POSTGRES_URL) names a database; the data lives in a schema of
its own (``bench_serve_<incidents>_<revisions>``), seeded through the store's own methods
once and kept for the next run when ``--keep`` is given (``--reseed`` starts it again).
After seeding, ``VACUUM ANALYZE`` leaves the tables as autovacuum would (a server run
with autovacuum off would otherwise keep every draft's dead pre-"sent" row in the state
index, and the queue's three state lookups would walk 30,000 of them).

Seeded: 50 tenants; ``--incidents`` incidents (1–3 tenants each, severities mixed, 1 in
100 still open, the others resolved with their RCAs done); ``--revisions`` revisions over three drafts an incident (investigation
start, update, resolved); the drafts of closed incidents sent, each open incident's last
draft waiting in review.  An IMOC user signs in through the sign-in form (CSRF and all),
as a browser would.  The draft pages asked for are every waiting draft and 200 sent ones.

Load: ``--servers`` `comms serve` processes on the one database (requests alternate
between them: the server keeps no state of its own), ``--clients`` threads each with its
own session, together ``--requests`` requests, half queue pages and half draft pages of
drafts picked at random among the waiting ones and the sent ones.  Prints p50 / p95 / max
of each page and exits 1 when a target is missed: draft page p95 <= 100 ms, queue page
p95 <= 150 ms.  Bounded: it stops after ``--requests`` whatever happens.

Besides the latencies it prints the CPU time each party used per request, read from
the kernel's own counters (``/proc``) of the server processes and of their PostgreSQL
backends, and ``time.process_time`` of this load generator, and the load average at the
end: CPU time is far less disturbed by other work on the machine than the latencies.

``--cpu N`` measures instead of loading: one server, one client asking N queue pages and
then N draft pages one at a time, and the CPU per request of each page, in the server
and in its PostgreSQL backends.  Nothing waits for anything else there, so the figures
change little with other work on the machine: compare them before and after a change.

``--think 0`` (the default) is a stress test: every client asks again the moment it has
its answer, so the latency is mostly queueing behind the other 19 on this machine's two
cores (the 20 client threads included).  ``--think 1`` models 20 people each clicking
about once a second: the latency is then what one of them waits for a page.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

TARGETS = {"draft": 0.100, "queue": 0.150}
T0 = datetime(2025, 1, 1, tzinfo=UTC)
# The servers' PostgreSQL connections say so, to find their backends' CPU counters.
APP_NAME = "comms-serve-bench"


def schema_url(base: str, schema: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def comms(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "comms", *args], env=env, cwd=cwd, text=True, capture_output=True
    )
    if done.returncode != 0:
        raise SystemExit(f"comms {' '.join(args[:3])} … exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def seed(url: str, incidents: int, revisions: int) -> None:
    """Fill the schema through the store's methods (batched in transactions)."""
    from comms.bootstrap import open_store
    from comms.models import DraftState, MessageKind, Severity, Status, Tenant

    store = open_store(url)
    try:
        for n in range(1, 51):
            store.put_tenant(Tenant(id=f"tenant{n:02d}", name=f"Customer {n:02d}"))
        kinds = [MessageKind.INVESTIGATION_START, MessageKind.UPDATE, MessageKind.RESOLVED]
        per_incident = max(1, revisions // incidents)
        rng = random.Random(7)
        started = time.monotonic()
        for i in range(1, incidents + 1):
            at = T0 + timedelta(minutes=30 * i)
            open_one = i % 100 == 0
            with store.transaction():
                tenants = rng.sample([f"tenant{n:02d}" for n in range(1, 51)], rng.randint(1, 3))
                ref = store.create_incident(
                    title=f"Incident {i}: pipelines slow for some projects",
                    severity=[Severity.S1, Severity.S2, Severity.S3][i % 3],
                    tenants=tenants,
                    started_at=at,
                    now=at,
                    actor="gdcmoc",
                ).ref
                for r in range(per_incident):
                    kind = kinds[min(r * len(kinds) // per_incident, len(kinds) - 1)]
                    when = at + timedelta(minutes=r)
                    draft = store.add_revision(
                        incident_ref=ref,
                        kind=kind,
                        draft_id=None,
                        subject=f"Update {r} on incident {i}",
                        body=(
                            "Some users may see slow pipelines on GitLab.com projects. We are "
                            f"rerouting jobs (revision {r}). Next update within 60 minutes."
                        ),
                        variables={},
                        author="gdcmoc",
                        now=when,
                    )
                    last_of_kind = (
                        r == per_incident - 1
                        or kinds[min((r + 1) * len(kinds) // per_incident, len(kinds) - 1)] != kind
                    )
                    if last_of_kind:
                        waiting = open_one and r == per_incident - 1
                        state = DraftState.IN_REVIEW if waiting else DraftState.SENT
                        store.set_draft_state(
                            draft.id,
                            state,
                            now=when,
                            actor="gdcmoc",
                            event="review.submitted" if waiting else "draft.sent",
                            data={"revision": draft.revision.number},
                        )
            if not open_one:  # resolved three hours in, RCAs done: nothing owed any more
                incident = store.get_incident(ref)
                done = at + timedelta(hours=3)
                store.update_incident(
                    incident.replace(
                        status=Status.RESOLVED,
                        mitigated_at=at + timedelta(hours=2),
                        mitigated_by="gdcmoc",
                        resolved_at=done,
                        resolved_by="gdcmoc",
                        updated_at=done,
                    ),
                    event="incident.status",
                    actor="gdcmoc",
                    data={"status": "resolved"},
                )
                for column, days in (("rca_internal_at", 2), ("rca_external_at", 3)):
                    store.record_clock(
                        ref,
                        column=column,
                        at=at + timedelta(days=days),
                        event=f"incident.{column[:-3].replace('_', '-')}",
                        actor="gdcmoc",
                        data={},
                    )
            if i % 500 == 0:
                rate = i / (time.monotonic() - started)
                print(f"  seeded {i}/{incidents} incidents ({rate:.0f}/s)", file=sys.stderr)
    finally:
        store.close()


def vacuum(url: str, schema: str) -> None:
    """``VACUUM ANALYZE`` every table of the schema, as autovacuum would in time."""
    with psycopg.connect(url, autocommit=True) as db:
        tables = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            [schema],
        ).fetchall()
        for (table,) in tables:
            db.execute(f'VACUUM ANALYZE "{schema}"."{table}"')


def add_reviewer(url: str) -> str:
    """A new IMOC user for this run (through the store, as `comms users add` does); its token."""
    from comms.bootstrap import open_store
    from comms.identity import hash_token, new_token
    from comms.models import Role

    token = new_token()
    store = open_store(url)
    try:
        now = datetime.now(UTC)
        name = f"imoc-{int(time.time() * 1000)}"
        store.add_user(
            name=name, role=Role.IMOC, token_hash=hash_token(token), now=now, actor="bench"
        )
    finally:
        store.close()
    return token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "comms", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code < 500:
                return server, base
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"comms serve exited {server.returncode}")
        time.sleep(0.05)
    server.terminate()
    raise SystemExit("comms serve did not answer within 10 s")


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` and of its children now alive, from
    /proc; 0.0 for a process gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/task/{pid}/children") as kids:
            children = [int(k) for k in kids.read().split()]
    except (OSError, IndexError):
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in children)


def backend_cpu(admin_url: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving the servers (same machine only)."""
    with psycopg.connect(admin_url, autocommit=True) as db:
        pids = db.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]
        ).fetchall()
    return {pid: cpu_seconds(pid) for (pid,) in pids}


def sign_in(client: httpx.Client, token: str) -> None:
    """Sign in as a browser does: the form's CSRF field, then POST the token."""
    page = client.get("/sign-in")
    fields = dict(re.findall(r'name="([^"]+)"\s+value="([^"]*)"', page.text))
    fields["token"] = token
    done = client.post("/sign-in", data=fields)
    if done.status_code != 303:
        raise SystemExit(f"sign-in answered {done.status_code}: {done.text[:200]}")


def load(bases: list[str], token: str, drafts: list[int], args: Any) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"queue": [], "draft": []}
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(args.requests))

    def client_loop(number: int) -> None:
        rng = random.Random(number)
        with httpx.Client(base_url=bases[number % len(bases)], timeout=30) as client:
            sign_in(client, token)
            for n in counter:
                if args.think:  # a person reading the page before the next click
                    time.sleep(rng.expovariate(1 / args.think))
                page = "queue" if n % 2 == 0 else "draft"
                path = "/" if page == "queue" else f"/drafts/{rng.choice(drafts)}"
                started = time.perf_counter()
                response = client.get(path)
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code != 200:
                        errors.append(f"{path}: {response.status_code}")
                    times[page].append(elapsed)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        print(f"  {len(errors)} request(s) failed, first: {errors[0]}")
    return times


def cpu_per_page(
    base: str, token: str, drafts: list[int], pid: int, admin_url: str, count: int
) -> dict[str, tuple[float, float]]:
    """``count`` queue pages, then ``count`` draft pages, asked one at a time by one client
    of the server ``pid``: per page, the CPU seconds per request of the server and of its
    PostgreSQL backends."""
    rng = random.Random(1)
    found = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        sign_in(client, token)
        for page in ("queue", "draft"):
            paths = [
                "/" if page == "queue" else f"/drafts/{rng.choice(drafts)}" for _ in range(count)
            ]
            for path in paths[:10]:  # warm: what a server that has been up a while keeps
                client.get(path)
            server, backends = cpu_seconds(pid), backend_cpu(admin_url)
            for path in paths:
                response = client.get(path)
                if response.status_code != 200:
                    raise SystemExit(f"{path} answered {response.status_code}")
            used = sum(cpu - backends.get(b, 0.0) for b, cpu in backend_cpu(admin_url).items())
            found[page] = ((cpu_seconds(pid) - server) / count, used / count)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("COMMS_TEST_POSTGRES_URL"))
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--revisions", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a client waits between requests (exponential; default 0: each "
        "client asks again the moment it has its answer, a stress test of 20 clients)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the seeded schema")
    parser.add_argument("--reseed", action="store_true", help="drop a kept schema first")
    parser.add_argument(
        "--cpu",
        type=int,
        default=0,
        metavar="N",
        help="instead of the load: CPU per request of N queue and N draft pages, one at a time",
    )
    args = parser.parse_args()
    if not args.url:
        raise SystemExit("give --url postgresql://… or set COMMS_TEST_POSTGRES_URL")
    schema = f"bench_serve_{args.incidents}_{args.revisions}"
    url = schema_url(args.url, schema)
    work = Path(tempfile.mkdtemp(prefix="comms-serve-bench-"))
    env = {**os.environ, "HOME": str(work), "COMMS_DATABASE_URL": url}
    for name in ("COMMS_CONFIG", "COMMS_NOW", "COMMS_TOKEN", "COMMS_AUTHOR", "COMMS_REVIEWER"):
        env.pop(name, None)
    serve_env = {**env, "COMMS_DATABASE_URL": f"{url}&application_name={APP_NAME}"}
    with psycopg.connect(args.url, autocommit=True) as admin:
        if args.reseed:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        fresh = (
            admin.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [schema]
            ).fetchone()
            is None
        )
        if fresh:
            admin.execute(f'CREATE SCHEMA "{schema}"')
    servers: list[subprocess.Popen[bytes]] = []
    try:
        comms(["db", "migrate"], env, work)
        if fresh:
            print(f"seeding {args.incidents} incidents, {args.revisions} revisions …")
            seed(url, args.incidents, args.revisions)
            vacuum(args.url, schema)
        token = add_reviewer(url)
        with psycopg.connect(url, autocommit=True) as db:
            waiting = [r[0] for r in db.execute("SELECT id FROM drafts WHERE state <> 'sent'")]
            sent = db.execute(
                "SELECT id FROM drafts WHERE state = 'sent' ORDER BY random() LIMIT 200"
            ).fetchall()
            counts = db.execute(
                "SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM revisions)"
            ).fetchone()
        drafts = waiting + [r[0] for r in sent]
        print(f"store: {counts[0]} incidents, {counts[1]} revisions; {len(waiting)} waiting")
        bases = []
        if args.cpu:
            server, base = start_server(serve_env, work)
            servers.append(server)
            for page, (served, used) in cpu_per_page(
                base, token, drafts, server.pid, args.url, args.cpu
            ).items():
                print(
                    f"  {page:5} page  CPU per request: server {served * 1000:.2f} ms, "
                    f"its PostgreSQL backends {used * 1000:.2f} ms ({args.cpu} requests)"
                )
            return
        for _ in range(args.servers):
            server, base = start_server(serve_env, work)
            servers.append(server)
            bases.append(base)
        # Every server warmed alike (a client each, some 40 requests each): with one client
        # only the first was, and the second's start (templates, connections, the linter's
        # patterns) was counted in the load.
        warm = argparse.Namespace(clients=len(bases), requests=40 * len(bases), think=0.0)
        load(bases, token, drafts[:50], warm)
        before = ([cpu_seconds(s.pid) for s in servers], backend_cpu(args.url))
        started, own = time.monotonic(), time.process_time()
        times = load(bases, token, drafts, args)
        wall, own = time.monotonic() - started, time.process_time() - own
        after = ([cpu_seconds(s.pid) for s in servers], backend_cpu(args.url))
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
        if not args.keep:
            with psycopg.connect(args.url, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    total = sum(len(v) for v in times.values())
    print(
        f"{total} requests, {args.clients} clients, {args.servers} server(s), "
        f"think {args.think:g} s, {wall:.1f} s ({total / wall:.0f} requests/s)"
    )
    served = sum(after[0]) - sum(before[0])
    backends = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in after[1].items())
    print(
        f"  CPU per request: servers {served / total * 1000:.2f} ms, their PostgreSQL "
        f"backends {backends / total * 1000:.2f} ms, this load generator "
        f"{own / total * 1000:.2f} ms; load average {os.getloadavg()[0]:.2f}"
    )
    ok = True
    for page, target in TARGETS.items():
        seen = sorted(times[page])
        p95 = seen[int(0.95 * (len(seen) - 1))]
        hit = p95 <= target
        ok &= hit
        print(
            f"  {page:5} page  p50 {statistics.median(seen) * 1000:6.1f} ms  "
            f"p95 {p95 * 1000:6.1f} ms  max {seen[-1] * 1000:6.1f} ms  "
            f"(target p95 <= {target * 1000:.0f} ms: {'ok' if hit else 'MISSED'})"
        )
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
