"""Importing and syncing incidents from incident.io: the core over the real adapter, the
fake API over HTTP, and a real SQLite store file."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from comms import service
from comms.errors import ConfigError, UsageError
from comms.incidentio import sync
from comms.incidentio.mapping import Rules, incident_key, rules_from_table, unmapped
from comms.incidentio.records import parse_incident
from comms.incidentio.sync import PubsecError
from comms.models import Severity, Status, Tenant
from tests.incidentio.conftest import TOKEN
from tests.incidentio.drafting import approve, first_update
from tests.incidentio.fake_incidentio import FakeIncidentio, ulid

RULES = Rules()


def _import(store: Any, client: Any, ref: str, now: datetime, **options: Any) -> sync.Applied:
    options.setdefault("rules", RULES)
    return sync.import_incident(store, client, ref, now=now, actor="jane", **options)


def _sync(store: Any, client: Any, ref: str, now: datetime, rules: Rules = RULES) -> sync.Applied:
    return sync.sync_incident(store, client, ref, rules=rules, now=now, actor="jane")


def _types(store: Any, ref: str) -> list[str]:
    return [e.type for e in store.events(ref)]


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("INC-2291", "2291"),
        (" inc-2291 ", "2291"),
        ("2291", "2291"),
        ("01HX0000000000000000000ZA9", "01HX0000000000000000000ZA9"),
        ("https://app.incident.io/gitlab/incidents/2291", "2291"),
        ("https://app.incident.io/incidents/123", "123"),
        ("https://app.incident.io/gitlab/incidents/INC-7?tab=timeline", "7"),
    ],
)
def test_incident_key(typed: str, key: str) -> None:
    assert incident_key(typed) == key


@pytest.mark.parametrize("typed", ["", "INC", "https://example.com/", "drop table", "INC-12a"])
def test_incident_key_refuses_what_is_no_incident(typed: str) -> None:
    with pytest.raises(UsageError, match="give its reference \\(INC-2291\\) or its URL"):
        incident_key(typed)


@pytest.mark.parametrize(
    "typed",
    [
        "INC-\uff15",  # a fullwidth five, as an East Asian input method types it
        "\uff12\uff12\uff19\uff11",  # 2291 in fullwidth digits
        "INC-\u0665",  # an Arabic-Indic five
        "INC-2\U0001d7d0",  # a mathematical bold two
        "01HX0000000000000000000\u212aA9",  # a Kelvin sign, which matches k ignoring case
        "https://app.incident.io/gitlab/incidents/\uff12\uff12\uff19\uff11",
    ],
)
def test_incident_key_refuses_digits_that_are_not_ascii(typed: str) -> None:
    """Only ASCII digits and letters reach incident.io: anything else is refused here."""
    with pytest.raises(UsageError, match=r"is not an incident\.io incident"):
        incident_key(typed)


def test_import_opens_the_linked_incident(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    declared = fake.declare(
        "Sign-in failures", severity="Critical", tenants=["Acme Corp", "initech"]
    )

    result = _import(store, client, "https://app.incident.io/gitlab/incidents/2291", now)

    assert result.action == "imported"
    assert result.notes == ()
    found = store.get_incident("INC-2291")
    assert found == result.incident
    assert (found.title, found.severity, found.status) == (
        "Sign-in failures",
        Severity.S1,
        Status.INVESTIGATING,
    )
    assert found.tenants == ["acme", "initech"]
    assert found.started_at.isoformat() == "2026-11-27T13:52:01+00:00"  # declared, not imported
    assert found.pubsec is False
    assert result.link == sync.Link(
        declared["id"], "INC-2291", "https://app.incident.io/gitlab/incidents/2291", "C02291"
    )
    assert _types(store, "INC-2291") == ["incident.opened", "gdcmoc.engaged", "incident.linked"]
    assert sync.link_of(store, "INC-2291") == result.link


def test_reimport_is_idempotent(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.declare("Sign-in failures", tenants=["acme"])
    _import(store, client, "INC-2291", now)
    before = store.events("INC-2291")

    again = _import(store, client, "INC-2291", now)

    assert again.action == "unchanged"
    assert store.events("INC-2291") == before
    assert len(store.list_incidents()) == 1


def test_reimport_after_a_change_syncs(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    declared = fake.declare("Sign-in failures", severity="Major", tenants=["acme"])
    _import(store, client, "INC-2291", now)
    fake.update(declared["id"], severity="Critical", status="Fixing")

    again = _import(store, client, "INC-2291", now)

    assert again.action == "synced"
    assert again.changes == {
        "severity": {"from": "S2", "to": "S1"},
        "status": {"from": "investigating", "to": "mitigating"},
    }
    assert again.incident.status is Status.MITIGATING


def test_the_timeline_says_what_incident_io_did(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    declared = fake.declare("Sign-in failures", severity="Major", tenants=["acme"])
    _import(store, client, "INC-2291", now)
    fake.update(declared["id"], severity="Critical", status="Fixing", tenants=["acme", "Initech"])
    _sync(store, client, "INC-2291", now)
    fake.update(declared["id"], status="Paused")  # no comms status: kept
    _sync(store, client, "INC-2291", now)

    found = service.timeline(store, "INC-2291", policy=service_policy(), now=now)
    lines = found.markdown().splitlines()
    said = [line.split(" | ", 2)[2].removesuffix(" |") for line in lines if " | jane | " in line]

    assert (
        "linked to incident.io INC-2291 (https://app.incident.io/gitlab/incidents/2291): "
        "Major, Investigating"
    ) in said
    assert (
        "synced from incident.io INC-2291: severity S2 → S1; status investigating → "
        "mitigating; tenants added: initech"
    ) in said
    assert said[-1] == (
        "synced from incident.io INC-2291: nothing to change in comms (incident.io: "
        "Paused, Critical)"
    )


def service_policy() -> Any:
    from comms.cadence import policy_from_config

    return policy_from_config({}, {"S1": 60, "S2": 120})


def test_a_ref_linked_to_another_incident_is_refused(
    fake: FakeIncidentio, client: Any, client_for: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.declare("Sign-in failures", tenants=["acme"])
    _import(store, client, "INC-2291", now)
    with FakeIncidentio(token=TOKEN) as other:
        other.declare("Something else", number=9000)
        other.declare("Another organisation's INC-2291", number=2291, tenants=["acme"])
        with pytest.raises(
            UsageError,
            match=r"^comms incident INC-2291 is linked to another incident.io incident \(01HX\w+\), not 01HX\w+; nothing was changed$",
        ):
            _import(store, client_for(other.url), "INC-2291", now)
    assert store.get_incident("INC-2291").title == "Sign-in failures"


def test_an_unlinked_incident_of_that_ref_is_adopted_only_when_asked(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    service.open_incident(
        store,
        title="Login broken",
        severity=Severity.S3,
        tenants=["acme"],
        now=now,
        actor="jane",
        ref="INC-2291",
    )
    fake.declare(
        "Sign-in failures", severity="Critical", status="Fixing", tenants=["acme", "initech"]
    )

    with pytest.raises(
        UsageError, match=r"comms already has an incident INC-2291 that is not linked.*--adopt$"
    ):
        _import(store, client, "INC-2291", now)
    adopted = _import(store, client, "INC-2291", now, adopt=True)

    assert adopted.action == "synced"
    found = adopted.incident
    assert (found.title, found.severity, found.status) == (
        "Sign-in failures",
        Severity.S1,
        Status.MITIGATING,
    )
    assert found.tenants == ["acme", "initech"]
    assert sync.link_of(store, "INC-2291") is not None


def test_unknown_severity_is_refused_with_the_line_to_add(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.severities.append({"id": ulid(199), "name": "Sev 0", "rank": 4, "description": ""})
    fake.declare("Everything down", severity="Sev 0", tenants=["acme"])

    with pytest.raises(UsageError) as caught:
        _import(store, client, "INC-2291", now)
    assert str(caught.value) == (
        "INC-2291: incident.io severity 'Sev 0' has no comms severity; add a line under "
        '[incidentio.severities] in comms.toml, e.g. "Sev 0" = "S2" (S1 most severe … S4)'
    )
    assert store.list_incidents() == []

    rules = rules_from_table({"severities": {"Sev 0": "S1"}})
    assert _import(store, client, "INC-2291", now, rules=rules).incident.severity is Severity.S1


def test_no_severity_yet_is_refused(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.declare("Webhooks delayed", severity=None, status="Triage", tenants=["acme"])
    with pytest.raises(
        UsageError, match=r"INC-2291 has no severity in incident\.io yet; set one there"
    ):
        _import(store, client, "INC-2291", now)


def test_no_tenant_field_imports_without_tenants_and_says_to_add_them(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    declared = fake.declare("Registry errors", severity="Major")

    result = _import(store, client, "INC-2291", now)

    assert result.incident.tenants == []
    assert result.notes == (
        "no tenants: 'Affected tenants' is empty in incident.io; add them with comms incident "
        "set INC-2291 --add-tenant ID (or set the field there and run comms incident sync "
        "INC-2291) before drafting",
    )
    draft = first_update(store, "INC-2291", now, interval_minutes=120)
    with pytest.raises(UsageError, match=r"^INC-2291 has no tenants yet; add them first"):
        approve(store, draft.id, now)

    fake.update(declared["id"], tenants=["Initech"])
    synced = _sync(store, client, "INC-2291", now)
    assert synced.changes == {"tenants_added": ["initech"]}
    assert synced.notes == ()


def test_values_naming_no_tenant_are_reported(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.declare("Slow pipelines", tenants=["ACME", "globex-prod", "Umbrella", "acme corp"])

    result = _import(store, client, "INC-2291", now)

    assert result.incident.tenants == ["acme", "globex"]  # ids, names and aliases, any case
    assert result.notes == (
        "'Umbrella' in 'Affected tenants' name no comms tenant; add them (comms tenants add ID "
        "--name … --alias …, or comms tenants sync), then comms incident sync INC-2291",
    )


def test_a_configured_tenant_field(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.tenant_field["name"] = "Customers"
    fake.declare("Slow pipelines", tenants=["Initech"])

    result = _import(
        store, client, "INC-2291", now, rules=rules_from_table({"tenant_field": "customers"})
    )

    assert result.incident.tenants == ["initech"]


def test_a_pubsec_tenant_is_refused_and_nothing_stored(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.declare("Sign-in failures", tenants=["Acme Corp", "Federal Agency"])

    with pytest.raises(PubsecError) as caught:
        _import(store, client, "INC-2291", now)

    message = str(caught.value)
    assert message.startswith(
        "INC-2291: incident.io names PubSec tenant fedgov in 'Affected tenants'; PubSec "
        "(Dedicated for Government) incidents are never run in incident.io or Slack"
    )
    assert message.endswith("comms incident open --tenant fedgov …")
    assert caught.value.exit_code == 2
    assert store.list_incidents() == []


def test_a_pubsec_tenant_added_later_is_refused_too(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    declared = fake.declare("Sign-in failures", tenants=["acme"])
    _import(store, client, "INC-2291", now)
    fake.update(declared["id"], tenants=["acme", "fedgov"], severity="Critical")

    with pytest.raises(PubsecError):
        _sync(store, client, "INC-2291", now)
    found = store.get_incident("INC-2291")
    assert (found.tenants, found.severity, found.pubsec) == (["acme"], Severity.S2, False)


def test_a_pubsec_comms_incident_is_never_fetched(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.declare("Sign-in failures", tenants=["acme"])
    _import(store, client, "INC-2291", now)
    service.set_incident(store, "INC-2291", now=now, actor="jane", add_tenants=["fedgov"])
    asked = len(fake.requests)

    with pytest.raises(PubsecError, match="INC-2291 is a PubSec incident; it is never synced"):
        _sync(store, client, "INC-2291", now)
    assert len(fake.requests) == asked


@pytest.mark.parametrize(
    ("status", "comms"),
    [
        ("Fixing", Status.MITIGATING),
        ("Monitoring", Status.MONITORING),
        ("Documenting", Status.RESOLVED),
        ("Closed", Status.RESOLVED),
    ],
)
def test_status_follows_incident_io(
    fake: FakeIncidentio,
    client: Any,
    store: Any,
    tenants: Any,
    now: datetime,
    status: str,
    comms: Status,
) -> None:
    declared = fake.declare("Sign-in failures", tenants=["acme"])
    _import(store, client, "INC-2291", now)
    fake.update(declared["id"], status=status)

    result = _sync(store, client, "INC-2291", now)

    assert result.incident.status is comms
    assert result.changes == {"status": {"from": "investigating", "to": comms.value}}
    status_event = [e for e in store.events("INC-2291") if e.type == "incident.status"][-1]
    assert status_event.actor == "jane"
    assert status_event.data["to"] == comms.value
    if comms in (Status.MONITORING, Status.RESOLVED):
        assert status_event.data["confirmed_by"] == "incident.io"


def test_reopened_in_incident_io_moves_back_with_the_reason(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    declared = fake.declare("Sign-in failures", status="Monitoring", tenants=["acme"])
    assert _import(store, client, "INC-2291", now).incident.status is Status.MONITORING
    fake.update(declared["id"], status="Investigating")

    result = _sync(store, client, "INC-2291", now)

    assert result.incident.status is Status.INVESTIGATING
    event = [e for e in store.events("INC-2291") if e.type == "incident.status"][-1]
    assert event.data["reason"] == "moved back to 'Investigating' in incident.io"


def test_comms_edits_stay_until_incident_io_changes_that_field(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    declared = fake.declare("Gitaly file-03 disk full", tenants=["acme"])
    _import(store, client, "INC-2291", now)
    service.set_incident(
        store,
        "INC-2291",
        now=now,
        actor="jane",
        title="Slow Git operations",
        status=Status.IDENTIFIED,
    )

    fake.update(declared["id"], severity="Critical")
    result = _sync(store, client, "INC-2291", now)
    assert result.changes == {"severity": {"from": "S2", "to": "S1"}}
    assert (result.incident.title, result.incident.status) == (
        "Slow Git operations",
        Status.IDENTIFIED,
    )

    fake.update(declared["id"], name="Git operations failing", status="Fixing")
    result = _sync(store, client, "INC-2291", now)
    assert (result.incident.title, result.incident.status) == (
        "Git operations failing",
        Status.MITIGATING,
    )


def test_a_live_status_of_the_teams_own_is_kept_and_named(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.statuses.append(
        {"id": ulid(299), "name": "Waiting on vendor", "category": "live", "rank": 20}
    )
    declared = fake.declare("Sign-in failures", status="Fixing", tenants=["acme"])
    _import(store, client, "INC-2291", now)
    fake.update(declared["id"], status="Waiting on vendor")

    result = _sync(store, client, "INC-2291", now)

    assert result.incident.status is Status.MITIGATING
    assert result.action == "unchanged"
    assert result.notes == (
        "incident.io status 'Waiting on vendor' (live) has no comms status; the comms status is "
        'kept; map it under [incidentio.statuses], e.g. "Waiting on vendor" = "mitigating"',
    )
    # Mapped, the next move to that status is followed (here back, with the reason).
    configured = rules_from_table({"statuses": {"Waiting on vendor": "identified"}})
    fake.update(declared["id"], status="Fixing")
    assert _sync(store, client, "INC-2291", now, configured).action == "unchanged"
    fake.update(declared["id"], status="Waiting on vendor")
    assert _sync(store, client, "INC-2291", now, configured).incident.status is Status.IDENTIFIED


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (
            {"mode": "test"},
            "INC-2291 is a test incident in incident.io; comms imports real incidents only",
        ),
        ({"mode": "tutorial"}, "INC-2291 is a tutorial incident"),
        (
            {"status": "Declined"},
            r"INC-2291 is declined in incident.io \(Declined\); there is nothing to import",
        ),
        ({"status": "Merged"}, "INC-2291 is merged in incident.io"),
    ],
)
def test_what_is_not_an_incident_is_not_imported(
    fake: FakeIncidentio,
    client: Any,
    store: Any,
    tenants: Any,
    now: datetime,
    options: dict[str, Any],
    problem: str,
) -> None:
    fake.declare("Sign-in failures", tenants=["acme"], **options)
    with pytest.raises(UsageError, match=problem):
        _import(store, client, "INC-2291", now)
    assert store.list_incidents() == []


def test_a_secret_in_the_name_is_refused(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    fake.declare("Outage after token glpat-AbCdEfGhIjKlMnOpQrSt leaked", tenants=["acme"])
    with pytest.raises(UsageError, match=r"INC-2291's name in incident.io contains a secret"):
        _import(store, client, "INC-2291", now)
    assert store.list_incidents() == []


def test_sync_needs_a_link(store: Any, client: Any, tenants: Any, now: datetime) -> None:
    service.open_incident(
        store, title="Login broken", severity=Severity.S3, tenants=["acme"], now=now, actor="jane"
    )
    with pytest.raises(
        UsageError,
        match=r"INC-1 is not linked to incident.io; link it with: comms incident import INC-1 --adopt",
    ):
        _sync(store, client, "INC-1", now)


def test_sync_open_goes_on_past_a_refusal(
    fake: FakeIncidentio, client: Any, store: Any, tenants: Any, now: datetime
) -> None:
    first = fake.declare("Sign-in failures", tenants=["acme"])
    second = fake.declare("Slow pipelines", tenants=["initech"])
    for ref in ("INC-2291", "INC-2292"):
        _import(store, client, ref, now)
    service.open_incident(
        store,
        title="Not from incident.io",
        severity=Severity.S3,
        tenants=["acme"],
        now=now,
        actor="jane",
    )
    fake.severities.append({"id": ulid(199), "name": "Sev 0", "rank": 4, "description": ""})
    fake.update(first["id"], severity="Sev 0")
    fake.update(second["id"], status="Fixing")

    outcomes = sync.sync_open(store, client, rules=RULES, now=now, actor="jane")

    assert [(o.ref, o.applied.action if o.applied else None) for o in outcomes] == [
        ("INC-2292", "synced"),
        ("INC-2291", None),
    ]
    assert "severity 'Sev 0' has no comms severity" in (outcomes[1].error or "")


def test_rules_from_table_refuses_bad_entries() -> None:
    with pytest.raises(
        ConfigError, match=r'incidentio.severities."Critical" must be one of S1, S2, S3, S4'
    ):
        rules_from_table({"severities": {"Critical": "P1"}})
    with pytest.raises(
        ConfigError, match=r'incidentio.statuses."Fixing" must be one of investigating'
    ):
        rules_from_table({"statuses": {"Fixing": "fixing"}})
    with pytest.raises(ConfigError, match=r"incidentio\.tenant_field must name a custom field"):
        rules_from_table({"tenant_field": " "})
    assert (
        rules_from_table({"statuses": {"Paused for vendor": "keep"}}).statuses["paused for vendor"]
        is None
    )


def test_unmapped_lists_what_the_rules_cannot_map(fake: FakeIncidentio, client: Any) -> None:
    fake.severities.append({"id": ulid(199), "name": "Sev 0", "rank": 4, "description": ""})
    fake.statuses.append(
        {"id": ulid(299), "name": "Waiting on vendor", "category": "live", "rank": 20}
    )

    assert unmapped(client, rules_from_table({"tenant_field": "Customers"})) == [
        'severity "Sev 0": add it under [incidentio.severities]',
        'status "Waiting on vendor" (live) is kept as it is in comms; map it under [incidentio.statuses]',
        "no custom field 'Customers': incidents import without tenants",
    ]
    assert unmapped(client, RULES)[:1] == ['severity "Sev 0": add it under [incidentio.severities]']


def test_catalog_entries_match_by_alias_and_external_id(
    store: Any, tenants: Any, now: datetime
) -> None:
    """A catalog-backed tenant field: entries match by name, alias or external id."""
    payload = {
        "id": ulid(5000),
        "reference": "INC-77",
        "name": "Slow pipelines",
        "incident_status": {"id": "s", "name": "Investigating", "category": "live"},
        "severity": {"id": "v", "name": "Minor", "rank": 1},
        "created_at": "2026-11-27T10:00:00Z",
        "updated_at": "2026-11-27T10:00:00Z",
        "mode": "standard",
        "visibility": "public",
        "custom_field_entries": [
            {
                "custom_field": {"id": "f", "name": "Affected tenants", "field_type": "catalog"},
                "values": [
                    {
                        "value_catalog_entry": {
                            "id": "e1",
                            "name": "Initech Inc.",
                            "aliases": ["initech"],
                        }
                    },
                    {
                        "value_catalog_entry": {
                            "id": "e2",
                            "name": "Globex",
                            "external_id": "globex",
                        }
                    },
                ],
            }
        ],
    }
    io = parse_incident(payload)

    result = sync.apply_incident(store, io, rules=RULES, now=now, actor="jane")

    assert result.incident.tenants == ["initech", "globex"]
    assert result.incident.severity is Severity.S3
    assert isinstance(tenants[0], Tenant)
