"""``delivery.send`` and ``delivery.resume`` as library calls against the Switchboard stub
over real HTTP: the store is a SqliteStore file, publishers come from the composition root.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from delivery_support import AUTHOR, SEND, TOKEN, Stub, core_draft, event_data

from comms import delivery, review, service
from comms.adapters.sqlite_store import SqliteStore
from comms.bootstrap import Runtime
from comms.errors import EXIT_FINDINGS, EXIT_OPERATIONAL, UsageError
from comms.models import Delivery, DraftState, MessageKind
from comms.ports import Publisher
from comms.render import Renderer
from comms.settings import Settings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Publishers:
    """The factory ``send``/``resume`` get: the runtime's real Switchboard publishers, and a
    record of every set of channels asked for."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.asked: list[list[str]] = []

    def __call__(self, channels: Sequence[str]) -> dict[str, Publisher]:
        self.asked.append(list(channels))
        return self.runtime.publishers(channels)


def _runtime(stub: Stub, **switchboard: Any) -> Runtime:
    table = {"base_url": stub.url, "token": TOKEN, "timeout_seconds": 0.4, **switchboard}
    settings = Settings(
        database_url="memory://unused",
        author=AUTHOR,
        reviewer="sam",
        tables={"switchboard": table},
    )
    return Runtime(settings, environ={})


@pytest.fixture
def runtime(stub: Stub) -> Iterator[Runtime]:
    with _runtime(stub) as built:
        yield built


@pytest.fixture
def store(tmp_path: Path, runtime: Runtime) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "send.db") as opened:
        service.sync_tenants(opened, runtime.tenant_directory())
        yield opened


def send(store: Any, runtime: Runtime, draft_id: int, **options: Any) -> delivery.SendReport:
    settings: dict[str, Any] = {
        "publishers": Publishers(runtime),
        "tenants": (),
        "channels": ["switchboard"],
        "override_reason": None,
        "policy": review.ReviewPolicy(),
        "lint_config": None,
        "actor": AUTHOR,
        "clock": lambda: T0,
        "process": runtime.process(),
        "concurrency": 4,
    }
    return delivery.send(store, draft_id, **{**settings, **options})


def resume(store: Any, runtime: Runtime, **options: Any) -> delivery.SendReport:
    settings: dict[str, Any] = {
        "publishers": Publishers(runtime),
        "actor": AUTHOR,
        "clock": lambda: T0,
        "process": runtime.process(),
        "concurrency": 4,
    }
    return delivery.resume(store, **{**settings, **options})


def approve(store: Any, draft_id: int, **options: Any) -> None:
    review.decide(
        store,
        draft_id,
        decision="approved",
        role="imoc",
        reviewer="sam",
        note="",
        tenants=options.get("tenants", ()),
        channels=["switchboard"],
        now=T0,
    )


def statuses(report: delivery.SendReport) -> dict[str, str]:
    return {o.delivery.tenant: o.status for o in report.outcomes}


def test_send_delivers_once_and_a_repeat_builds_no_publisher(
    stub: Stub, store: Any, runtime: Runtime
) -> None:
    draft = core_draft(store, ["acme", "globex"], now=T0)
    approve(store, draft.id)
    publishers = Publishers(runtime)
    started: list[Sequence[Delivery]] = []
    done: list[delivery.Outcome] = []
    report = send(
        store,
        runtime,
        draft.id,
        publishers=publishers,
        on_start=started.append,
        on_done=done.append,
    )
    assert statuses(report) == {"acme": "delivered", "globex": "delivered"}
    assert report.completed
    assert report.unfinished == 0
    report.raise_for_unfinished()
    assert publishers.asked == [["switchboard"]]
    assert [len(s) for s in started] == [2]
    assert sorted(o.delivery.tenant for o in done) == ["acme", "globex"]
    assert stub.per_tenant() == {"acme": 1, "globex": 1}
    assert store.get_draft(draft.id).state is DraftState.SENT
    (sent,) = event_data(store, draft.incident_ref, "update.sent")
    assert sent["tenants"] == ["acme", "globex"]

    # The gate now says "already sent", but every delivery was planned: nothing to build.
    again = Publishers(runtime)
    repeat = send(store, runtime, draft.id, publishers=again)
    assert statuses(repeat) == {"acme": "already-delivered", "globex": "already-delivered"}
    assert repeat.completed
    assert again.asked == []
    assert stub.per_tenant() == {"acme": 1, "globex": 1}
    assert stub.sends()["duplicates"] == 0


