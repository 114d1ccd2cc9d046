"""``COMMS_DATABASE_URL=postgresql://…`` end to end: every command as a real process, the
schema version checks, and a server that is down or goes away mid-command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from comms.adapters.postgres_store import SCHEMA_VERSION, PostgresStore
from comms.errors import StoreError
from tests.contract.support import open_incident
from tests.delivery.delivery_support import SEND, wait_for
from tests.postgres.conftest import StartStub, comms, server, start_comms, token

pytestmark = pytest.mark.slow

APPROVER = token("sam-imoc")


def open_and_approve(tenants: list[str]) -> int:
    """Sync the stub's tenants, open an S1 for ``tenants``, draft and approve its update."""
    comms("tenants", "sync")
    args = ["incident", "open", "--severity", "S1", "--title", "Merge requests unavailable"]
    for tenant in tenants:
        args += ["--tenant", tenant]
    ref = json.loads(comms(*args, "--format", "json")[0])["ref"]
    out, _ = comms(
        "draft",
        "investigation-start",
        "--incident",
        ref,
        "--set",
        "impact=Users cannot load merge requests",
        "--format",
        "json",
    )
    draft = int(json.loads(out)["id"])
    comms("review", "approve", str(draft), env=APPROVER)
    return draft


def test_every_command_runs_on_postgresql(database: str, start_stub: StartStub) -> None:
    stub = start_stub(tenants=2)
    out, _ = comms("db", "status")
    assert f"version {SCHEMA_VERSION} (current)" in out
    draft = open_and_approve(["zq001", "zq002"])
    out, _ = comms("send", str(draft), "--format", "json")
    assert {r["status"] for r in json.loads(out)["deliveries"]} == {"delivered"}
    assert stub.per_tenant() == {"zq001": 1, "zq002": 1}
    assert comms("send", str(draft))[0].count("already-delivered") == 2
    out, _ = comms("cadence", "check", "--at", "+3h", code=1)  # the promised update is late
    assert "INC-1" in out
    out, _ = comms("incident", "list", "--format", "json")
    assert [i["ref"] for i in json.loads(out)] == ["INC-1"]
    timeline, _ = comms("timeline", "INC-1", "--format", "json")
    assert "update.sent" in timeline
    assert not Path("comms.db").exists()  # nothing went to a SQLite file on the side


def label() -> str:
    host, port, name = server()
    return f"{host}:{port}/{name}"


def test_an_unmigrated_database_asks_for_comms_db_migrate(empty_database: str) -> None:
    _, err = comms("incident", "list", code=3)
    assert err.strip().splitlines() == [
        f"Error: the PostgreSQL database at {label()} has no comms schema yet; "
        "run: comms db migrate"
    ]
    _, err = comms("cadence", "check", code=3)  # the watcher authenticates too: no users yet
    assert "run: comms db migrate" in err
    out, _ = comms("db", "status", code=3)
    assert f"none yet (this comms uses version {SCHEMA_VERSION}): run comms db migrate" in out
    out, _ = comms("db", "migrate")
    assert "migrated from schema version 0\n" in out
    assert f"version {SCHEMA_VERSION} (current)" in out
    _, err = comms("tenants", "add", "acme", "--name", "Acme Corp", code=3)
    assert "no users yet: make the first admin with comms users add NAME --role admin" in err
    admin = {"COMMS_TOKEN": comms("users", "add", "ana", "--role", "admin")[0].strip()}
    comms("tenants", "add", "acme", "--name", "Acme Corp", env=admin)
    comms(
        "incident", "open", "--tenant", "acme", "--severity", "S2", "--title", "Slow CI", env=admin
    )
    assert "current" in comms("db", "migrate")[0]  # again: nothing to do


def test_an_older_or_newer_schema_is_one_line_never_a_crash(empty_database: str) -> None:
    with PostgresStore(empty_database) as store:
        assert store.migrate(to=1) == (0, 1)
    _, err = comms("incident", "list", code=3)
    assert err.strip() == (
        f"Error: the comms schema in PostgreSQL at {label()} is version 1, older "
        f"than this comms ({SCHEMA_VERSION}); run: comms db migrate"
    )
    comms("db", "migrate")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    for args in (["incident", "list"], ["cadence", "check"], ["db", "migrate"]):
        _, err = comms(*args, code=3)
        assert err.strip() == (
            f"Error: the comms schema in PostgreSQL at {label()} is version 99, "
            f"newer than this comms ({SCHEMA_VERSION}); upgrade comms"
        )
    out, _ = comms("db", "status", code=3)
    assert "newer than this comms" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_that_cannot_be_reached_is_one_line_without_the_password() -> None:
    port = free_port()
    url = f"postgresql://comms:hunter2-secret@127.0.0.1:{port}/comms"
    for args in (["incident", "list"], ["cadence", "check"], ["db", "status"]):
        out, err = comms(*args, code=3, env={"COMMS_DATABASE_URL": url})
        assert err.strip() == (
            f"Error: cannot reach PostgreSQL at 127.0.0.1:{port} (Connection refused); "
            "check COMMS_DATABASE_URL"
        )
        assert "hunter2" not in out + err


