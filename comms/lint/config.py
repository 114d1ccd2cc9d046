"""The ``[lint]`` table of comms.toml, validated (pydantic is imported only here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from comms.errors import ConfigError
from comms.lint.engine import (
    DEFAULT_INTERNAL_URL_PREFIXES,
    DEFAULT_PUBLIC_DOMAINS,
    DEFAULT_SUPPORT_EMAILS,
)
from comms.lint.rules import PackError, parse_pack

Level = Literal["error", "warning", "suggestion"]


class LintConfig(BaseModel):
    """Linter settings: allow-lists, roster, known tenants, extra packs, rule levels.

    ``public_domains`` replaces the default list (GitLab's public domains); a domain also
    allows its subdomains, so ``gitlab-dedicated.com`` allows ``acme.gitlab-dedicated.com``
    (but not one named like infrastructure, ``nfs-file-02.stor.gitlab.com``, unless listed).
    ``internal_url_prefixes`` (replaces the defaults: GitLab's operations projects, ops
    instance, dashboards and logs) are host or host/path prefixes that stay internal on any
    domain, e.g. ``gitlab.com/gitlab-com/gl-infra/``; the path covers what is below it.
    ``packs`` are TOML files, relative to ``base_dir`` given as validation context (the
    folder of comms.toml); they are read once here, so linting itself does no I/O.
    ``rules`` maps a rule id to ``off`` or a level.  ``vocabulary`` is a file of internal
    names (``comms lint learn`` writes one; see vocabulary.py), relative to ``base_dir``,
    also read here: each name it holds is an error (Leak.Vocabulary).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_domains: list[str] = Field(default_factory=lambda: list(DEFAULT_PUBLIC_DOMAINS))
    support_emails: list[str] = Field(default_factory=lambda: list(DEFAULT_SUPPORT_EMAILS))
    internal_url_prefixes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_INTERNAL_URL_PREFIXES)
    )
    roster: list[str] = Field(default_factory=list)
    tenants: list[str] = Field(default_factory=list)
    packs: list[str] = Field(default_factory=list)
    rules: dict[str, Literal["off", "error", "warning", "suggestion"]] = Field(default_factory=dict)
    fail_level: Level = "error"
    vocabulary: str | None = None
    _pack_sources: tuple[tuple[str, str], ...] = PrivateAttr(default=())
    _vocabulary: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("packs")
    @classmethod
    def _packs_exist(cls, value: list[str], info: ValidationInfo) -> list[str]:
        base = Path((info.context or {}).get("base_dir", "."))
        for name in value:
            path = base / name
            if not path.is_file():
                raise ValueError(f"pack file '{path}' not found")
        return value

    @model_validator(mode="after")
    def _read_packs(self, info: ValidationInfo) -> LintConfig:
        base = Path((info.context or {}).get("base_dir", "."))
        sources = []
        for name in self.packs:
            path = base / name
            text = path.read_text(encoding="utf-8")
            try:
                parse_pack(path.stem, text)
            except PackError as exc:
                raise ValueError(str(exc)) from exc
            sources.append((path.stem, text))
        self._pack_sources = tuple(sources)
        return self

    @field_validator("vocabulary")
    @classmethod
    def _vocabulary_readable(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _read_vocabulary(Path((info.context or {}).get("base_dir", ".")) / value)
        return value

    @model_validator(mode="after")
    def _load_vocabulary(self, info: ValidationInfo) -> LintConfig:
        if self.vocabulary is not None:
            base = Path((info.context or {}).get("base_dir", "."))
            self._vocabulary = _read_vocabulary(base / self.vocabulary)
        return self

    def vocabulary_words(self) -> tuple[str, ...]:
        """The names of the vocabulary file, read when the config was validated."""
        return self._vocabulary

    def pack_sources(self) -> tuple[tuple[str, str], ...]:
        """The extra packs as (name, TOML text), read when the config was validated."""
        return self._pack_sources


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
    except ValidationError as exc:
        lines = "; ".join(
            f"lint.{'.'.join(str(p) for p in err['loc']) or '(table)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid [lint] configuration: {lines}") from None
