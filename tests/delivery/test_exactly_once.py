"""Exactly once over real HTTP: injected faults, a kill -9 mid-send, concurrent senders.

Every test ends by counting at the server: one send per tenant, no duplicates, none lost.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from delivery_support import (
    CREATE,
    SEND,
    Stub,
    as_reviewer,
    comms_process,
    draft_state,
    events,
    fails,
    invoke,
    ok,
    prepare,
    send_json,
    store_rows,
    wait_for,
    write_config,
)

TENANTS = ["acme", "globex"]
KINDS = ["429", "500", "503", "slow", "drop", "reset", "after_commit", "after_commit_500"]


def approved_draft(tenants: list[str] = TENANTS) -> int:
    draft = prepare(tenants)
    ok(["review", "approve", str(draft)], env=as_reviewer())
    return draft


def assert_exactly_once(
    stub: Stub, store_db: Path, draft: int, tenants: list[str] = TENANTS
) -> None:
    assert stub.per_tenant() == dict.fromkeys(tenants, 1)
    assert stub.sends()["duplicates"] == 0
    assert draft_state(store_db, draft) == "sent"
    states = store_rows(
        store_db, "SELECT tenant, state FROM deliveries WHERE draft_id = ?", (draft,)
    )
    assert sorted(states) == [(t, "delivered") for t in sorted(tenants)]
    assert len(events(store_db, "update.sent")) == 1


# Every kind on the send step; on the create step, the kinds whose outcome is uncertain.
CASES = [(SEND, kind) for kind in KINDS] + [
    (CREATE, kind) for kind in ("500", "slow", "reset", "after_commit")
]


@pytest.mark.parametrize(("where", "kind"), CASES)
def test_send_retries_through_a_fault_and_posts_once(
    stub: Stub, store_db: Path, kind: str, where: str
) -> None:
    draft = approved_draft()
    # Retry-After: 1 only where the test checks it is honoured; 0 keeps the others fast.
    honour = kind in ("429", "503") and where == SEND
    stub.faults(
        queue=[{"kind": kind, "match": where}], slow_seconds=0.6, retry_after=1 if honour else 0
    )
    started = time.monotonic()
    result = send_json([str(draft)])
    elapsed = time.monotonic() - started
    assert stub.stats()["faults"] == {kind: 1}
    assert {r["tenant"]: r["status"] for r in result["deliveries"]} == {
        "acme": "delivered",
        "globex": "delivered",
    }
    assert result["sent"] is True
    assert_exactly_once(stub, store_db, draft)
    if honour:
        assert elapsed >= 1.0  # Retry-After: 1 was honoured, not just the backoff


@pytest.mark.parametrize("kind", ["429", "500", "slow", "drop", "after_commit"])
def test_a_send_that_gives_up_is_finished_by_resume(
    stub: Stub, store_db: Path, tmp_path: Path, kind: str
) -> None:
    # One attempt only: the fault surfaces to the user, the delivery stays pending.
    write_config(tmp_path / "comms.toml", switchboard={"timeout_seconds": 0.4, "max_attempts": 1})
    draft = approved_draft()
    stub.faults(queue=[{"kind": kind, "match": SEND}], slow_seconds=0.6, retry_after=0)
    fails(["send", str(draft)], 3, "1 delivery(ies) did not complete", "comms send --resume")
    assert stub.stats()["faults"] == {kind: 1}
    assert draft_state(store_db, draft) == "approved"
    pending = store_rows(
        store_db,
        "SELECT state FROM deliveries WHERE draft_id = ? AND state != 'delivered'",
        (draft,),
    )
    assert pending == [("pending",)]
    landed = kind in ("slow", "after_commit", "after_commit_500")
    if kind == "slow":  # the server finishes the work after the client gave up
        wait_for(lambda: stub.stats()["sends"] == 2, what="the slow send to land")
    assert sum(stub.per_tenant().values()) == (2 if landed else 1)

    out = ok(["send", "--resume", "--format", "json"]).stdout
    statuses = sorted(r["status"] for r in json.loads(out)["deliveries"])
    assert statuses == ["delivered"]  # only the unfinished one was retried
    assert_exactly_once(stub, store_db, draft)
    assert ok(["send", "--resume"]).stdout.strip() == "nothing to resume"


def test_repeating_the_same_send_finishes_it_too(
    stub: Stub, store_db: Path, tmp_path: Path
) -> None:
    write_config(tmp_path / "comms.toml", switchboard={"timeout_seconds": 0.4, "max_attempts": 1})
    draft = approved_draft()
    stub.faults(queue=[{"kind": "after_commit", "match": SEND, "times": 2}])
    fails(["send", str(draft)], 3, "2 delivery(ies) did not complete")
    assert stub.per_tenant() == {"acme": 1, "globex": 1}  # both landed; comms does not know yet
    result = send_json([str(draft)])
    assert sorted(r["status"] for r in result["deliveries"]) == ["delivered", "delivered"]
    assert_exactly_once(stub, store_db, draft)
    again = send_json([str(draft)])
    assert {r["status"] for r in again["deliveries"]} == {"already-delivered"}
    assert_exactly_once(stub, store_db, draft)


def test_every_fault_at_once_still_posts_once(stub: Stub, store_db: Path, tmp_path: Path) -> None:
    tenants = ["acme", "globex", "initech", "umbrella"]
    draft = prepare(tenants, severity="S3")
    stub.faults(
        rates={"429": 0.1, "500": 0.1, "reset": 0.1, "after_commit": 0.1},
        match="POST *",
        retry_after=0,
        seed=7,
    )
    for _ in range(6):
        if invoke(["send", str(draft)]).exit_code == 0:
            break
    assert sum(stub.stats()["faults"].values()) >= 3
    assert_exactly_once(stub, store_db, draft, tenants)


def _in_flight(store_db: Path) -> list[tuple[str, str]]:
    return store_rows(
        store_db, "SELECT tenant, lease_owner FROM deliveries WHERE state = 'in-flight'"
    )


def test_kill_9_mid_send_then_resume_posts_once(stub: Stub, store_db: Path, tmp_path: Path) -> None:
    # The client waits longer than the server sleeps: the kill, not a timeout, interrupts it.
    write_config(tmp_path / "comms.toml", switchboard={"timeout_seconds": 10, "max_attempts": 6})
    draft = approved_draft()
    stub.faults(rates={"slow": 1.0}, match=SEND, slow_seconds=1.5)
    sender = comms_process(["send", str(draft)], cwd=tmp_path)
    try:
        wait_for(
            lambda: stub.stats()["faults"].get("slow", 0) >= 2,
            what="both sends to reach the server",
        )
        owners = {owner for _, owner in _in_flight(store_db)}
        assert len(owners) == 1
        assert f":{sender.pid}:" in owners.pop()
        sender.send_signal(signal.SIGKILL)
    finally:
        sender.communicate(timeout=10)
    assert sender.returncode == -signal.SIGKILL
    assert draft_state(store_db, draft) == "approved"
    assert {t for t, _ in _in_flight(store_db)} == set(TENANTS)

    stub.faults()  # the resumed attempt meets a healthy server (whose slow sends may still run)
    out = ok(["send", "--resume", "--format", "json"]).stdout
    assert {r["status"] for r in json.loads(out)["deliveries"]} == {"delivered"}
    assert_exactly_once(stub, store_db, draft)
    assert _in_flight(store_db) == []


def test_kill_9_before_any_request_then_resume(stub: Stub, store_db: Path, tmp_path: Path) -> None:
    # The server refuses to answer until the sender is dead: only intents were stored.
    write_config(tmp_path / "comms.toml", switchboard={"timeout_seconds": 10, "max_attempts": 6})
    draft = approved_draft()
    stub.faults(rates={"slow": 1.0}, match=CREATE, slow_seconds=1.0)
    sender = comms_process(["send", str(draft)], cwd=tmp_path)
    try:
        wait_for(lambda: len(_in_flight(store_db)) == 2, what="two deliveries in flight")
        os.kill(sender.pid, signal.SIGKILL)
    finally:
        sender.communicate(timeout=10)
    stub.faults()
    ok(["send", "--resume"])
    assert_exactly_once(stub, store_db, draft)


def test_two_senders_at_once_post_once(stub: Stub, store_db: Path, tmp_path: Path) -> None:
    write_config(tmp_path / "comms.toml", switchboard={"timeout_seconds": 10, "max_attempts": 6})
    tenants = ["acme", "globex", "initech"]
    draft = prepare(tenants)
    ok(["review", "approve", str(draft)], env=as_reviewer())
    stub.faults(rates={"slow": 1.0}, match=SEND, slow_seconds=0.5)
    senders = [
        comms_process(["send", str(draft), "--format", "json"], cwd=tmp_path) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=30) for p in senders]
    for process, (stdout, stderr) in zip(senders, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert json.loads(stdout)["sent"] is True
    statuses = [r["status"] for stdout, _ in outputs for r in json.loads(stdout)["deliveries"]]
    assert sorted(statuses).count("delivered") == 3
    assert sorted(statuses).count("already-delivered") == 3
    assert_exactly_once(stub, store_db, draft, tenants)


@pytest.mark.parametrize("again", [["send", "{draft}"], ["send", "--resume"]])
def test_a_send_refused_for_a_wrong_token_is_retried_once_the_token_is_fixed(
    stub: Stub, store_db: Path, again: list[str]
) -> None:
    draft = approved_draft()
    wrong = {"COMMS_SWITCHBOARD_TOKEN": "not-the-token"}
    out = fails(["send", str(draft)], 3, "401", "check the Switchboard token", env=wrong)
    assert "not-the-token" not in out
    assert stub.per_tenant() == {}
    # The token is fixed: the very same command (or --resume) now delivers, once each.
    args = [a.format(draft=draft) for a in again]
    result = send_json(args[1:])
    assert {r["tenant"]: r["status"] for r in result["deliveries"]} == {
        "acme": "delivered",
        "globex": "delivered",
    }
    assert_exactly_once(stub, store_db, draft)
    attempts = store_rows(store_db, "SELECT attempts FROM deliveries WHERE draft_id = ?", (draft,))
    assert attempts == [(2,), (2,)]
    assert len(events(store_db, "delivery.failed")) == 2
    assert len(events(store_db, "delivery.reopened")) == 2
    assert ok(["send", "--resume"]).stdout.strip() == "nothing to resume"


def test_kill_9_mid_send_then_keys_expire_then_resume_posts_once(
    stub: Stub, store_db: Path, tmp_path: Path
) -> None:
    # As above, but the server forgets its idempotency keys before the resume: only looking
    # for the delivery first keeps the resume from posting again.
    write_config(tmp_path / "comms.toml", switchboard={"timeout_seconds": 10, "max_attempts": 6})
    draft = approved_draft()
    stub.faults(rates={"slow": 1.0}, match=SEND, slow_seconds=1.0)
    sender = comms_process(["send", str(draft)], cwd=tmp_path)
    try:
        wait_for(
            lambda: stub.stats()["faults"].get("slow", 0) >= 2,
            what="both sends to reach the server",
        )
        sender.send_signal(signal.SIGKILL)
    finally:
        sender.communicate(timeout=10)
    assert {t for t, _ in _in_flight(store_db)} == set(TENANTS)
    stub.faults()
    wait_for(lambda: stub.stats()["sends"] == 2, what="the slow sends to land")
    assert stub.http.post("/_admin/idempotency/expire").json()["expired"] >= 4

    out = ok(["send", "--resume", "--format", "json"]).stdout
    assert {r["status"] for r in json.loads(out)["deliveries"]} == {"delivered"}
    assert_exactly_once(stub, store_db, draft)
    assert _in_flight(store_db) == []
