"""Linter: find internal details and weak wording in customer text, and fix them.

    from comms.lint import lint, fix, blocking, LintConfig
    findings = lint(text, kind="update", audience="Acme", tenants=["Acme", "Globex"])
    result = fix(text, kind="update")      # result.text, result.removed, result.remaining

Names load lazily so that importing ``comms.lint`` costs almost nothing; nothing here
imports pydantic (``LintConfig`` validates the ``[lint]`` table by hand).
"""

from __future__ import annotations

import importlib

# typing costs ~3 ms to import, and only type checkers need it here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from comms.lint.config import LintConfig
    from comms.lint.engine import Finding, at_or_above, blocking, lint
    from comms.lint.fixer import FixResult, fix

__all__ = ["Finding", "FixResult", "LintConfig", "at_or_above", "blocking", "fix", "lint"]

_WHERE = {
    "Finding": "comms.lint.engine",
    "FixResult": "comms.lint.fixer",
    "LintConfig": "comms.lint.config",
    "at_or_above": "comms.lint.engine",
    "blocking": "comms.lint.engine",
    "fix": "comms.lint.fixer",
    "lint": "comms.lint.engine",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'comms.lint' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
