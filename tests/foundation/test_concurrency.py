"""Two CLI processes writing to one database at once: neither fails, no write is lost."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from foundation_support import NOW_ISO, VENV_BIN, run_comms

pytestmark = pytest.mark.slow

# Each writer is a process that runs the real console script N times in a row: it opens an
# incident, drafts its first message, and adds a revision to one draft both writers share.
CHAIN = textwrap.dedent(
    """
    import json, subprocess, sys
    comms, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    def run(*args):
        done = subprocess.run([comms, *args], capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"comms {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done.stdout
    for i in range(rounds):
        ref = json.loads(run("incident", "open", "--tenant", "acme", "--severity", "S2",
                             "--title", f"{name} {i}", "--format", "json"))["ref"]
        run("draft", "update", "--incident", "INC-1", "--set", f"actions={name} round {i}")
        run("draft", "investigation-start", "--incident", ref, "--set", f"impact={name} impact {i}")
    """
)

# The same in one interpreter per writer: many more writes per second, and both writers
# start on a database that does not exist yet (the migration races too).
LOOP = textwrap.dedent(
    """
    import sys
    from comms.cli import cli
    name, rounds = sys.argv[1], int(sys.argv[2])
    def run(*args):
        try:
            cli.main(list(args), prog_name="comms", standalone_mode=False)
        except Exception as exc:
            sys.exit(f"comms {' '.join(args)}: {type(exc).__name__}: {exc}")
    run("tenants", "add", name, "--name", name)
    for i in range(rounds):
        run("incident", "open", "--tenant", name, "--severity", "S3", "--title", f"{name} {i}")
    """
)


def counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return {
            t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("incidents", "drafts", "revisions", "events", "tenants")
        }
    finally:
        db.close()


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def finish(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert "locked" not in err


def test_two_console_script_writers(tmp_path: Path) -> None:
    rounds = 7  # 21 CLI runs per writer
    env = {**os.environ, "COMMS_NOW": NOW_ISO}
    assert run_comms(["tenants", "add", "acme", "--name", "Acme"], env=env).returncode == 0
    assert (
        run_comms(
            ["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "shared"]
        ).returncode
        == 0
    )
    assert (
        run_comms(
            [
                "draft",
                "update",
                "--incident",
                "INC-1",
                "--set",
                "impact=x",
                "--set",
                "actions=start",
            ]
        ).returncode
        == 0
    )
    procs = [
        start([CHAIN, str(VENV_BIN / "comms"), name, str(rounds)], env, tmp_path)
        for name in ("alpha", "beta")
    ]
    finish(procs)

    path = tmp_path / "comms.db"
    got = counts(path)
    writes = 2 * rounds
    assert got["incidents"] == 1 + writes
    assert got["drafts"] == 1 + writes
    assert (
        got["revisions"] == 1 + writes + writes
    )  # the shared draft's revisions + each first draft
    # Per incident: opened + engaged + its draft; plus one draft.revised per shared revision.
    assert got["events"] == 3 + writes * 3 + writes

    incidents = json.loads(run_comms(["incident", "list", "--format", "json"]).stdout)
    assert sorted(i["ref"] for i in incidents) == sorted(f"INC-{n}" for n in range(1, writes + 2))
    titles = {i["title"] for i in incidents}
    assert titles == {"shared"} | {f"{w} {i}" for w in ("alpha", "beta") for i in range(rounds)}
    shared = json.loads(run_comms(["drafts", "show", "1", "--format", "json"]).stdout)
    assert shared["revisions"] == 1 + writes
    db = sqlite3.connect(path)
    try:
        numbers = [
            r[0]
            for r in db.execute("SELECT number FROM revisions WHERE draft_id = 1 ORDER BY number")
        ]
        bodies = [r[0] for r in db.execute("SELECT body FROM revisions WHERE draft_id = 1")]
    finally:
        db.close()
    assert numbers == list(range(1, writes + 2))
    for writer in ("alpha", "beta"):
        for i in range(rounds):
            assert sum(f"What we are doing: {writer} round {i}\n" in b for b in bodies) == 1


def test_two_writers_from_an_empty_database(tmp_path: Path) -> None:
    rounds = 60
    env = {
        **os.environ,
        "COMMS_NOW": NOW_ISO,
        "COMMS_DATABASE_URL": str(tmp_path / "new" / "race.db"),
    }
    procs = [start([LOOP, name, str(rounds)], env, tmp_path) for name in ("alpha", "beta")]
    finish(procs)
    got = counts(tmp_path / "new" / "race.db")
    assert got["tenants"] == 2
    assert got["incidents"] == 2 * rounds
    assert got["events"] == 2 * 2 * rounds
    db = sqlite3.connect(tmp_path / "new" / "race.db")
    try:
        seqs = [r[0] for r in db.execute("SELECT seq FROM incidents ORDER BY seq")]
        titles = {r[0] for r in db.execute("SELECT title FROM incidents")}
    finally:
        db.close()
    assert seqs == list(range(1, 2 * rounds + 1))
    assert titles == {f"{w} {i}" for w in ("alpha", "beta") for i in range(rounds)}


# Two writers drafting the same kind for the same incidents, in the same order: each round
# the two race to start the incident's first update, which must come out as one draft.
DRAFTS = textwrap.dedent(
    """
    import sys
    from comms.cli import cli
    name, rounds = sys.argv[1], int(sys.argv[2])
    for i in range(1, rounds + 1):
        args = ["draft", "update", "--incident", f"INC-{i}", "--set", "impact=x",
                "--set", f"actions={name} {i}"]
        try:
            cli.main(args, prog_name="comms", standalone_mode=False)
        except Exception as exc:
            sys.exit(f"comms {' '.join(args)}: {type(exc).__name__}: {exc}")
    """
)


def test_two_writers_drafting_one_kind_at_once_make_one_draft(tmp_path: Path) -> None:
    rounds = 40
    db_path = tmp_path / "drafts.db"
    env = {**os.environ, "COMMS_NOW": NOW_ISO, "COMMS_DATABASE_URL": str(db_path)}
    setup = textwrap.dedent(
        f"""
        from comms.cli import cli
        def run(*args):
            cli.main(list(args), prog_name="comms", standalone_mode=False)
        run("tenants", "add", "acme", "--name", "Acme")
        for i in range({rounds}):
            run("incident", "open", "--tenant", "acme", "--severity", "S1", "--title", f"t {{i}}")
        """
    )
    finish([start([setup], env, tmp_path)])
    procs = [start([DRAFTS, name, str(rounds)], env, tmp_path) for name in ("alpha", "beta")]
    finish(procs)
    db = sqlite3.connect(db_path)
    try:
        per_incident = dict(
            db.execute(
                "SELECT incident_ref, COUNT(*) FROM drafts WHERE kind = 'update' "
                "GROUP BY incident_ref"
            ).fetchall()
        )
        numbers = db.execute(
            "SELECT d.incident_ref, group_concat(r.number) FROM drafts d "
            "JOIN revisions r ON r.draft_id = d.id GROUP BY d.id"
        ).fetchall()
    finally:
        db.close()
    assert per_incident == {f"INC-{i}": 1 for i in range(1, rounds + 1)}
    assert sorted(sorted(n.split(",")) for _, n in numbers) == [["1", "2"]] * rounds
