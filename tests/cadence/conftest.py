"""Fixtures for the cadence tests: clock rows, a real store, local HTTP servers, the CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from comms.records import ClockRow

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def make_row(**fields: Any) -> ClockRow:
    """An open S1 incident opened at T0, with no update yet, unless ``fields`` say otherwise."""
    base: dict[str, Any] = {
        "ref": "INC-1",
        "title": "Web UI unavailable",
        "severity": "S1",
        "status": "investigating",
        "tenants": ("acme",),
        "pubsec": False,
        "security": False,
        "started_at": T0,
        "created_at": T0,
        "engaged_at": T0,
        "status_changed_at": T0,
        "mitigated_at": None,
        "resolved_at": None,
        "last_update_at": None,
        "promised_update_at": None,
        "rca_internal_at": None,
        "rca_external_at": None,
    }
    base.update(fields)
    return ClockRow(**base)


@pytest.fixture
def row() -> Callable[..., ClockRow]:
    """Factory for ClockRow values (see ``make_row``)."""
    return make_row


class Recorder:
    """A local HTTP server that records every request and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, str], str]] = []
        self.default: tuple[int, dict[str, str], str] = (200, {}, "ok")
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                recorder.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "json": json.loads(body) if body else None,
                    }
                )
                status, headers, text = (
                    recorder.answers.pop(0) if recorder.answers else recorder.default
                )
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A running recording server on 127.0.0.1 and a free port."""
    server = Recorder()
    yield server
    server.close()


@pytest.fixture
def store(env_setup: Path) -> Iterator[Any]:
    """The real SqliteStore on this test's COMMS_DATABASE_URL file."""
    from comms.adapters.sqlite_store import SqliteStore

    with SqliteStore(env_setup / "comms.db") as opened:
        yield opened


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real ``comms`` click group, with ``cadence`` registered if the lead has not yet."""
    import comms.cli

    if "cadence" not in comms.cli.COMMANDS:
        monkeypatch.setitem(
            comms.cli.COMMANDS,
            "cadence",
            ("comms.commands.cadence:cadence", "Track update deadlines."),
        )
    return comms.cli.cli
