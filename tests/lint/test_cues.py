"""Names a text gives away by its cues (cues.py): the precision details behind
Leak.NamedInText's examples in test_rules.py."""

from __future__ import annotations

from comms.lint.cues import cluster_names, names, person_names


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
    assert person_names(notes) == {"Tamsin", "Obed"}
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
