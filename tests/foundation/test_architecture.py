"""The layering the design promises, checked on the source: a broken promise fails here.

- one composition root: outside ``adapters/``, only ``comms/bootstrap.py`` imports
  ``comms.adapters``;
- the core does no I/O of its own: no click, no environment, no adapters;
- commands are thin: parse → one core call → print, each command function short;
- the review server (``comms/web``) is a face over the core like the CLI: no adapters, no
  click, no commands, no environment; its ``[serve]`` check imports nothing heavy.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "comms"
CORE = [
    "models.py",
    "records.py",
    "render.py",
    "cadence.py",
    "alerts.py",
    "review.py",
    "delivery.py",
    "service.py",
    "times.py",
    "errors.py",
    "ports.py",
    "watch.py",
    "limits.py",
    "tenants.py",
    "incidentio",
    "lint",
]
# Longest a click command function may be, body and decorators excluded.
MAX_COMMAND_LINES = 40


def _modules(*names: str) -> list[Path]:
    found: list[Path] = []
    for name in names:
        path = PACKAGE / name
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
    return found


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_the_composition_root_imports_adapters() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "bootstrap.py"
        and any(name.startswith("comms.adapters") for name in _imports(path))
    ]
    assert offenders == [], f"these import comms.adapters directly: {offenders}"


def test_the_rule_above_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from comms.adapters.rest import from_settings\n")
    assert "comms.adapters.rest" in _imports(sample)


@pytest.mark.parametrize("path", _modules(*CORE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_has_no_cli_environment_or_adapters(path: Path) -> None:
    imports = _imports(path)
    assert not {n for n in imports if n == "click" or n.startswith("click.")}, "imports click"
    assert not {n for n in imports if n.startswith("comms.adapters")}, "imports an adapter"
    assert not {n for n in imports if n.startswith("comms.commands")}, "imports a command"
    source = path.read_text(encoding="utf-8")
    assert "os.environ" not in source, "reads the environment"
    assert "getenv" not in source, "reads the environment"


def _command_functions() -> list[object]:
    params: list[object] = []
    for path in _modules("commands"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            decorated = any(
                "command" in ast.unparse(d) or "group" in ast.unparse(d)
                for d in node.decorator_list
            )
            if decorated:
                start = node.body[0].lineno
                if isinstance(node.body[0], ast.Expr) and isinstance(
                    node.body[0].value, ast.Constant
                ):
                    start = node.body[0].end_lineno or start  # the docstring is help text
                length = (node.end_lineno or start) - start
                params.append(pytest.param(length, id=f"{path.stem}.{node.name}"))
    return params


@pytest.mark.parametrize("length", _command_functions())
def test_command_functions_are_short(length: int) -> None:
    assert length <= MAX_COMMAND_LINES, (
        f"{length} lines: move the rule into the core and call it once"
    )


@pytest.mark.parametrize("path", _modules("web"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_web_layer_is_a_face_over_the_core(path: Path) -> None:
    imports = _imports(path)
    assert not {n for n in imports if n.startswith("comms.adapters")}, "imports an adapter"
    assert not {n for n in imports if n.startswith("comms.bootstrap")}, "imports the root"
    assert not {n for n in imports if n.startswith("comms.commands")}, "imports a command"
    assert not {n for n in imports if n == "click" or n.startswith("click.")}, "imports click"
    source = path.read_text(encoding="utf-8")
    assert "os.environ" not in source, "reads the environment"
    assert "getenv" not in source, "reads the environment"


def _top_level_imports(path: Path) -> set[str]:
    """What a module imports when it is imported (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("name", ["web/__init__.py", "web/config.py", "commands/serve.py"])
def test_what_every_command_may_load_of_the_server_is_light(name: str) -> None:
    heavy = {"starlette", "uvicorn", "jinja2", "comms.web.app", "comms.web.server"}
    loaded = {
        n for n in _top_level_imports(PACKAGE / name) if n.split(".")[0] in heavy or n in heavy
    }
    assert loaded == set(), f"{name} imports {loaded} at import time"
