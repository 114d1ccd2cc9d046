"""The text with its findings marked, line by line: spans that overlap, cross lines, or have
no width, and the text itself never changed by the marking."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from web_support import NOW

from comms.web.views import diff_lines, marked_lines, marks, time_left


def _finding(start: int, end: int, level: str = "error", rule: str = "R.x") -> dict[str, Any]:
    return {"rule": rule, "level": level, "message": "m", "start": start, "end": end}


def _text_of(lines: Any) -> str:
    return "\n".join("".join(s.text for s in line.segments) for line in lines)


def test_overlapping_spans_take_the_worst_level_and_end_where_they_end() -> None:
    text = "Subject: x\n\nab cd ef\n"
    found = marks([_finding(12, 17, "warning"), _finding(15, 20, "error")], len(text))
    lines = marked_lines(text, found)
    assert _text_of(lines) == text.rstrip("\n")
    third = lines[2]
    assert [(s.text, s.level, s.marks, s.ends) for s in third.segments] == [
        ("ab ", "warning", (1,), ()),
        ("cd", "error", (1, 2), (1,)),
        (" ef", "error", (2,), (2,)),
    ]
    assert [m.number for m in third.notes] == [1, 2]


def test_a_span_across_lines_is_marked_on_each_and_noted_where_it_starts() -> None:
    text = "one\ntwo\nthree"
    lines = marked_lines(text, marks([_finding(2, 9)], len(text)))
    assert [s.text for s in lines[0].segments] == ["on", "e"]
    assert lines[1].segments[0].level == "error"
    assert lines[2].segments[0].text == "t"
    assert [len(line.notes) for line in lines] == [1, 0, 0]


def test_findings_without_a_span_are_left_out_of_the_lines() -> None:
    text = "Subject: x\n\nbody\n"
    found = marks([_finding(0, 0, "warning"), _finding(99, 120)], len(text))
    lines = marked_lines(text, found)
    assert all(s.level is None for line in lines for s in line.segments)
    assert [m.end - m.start for m in found] == [0, 0]  # clipped to the text


@given(
    st.text(alphabet="ab \n\u200b", max_size=40),
    st.lists(st.tuples(st.integers(0, 45), st.integers(0, 45)), max_size=6),
)
def test_marking_never_changes_the_text(text: str, spans: list[tuple[int, int]]) -> None:
    found = marks([_finding(min(a, b), max(a, b)) for a, b in spans], len(text))
    lines = marked_lines(text, found)
    shown = _text_of(lines)
    assert shown in (text, text.removesuffix("\n"))


def test_diff_lines_and_time_left() -> None:
    kinds = [d.kind for d in diff_lines("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n z\n")]
    assert kinds == ["head", "head", "hunk", "del", "add", "same"]
    from datetime import timedelta

    assert time_left(NOW + timedelta(minutes=75), NOW) == "in 1h 15m"
    assert time_left(NOW - timedelta(minutes=5), NOW) == "overdue by 5m"
    assert time_left(None, NOW) == "—"