def test_db_status_masks_the_password(database: str) -> None:
    user = str(conninfo_to_dict(database).get("user") or "postgres")
    host, port, name = server()
    with_password = f"postgresql://{user}:pw-xyz@{host}:{port}/{name}?" + database.split("?")[1]
    out, _ = comms("db", "status", "--format", "json", env={"COMMS_DATABASE_URL": with_password})
    status = json.loads(out)
    assert status["database"].startswith(f"postgresql://{user}:***@{host}:{port}/")
    assert (status["backend"], status["current"]) == ("postgresql", True)
    assert "pw-xyz" not in out


def test_sqlite_stays_the_default_and_db_migrate_only_reports_it(tmp_path: Path) -> None:
    env = {"COMMS_DATABASE_URL": str(tmp_path / "team.db")}
    out, _ = comms("db", "migrate", env=env)
    assert "a SQLite store migrates itself" in out
    assert "backend   sqlite" in out
    assert "(current)" in out
    assert (tmp_path / "team.db").is_file()


def test_without_the_driver_the_error_says_how_to_install_it(database: str) -> None:
    hide = "import sys; sys.modules['psycopg'] = None; from comms.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", hide, "incident", "list"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 3
    assert done.stderr.strip().endswith("install it with: pip install 'comms[postgres]'")
    assert "Traceback" not in done.stderr


# -- a connection lost mid-command ------------------------------------------------------------


class Proxy:
    """A TCP forwarder to the PostgreSQL server that can be cut, like a network outage."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.open = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        self.open = False
        self.thread.join()
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def test_a_connection_lost_mid_send_is_one_line_and_resume_posts_once(
    database: str,
    start_stub: StartStub,
) -> None:
    stub = start_stub(tenants=2)
    draft = open_and_approve(["zq001", "zq002"])
    stub.faults(rates={"slow": 1.0}, match=SEND, slow_seconds=1.5)
    host, port, name = server()
    proxy = Proxy(host, port)
    user = str(conninfo_to_dict(database).get("user") or "postgres")
    via_proxy = f"postgresql://{user}@127.0.0.1:{proxy.port}/{name}?" + database.split("?")[1]
    sender = start_comms("send", str(draft), env={"COMMS_DATABASE_URL": via_proxy})
    try:
        wait_for(lambda: stub.stats()["faults"].get("slow", 0) >= 2, what="both sends to start")
        proxy.cut()
        out, err = sender.communicate(timeout=30)
    finally:
        proxy.cut()
        if sender.poll() is None:
            sender.send_signal(signal.SIGKILL)
            sender.communicate()
    assert sender.returncode == 3, out + err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"Error: cannot reach PostgreSQL at 127.0.0.1:{proxy.port} (")
    assert line.endswith("); check COMMS_DATABASE_URL")
    assert "Traceback" not in err
    stub.faults()
    out, _ = comms("send", "--resume", "--format", "json")
    assert {r["status"] for r in json.loads(out)["deliveries"]} == {"delivered"}
    assert stub.per_tenant() == {"zq001": 1, "zq002": 1}
    assert stub.sends()["duplicates"] == 0


def test_a_lost_connection_fails_one_call_and_the_next_reconnects(database: str) -> None:
    name = f"comms-test-{uuid.uuid4().hex[:12]}"
    store = PostgresStore(f"{database}&application_name={name}")
    try:
        open_incident(store)
        with psycopg.connect(os.environ["COMMS_TEST_POSTGRES_URL"], autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            ).fetchall()
        assert killed == [(True,)]
        host, port, _ = server()
        with pytest.raises(StoreError, match=rf"^cannot reach PostgreSQL at {host}:{port} \("):
            store.get_incident("INC-1")
        assert store.get_incident("INC-1").ref == "INC-1"
    finally:
        store.close()


def test_a_process_opened_before_the_migration_works_once_it_ran(empty_database: str) -> None:
    from comms.adapters.postgres_alerts import PostgresAlerts

    store, alerts = PostgresStore(empty_database), PostgresAlerts(empty_database)
    try:
        with pytest.raises(StoreError, match="has no comms schema yet; run: comms db migrate"):
            store.list_incidents()
        assert alerts.clock_rows() is None  # a watcher started first waits for the schema
        comms("db", "migrate")
        assert store.list_incidents() == []
        assert alerts.clock_rows() == []
    finally:
        store.close()
        alerts.close()
