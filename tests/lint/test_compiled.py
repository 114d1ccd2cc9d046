"""The store of compiled regexes that one-shot `comms lint` runs keep in the cache folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from comms.commands.lint import lint as lint_command
from comms.lint import compiled, lint
from comms.lint.compiled import PatternStore, cached, loads, store_path

SAMPLE = (
    "db1001 ran out of disk; see https://dashboards.gitlab.net/d/abc and @jdoe.\n"
    "| 10:05 | Orvald evaluated the logs |\nWe are investigating. Next update 10:00 UTC.\n"
)


@pytest.fixture(autouse=True)
def _no_store_left() -> object:
    yield
    compiled.install(None)


def test_a_stored_pattern_matches_as_the_compiled_one() -> None:
    source = r"(?P<host>[a-z]+\d+)(?::(?P<port>\d+))?"
    store = PatternStore()
    first = store.compile(source, re.IGNORECASE)
    again = loads(store.dumps()).compile(source, re.IGNORECASE)
    plain = re.compile(source, re.IGNORECASE)
    text = "DB1001:5432 and web7 and nothing"
    for regex in (first, again):
        assert [m.groupdict() for m in regex.finditer(text)] == [
            m.groupdict() for m in plain.finditer(text)
        ]
        assert regex.pattern == source
        assert regex.groupindex == plain.groupindex


def test_a_store_from_other_bytes_or_another_python_is_empty() -> None:
    assert loads(b"").patterns == {}
    assert loads(b"not marshal data").patterns == {}
    import marshal

    other = marshal.dumps((("2.7.0", 1, 4), {("a", 0): (0, b"", 0, {}, (None,))}, {}))
    assert loads(other).patterns == {}


def test_refused_code_is_compiled_again_from_the_source() -> None:
    store = PatternStore()
    store.compile("abc", 0)
    flags, code, groups, groupindex, indexgroup = store.patterns[("abc", 0)]
    store.patterns[("abc", 0)] = (flags, b"\xff" * len(code), groups, groupindex, indexgroup)
    regex = store.compile("abc", 0)
    assert regex.search("xxabc") is not None


def test_bad_patterns_still_raise() -> None:
    with pytest.raises(re.error):
        PatternStore().compile("(", 0)


FRESH = """
import json, sys
from pathlib import Path
from comms.lint import lint
from comms.lint.compiled import cached
text = sys.stdin.read()
folder = Path(sys.argv[1]) if len(sys.argv) > 1 else None
with cached(folder) as store:
    found = [f.to_dict() for f in lint(text, kind="update")]
print(json.dumps({"found": found, "changed": bool(store and store.changed)}))
"""


def _fresh(tmp_path: Path, *folder: str) -> dict[str, object]:
    """Lint SAMPLE in a fresh interpreter (no regex compiled yet), with the store in
    ``folder`` if given."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FRESH, *folder],
        input=SAMPLE,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_findings_are_the_same_with_a_store(tmp_path: Path) -> None:
    plain = _fresh(tmp_path)["found"]
    assert plain == [f.to_dict() for f in lint(SAMPLE, kind="update")]
    first = _fresh(tmp_path, str(tmp_path / "cache"))
    assert first == {"found": plain, "changed": True}  # filled the store
    assert store_path(tmp_path / "cache").is_file()
    second = _fresh(tmp_path, str(tmp_path / "cache"))
    assert second == {"found": plain, "changed": False}  # everything came from the file


def test_a_store_in_this_process_gives_the_same_findings(tmp_path: Path) -> None:
    plain = [f.to_dict() for f in lint(SAMPLE, kind="update")]
    with cached(tmp_path) as store:
        assert store is not None
        assert [f.to_dict() for f in lint(SAMPLE, kind="update")] == plain
    assert compiled.installed() is None


def test_an_unwritable_cache_folder_costs_only_the_speed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with cached(blocker / "below") as store:
        assert store is not None
        assert lint("db1001 is down") != []
    assert not (blocker / "below").exists()


def test_the_command_keeps_the_store_in_the_user_cache_folder(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "note.txt").write_text(SAMPLE, encoding="utf-8")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    env.pop("COMMS_CONFIG", None)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "comms", "lint", "note.txt"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            check=False,
        )

    first = run()
    stored = list((tmp_path / "cache" / "comms").glob("lint-regex-*.bin"))
    assert len(stored) == 1, first.stderr
    written = stored[0].stat().st_mtime_ns
    second = run()
    assert first.returncode == second.returncode == 1
    assert first.stdout == second.stdout
    assert "Leak.BareHost" in first.stdout
    assert stored[0].stat().st_mtime_ns == written  # nothing new to keep
    # The command in-process (click's runner) gives the same findings.
    result = CliRunner().invoke(lint_command, [str(tmp_path / "note.txt")])
    assert result.output.replace(str(tmp_path / "note.txt"), "note.txt") == first.stdout
