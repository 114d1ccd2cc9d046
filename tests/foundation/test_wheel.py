"""The built wheel works outside the source tree: adapters and templates live inside comms."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from foundation_support import KINDS, NOW_ISO, REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Build the wheel from the committed sources (what a fresh clone builds) and install it
    into a bare folder; outside a git checkout, from a copy of the files."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    parts = ["pyproject.toml", "README.md", "comms", "adapters", "templates"]
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", "HEAD", *parts],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if archive.returncode == 0:
        subprocess.run(
            ["tar", "-x", "-C", str(source)], input=archive.stdout, check=True, timeout=60
        )
    else:
        for name in parts:
            if (REPO / name).is_dir():
                shutil.copytree(
                    REPO / name,
                    source / name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            else:
                shutil.copy2(REPO / name, source / name)
    dist = root / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    # --no-isolation builds with this environment's setuptools: the test extra must bring
    # setuptools>=70.1 (bdist_wheel built in; a fresh Python 3.11 venv has 65.5).
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = dist.glob("comms-*.whl")
    site = root / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert pip.returncode == 0, pip.stderr
    return wheel, site


def bare_python(
    site: Path, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Python without site (-S: no editable-install finder) or the cwd on sys.path (-P), with
    only the installed wheel and, after it, the third-party dependencies importable."""
    deps = sysconfig.get_paths()["purelib"]
    environ = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{deps}", **(env or {})}
    return subprocess.run(
        [sys.executable, "-S", "-P", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        check=False,
        timeout=60,
    )


def test_wheel_contents(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"comms", next(t for t in tops if t.endswith(".dist-info"))}, tops
    assert "comms/adapters/sqlite_store.py" in names
    assert "comms/adapters/__init__.py" in names
    assert {f"comms/templates/{k}.txt.j2" for k in KINDS} <= set(names)
    assert "comms/__main__.py" in names
    assert "comms/py.typed" in names
    assert "comms = comms.cli:main" in scripts


def test_wheel_imports_from_its_own_files(installed: tuple[Path, Path], tmp_path: Path) -> None:
    _, site = installed
    code = f"""
import importlib.util, json, sys
import comms, comms.adapters.sqlite_store, comms.render, comms.templates
from comms.render import BUILTIN_DIR, Renderer
print(json.dumps({{
    "comms": comms.__file__,
    "store": comms.adapters.sqlite_store.__file__,
    "templates": str(BUILTIN_DIR),
    "names": Renderer().names(),
    "adapters_top": importlib.util.find_spec("adapters") is not None,
    "templates_top": importlib.util.find_spec("templates") is not None,
    "repo_on_path": any(p.rstrip("/") == {str(REPO)!r} for p in sys.path),
}}))
"""
    result = bare_python(site, tmp_path, "-c", code)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("comms", "store", "templates"):
        assert Path(data[key]).is_relative_to(site), (key, data[key])
    assert data["names"] == sorted(KINDS)
    assert data["adapters_top"] is False
    assert data["templates_top"] is False
    assert data["repo_on_path"] is False


def test_wheel_cli_help_and_a_draft(installed: tuple[Path, Path], tmp_path: Path) -> None:
    _, site = installed
    help_ = bare_python(site, tmp_path, "-m", "comms", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "Commands:" in help_.stdout
    env = {"COMMS_NOW": NOW_ISO, "COMMS_DATABASE_URL": str(tmp_path / "wheel.db")}
    steps = [
        ["tenants", "add", "acme", "--name", "Acme Corp"],
        ["incident", "open", "--tenant", "acme", "--severity", "S1", "--title", "Sign-in failures"],
        [
            "draft",
            "update",
            "--incident",
            "INC-1",
            "--set",
            "impact=Users cannot sign in",
            "--set",
            "actions=We are restoring sign-in",
            "--format",
            "json",
        ],
    ]
    for args in steps:
        result = bare_python(site, tmp_path, "-m", "comms", *args, env=env)
        assert result.returncode == 0, result.stderr
    draft = json.loads(result.stdout)
    assert draft["subject"] == "Update: Sign-in failures"
    assert "Next update: by 2026-11-27 15:30 UTC" in draft["body"]
    listed = bare_python(
        site, tmp_path, "-m", "comms", "templates", "list", "--format", "json", env=env
    )
    assert [t["name"] for t in json.loads(listed.stdout)] == sorted(KINDS)