def test_the_gate_refuses_before_anything_is_planned_or_built(
    stub: Stub, store: Any, runtime: Runtime
) -> None:
    draft = core_draft(store, ["acme"], now=T0)
    publishers = Publishers(runtime)
    with pytest.raises(delivery.GateError) as refused:
        send(store, runtime, draft.id, publishers=publishers)
    assert refused.value.exit_code == EXIT_FINDINGS
    assert str(refused.value) == (
        f"draft {draft.id} cannot be sent: needs approval by an incident manager "
        f"(comms review approve {draft.id}), or --skip-review --reason '…'"
    )
    assert store.deliveries(draft_id=draft.id) == []
    assert publishers.asked == []
    assert stub.per_tenant() == {}


def test_an_approval_for_acme_does_not_cover_globex_later(
    stub: Stub, store: Any, runtime: Runtime
) -> None:
    draft = core_draft(store, ["acme", "globex"], now=T0)
    approve(store, draft.id, tenants=["acme"])
    assert statuses(send(store, runtime, draft.id, tenants=["acme"])) == {"acme": "delivered"}
    with pytest.raises(delivery.GateError, match="needs approval"):
        send(store, runtime, draft.id, tenants=["acme", "globex"])
    assert stub.per_tenant() == {"acme": 1}


def test_an_override_is_recorded_and_a_blank_one_refused(
    stub: Stub, store: Any, runtime: Runtime
) -> None:
    draft = core_draft(store, ["acme"], now=T0)
    for blank in ("", "  "):
        with pytest.raises(UsageError, match="needs a reason"):
            send(store, runtime, draft.id, override_reason=blank)
    report = send(store, runtime, draft.id, override_reason="IMOC unreachable, cadence due")
    assert statuses(report) == {"acme": "delivered"}
    assert event_data(store, draft.incident_ref, "review.skipped") == [
        {"draft_id": draft.id, "revision": 1, "reason": "IMOC unreachable, cadence due"}
    ]
    assert stub.per_tenant() == {"acme": 1}


def test_an_s1_review_timeout_sends_and_is_recorded(
    stub: Stub, store: Any, runtime: Runtime
) -> None:
    draft = core_draft(store, ["acme"], now=T0)
    review.submit(store, draft.id, actor=AUTHOR, now=T0)
    policy = review.ReviewPolicy(s1_timeout_minutes=15)
    later = T0 + timedelta(minutes=16)
    report = send(store, runtime, draft.id, policy=policy, clock=lambda: later)
    assert statuses(report) == {"acme": "delivered"}
    assert event_data(store, draft.incident_ref, "review.timed-out") == [
        {"draft_id": draft.id, "revision": 1, "needs_review_afterwards": True}
    ]


def test_resume_finishes_what_a_failed_send_left(stub: Stub, store: Any) -> None:
    with _runtime(stub, max_attempts=1) as runtime:
        draft = core_draft(store, ["acme", "globex"], now=T0)
        approve(store, draft.id)
        stub.faults(queue=[{"kind": "after_commit", "match": SEND}], retry_after=0)
        report = send(store, runtime, draft.id)
        assert sorted(statuses(report).values()) == ["delivered", "retry-later"]
        assert report.unfinished == 1
        assert not report.completed
        with pytest.raises(delivery.UnfinishedSendError) as unfinished:
            report.raise_for_unfinished()
        assert unfinished.value.exit_code == EXIT_OPERATIONAL
        assert str(unfinished.value) == (
            "1 delivery(ies) did not complete; see above, then run: comms send --resume"
        )
        assert store.get_draft(draft.id).state is DraftState.APPROVED

        publishers = Publishers(runtime)
        finished = resume(store, runtime, publishers=publishers)
        assert list(statuses(finished).values()) == ["delivered"]  # only the unfinished one
        assert finished.completed
        assert publishers.asked == [["switchboard"]]
        assert stub.per_tenant() == {"acme": 1, "globex": 1}
        assert stub.sends()["duplicates"] == 0
        assert store.get_draft(draft.id).state is DraftState.SENT

        idle = Publishers(runtime)
        nothing = resume(store, runtime, publishers=idle)
        assert nothing.outcomes == []
        assert not nothing.completed
        assert idle.asked == []


