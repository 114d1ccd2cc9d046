"""The ``[lint]`` table of comms.toml, validated.

A plain class with a hand-written check rather than a pydantic model: ``comms lint`` runs
in editors and hooks on every save, and importing pydantic and building a model costs
45-60 ms of a process whose whole budget is three times an empty interpreter's start-up.
The table is nine keys of strings, lists of strings and one mapping; ``model_validate``
and ``model_fields`` keep the names callers already use.
"""

from __future__ import annotations

from pathlib import Path

from comms.errors import ConfigError
from comms.lint.engine import (
    DEFAULT_INTERNAL_URL_PREFIXES,
    DEFAULT_PUBLIC_DOMAINS,
    DEFAULT_SUPPORT_EMAILS,
)
from comms.lint.rules import LEVELS, PackError, parse_pack

# typing costs ~3 ms to import, and only type checkers need it here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, ClassVar

RULE_LEVELS = ("off", *LEVELS)
_LISTS = ("public_domains", "support_emails", "internal_url_prefixes", "roster", "tenants", "packs")


class LintConfigError(ValueError):
    """The ``[lint]`` table is wrong: ``problems`` holds (key, message) pairs, in key order."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))

    def errors(self) -> list[dict[str, Any]]:
        """The problems as ``{"loc": (key,), "msg": message}`` dicts."""
        return [{"loc": (key,), "msg": message} for key, message in self.problems]


class LintConfig:
    """Linter settings: allow-lists, roster, known tenants, extra packs, rule levels.

    ``public_domains`` replaces the default list (GitLab's public domains); a domain also
    allows its subdomains, so ``gitlab-dedicated.com`` allows ``acme.gitlab-dedicated.com``
    (but not one named like infrastructure, ``nfs-file-02.stor.gitlab.com``, unless listed).
    ``internal_url_prefixes`` (replaces the defaults: GitLab's operations projects, ops
    instance, dashboards and logs) are host or host/path prefixes that stay internal on any
    domain, e.g. ``gitlab.com/gitlab-com/gl-infra/``; the path covers what is below it.
    ``packs`` are TOML files, relative to ``base_dir`` (the folder of comms.toml, given as
    ``context={"base_dir": ...}`` to ``model_validate``, else the working folder); they are
    read once here, so linting itself does no I/O.  ``rules`` maps a rule id to ``off`` or a
    level.  ``vocabulary`` is a file of internal names (``comms lint learn`` writes one; see
    vocabulary.py), relative to ``base_dir``, also read here: each name it holds is an error
    (Leak.Vocabulary).

    Read-only once built; a wrong value raises ``LintConfigError`` (a ``ValueError``) naming
    every wrong key.
    """

    __slots__ = (
        "_pack_sources",
        "_vocabulary",
        "fail_level",
        "internal_url_prefixes",
        "packs",
        "public_domains",
        "roster",
        "rules",
        "support_emails",
        "tenants",
        "vocabulary",
    )

    public_domains: list[str]
    support_emails: list[str]
    internal_url_prefixes: list[str]
    roster: list[str]
    tenants: list[str]
    packs: list[str]
    rules: dict[str, str]
    fail_level: str
    vocabulary: str | None
    _pack_sources: tuple[tuple[str, str], ...]
    _vocabulary: tuple[str, ...]

    # The keys of the table and their defaults (a list default is copied for each config).
    model_fields: ClassVar[dict[str, Any]] = {
        "public_domains": DEFAULT_PUBLIC_DOMAINS,
        "support_emails": DEFAULT_SUPPORT_EMAILS,
        "internal_url_prefixes": DEFAULT_INTERNAL_URL_PREFIXES,
        "roster": (),
        "tenants": (),
        "packs": (),
        "rules": {},
        "fail_level": "error",
        "vocabulary": None,
    }

    def __init__(self, *, base_dir: Path | str | None = None, **values: Any) -> None:
        problems: list[tuple[str, str]] = []
        for key in values:
            if key not in self.model_fields:
                problems.append((key, f"unknown key (known: {', '.join(self.model_fields)})"))
        set_ = object.__setattr__
        for key in _LISTS:
            value = values.get(key, self.model_fields[key])
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                set_(self, key, list(value))
            else:
                problems.append((key, 'must be a list of strings like ["a", "b"]'))
                set_(self, key, [])
        rules = values.get("rules", {})
        if isinstance(rules, dict) and all(
            isinstance(k, str) and v in RULE_LEVELS for k, v in rules.items()
        ):
            set_(self, "rules", dict(rules))
        else:
            problems.append(
                ("rules", 'must map rule ids to "off", "error", "warning" or "suggestion"')
            )
            set_(self, "rules", {})
        level = values.get("fail_level", "error")
        if level not in LEVELS:
            problems.append(("fail_level", 'must be "error", "warning" or "suggestion"'))
            level = "error"
        set_(self, "fail_level", level)
        vocabulary = values.get("vocabulary")
        if vocabulary is not None and not isinstance(vocabulary, str):
            problems.append(("vocabulary", "must be a file name (a string)"))
            vocabulary = None
        set_(self, "vocabulary", vocabulary)
        base = Path("." if base_dir is None else base_dir)
        set_(self, "_pack_sources", _read_packs(base, self.packs, problems))
        words: tuple[str, ...] = ()
        if vocabulary is not None:
            try:
                words = _read_vocabulary(base / vocabulary)
            except ValueError as exc:
                problems.append(("vocabulary", str(exc)))
        set_(self, "_vocabulary", words)
        if problems:
            raise LintConfigError(problems)

    @classmethod
    def model_validate(
        cls, table: Mapping[str, Any], *, context: Mapping[str, Any] | None = None
    ) -> LintConfig:
        """Validate a raw ``[lint]`` table; ``context={"base_dir": folder}`` is where pack and
        vocabulary paths are relative to."""
        if not isinstance(table, dict):
            raise LintConfigError([("(table)", "must be a table")])
        if "base_dir" in table:
            raise LintConfigError([("base_dir", "unknown key")])
        return cls(base_dir=(context or {}).get("base_dir"), **table)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"LintConfig is read-only: cannot set '{name}'")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"LintConfig is read-only: cannot delete '{name}'")

    def _key(self) -> tuple[Any, ...]:
        return tuple(repr(getattr(self, name)) for name in self.model_fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LintConfig):
            return NotImplemented
        return self._key() == other._key() and self._pack_sources == other._pack_sources

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.model_fields)
        return f"LintConfig({shown})"

    def vocabulary_words(self) -> tuple[str, ...]:
        """The names of the vocabulary file, read when the config was validated."""
        return self._vocabulary

    def pack_sources(self) -> tuple[tuple[str, str], ...]:
        """The extra packs as (name, TOML text), read when the config was validated."""
        return self._pack_sources


def _read_packs(
    base: Path, names: list[str], problems: list[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """Each pack file's (name, text), checked by parsing it; a missing or malformed one is
    a problem of ``packs``."""
    sources = []
    for name in names:
        path = base / name
        if not path.is_file():
            problems.append(("packs", f"pack file '{path}' not found"))
            continue
        text = path.read_text(encoding="utf-8")
        try:
            parse_pack(path.stem, text)
        except PackError as exc:
            problems.append(("packs", str(exc)))
            continue
        sources.append((path.stem, text))
    return tuple(sources)


def _read_vocabulary(path: Path) -> tuple[str, ...]:
    """The names of a vocabulary file; a missing, unreadable or malformed one is a
    ValueError naming the file (and the line)."""
    from comms.lint.vocabulary import VocabularyError, parse

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"vocabulary file '{path}' not found") from None
    except UnicodeDecodeError:
        raise ValueError(f"vocabulary file '{path}' is not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"vocabulary file '{path}': {exc.strerror}") from None
    try:
        return parse(text)
    except VocabularyError as exc:
        raise ValueError(f"vocabulary file '{path}', {exc}") from None


def validate(table: dict[str, Any], *, base_dir: Path) -> LintConfig:
    """Validate a raw ``[lint]`` table; errors become one ``ConfigError`` naming the fields.

    Pack paths are relative to ``base_dir`` (the folder of comms.toml).
    """
    try:
        return LintConfig.model_validate(table, context={"base_dir": base_dir})
    except LintConfigError as exc:
        lines = "; ".join(f"lint.{key}: {message}" for key, message in exc.problems)
        raise ConfigError(f"invalid [lint] configuration: {lines}") from None
