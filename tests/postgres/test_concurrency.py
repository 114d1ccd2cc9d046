"""Several comms processes on one PostgreSQL database at once: each delivery is posted
once, each incident gets its own INC-n, two watchers send each alert once, two migrations
apply each step once.  Counted where it happens: at the stub, the webhook, the database."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from comms.adapters.postgres_store import SCHEMA_VERSION, PostgresStore
from tests.delivery.delivery_support import SEND
from tests.postgres.conftest import StartStub, comms, start_comms
from tests.postgres.test_cli import open_and_approve

pytestmark = pytest.mark.slow


def test_two_senders_on_two_machines_post_each_of_20_tenants_once(
    database: str,
    start_stub: StartStub,
) -> None:
    stub = start_stub(tenants=20)
    tenants = [f"zq{n:03d}" for n in range(1, 21)]
    draft = open_and_approve(tenants)
    # Slow answers keep both senders busy on the same deliveries at the same time.
    stub.faults(rates={"slow": 1.0}, match=SEND, slow_seconds=0.2)
    senders = [start_comms("send", str(draft), "--format", "json") for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in senders]
    for process, (out, err) in zip(senders, outputs, strict=True):
        assert process.returncode == 0, err
        assert json.loads(out)["sent"] is True
    statuses = Counter(r["status"] for out, _ in outputs for r in json.loads(out)["deliveries"])
    assert statuses == {"delivered": 20, "already-delivered": 20}
    assert stub.per_tenant() == dict.fromkeys(tenants, 1)
    assert stub.sends()["duplicates"] == 0
    with PostgresStore(database) as store:
        assert {d.state for d in store.deliveries(draft_id=draft)} == {"delivered"}
        assert [e.type for e in store.events("INC-1")].count("update.sent") == 1


OPENER = textwrap.dedent(
    """
    import sys
    from comms.cli import cli
    name, rounds = sys.argv[1], int(sys.argv[2])
    for i in range(rounds):
        try:
            cli.main(["incident", "open", "--tenant", "acme", "--severity", "S3",
                      "--title", f"{name} {i}"], prog_name="comms", standalone_mode=False)
        except Exception as exc:
            sys.exit(f"{name} {i}: {type(exc).__name__}: {exc}")
    """
)


def test_incidents_opened_at_once_by_four_processes_get_distinct_refs(database: str) -> None:
    comms("tenants", "add", "acme", "--name", "Acme Corp")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, f"w{n}", "10"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    with PostgresStore(database) as store:
        incidents = store.list_incidents()
        assert sorted(i.ref for i in incidents) == sorted(f"INC-{n}" for n in range(1, 41))
        assert len({i.title for i in incidents}) == 40
        assert sum(len(store.events(i.ref)) for i in incidents) == 80


class SlowWebhook:
    """A webhook that takes ``delay`` seconds to answer and records each payload."""

    def __init__(self, delay: float) -> None:
        self.payloads: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.payloads.append(json.loads(body))
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """No access log on stderr."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def webhook() -> Iterator[SlowWebhook]:
    hook = SlowWebhook(delay=0.5)
    yield hook
    hook.close()


def test_two_watchers_at_once_send_each_alert_once(database: str, webhook: SlowWebhook) -> None:
    comms("tenants", "add", "acme", "--name", "Acme Corp")
    comms("tenants", "add", "beta", "--name", "Beta Ltd")
    for tenant in ("acme", "beta"):
        comms("incident", "open", "--tenant", tenant, "--severity", "S1", "--title", "Down")
    watch = ["cadence", "watch", "--once", "--at", "+3h", "--sink", f"webhook:{webhook.url}"]
    watchers = [start_comms(*watch) for _ in range(2)]
    for watcher in watchers:
        _, err = watcher.communicate(timeout=120)
        assert watcher.returncode == 0, err
    sent = Counter((p["ref"], p["clock"], p["action"], p["dedup_key"]) for p in webhook.payloads)
    assert sent, "the watchers sent nothing: the test proves nothing"
    assert {ref for ref, *_ in sent} == {"INC-1", "INC-2"}
    assert max(sent.values()) == 1, f"sent twice: {[k for k, n in sent.items() if n > 1]}"
    # A third tick at the same time sends nothing more.
    comms(*watch)
    assert len(webhook.payloads) == sum(sent.values())


def test_two_migrations_at_once_apply_each_step_once(empty_database: str) -> None:
    migrations = [start_comms("db", "migrate", "--format", "json") for _ in range(2)]
    results = []
    for process in migrations:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        results.append(json.loads(out))
    assert sorted(r["migrated_from"] for r in results) == [0, SCHEMA_VERSION]
    assert {(r["version"], r["current"]) for r in results} == {(SCHEMA_VERSION, True)}
    with PostgresStore(empty_database) as store:
        assert store.schema_version() == (SCHEMA_VERSION, SCHEMA_VERSION)
