"""`comms lint learn`: learning internal names from small internal texts (our own fixtures),
and the command, next to `comms lint` that must keep working exactly as before."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from comms.commands.lint import lint
from comms.lint import LintConfig
from comms.lint import lint as run_lint
from comms.lint.learn import HANDLE, NAME, PERSON, learn, render
from comms.lint.vocabulary import parse

CHAT = """\
# Incident 2031-04-02: builds stuck

>qorvath [1:26 PM]
builds are stuck on the Brannock cluster, can someone look?
>zelmira2x [1:27 PM]
looking now @qorvath
[10:02] <tovenk> restarting the runners on Brannock
10:05 praxilde: done, the Brannock Kubernetes cluster is healthy again
"""
ISSUE = """\
      Closed Opened 2 years ago by                 Odalys Fenwright

    Outage on the mirror
    22 29 - @vantrell ran the migration on the Brannock cluster
    Pingdom detected the problem; Prometheus alerted too.

                     Odalys Fenwright @ofenwright · 2 years ago
                     @vantrell can you add the timeline?

                     Hesper Quillon 🌴 @hquillon mentioned in issue #12 2 years ago
"""
POSTMORTEM = """\
# PM-7 Ingress outage

The Traefik ingress on cluster Brannock returned 503s. We upgraded Traefik and Redis.
Logs from the kafka cluster were late; the Kubernetes cluster stayed up.

| Time  | Event |
| 09:00 | Ysolde evaluated the ingress logs |
| 09:20 | Ysolde reverted the change |
| 09:30 | Support was informed |

## Attendees

