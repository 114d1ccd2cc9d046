"""Tenants: `tenants add` never replaces one silently, and the model refuses a URL that is
not http(s) with a host, an e-mail address that is not one, and any value over the cap,
wherever the tenant comes from (add, import, the store, Switchboard)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from foundation_support import fails, ok, run_comms

from comms.limits import MAX_INPUT_BYTES, MAX_VALUE_BYTES
from comms.models import Contact, Tenant, validate


def listed() -> list[dict[str, object]]:
    return json.loads(ok(["tenants", "list", "--format", "json"]).stdout)  # type: ignore[no-any-return]


def test_add_refuses_to_replace_an_existing_tenant() -> None:
    ok(["tenants", "add", "acme", "--name", "Acme Corp", "--contact", "ops@acme.example"])
    fails(["tenants", "add", "acme", "--name", "Other"], 2, "tenant 'acme' exists", "--update")
    assert [(t["name"], len(t["contacts"])) for t in listed()] == [("Acme Corp", 1)]  # type: ignore[arg-type]
    out = ok(["tenants", "add", "acme", "--name", "Acme Inc", "--update"]).stdout
    assert out == "tenant acme (Acme Inc) updated\n"
    assert [t["name"] for t in listed()] == ["Acme Inc"]


def test_update_of_a_missing_tenant_adds_it() -> None:
    assert ok(["tenants", "add", "acme", "--name", "Acme", "--update"]).stdout == (
        "tenant acme (Acme) saved\n"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--url", "acme.gitlab-dedicated.com"], "http:// or https://"),
        (["--url", "ftp://acme.example"], "http:// or https://"),
        (["--url", "https://"], "host"),
        (["--url", "https://acme .example"], "http:// or https://"),
        (["--url", "javascript:alert(1)"], "http:// or https://"),
        (["--contact", "ops"], "e-mail"),
        (["--contact", "ops@acme"], "e-mail"),
        (["--contact", "ops@@acme.example"], "e-mail"),
        (["--contact", "ops @acme.example"], "e-mail"),
        (["--contact", "<ops@acme.example>"], "e-mail"),
        (["--csm", "casey"], "e-mail"),
        (["--ase", "a@b.c\nBcc: x@y.z"], "e-mail"),
        (["--name", "   "], "name"),
    ],
)
def test_add_refuses_bad_values(args: list[str], needle: str) -> None:
    base = ["tenants", "add", "acme", *(["--name", "Acme"] if "--name" not in args else [])]
    fails([*base, *args], 2, needle)
    assert listed() == []


def test_good_values_pass() -> None:
    ok(
        [
            "tenants",
            "add",
            "acme",
            "--name",
            "Acme",
            "--url",
            "https://acme.gitlab-dedicated.com",
            "--contact",
            "ops+pager@acme.example",
            "--csm",
            "Casey.Smith@gitlab.com",
        ]
    )
    ok(["tenants", "add", "local", "--name", "Local", "--url", "http://127.0.0.1:8080/"])


def test_import_gets_the_same_rules(tmp_path: Path) -> None:
    data = [
        {"id": "acme", "name": "Acme", "url": "https://acme.example"},
        {"id": "globex", "name": "Globex", "contacts": [{"email": "not an address"}]},
    ]
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    fails(["tenants", "import", str(path)], 2, "tenant 2", "e-mail", "nothing was imported")
    data[1] = {"id": "globex", "name": "Globex", "url": "globex.example"}
    path.write_text(json.dumps(data), encoding="utf-8")
    fails(["tenants", "import", str(path)], 2, "tenant 2", "http:// or https://")
    assert listed() == []


def test_the_model_is_where_the_rules_live() -> None:
    """Switchboard sync and the stores build tenants with the constructor: same rules."""
    with pytest.raises(ValueError, match="http:// or https://"):
        Tenant(id="acme", name="Acme", url="acme.example")
    with pytest.raises(ValueError, match="e-mail"):
        Contact(email="nobody")
    with pytest.raises(ValueError, match="e-mail"):
        validate(Tenant, {"id": "a", "name": "A", "contacts": [{"email": "x"}]})
    from comms.adapters.rest import tenant_from_record

    with pytest.raises(ValueError, match="e-mail"):
        tenant_from_record({"id": "acme", "name": "Acme", "operational_emails": ["ops"]})


def test_values_over_the_cap_are_refused() -> None:
    big = "x" * (MAX_VALUE_BYTES + 1)
    fails(["tenants", "add", "acme", "--name", big], 2, "tenant name", "64 KiB")
    fails(["tenants", "add", "acme", "--name", "A", "--alias", big], 2, "alias", "64 KiB")
    fails(["tenants", "add", "acme", "--name", "A", "--url", f"https://{big}.example"], 2, "64 KiB")
    assert listed() == []
    fine = "x" * 200
    ok(["tenants", "add", "acme", "--name", fine])


def test_import_of_an_endless_file_stops_at_the_cap(tmp_path: Path) -> None:
    done = run_comms(["tenants", "import", "/dev/zero"], cwd=tmp_path, timeout=30)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert "1 MiB" in done.stderr
    big = tmp_path / "big.json"
    big.write_text(" " * (MAX_INPUT_BYTES + 1) + "[]", encoding="utf-8")
    fails(["tenants", "import", str(big)], 2, "1 MiB")


def test_a_stored_tenant_from_an_older_version_is_one_line(tmp_path: Path) -> None:
    """A tenant stored before URLs were checked is reported, not a traceback, and
    `--update` replaces it."""
    import sqlite3

    ok(["tenants", "add", "acme", "--name", "Acme"])
    db = sqlite3.connect(tmp_path / "comms.db")
    with db:
        db.execute(
            "UPDATE tenants SET data = ? WHERE id = 'acme'",
            (json.dumps({"id": "acme", "name": "Acme", "url": "acme.example"}),),
        )
    db.close()
    done = run_comms(["tenants", "list"], cwd=tmp_path)
    assert "Traceback" not in done.stderr
    ok(["tenants", "add", "acme", "--name", "Acme", "--url", "https://acme.example", "--update"])
    assert [t["url"] for t in listed()] == ["https://acme.example"]
