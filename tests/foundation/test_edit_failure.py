"""`draft --edit` when the editor cannot run or fails: one line, exit 3 (operational, as
the README's table has it), and the rendered revision stays stored."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from foundation_support import fails, ok

EDIT = ["draft", "update", "--set", "impact=a", "--set", "actions=b", "--edit"]


@pytest.mark.parametrize(
    ("editor", "needle"),
    [
        (f"{sys.executable} -c 'import sys; sys.exit(4)'", "Editing failed"),
        ("/nonexistent/editor", "No such file"),
    ],
)
def test_a_failing_editor_is_exit_3(
    s1: str, editor: str, needle: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDITOR", editor)
    line = fails([*EDIT, "--incident", s1], 3, "editor", needle, "EDITOR")
    assert "draft 1" in line
    listed = json.loads(ok(["drafts", "list", "--format", "json"]).stdout)
    assert [d["revision"] for d in listed] == [1]
