"""Names a text gives away by its cues (cues.py): the precision details behind
Leak.NamedInText's examples in test_rules.py."""

from __future__ import annotations

from comms.lint import lint
from comms.lint.cues import cluster_names, first_name, names, person_names


def test_a_first_name_that_is_a_word_counts_only_when_never_in_lower_case() -> None:
    row = "| 09:15 | Ross evaluated the logs |\n"
    assert person_names(row) == {"Ross"}
    assert person_names(row + "The gross margin.\n") == {"Ross"}  # inside a word: not "ross"
    assert person_names(row + "we asked ross.\n") == set()
    # Found inside other words many times, and once on its own at the end.
    assert person_names(row + "across " * 40 + "ross\n") == set()
    assert person_names(row + "across " * 40) == {"Ross"}


def test_speakers_need_two_of_them_each_saying_a_sentence() -> None:
    notes = "Tamsin: Could we have seen this earlier?\nObed: Probably not, no traffic there.\n"
    # A name that is no word is looked for in lower case too (a chat nick).
    assert person_names(notes) == {"Tamsin", "Obed", "tamsin", "obed"}
    assert person_names("Tamsin: Could we have seen this earlier?\n") == set()
    assert person_names("Codespaces: degraded\nDependabot: delayed updates\n") == set()


def test_people_lists_and_fields() -> None:
    assert person_names("## Attendees\n\n- kvossler\n- Marek Ostaszewicz\n") >= {
        "kvossler",
        "Marek Ostaszewicz",
    }
    assert person_names("Author: Pellam Drost\n") >= {"Pellam Drost", "Pellam", "Drost"}
    assert person_names("## Attendees\n\n- RF, PW\n") == set()


def test_clusters_by_their_cues() -> None:
    assert cluster_names("our Vexmoor Kubernetes cluster") == {"Vexmoor"}
    assert cluster_names("the Kubernetes cluster Titan") == {"Titan"}
    assert cluster_names("the Kubernetes cluster Titan; titan is a moon") == set()
    assert cluster_names("the Redis cluster and the Production Kubernetes cluster") == set()
    assert cluster_names("cluster Titan") == set()  # an everyday word needs the platform


def test_public_and_audience_words_are_never_names() -> None:
    text = "our Acmecorp Kubernetes cluster; thanks, Acmecorp Team"
    assert "Acmecorp" in names(text)
    assert "Acmecorp" not in names(text, audience="Acmecorp Inc")
    assert "Acmecorp" not in names(text, public_domains=("acmecorp.example",))


def test_fields_in_any_case_and_several_on_a_line() -> None:
    assert {"Jorun Vasquell", "Idrin Tassaly"} <= person_names(
        "**Incident commander:** Jorun Vasquell. Reviewers: Idrin Tassaly, okel\n"
    )
    assert "Attendees" not in person_names("Attendees: Jorun Vasquell, Pim Oduya\nA: b c d e\n")


def test_slack_copies_and_thread_events() -> None:
    copied = "Oribe Castellan  10:41 AM\nthe rollout is stuck\nmvaskor  10:43 AM\nlooking\n"
    assert {"Oribe Castellan", "mvaskor"} <= person_names(copied)
    assert "qorvath-dev" in person_names("qorvath-dev commented 3 hours ago\nRolled back.\n")
    assert person_names("Update  10:30 AM\nAll good.\n") == set()


def test_timeline_deeds_in_the_present_tense() -> None:
    table = "| 08:04 | Ysolde acknowledges and starts investigating |\n"
    assert "Ysolde" in person_names(table)
    assert person_names("12:00 - Everything is back to normal.\n") == set()


def test_given_names_come_from_the_name_data_not_months_or_words() -> None:
    assert all(first_name(w) for w in ("Priya", "Wojciech", "Henrik"))
    assert not any(first_name(w) for w in ("May", "August", "Jan", "Will", "Grace", "Support"))


def _people(text: str) -> set[str]:
    return {text[f.start : f.end] for f in lint(text) if f.rule == "Leak.PersonName"}


def test_person_names_in_running_text() -> None:
    assert _people("Paged the on-call (Marcus Oyelaran) at once.") == {"Marcus Oyelaran"}
    assert _people("Later Anneliese suggested a pause; Raghav agreed.") == {"Anneliese", "Raghav"}
    assert _people("| 08:10 | Henrik and Mette identify a bad push |") == {"Henrik and Mette"}
    assert _people("Closed by Henrik; cc Signe") == {"Henrik", "Signe"}
    assert _people("Vaskeloth is looking at it.") == {"Vaskeloth"}


def test_no_person_in_product_names_or_sentence_starts() -> None:
    for text in (
        "GitHub Pages is degraded; Git Operations and API Requests are slow.",
        "Everything is back up. We're investigating; We'll post an update.",
        "Copilot Chat and Codespaces recovered. Grant Access is a button.",
        "By Monday the fix is out; thanks for your patience. Hi Team.",
        "Prometheus noticed it and Kubernetes restarted the pods.",
    ):
        assert _people(text) == set(), text
