"""`comms cadence check` reads only the incidents that can be due: the horizon filter.

The filter may let through rows with nothing due, never hold back one with something due:
checked on random rows in Python, and on a random store through SqliteAlerts' SQL.
"""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from comms.adapters.sqlite_alerts import SqliteAlerts
from comms.cadence import DEFAULT_POLICY, OK, OPEN_STATUSES, Policy, evaluate, horizon
from comms.records import ClockRow
from comms.times import isoformat

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
minutes = st.integers(min_value=0, max_value=3 * 24 * 60).map(lambda m: timedelta(minutes=m))
POLICIES = [
    DEFAULT_POLICY,
    Policy(
        gaps={"S1": {"monitoring": timedelta(minutes=30)}, "S3": {"identified": timedelta(hours=8)}}
    ),
    Policy(
        reminder_lead=timedelta(minutes=40),
        settle=timedelta(0),
        engage_severities=("S1", "S2", "S3"),
    ),
]


@st.composite
def rows(draw):
    created = T0 + draw(minutes)
    started = created - draw(minutes)
    status = draw(st.sampled_from((*OPEN_STATUSES, "resolved")))
    changed = created + draw(minutes)
    last = draw(st.none() | minutes.map(lambda d: created + d))
    promised = None
    if last is not None:
        promised = draw(
            st.none() | st.integers(-120, 600).map(lambda m: last + timedelta(minutes=m))
        )
    tenants = draw(st.sampled_from((("acme",), ("acme", "beta"))))
    lagging: tuple[tuple[str, datetime | None, datetime | None], ...] = ()
    if len(tenants) == 2 and last is not None and draw(st.booleans()):
        lagging = (("beta", draw(st.none() | st.just(created)), None),)
    resolved = changed if status == "resolved" else None
    return ClockRow(
        ref=f"INC-{draw(st.integers(1, 9))}",
        title="t",
        severity=draw(st.sampled_from(["S1", "S2", "S3", "S4"])),
        status=status,
        tenants=tenants,
        pubsec=False,
        security=False,
        started_at=started,
        created_at=created,
        engaged_at=draw(st.none() | st.just(created)),
        status_changed_at=changed,
        mitigated_at=draw(st.none() | st.just(changed)),
        resolved_at=resolved,
        last_update_at=last,
        promised_update_at=promised,
        rca_internal_at=draw(st.none() | st.just(changed)),
        rca_external_at=None,
        director_engaged_at=draw(st.none() | st.just(created)),
        lagging=lagging,
    )


@settings(max_examples=300)
@given(rows(), minutes, st.sampled_from(range(len(POLICIES))))
def test_a_row_with_anything_due_is_always_admitted(row, offset, which):
    policy = POLICIES[which]
    now = T0 + offset
    if any(d.state != OK for d in evaluate([row], policy, now)):
        assert horizon(policy, now).admits(row)


def build(path, count, seed):
    """A store with ``count`` random incidents, written as the store writes them."""
    from comms.adapters.sqlite_store import SqliteStore

    SqliteStore(path).close()
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    rows, events = [], []
    for seq in range(1, count + 1):
        created = T0 + timedelta(minutes=rng.randint(0, 600))
        started = created - timedelta(minutes=rng.randint(0, 120))
        status = rng.choice((*OPEN_STATUSES, "resolved"))
        changed = created + timedelta(minutes=rng.randint(0, 300))
        last = rng.choice((None, created + timedelta(minutes=rng.randint(0, 400))))
        promise = None
        if last is not None:
            promise = rng.choice(
                (None, isoformat(last + timedelta(minutes=rng.randint(-30, 200))), "11:30 UTC")
            )
        tenants = rng.choice((["acme"], ["acme", "beta"]))
        rows.append(
            (
                f"INC-{seq}",
                seq,
                "t",
                rng.choice(("S1", "S2", "S3", "S4")),
                status,
                json.dumps(tenants),
                isoformat(started),
                isoformat(created),
                isoformat(created),
                rng.choice((None, isoformat(created))),
                isoformat(changed),
                rng.choice((None, isoformat(changed))),
                isoformat(changed) if status == "resolved" else None,
                None if last is None else isoformat(last),
                promise,
                rng.choice((None, isoformat(changed))),
            )
        )
        if rng.random() < 0.3:
            at = isoformat(created + timedelta(minutes=70))
            events.append((f"INC-{seq}", at, "imoc", "director.engaged", '{"by": "imoc"}'))
        if last is not None:
            events.append(
                (
                    f"INC-{seq}",
                    isoformat(last),
                    "g",
                    "update.sent",
                    json.dumps(
                        {"tenants": rng.choice((tenants, ["acme"])), "next_update_at": promise}
                    ),
                )
            )
    with db:
        db.executemany(
            "INSERT INTO incidents (ref, seq, title, severity, status, tenants, started_at, "
            "created_at, updated_at, engaged_at, status_changed_at, mitigated_at, resolved_at, "
            "last_update_at, promised_update_at, rca_internal_at) "
            "VALUES (" + ", ".join("?" * 16) + ")",
            rows,
        )
        db.executemany(
            "INSERT INTO events (incident_ref, at, actor, type, data) VALUES (?, ?, ?, ?, ?)",
            events,
        )
    db.close()


def test_the_sql_filter_loses_no_deadline_on_a_random_store(tmp_path):
    path = tmp_path / "random.db"
    build(path, 600, seed=7)
    with SqliteAlerts(path) as db:
        for policy in POLICIES:
            for hours in range(0, 30, 2):
                now = T0 + timedelta(hours=hours, minutes=7)
                args = {
                    "rca_severities": policy.rca_severities,
                    "resolved_since": now - policy.final_update_window,
                }
                every = db.clock_rows(**args) or []
                due = db.clock_rows(**args, horizon=horizon(policy, now)) or []
                assert len(due) < len(every)
                late = [d for d in evaluate(every, policy, now) if d.state != OK]
                assert [d for d in evaluate(due, policy, now) if d.state != OK] == late
                assert db.tracked(**args) == len(every)
