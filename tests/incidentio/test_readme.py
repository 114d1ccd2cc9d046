"""README's "incident.io and Slack" session runs as written: each ``$ comms …`` line against
the incident.io fake over HTTP prints exactly the lines under it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from comms.cli import cli
from comms.models import Tenant
from tests.incidentio.conftest import TOKEN
from tests.incidentio.fake_incidentio import FakeIncidentio

README = Path(__file__).resolve().parents[2] / "README.md"


def session(text: str) -> list[tuple[list[str], list[str]]]:
    """The console block of the section: (argv after ``comms``, output lines) per command."""
    start = text.index("\n## incident.io and Slack\n")
    end = text.find("\n## ", start + 1)
    block = re.search(r"```console\n(.*?)```", text[start:end], re.S)
    assert block is not None, "the section has no console session"
    steps: list[tuple[list[str], list[str]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ comms "):
            steps.append((shlex.split(line[len("$ comms ") :]), []))
        else:
            steps[-1][1].append(line)
    return steps


def test_the_session_runs_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = session(README.read_text(encoding="utf-8"))
    with FakeIncidentio(token=TOKEN) as fake:
        monkeypatch.setenv("COMMS_INCIDENTIO_TOKEN", TOKEN)
        monkeypatch.setenv("COMMS_INCIDENTIO_URL", fake.url)
        from comms.bootstrap import Runtime

        with Runtime() as rt:
            rt.store.put_tenant(Tenant(id="acme", name="Acme Corp"))
        declared = fake.declare("Sign-in failures", severity="Critical", tenants=["acme"])
        for number, (argv, expected) in enumerate(steps):
            if argv[:2] == ["incident", "sync"]:
                # what the responders changed in incident.io meanwhile
                fake.update(declared["id"], severity="Major", status="Fixing")
            result = CliRunner().invoke(cli, argv, catch_exceptions=False)
            assert result.exit_code == 0, (number, argv, result.output)
            assert result.output.splitlines() == expected, (number, argv)
    assert len(steps) == 2
