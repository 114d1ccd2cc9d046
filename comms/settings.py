"""Settings: ``comms.toml`` plus ``COMMS_*`` environment variables, validated.

Lookup order for the file: ``COMMS_CONFIG`` (or ``--config``), then ``./comms.toml``, then
the user config folder (``~/.config/comms/comms.toml`` on Linux).  Environment variables
override the file.  Deliberately not pydantic-settings: it costs ~240 ms of import, which
alone would break the CLI's latency budget; a dataclass and tomllib do the same job here.

Tables owned by other parts (``lint``, ``switchboard``, ``zendesk``, ``cadence``,
``review``) are passed through raw and validated by the module that uses them.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comms.errors import ConfigError

DEFAULT_INTERVALS = {"S1": 60, "S2": 120}
_TABLES = ("lint", "switchboard", "zendesk", "cadence", "review", "send", "updates", "alerts")
_SCALARS = ("author", "reviewer", "database_url", "templates_dir")


@dataclass(frozen=True)
class Settings:
    """Validated configuration; ``source`` is the file it came from, if any."""

    database_url: str
    author: str
    reviewer: str
    templates_dir: Path | None = None
    source: Path | None = None
    next_update_minutes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_INTERVALS))
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, Any]:
        """A raw table such as ``lint`` or ``switchboard`` ({} when absent)."""
        return self.tables.get(name, {})

    @property
    def lint(self) -> dict[str, Any]:
        """The raw ``[lint]`` table."""
        return self.table("lint")

    def interval_for(self, severity: str) -> int | None:
        """Minutes between customer updates for a severity, or None when none is due."""
        return self.next_update_minutes.get(severity)


def _user_dir(kind: str) -> Path:
    """The user's data, config or cache folder for comms.

    XDG on Linux, computed directly: platformdirs costs ~11 ms of import per run, and it
    is only needed on the platforms whose rules are more involved.
    """
    import sys

    if sys.platform.startswith("linux"):
        variable, fallback = {
            "data": ("XDG_DATA_HOME", ".local/share"),
            "config": ("XDG_CONFIG_HOME", ".config"),
            "cache": ("XDG_CACHE_HOME", ".cache"),
        }[kind]
        base = os.environ.get(variable) or str(Path.home() / fallback)
        return Path(base) / "comms"
    import platformdirs

    finder = {
        "data": platformdirs.user_data_dir,
        "config": platformdirs.user_config_dir,
        "cache": platformdirs.user_cache_dir,
    }[kind]
    return Path(finder("comms", appauthor=False))


def default_database_path() -> Path:
    """The embedded SQLite file in the user's data folder."""
    return _user_dir("data") / "comms.db"


def user_cache_dir() -> Path:
    """The user's cache folder for comms (compiled templates)."""
    return _user_dir("cache")


def find_config(explicit: Path | None = None) -> Path | None:
    """The config file to read, or None; an explicitly named file must exist."""
    named = explicit or (
        Path(os.environ["COMMS_CONFIG"]) if os.environ.get("COMMS_CONFIG") else None
    )
    if named is not None:
        if not named.is_file():
            raise ConfigError(
                f"config file {named} does not exist; create it or unset COMMS_CONFIG"
            )
        return named
    local = Path("comms.toml")
    if local.is_file():
        return local
    user = _user_dir("config") / "comms.toml"
    return user if user.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 7)"; lead with file:line like a compiler.
        message = str(exc)
        where = re.search(r"\(at line (\d+), column (\d+)\)", message)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        if where:
            raise ConfigError(f"{path}:{where.group(1)}:{where.group(2)}: {reason}") from exc
        raise ConfigError(f"{path}: {reason}") from exc


def _string(data: dict[str, Any], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}: '{key}' must be a non-empty string, got {value!r}")
    return value


def _intervals(raw: dict[str, Any], source: str) -> dict[str, int]:
    intervals = dict(DEFAULT_INTERVALS)
    unknown = sorted(set(raw) - {"interval_minutes"})
    if unknown:  # a typo here would silently keep the default cadence
        raise ConfigError(f"{source}: unknown key 'updates.{unknown[0]}' (known: interval_minutes)")
    minutes = raw.get("interval_minutes", {})
    if not isinstance(minutes, dict):
        raise ConfigError(f"{source}: updates.interval_minutes must be a table like {{ S1 = 60 }}")
    from comms.models import Severity

    for severity, value in minutes.items():
        if severity not in set(Severity):
            raise ConfigError(
                f"{source}: updates.interval_minutes: unknown severity '{severity}' (S1–S4)"
            )
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(
                f"{source}: updates.interval_minutes.{severity} must be a positive whole number of minutes"
            )
        intervals[severity] = value
    return intervals


def load_settings(config: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the configuration; raise ``ConfigError`` naming the file and key."""
    env = os.environ if environ is None else environ
    path = find_config(config)
    data = _read_toml(path) if path else {}
    source = str(path) if path else "configuration"
    unknown = sorted(set(data) - set(_TABLES) - set(_SCALARS))
    if unknown:
        known = ", ".join((*_SCALARS, *_TABLES))
        raise ConfigError(f"{source}: unknown key '{unknown[0]}' (known: {known})")
    for name in _TABLES:
        if name in data and not isinstance(data[name], dict):
            raise ConfigError(f"{source}: '{name}' must be a table ([{name}])")

    # Validate every scalar in the file even when the environment overrides it: a broken
    # file must not pass silently on one machine and fail on the next.
    file_values = {key: _string(data, key, source) for key in _SCALARS}
    database_url = env.get("COMMS_DATABASE_URL") or file_values["database_url"]
    templates = env.get("COMMS_TEMPLATES_DIR") or file_values["templates_dir"]
    templates_dir = Path(templates).expanduser() if templates else None
    if (
        templates_dir is not None
        and path is not None
        and not templates_dir.is_absolute()
        and not env.get("COMMS_TEMPLATES_DIR")
    ):
        templates_dir = path.parent / templates_dir
    author = env.get("COMMS_AUTHOR") or file_values["author"] or env.get("USER") or "gdcmoc"
    reviewer = env.get("COMMS_REVIEWER") or file_values["reviewer"] or author
    return Settings(
        database_url=database_url or str(default_database_path()),
        author=author,
        reviewer=reviewer,
        templates_dir=templates_dir,
        source=path,
        next_update_minutes=_intervals(data.get("updates", {}), source),
        tables={name: data[name] for name in _TABLES if name in data},
    )
