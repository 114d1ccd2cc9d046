"""The README's library example runs as written: open, draft, approve, send to the stub."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _library_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Library") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, "the Library section has no python example"
    return found.group(1)


def test_the_readme_library_example_sends_once(stub, tmp_path: Path) -> None:
    code = _library_example()
    assert "delivery.send" in code
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "COMMS_DATABASE_URL": str(tmp_path / "library.db")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "('acme', 'delivered', 'ntf_" in result.stdout
    posted = stub.http.get("/api/v1/notifications", params={"tenant_id": "acme"}).json()
    assert [n["status"] for n in posted["data"]] == ["sent"]
