"""Fault campaign: many Zendesk sends through faults, then count posts on the server.

Each tenant gets one contact-request ticket and then replies; before a share of the sends a
random fault is queued on the write (429, 500, dropped connection, timeout after commit,
commit then drop, commit then 500), sometimes several in a row. A send that still fails is
sent again with the same key, as ``comms send --resume`` would. Afterwards the server's own
state is counted: every update must be there exactly once.

Run it for the figures (about 10 s for the default size)::

    .venv/bin/python -m tests.zendesk.campaign --tenants 10 --updates 10 --seed 7
"""

from __future__ import annotations

import argparse
import json
import os
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from comms.adapters.zendesk import ZendeskPublisher, connect
from comms.errors import PublishError
from comms.models import Contact, Incident, MessageKind, Receipt, Severity, Tenant
from tests.zendesk.server import FAULT_KINDS, ZendeskServer

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def run_campaign(
    server: ZendeskServer,
    publisher: ZendeskPublisher,
    *,
    tenants: int,
    updates: int,
    seed: int,
    fault_rate: float = 0.6,
) -> dict[str, Any]:
    """Send ``tenants`` x ``updates`` messages through random faults; return the figures."""
    rng = random.Random(seed)
    incident = Incident(
        ref="INC-7",
        title="Degraded performance",
        severity=Severity.S1,
        tenants=[f"t{n}" for n in range(tenants)],
        started_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    faults: Counter[str] = Counter()
    attempts = resumed = 0
    expected: dict[int, list[str]] = {}
    for n in range(tenants):
        tenant = Tenant(
            id=f"t{n}",
            name=f"Tenant {n}",
            contacts=[
                Contact(email=f"ops@t{n}.example"),
                Contact(email="csm@x.example", role="csm"),
            ],
        )
        previous: Receipt | None = None  # this tenant's latest receipt, as the ledger keeps it
        for u in range(updates):
            body = (
                f"Update {u} for tenant {n}: we are working on it. Next update by {u + 1}:00 UTC."
            )
            if rng.random() < fault_rate:
                kind = rng.choice(FAULT_KINDS)
                # Bursts outlast the publisher's attempts, so some sends fail and are resumed;
                # timeouts cost real time and stay single.
                times = 1 if kind == "timeout" else rng.choice((1, 1, 2, 6))
                faults[kind] += times
                method = "POST" if previous is None else "PUT"
                server.inject(kind, method=method, delay=0.4, times=times)
            while True:
                attempts += 1
                try:
                    receipt = publisher.publish(
                        tenant=tenant,
                        incident=incident,
                        kind=MessageKind.UPDATE if previous else MessageKind.INVESTIGATION_START,
                        subject="Degraded performance",
                        body=body,
                        idempotency_key=f"{incident.ref}/{tenant.id}/u{u}",
                        draft_id=u + 1,
                        revision=1,
                        previous=previous,
                    )
                    break
                except PublishError as exc:
                    if not exc.retryable:
                        raise
                    resumed += 1
            ticket_id = int(receipt.detail["ticket_id"])
            expected.setdefault(ticket_id, []).append(body)
            previous = receipt
    with server.state.lock:
        posted = {t: [c["body"] for c in server.state.comments[t]] for t in server.state.tickets}
        hit = Counter(r.fault for r in server.state.requests if r.fault is not None)
        unused = sum(f.times for f in server.state.faults)
    duplicates = sum(
        count - 1 for bodies in posted.values() for count in Counter(bodies).values() if count > 1
    )
    lost = sum(1 for t, bodies in expected.items() for b in bodies if b not in posted.get(t, []))
    return {
        "sends": tenants * updates,
        "attempts": attempts,
        "resumed_after_error": resumed,
        "faults_injected": sum(faults.values()),
        "faults_hit": sum(hit.values()),
        "faults_hit_by_kind": dict(sorted(hit.items())),
        "faults_left_unused": unused,
        "tickets_on_server": len(posted),
        "posts_on_server": sum(len(b) for b in posted.values()),
        "write_requests": len(server.requests_to("POST", r"/tickets\.json$"))
        + len(server.requests_to("PUT", r"/tickets/")),
        "duplicates": duplicates,
        "lost": lost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with ZendeskServer(token="campaign-token") as server:
        os.environ["ZENPY_FORCE_SCHEME"] = "http"
        os.environ["ZENPY_FORCE_NETLOC"] = server.netloc
        client = connect(
            subdomain="gitlab", email="comms-bot@example.com", token="campaign-token", timeout=0.2
        )
        publisher = ZendeskPublisher(client, rate_per_minute=0, sleep=lambda _: None)
        try:
            figures = run_campaign(
                server, publisher, tenants=args.tenants, updates=args.updates, seed=args.seed
            )
        finally:
            client.tickets.session.close()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