- drunvik
- Marek Ostaszewicz
- RF, PW
"""
DOCS = [CHAT, ISSUE, POSTMORTEM]


def learned(docs: list[str] = DOCS, **kw: object) -> dict[str, str]:
    return {e.text: e.category for e in learn(docs, **kw)}  # type: ignore[arg-type]


def test_user_names_from_mentions_chat_speakers_and_people_lists() -> None:
    got = learned()
    for name in ("qorvath", "zelmira2x", "tovenk", "praxilde", "vantrell", "ofenwright"):
        assert got.get(name) == HANDLE, name
    assert got.get("drunvik") == HANDLE


def test_people_from_display_names_by_lines_lists_and_timelines() -> None:
    got = learned()
    for name in ("Odalys Fenwright", "Hesper Quillon", "Marek Ostaszewicz", "Ysolde"):
        assert got.get(name) == PERSON, name
    # The surname of a learned full name, on its own (not the first name).
    assert got.get("Fenwright") == PERSON


def test_names_of_clusters_from_their_nouns() -> None:
    assert learned().get("Brannock") == NAME


def test_never_everyday_words_products_or_abbreviations() -> None:
    got = learned()
    for word in ("Traefik", "Redis", "kafka", "Kubernetes", "Pingdom", "Prometheus", "Support"):
        assert word not in got, word
    for word in ("RF", "PW", "Outage", "Incident", "Closed", "Event", "here", "ingress"):
        assert word not in got, word


def test_public_and_tenant_names_are_never_learned() -> None:
    got = learned([*DOCS, "cluster Acmecorp is ours; Acmecorp cluster again. @acmecorp-bot"])
    assert "Acmecorp" in got
    got = learned([*DOCS, "cluster Acmecorp is ours; Acmecorp cluster again."], public=["acmecorp"])
    assert "Acmecorp" not in got
    assert "Brannock" not in learned(public=["brannock.example"])


def test_a_weak_cue_needs_two_sightings() -> None:
    assert "Zorvane" not in learned(["The Zorvane cluster."])
    assert learned(["The Zorvane cluster.", "Zorvane again."]).get("Zorvane") == NAME


def test_names_the_rules_already_catch_are_not_learned_again() -> None:
    got = learned(["cluster db1001 and db1001 host", "the nonprod-log cluster, nonprod-log"])
    assert "db1001" not in got
    assert "nonprod-log" not in got


def test_the_file_round_trips_and_flags_what_was_learned(tmp_path: Path) -> None:
    entries = learn(DOCS)
    text = render(entries, documents=len(DOCS))
    assert text.startswith("# comms lint vocabulary")
    assert parse(text) == tuple(e.text for e in entries)
    (tmp_path / "v.txt").write_text(text, encoding="utf-8")
    cfg = LintConfig.model_validate({"vocabulary": "v.txt"}, context={"base_dir": tmp_path})
    found = run_lint("Builds on Brannock failed; Odalys Fenwright and tovenk fixed it.", config=cfg)
    assert [f.match for f in found if f.rule == "Leak.Vocabulary"] == [
        "Brannock",
        "Odalys Fenwright",
        "tovenk",
    ]
    assert run_lint("Builds failed; our engineers fixed it.", config=cfg) == []


def test_first_names_that_are_words_only_from_deeds_and_never_in_lower_case() -> None:
    """ "John" is an everyday word to the lexicon; named by what he did, and never written
    in lower case, he is a person.  "Will" is written in lower case ("will"): never."""
    timeline = "| 09:00 | John evaluated the logs |\n| 09:20 | John reverted it |\n"
    assert learned([timeline]).get("John") == PERSON
    assert "John" not in learned([timeline, "the john of the house"])
    assert "Will" not in learned(["| 09:00 | Will evaluated it |\n| 09:10 | Will asked |\nwe will"])
    assert "John" not in learned(["John Smith wrote a book. John liked it."])


def test_people_from_thanks_meeting_notes_and_action_owners() -> None:
    notes = (
        "  Tamsin: Could we have seen this on staging first?\n"
        "  Obed: Probably not, the canary had no traffic.\n"
        "  Tamsin: Then we add synthetic traffic to the canary.\n"
        "  Obed: Agreed, I will write the change today.\n"
        "- Review the alert thresholds (Yorrin to follow up)\n"
        "- Tune the pool (Yorrin will check)\n"
        "Caught early, thanks, Brannoc Quillfeather. Thanks Brannoc Quillfeather again.\n"
    )
    got = learned([notes])
    for name in ("Tamsin", "Obed", "Yorrin", "Brannoc Quillfeather"):
        assert got.get(name) == PERSON, (name, got)


def test_a_user_name_that_is_a_first_name() -> None:
    """ "@Katharine" is a handle; a first name the lexicon counts as a word is kept when the
    documents never write it in lower case."""
    assert learned(["@Marisol can you look? @Marisol thanks"]).get("Marisol") == HANDLE
    assert "Grace" not in learned(["@Grace can you look? grace period"])


def test_clusters_named_before_a_parenthesised_platform() -> None:
    docs = ["Users deploying to Vexmoor (Kubernetes cluster) saw timeouts.", "Vexmoor again."]
    assert learned(docs).get("Vexmoor") == NAME


def test_learning_nothing_is_fine() -> None:
    assert learn([]) == []
    assert learn(["We restarted the service and it recovered."]) == []
    assert render([], documents=0).count("\n") == 5


# -- the command ----------------------------------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "issues").mkdir(parents=True)
    (folder / ".git").mkdir()
    (folder / "chat.md").write_text(CHAT, encoding="utf-8")
    (folder / "issues" / "outage.txt").write_text(ISSUE, encoding="utf-8")
    (folder / "PM-7 no extension").write_text(POSTMORTEM, encoding="utf-8")
    (folder / ".git" / "secret.md").write_text("@hiddenuser1 here", encoding="utf-8")
    (folder / "LICENSE").write_text("Copyright Quentor Blaxwell @qblax", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG\x00\x00 @pnguser9")
    (folder / "latin1.txt").write_bytes(b"caf\xe9 @latinuser7")
    return folder


def test_learn_writes_a_vocabulary_that_lint_then_uses(
    runner: CliRunner, docs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "vocabulary.txt"
    result = runner.invoke(lint, ["learn", str(docs), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    words = parse(out.read_text(encoding="utf-8"))
    assert {"qorvath", "Odalys Fenwright", "Brannock", "drunvik"} <= set(words)
    assert not {"hiddenuser1", "qblax", "Quentor Blaxwell", "pnguser9"} & set(words)
    assert "learned" in result.output
    assert "from 3 documents" in result.output
    assert "skipped" in result.output
    assert "latin1.txt" in result.output
    (tmp_path / "comms.toml").write_text('[lint]\nvocabulary = "vocabulary.txt"\n')
    note = tmp_path / "note.txt"
    note.write_text("Builds on Brannock are failing; qorvath is on it.\n", encoding="utf-8")
    result = runner.invoke(lint, ["--config", str(tmp_path / "comms.toml"), str(note)])
    assert result.exit_code == 1
    assert result.output.count("Leak.Vocabulary") == 2


def test_learn_prints_the_vocabulary_or_json(runner: CliRunner, docs: Path) -> None:
    result = runner.invoke(lint, ["learn", str(docs / "chat.md")], catch_exceptions=False)
    assert result.exit_code == 0
    assert re.search(r"^qorvath +# ", result.output, re.MULTILINE)
    result = runner.invoke(
        lint, ["learn", "--format", "json", str(docs / "chat.md")], catch_exceptions=False
    )
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert {"entry": "qorvath", "category": "handle"}.items() <= rows[0].items()
    assert set(rows[0]) == {"entry", "category", "count", "documents", "cues"}


def test_learn_reads_standard_input(runner: CliRunner) -> None:
    result = runner.invoke(lint, ["learn", "-"], input=CHAT, catch_exceptions=False)
    assert result.exit_code == 0
    assert "zelmira2x" in result.output


def test_learn_usage_errors(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(lint, ["learn"])
    assert result.exit_code == 2
    assert "PATH" in result.output
    result = runner.invoke(lint, ["learn", str(tmp_path / "missing.md")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_lint_still_lints_paths_stdin_and_options_first(runner: CliRunner, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Hi @alice, we are investigating.\n", encoding="utf-8")
    for args, stdin in (([str(note)], None), (["-"], note.read_text()), ([], note.read_text())):
        result = runner.invoke(lint, args, input=stdin)
        assert result.exit_code == 1, args
        assert "Leak.Handle" in result.output, args
    result = runner.invoke(lint, ["--format", "json", "--kind", "update", str(note)])
    assert result.exit_code == 1
    assert '"rule": "Leak.Handle"' in result.output
    result = runner.invoke(lint, ["--bogus"])
    assert result.exit_code == 2
    assert "Usage: lint [OPTIONS] [PATH ...|-]" in result.output


def test_a_file_named_learn_is_linted_as_a_path(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("learn").write_text("ping @bob\n", encoding="utf-8")
    result = runner.invoke(lint, ["./learn"])
    assert result.exit_code == 1
    assert "./learn:1:6: error Leak.Handle" in result.output


def test_help_lists_learn_and_keeps_the_lint_usage(runner: CliRunner) -> None:
    result = runner.invoke(lint, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "[PATH ...|-]" in result.output
    assert "--fix" in result.output
    assert "Commands:" in result.output
    assert "learn" in result.output
    result = runner.invoke(lint, ["learn", "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Usage: lint learn [OPTIONS] PATH..." in result.output


def test_through_the_comms_entry_point(runner: CliRunner, tmp_path: Path) -> None:
    from comms.cli import cli

    result = runner.invoke(cli, ["lint", "--help"], prog_name="comms", catch_exceptions=False)
    assert "Usage: comms lint [OPTIONS] [PATH ...|-]" in result.output
    assert "learn" in result.output
    result = runner.invoke(cli, ["lint", "learn", "-"], input=CHAT, prog_name="comms")
    assert result.exit_code == 0
    assert "qorvath" in result.output
    result = runner.invoke(cli, ["lint", "-"], input="db1001 is down\n", prog_name="comms")
    assert result.exit_code == 1
    assert "<stdin>:1:1: error Leak.BareHost" in result.output
