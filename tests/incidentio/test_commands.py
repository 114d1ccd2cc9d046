"""``comms incident import`` and ``comms incident sync``: the commands over the real adapter,
the incident.io fake over HTTP and the SQLite file the CLI opens (``COMMS_DATABASE_URL``).

They are attached to ``comms incident`` by ``comms.commands.core``; here a tiny group of the
same kind (``comms.cli.LazyGroup``, which turns a ``CommsError`` into one line and its exit
code) holds them.
"""

from __future__ import annotations

import json
import os
import socket

import click
import pytest
from click.testing import CliRunner, Result

from comms.adapters.sqlite_store import SqliteStore
from comms.cli import LazyGroup
from comms.commands.incidentio import import_incident, sync
from tests.incidentio.conftest import TENANTS, TOKEN
from tests.incidentio.fake_incidentio import FakeIncidentio, ulid


@click.group(cls=LazyGroup, lazy={})
def cli() -> None:
    """comms, as far as these commands go."""


@cli.group()
def incident() -> None:
    """incident records."""


incident.add_command(import_incident)
incident.add_command(sync)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["incident", *args], catch_exceptions=False)


@pytest.fixture
def api(fake: FakeIncidentio, monkeypatch: pytest.MonkeyPatch) -> FakeIncidentio:
    monkeypatch.setenv("COMMS_INCIDENTIO_TOKEN", TOKEN)
    monkeypatch.setenv("COMMS_INCIDENTIO_URL", fake.url)
    store = SqliteStore(os.environ["COMMS_DATABASE_URL"])
    for tenant in TENANTS:
        store.put_tenant(tenant)
    store.close()
    return fake


def test_help() -> None:
    for command in ("import", "sync"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "Example:" in result.output


def test_import_then_reimport(api: FakeIncidentio) -> None:
    api.declare("Sign-in failures", severity="Critical", tenants=["Acme Corp", "Umbrella"])

    first = run("import", "https://app.incident.io/gitlab/incidents/2291")
    again = run("import", "INC-2291")

    assert first.exit_code == 0, first.output
    assert first.stdout == (
        "imported INC-2291: S1 investigating Sign-in failures (acme)\n"
        "  incident.io: https://app.incident.io/gitlab/incidents/2291\n"
        'next: comms draft investigation-start --incident INC-2291 --set impact="…"\n'
    )
    assert first.stderr.startswith("note: 'Umbrella' in 'Affected tenants' name no comms tenant")
    assert again.exit_code == 0
    assert again.stdout.splitlines()[0] == "INC-2291 is up to date with incident.io"


def test_import_as_json(api: FakeIncidentio) -> None:
    declared = api.declare("Sign-in failures", severity="Major", tenants=["acme"])

    result = run("import", "INC-2291", "--format", "json")

    data = json.loads(result.stdout)
    assert data["action"] == "imported"
    assert data["incident"]["severity"] == "S2"
    assert data["link"] == {
        "id": declared["id"],
        "reference": "INC-2291",
        "permalink": "https://app.incident.io/gitlab/incidents/2291",
        "slack_channel_id": "C02291",
    }
    assert data["notes"] == []


def test_sync_one_and_all(api: FakeIncidentio) -> None:
    first = api.declare("Sign-in failures", severity="Major", tenants=["acme"])
    api.declare("Slow pipelines", severity="Minor", tenants=["initech"])
    run("import", "INC-2291")
    run("import", "INC-2292")
    api.update(first["id"], severity="Critical", status="Fixing")

    one = run("sync", "INC-2291")
    every = run("sync")

    assert one.exit_code == 0
    assert (
        one.stdout.splitlines()[0]
        == "synced INC-2291: severity S2 → S1, status investigating → mitigating"
    )
    assert every.exit_code == 0
    assert [line for line in every.stdout.splitlines() if not line.startswith("  ")] == [
        "INC-2292 is up to date with incident.io",
        "INC-2291 is up to date with incident.io",
    ]


def test_sync_reports_each_refusal_and_exits_2(api: FakeIncidentio) -> None:
    first = api.declare("Sign-in failures", tenants=["acme"])
    run("import", "INC-2291")
    api.severities.append({"id": ulid(199), "name": "Sev 0", "rank": 4, "description": ""})
    api.update(first["id"], severity="Sev 0")

    result = run("sync")

    assert result.exit_code == 2
    assert (
        "INC-2291: not synced: INC-2291: incident.io severity 'Sev 0' has no comms severity"
        in result.stderr
    )
    assert result.stderr.splitlines()[-1] == "Error: 1 of 1 incidents not synced: INC-2291"


def test_unknown_severity_is_one_line_exit_2(api: FakeIncidentio) -> None:
    api.severities.append({"id": ulid(199), "name": "Sev 0", "rank": 4, "description": ""})
    api.declare("Everything down", severity="Sev 0", tenants=["acme"])

    result = run("import", "INC-2291")

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: INC-2291: incident.io severity 'Sev 0' has no comms severity; add a line under "
        '[incidentio.severities] in comms.toml, e.g. "Sev 0" = "S2" (S1 most severe … S4)\n'
    )


def test_pubsec_is_refused(api: FakeIncidentio) -> None:
    api.declare("Sign-in failures", tenants=["Federal Agency"])

    result = run("import", "INC-2291")

    assert result.exit_code == 2
    assert (
        "PubSec (Dedicated for Government) incidents are never run in incident.io" in result.stderr
    )


def test_no_key_is_one_line_exit_3(api: FakeIncidentio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMS_INCIDENTIO_TOKEN")

    result = run("import", "INC-2291")

    assert result.exit_code == 3
    assert result.stderr.startswith("Error: no incident.io key: set COMMS_INCIDENTIO_TOKEN")
    assert len(result.stderr.splitlines()) == 1


def test_a_refused_key_is_one_line_exit_3(
    api: FakeIncidentio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_INCIDENTIO_TOKEN", "inc_revoked")

    result = run("import", "INC-2291")

    assert result.exit_code == 3
    assert result.stderr.startswith(
        "Error: incident.io refused the key in COMMS_INCIDENTIO_TOKEN: The API key provided is not valid (401)"
    )
    assert "inc_revoked" not in result.stderr


def test_incident_io_down_is_one_line_exit_3(
    api: FakeIncidentio, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("COMMS_INCIDENTIO_URL", url)

    result = run("import", "INC-2291")

    assert result.exit_code == 3
    assert result.stderr == (
        f"Error: cannot reach incident.io at {url} (ConnectError); check [incidentio] api_url "
        "and the network (gave up after 4 attempts)\n"
    )


def test_a_fullwidth_digit_is_refused_before_incident_io_is_asked(api: FakeIncidentio) -> None:
    api.declare("Sign-in failures", tenants=["acme"])

    result = run("import", "INC-\uff15")

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: 'INC-\uff15' is not an incident.io incident; give its reference (INC-2291) or "
        "its URL (https://app.incident.io/…/incidents/2291)\n"
    )
    assert api.requests == []


def test_an_unknown_incident_is_exit_2(api: FakeIncidentio) -> None:
    result = run("import", "INC-9999")

    assert result.exit_code == 2
    assert result.stderr.startswith("Error: incident.io has no incident '9999'")


def test_sync_of_an_unlinked_incident_is_exit_2(api: FakeIncidentio) -> None:
    result = run("sync", "INC-5")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: no incident 'INC-5'")


def test_nothing_linked(api: FakeIncidentio) -> None:
    result = run("sync")
    assert (result.exit_code, result.stdout) == (0, "no open incident is linked to incident.io\n")
