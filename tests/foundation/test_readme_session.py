"""The README's session runs as written: every `$ comms …` line of "A session", in order,
with the set-up it gives for the Switchboard stub, prints what the README shows (first
line of each output, Switchboard's notification ids aside) with the exit status it implies.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

from foundation_support import REPO, VENV_BIN

README = (REPO / "README.md").read_text(encoding="utf-8")
NOW = "2026-11-27T14:05:00Z"  # the session's clock: started 13:52, next update 15:05


def _section() -> str:
    start = README.index("\n## A session\n")
    return README[start : README.index("\n## ", start + 1)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _steps(text: str) -> list[tuple[str, str]]:
    """("sh", script) and ("$", command + expected output) in the order of the README."""
    steps: list[tuple[str, str]] = []
    for kind, body in re.findall(r"```(sh|console)\n(.*?)```", text, re.S):
        if kind == "sh":
            steps.append(("sh", body))
            continue
        for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
            steps.append(("$", chunk))
    return steps


def _mask(text: str) -> str:
    return re.sub(r"ntf_[0-9a-f]{16}", "ntf_…", text)


def test_the_readme_session_runs_as_written(tmp_path: Path) -> None:
    port = _free_port()
    text = _section().replace("8798", str(port))
    steps = _steps(text)
    server = [body for kind, body in steps if kind == "sh" and "switchboard serve" in body]
    assert len(server) == 1, "the README says how to start the stub, once"
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "COMMS_NOW": NOW,
    }
    env.pop("COMMS_SWITCHBOARD_TOKEN", None)
    stub = subprocess.Popen(
        ["bash", "-c", f"exec env {server[0].strip()}"],  # exec: terminate() stops the stub
        cwd=tmp_path / "home",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the stub did not start: {server[0]}")
        _run(steps, tmp_path, env)
    finally:
        stub.terminate()
        stub.wait(timeout=10)


def _run(steps: list[tuple[str, str]], folder: Path, env: dict[str, str]) -> None:
    # One shell for the whole session, so that `export` lines hold for what follows.
    script = ["set -u"]
    expected: list[tuple[str, str]] = []
    for kind, body in steps:
        if kind == "sh":
            if "switchboard serve" not in body:
                script.append(body)
            continue
        command, _, output = body.partition("\n")
        n = len(expected)
        if command.strip() == "echo $?":
            script.append(f"echo $last > out.{n}; echo 0 > rc.{n}; : > err.{n}")
        else:
            script.append(f"{{ {command}\n}} > out.{n} 2> err.{n}; last=$?; echo $last > rc.{n}")
        expected.append((command, output))
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=folder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for n, (command, output) in enumerate(expected):
        rc = int((folder / f"rc.{n}").read_text())
        out = (folder / f"out.{n}").read_text()
        err = (folder / f"err.{n}").read_text()
        shown = output.splitlines()[0] if output.strip() else ""
        if shown.startswith("Error"):
            assert rc in (1, 2, 3), f"$ {command} → {rc}\n{out}{err}"
            assert err.splitlines()[0] == shown, f"$ {command}\n{err}"
        else:
            findings = "comms lint" in command and bool(output.strip())
            assert rc == (1 if findings else 0), f"$ {command} → {rc}\n{out}{err}"
            assert _mask(out).splitlines()[:1] == _mask(output).splitlines()[:1], (
                f"$ {command}\n{out}{err}"
            )
