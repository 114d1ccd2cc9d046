"""A burst of signed incident.io webhook deliveries, for the test and the benchmark.

``make_burst`` declares ``incidents`` incidents on a :class:`FakeIncidentio` and changes them
until ``deliveries`` events exist in all (created, then severity, status and name changes,
each a newer ``updated_at``), signs every event as incident.io does, repeats a share of them
under the same ``webhook-id`` (the sender's retries), and shuffles the lot.  ``expected``
maps each reference to what comms should hold once every delivery was handled: incident.io's
last state of it, mapped.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime

from comms.models import Severity, Status
from tests.incidentio.fake_incidentio import FakeIncidentio, Signer

SEVERITY = {"Critical": Severity.S1, "Major": Severity.S2, "Minor": Severity.S3}
STATUS = {
    "Investigating": Status.INVESTIGATING,
    "Fixing": Status.MITIGATING,
    "Monitoring": Status.MONITORING,
    "Closed": Status.RESOLVED,
}
FORWARD = ["Investigating", "Fixing", "Monitoring", "Closed"]
TENANTS = [f"tenant-{n:03d}" for n in range(40)]


@dataclass
class Burst:
    deliveries: list[tuple[dict[str, str], bytes]]
    expected: dict[str, tuple[str, Severity, Status, list[str]]]
    replays: int


def make_burst(
    fake: FakeIncidentio,
    signer: Signer,
    *,
    now: datetime,
    incidents: int = 200,
    deliveries: int = 1000,
    replay_share: float = 0.1,
    seed: int = 2291,
) -> Burst:
    rng = random.Random(seed)
    originals = round(deliveries * (1 - replay_share))
    declared = [
        fake.declare(
            f"Incident {n}",
            severity=rng.choice(list(SEVERITY)),
            tenants=rng.sample(TENANTS, rng.randint(1, 3)),
            number=3000 + n,
        )
        for n in range(incidents)
    ]
    for _ in range(originals - incidents):
        incident = fake.incidents[rng.choice(declared)["id"]]
        change = rng.random()
        if change < 0.4:
            current = FORWARD.index(incident["incident_status"]["name"])
            # mostly forward; now and then reopened
            step = rng.choice([1, 1, 1, -2]) if current else 1
            fake.update(incident["id"], status=FORWARD[max(0, min(3, current + step))])
        elif change < 0.7:
            fake.update(incident["id"], severity=rng.choice(list(SEVERITY)))
        elif change < 0.9:
            fake.update(
                incident["id"], name=f"{incident['name'].split(' (')[0]} ({rng.randint(1, 999)})"
            )
        else:
            tenants = [
                v["value_option"]["value"] for v in incident["custom_field_entries"][0]["values"]
            ]
            fake.update(incident["id"], tenants=[*tenants, rng.choice(TENANTS)])
    signed = [(signer.headers(body, at=now), body) for _, body in fake.outbox]
    repeated = rng.sample(signed, deliveries - len(signed))
    batch = signed + repeated
    rng.shuffle(batch)
    expected = {}
    for incident in fake.incidents.values():
        tenants = [
            v["value_option"]["value"] for v in incident["custom_field_entries"][0]["values"]
        ]
        expected[incident["reference"]] = (
            incident["name"],
            SEVERITY[incident["severity"]["name"]],
            STATUS[incident["incident_status"]["name"]],
            list(dict.fromkeys(tenants)),
        )
    return Burst(batch, expected, len(repeated))


def body_reference(body: bytes) -> str:
    payload = json.loads(body)
    return str(payload[payload["event_type"]]["reference"])