def test_a_delivery_planned_for_an_older_revision_is_closed_not_sent(
    stub: Stub, store: Any
) -> None:
    with _runtime(stub, max_attempts=1) as runtime:
        draft = core_draft(store, ["acme"], now=T0, severity="S3")
        stub.faults(queue=[{"kind": "500", "match": SEND}], retry_after=0)
        assert statuses(send(store, runtime, draft.id)) == {"acme": "retry-later"}
        service.compose(
            store,
            Renderer(),
            ref=draft.incident_ref,
            kind=MessageKind.INVESTIGATION_START,
            values={"impact": "Merge request pages time out"},
            now=T0 + timedelta(minutes=5),
            author=AUTHOR,
            interval_minutes=60,
        )
        publishers = Publishers(runtime)
        report = resume(store, runtime, publishers=publishers)
        assert report.outcomes == []
        assert publishers.asked == []  # nothing left to send: nothing built
        (row,) = store.deliveries(draft_id=draft.id)
        assert (row.state, row.error) == ("failed", "superseded by revision 2; not sent")
        assert stub.per_tenant() == {}


def test_a_refused_delivery_is_retried_by_the_next_send_once_the_cause_is_fixed(
    stub: Stub, store: Any
) -> None:
    draft = core_draft(store, ["acme", "globex"], now=T0)
    approve(store, draft.id)
    with _runtime(stub, token="not-the-token") as wrong:
        refused = send(store, wrong, draft.id)
    assert statuses(refused) == {"acme": "failed", "globex": "failed"}
    assert all("401" in (o.error or "") for o in refused.outcomes)
    assert stub.per_tenant() == {}

    with _runtime(stub) as right:
        retried = send(store, right, draft.id)
    assert statuses(retried) == {"acme": "delivered", "globex": "delivered"}
    assert retried.completed
    assert stub.per_tenant() == {"acme": 1, "globex": 1}
    assert stub.sends()["duplicates"] == 0
    rows = store.deliveries(draft_id=draft.id)
    assert {(r.state, r.attempts) for r in rows} == {("delivered", 2)}
    assert all("401" in (r.error or "") for r in rows)  # the last error stays on record
    reopened = event_data(store, draft.incident_ref, "delivery.reopened")
    assert sorted(e["tenant"] for e in reopened) == ["acme", "globex"]
    assert all(e["attempts"] == 1 and "401" in e["last_error"] for e in reopened)


def test_resume_retries_a_refused_delivery_but_never_a_superseded_one(
    stub: Stub, store: Any
) -> None:
    first = core_draft(store, ["acme"], now=T0, severity="S3")
    with _runtime(stub, token="not-the-token") as wrong:
        assert statuses(send(store, wrong, first.id)) == {"acme": "failed"}
    # A second incident's draft fails too, then is revised: its old delivery stays closed.
    second = core_draft(store, ["globex"], now=T0, severity="S3")
    with _runtime(stub, token="not-the-token") as wrong:
        assert statuses(send(store, wrong, second.id)) == {"globex": "failed"}
    service.compose(
        store,
        Renderer(),
        ref=second.incident_ref,
        kind=MessageKind.INVESTIGATION_START,
        values={"impact": "Merge request pages time out"},
        now=T0 + timedelta(minutes=5),
        author=AUTHOR,
        interval_minutes=60,
    )
    with _runtime(stub) as right:
        report = resume(store, right)
    assert statuses(report) == {"acme": "delivered"}
    assert report.completed
    assert stub.per_tenant() == {"acme": 1}
    (old,) = store.deliveries(draft_id=second.id)
    assert (old.state, old.revision) == ("failed", 1)
    with _runtime(stub) as right:
        assert resume(store, right).outcomes == []


def test_update_sent_records_the_promise_in_the_text_not_the_variable(
    stub: Stub, store: Any, runtime: Runtime
) -> None:
    draft = core_draft(store, ["acme"], now=T0)
    promised = draft.revision.variables["next_update"]
    text = service.message_text(draft)
    later = (T0 + timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M UTC")
    edited = service.edit(
        store,
        draft.id,
        text.replace(
            text[text.index("Next update:") : text.index("\n", text.index("Next update:"))],
            f"Next update: by {later}, or sooner if the situation changes.",
        ),
        now=T0,
        author=AUTHOR,
    )
    assert edited is not None
    assert edited.revision.variables["next_update"] == promised  # the variable is stale
    approve(store, draft.id)
    send(store, runtime, draft.id).raise_for_unfinished()
    (sent,) = event_data(store, draft.incident_ref, "update.sent")
    assert sent["next_update_at"] == (T0 + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:00Z")
    assert sent["next_update_at"] != promised
