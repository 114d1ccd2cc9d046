"""Helpers shared by the contract tests: fixed times and small builders over the port."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from comms.models import Draft, MessageKind, Receipt, Review, Severity, Tenant
from comms.ports import Store

NOW = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
M = timedelta(minutes=1)


def open_incident(store: Store, **fields: Any) -> str:
    """Open an S1 incident for acme at NOW (``fields`` override); return its ref."""
    args: dict[str, Any] = {
        "title": "Sign-in failures",
        "severity": Severity.S1,
        "tenants": ["acme"],
        "started_at": NOW - 5 * M,
        "now": NOW,
        "actor": "gdcmoc",
    }
    args.update(fields)
    return store.create_incident(**args).ref


def revise(store: Store, n: int = 1, *, draft_id: int | None = None, **fields: Any) -> Draft:
    """Store revision text number ``n`` (a new draft unless ``draft_id``) at NOW + n minutes."""
    args: dict[str, Any] = {
        "incident_ref": "INC-1",
        "kind": MessageKind.UPDATE,
        "draft_id": draft_id,
        "subject": f"Update {n}: sign-in failures",
        "body": f"Body {n}\n",
        "variables": {"impact": f"impact {n}", "actions": "restoring sign-in"},
        "author": "gdcmoc",
        "now": NOW + n * M,
    }
    args.update(fields)
    return store.add_revision(**args)


def review(draft: Draft, decision: str = "approved", *, at: datetime = NOW + 10 * M) -> Review:
    """A decision by sam (IMOC) on the draft's latest revision."""
    return Review(
        draft_id=draft.id,
        revision=draft.revision.number,
        reviewer="sam",
        role="imoc",
        decision=decision,
        approval_hash=f"hash-{draft.id}-{draft.revision.number}",
        at=at,
        note="" if decision == "approved" else "say when the next update comes",
    )


def receipt_for(key: str, *, tenant: str = "acme", external_id: str = "ntf_1") -> Receipt:
    """What a channel would confirm for the delivery ``key``."""
    return Receipt(
        channel="switchboard",
        tenant=tenant,
        draft_id=1,
        revision=1,
        idempotency_key=key,
        external_id=external_id,
        delivered_at=NOW + 2 * M,
        text_sha256="0" * 64,
        detail={"recipients": ["ops@acme.example"], "recovered": False},
    )


ACME = Tenant(id="acme", name="Acme Corp")


class Recorder:
    """A local HTTP server that records each POST and answers ``status`` (200 by default)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                recorder.requests.append(
                    {"path": self.path, "body": body, "json": json.loads(body)}
                )
                data = b"ok" if recorder.status < 300 else b"server error"
                self.send_response(recorder.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                """No access log on stderr."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
