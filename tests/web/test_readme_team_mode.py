"""README's "Team mode" runs as written: from an empty PostgreSQL schema to a first
approved send, as real processes (`comms` on PATH, `comms serve` in the background,
`curl` for the IMOC's approval), against the Switchboard stub on 127.0.0.1.

Only the addresses change: the test's schema for the database, a free port for the server,
the stub for Switchboard.  Needs COMMS_TEST_POSTGRES_URL (CI sets it).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from comms.adapters.stub_server import serve_in_thread
from tests.contract.backends import postgres_schema

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SWITCHBOARD_TOKEN = "readme-team-token"

pytestmark = pytest.mark.skipif(
    not os.environ.get("COMMS_TEST_POSTGRES_URL"), reason="COMMS_TEST_POSTGRES_URL is not set"
)


def _script() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Team mode\n")
    section = text[start : text.index("\n## ", start + 1)]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.S)
    return block


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_team_mode_runs_as_written(tmp_path: Path) -> None:
    port = _free_port()
    public = f"http://127.0.0.1:{port}"
    script = _script()
    assert "comms serve --public-url https://comms.example.com &" in script
    script = script.replace(
        "comms serve --public-url https://comms.example.com &",
        f"comms serve --port {port} --public-url {public} 2>serve.log &\n"
        f"for _ in $(seq 100); do curl -sf {public}/api/health >/dev/null && break; sleep 0.1; done",
    ).replace("https://comms.example.com", public)
    with (
        postgres_schema(migrate=False) as url,
        serve_in_thread(tmp_path / "switchboard.db", token=SWITCHBOARD_TOKEN) as switchboard,
    ):
        script = re.sub(
            r"^export COMMS_DATABASE_URL=.*$",
            f"export COMMS_DATABASE_URL='{url}'",
            script,
            flags=re.M,
        )
        env = {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "COMMS_SWITCHBOARD_URL": switchboard,
            "COMMS_SWITCHBOARD_TOKEN": SWITCHBOARD_TOKEN,
        }
        for name in ("COMMS_TOKEN", "COMMS_AUTHOR", "COMMS_REVIEWER", "COMMS_CONFIG"):
            env.pop(name, None)
        done = subprocess.run(
            [
                "bash",
                "-euo",
                "pipefail",
                "-c",
                f"trap 'kill $(jobs -p) 2>/dev/null' EXIT\n{script}",
            ],
            cwd=tmp_path,
            env=env,
            text=True,
            capture_output=True,
            timeout=120,
        )

        def read(name: str) -> str:
            path = tmp_path / name
            return path.read_text().strip() if path.exists() else ""

        log = read("serve.log")
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{log}"
        # curl's answer has no newline: the send's table follows it on the same line.
        approval, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index('{"draft"') :])
        assert approval["reviewer"] == "sam"
        assert approval["state"] == "approved"
        timeline = subprocess.run(
            ["comms", "timeline", "INC-1", "--format", "json"],
            cwd=tmp_path,
            env={**env, "COMMS_DATABASE_URL": url, "COMMS_TOKEN": read("casey.token")},
            text=True,
            capture_output=True,
            timeout=60,
        )
        assert timeline.returncode == 0, timeline.stderr
        events = json.loads(timeline.stdout)["events"]
        approved = [e for e in events if e["type"] == "review.approved"]
        sent = [e["actor"] for e in events if e["type"] == "delivery.delivered"]
        assert [e["actor"] for e in approved] == ["sam"]
        assert sent == ["casey"]
        # no token appears anywhere the team can read
        for token_file in ("casey.token", "sam.token"):
            secret = read(token_file)
            assert secret.startswith("comms_")
            assert secret not in timeline.stdout + log
