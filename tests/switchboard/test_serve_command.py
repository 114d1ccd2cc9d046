"""``comms switchboard serve`` as a real subprocess, and its usage errors through CliRunner."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from comms.cli import cli


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stderr, selectors.EVENT_READ)
    try:
        if not selector.select(timeout):
            raise AssertionError("the server printed nothing")
        return process.stderr.readline()
    finally:
        selector.close()


def test_serve_runs_a_real_server_until_terminated(tmp_path: Path) -> None:
    db_path = tmp_path / "sb.db"
    env = {**os.environ, "COMMS_SWITCHBOARD_TOKEN": "sub-token"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "comms",
            "switchboard",
            "serve",
            "--port",
            "0",
            "--db",
            str(db_path),
            "--rate-limit",
            "600/min",
            "--fault",
            "500:0.0",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = _read_line(process, 20)
        assert line.startswith("Switchboard stub listening on http://127.0.0.1:"), line
        assert "sub-token" not in line
        url = line.split()[4].rstrip(",")
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer sub-token"}) as client:
            deadline = time.monotonic() + 10
            while True:
                try:
                    response = client.get("/api/v1/tenants")
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            assert response.status_code == 200
            assert len(response.json()["data"]) == 5
            assert (
                client.get("/api/v1/tenants", headers={"Authorization": "Bearer x"}).status_code
                == 401
            )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stderr is not None
            rest = process.stderr.read()
            process.stderr.close()
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in rest
    assert db_path.exists()


def test_serve_without_a_token_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["switchboard", "serve", "--db", str(tmp_path / "x.db")],
        env={"COMMS_SWITCHBOARD_TOKEN": ""},
    )
    assert result.exit_code == 2
    assert "needs a bearer token" in result.output
    assert not (tmp_path / "x.db").exists()


def test_serve_rejects_a_bad_fault_spec_and_rate(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["switchboard", "serve", "--token", "t", "--db", str(tmp_path / "x.db")]
    bad_fault = runner.invoke(cli, [*base, "--fault", "explode:0.5"])
    assert bad_fault.exit_code == 2
    assert "KIND:PROBABILITY" in bad_fault.output
    bad_sum = runner.invoke(cli, [*base, "--fault", "500:0.7,429:0.7"])
    assert "more than 1" in bad_sum.output
    bad_rate = runner.invoke(cli, [*base, "--rate-limit", "fast"])
    assert bad_rate.exit_code == 2
    assert "600/min" in bad_rate.output


def test_serve_reports_a_bad_seed_file(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text('{"tenants": [{"id": "a b"}]}')
    result = CliRunner().invoke(
        cli,
        [
            "switchboard",
            "serve",
            "--token",
            "t",
            "--db",
            str(tmp_path / "x.db"),
            "--seed",
            str(seed),
        ],
    )
    assert result.exit_code == 2
    assert "tenant id 'a b'" in result.output
    assert "Traceback" not in result.output


def test_serve_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["switchboard", "serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--db", "--seed", "--token", "--rate-limit", "--fault"):
        assert option in result.output
