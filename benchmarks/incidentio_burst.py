"""incident.io webhook burst: 1,000 signed deliveries for 200 incidents, shuffled, 10 % repeated,
applied to a SQLite store file, in the core and over HTTP through a real ``comms serve``.

Usage: python benchmarks/incidentio_burst.py [--incidents 200] [--deliveries 1000]
       [--replays 0.1] [--seed 2291] [--senders 8] [--only core|http] [--keep DIR]

Builds the burst on the incident.io fake of the tests (``tests/incidentio/burst.py``: each
incident declared, then severity, status, name and tenant changes, every event signed as
incident.io's sender signs it), then times handling every delivery in the shuffled order:

    core   ``comms.incidentio.webhooks.handle_webhook`` in a loop (verification, replay and ordering
           checks, import or sync, the store's transactions, the webhook memory)
    http   the same deliveries POSTed to ``/hooks/incidentio`` of a ``comms serve`` process
           on a store of its own, from ``--senders`` concurrent connections, as incident.io's
           sender retries and overlaps them

and prints for each: deliveries, incidents, replays; how many answers of each status (200
applied, 204 acknowledged); the wall time (target: <= 10 s) and per delivery; and PASS when
every incident holds its last event's title, severity, status and tenants.  The signatures
are made when the burst is built, so the run must finish within the 5-minute tolerance.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comms.bootstrap import open_store, webhook_memory  # noqa: E402
from comms.identity import hash_token  # noqa: E402
from comms.incidentio.webhooks import handle_webhook  # noqa: E402
from comms.models import Role, Tenant  # noqa: E402
from comms.ports import Store  # noqa: E402
from tests.incidentio.burst import TENANTS, Burst, make_burst  # noqa: E402
from tests.incidentio.conftest import SECRET, TOKEN  # noqa: E402
from tests.incidentio.fake_incidentio import FakeIncidentio, Signer  # noqa: E402

TARGET_SECONDS = 10.0


def _store(path: Path) -> Store:
    store = open_store(str(path))
    for name in TENANTS:
        store.put_tenant(Tenant(id=name, name=f"Tenant {name[-3:]}"))
    return store


def _report(name: str, burst: Burst, statuses: Sequence[int], elapsed: float, store: Store) -> bool:
    held = {i.ref: (i.title, i.severity, i.status, i.tenants) for i in store.list_incidents()}
    wrong = sorted(ref for ref, state in burst.expected.items() if held.get(ref) != state)
    counts = Counter(statuses)
    print(f"[{name}]")
    print(f"deliveries      {len(burst.deliveries)}")
    print(f"incidents       {len(burst.expected)}")
    print(f"replays         {burst.replays}")
    print("answers         " + ", ".join(f"{n}× {s}" for s, n in sorted(counts.items())))
    print(f"elapsed         {elapsed:.2f} s (target <= {TARGET_SECONDS:.0f} s)")
    print(f"per delivery    {elapsed / len(burst.deliveries) * 1000:.2f} ms")
    print(
        "final state     "
        + ("PASS: every incident holds its last event" if not wrong else f"FAIL: {wrong[:5]}")
    )
    ok = not wrong and elapsed <= TARGET_SECONDS and set(counts) <= {200, 204}
    print("PASS" if ok else "FAIL")
    print()
    return ok


def run_core(burst: Burst, folder: Path) -> bool:
    """Every delivery through ``handle_webhook``, one after the other."""
    store = _store(folder / "core.db")
    memory = webhook_memory(store)  # as comms serve uses it
    now = datetime.now(UTC)
    try:
        started = time.perf_counter()
        statuses = [
            handle_webhook(headers, body, secret=SECRET, store=store, now=now, seen=memory).status
            for headers, body in burst.deliveries
        ]
        elapsed = time.perf_counter() - started
        return _report("core: handle_webhook", burst, statuses, elapsed, store)
    finally:
        store.close()


def run_http(burst: Burst, folder: Path, senders: int) -> bool:
    """Every delivery POSTed to a real ``comms serve`` from ``senders`` connections."""
    import httpx

    path = folder / "http.db"
    store = _store(path)
    store.add_user(
        name="admin", role=Role.ADMIN, token_hash=hash_token("x" * 40), now=datetime.now(UTC),
        actor="benchmark",
    )  # fmt: skip
    store.close()
    (folder / "comms.toml").write_text('[serve]\nhost = "127.0.0.1"\nport = 0\n')
    env = {
        **os.environ,
        "COMMS_DATABASE_URL": str(path),
        "COMMS_CONFIG": str(folder / "comms.toml"),
        "COMMS_INCIDENTIO_WEBHOOK_SECRET": SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "comms", "serve", "--log-level", "warning"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=folder,
    )
    try:
        url = _listening(process)
        limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
        with httpx.Client(base_url=url, timeout=30, limits=limits) as http:

            def post(delivery: tuple[dict[str, str], bytes]) -> int:
                headers, body = delivery
                return http.post("/hooks/incidentio", content=body, headers=headers).status_code

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=senders) as pool:
                statuses = list(pool.map(post, burst.deliveries))
            elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.communicate(timeout=20)
    store = open_store(str(path))
    try:
        return _report(f"http: POST /hooks/incidentio, {senders} senders", burst, statuses,
                       elapsed, store)  # fmt: skip
    finally:
        store.close()


def _listening(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "listening on " in line:
            return line.split("listening on ", 1)[1].split()[0]
        if not line and process.poll() is not None:
            break
    raise SystemExit("comms serve did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--replays", type=float, default=0.1, help="share repeated, 0 to 1")
    parser.add_argument("--seed", type=int, default=2291)
    parser.add_argument("--senders", type=int, default=8, help="concurrent HTTP connections")
    parser.add_argument("--only", choices=["core", "http"], default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the stores in this folder")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="comms-incidentio-burst-"))
    folder.mkdir(parents=True, exist_ok=True)
    fake = FakeIncidentio(token=TOKEN)  # its data only: no server is started
    burst = make_burst(
        fake,
        Signer(SECRET),
        now=datetime.now(UTC).replace(microsecond=0),
        incidents=args.incidents,
        deliveries=args.deliveries,
        replay_share=args.replays,
        seed=args.seed,
    )
    results = []
    if args.only in (None, "core"):
        results.append(run_core(burst, folder))
    if args.only in (None, "http"):
        results.append(run_http(burst, folder, args.senders))
    print(f"stores in {folder}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
