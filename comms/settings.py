"""Settings: ``comms.toml`` plus ``COMMS_*`` environment variables, validated.

Lookup order for the file: ``COMMS_CONFIG`` (or ``--config``), then ``./comms.toml``, then
the user config folder (``~/.config/comms/comms.toml`` on Linux).  Environment variables
override the file.  Deliberately not pydantic-settings: it costs ~240 ms of import, which
alone would break the CLI's latency budget; a dataclass and tomllib do the same job here.

The whole file is checked when it is read, so that a typo fails the first command and not a
send in the middle of an incident: here, every key of every table is known and has the right
type (:data:`SCHEMA`, no imports); ``comms.bootstrap`` then runs the full check of each table
whose validator is cheap to import, and ``comms config check`` runs all of them (the
Switchboard, Zendesk and lint validators import httpx, zenpy or pydantic: 100–240 ms that
every command would pay).  A problem is reported as ``file:line: problem``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comms.errors import ConfigError

DEFAULT_INTERVALS = {"S1": 60, "S2": 120}
_SCALARS = ("author", "reviewer", "database_url", "templates_dir")
_LEVELS = ("error", "warning", "suggestion")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# kind -> (test, what to write); the kinds SCHEMA uses.
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "text": (lambda v: isinstance(v, str), "a string"),
    "whole": (_whole, "a whole number"),
    "number": (lambda v: _whole(v) or isinstance(v, float), "a number"),
    "flag": (lambda v: isinstance(v, bool), "true or false"),
    "texts": (
        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        'a list of strings like ["a", "b"]',
    ),
    "table": (lambda v: isinstance(v, dict), "a table"),
    "duration": (
        lambda v: isinstance(v, str) or _whole(v),
        'a duration like "15m" or a number of minutes',
    ),
    "level": (lambda v: v in _LEVELS, "one of " + ", ".join(f'"{x}"' for x in _LEVELS)),
    "levels": (
        lambda v: isinstance(v, dict) and all(x in ("off", *_LEVELS) for x in v.values()),
        'a table of rule id = "off", "error", "warning" or "suggestion"',
    ),
}
_DURATIONS = (
    "reminder_lead",
    "settle",
    "quiet_after_update",
    "realert_every",
    "escalate_after",
    "engage_within",
    "director_after",
    "rca_within",
)
# Every key of every table and the kind of its value: checked for every command, at load.
# Ranges, URLs, rule ids and files are each table's full check (comms.bootstrap.TABLE_CHECKS);
# a test keeps these keys equal to the ones those checks accept.
SCHEMA: dict[str, dict[str, str]] = {
    "updates": {"interval_minutes": "table"},
    "review": {"required_for": "texts", "sirt_for_security": "flag", "s1_timeout_minutes": "whole"},
    "cadence": {
        **dict.fromkeys(_DURATIONS, "duration"),
        "gap": "table",
        "on_status_change": "table",
        "quiet_hours": "text",
    },
    "send": {"channels": "texts", "concurrency": "whole"},
    "alerts": {"sinks": "texts"},
    "auth": {"mode": "text"},
    "notify": {"review": "text"},
    "serve": {
        "host": "text",
        "port": "whole",
        "public_url": "text",
        "trusted_proxies": "texts",
        "proxy_header": "text",
    },
    "lint": {
        **dict.fromkeys(
            (
                "public_domains",
                "support_emails",
                "internal_url_prefixes",
                "roster",
                "tenants",
                "packs",
            ),
            "texts",
        ),
        "rules": "levels",
        "fail_level": "level",
        "vocabulary": "text",
    },
    "switchboard": {
        "base_url": "text",
        "token": "text",
        "timeout_seconds": "number",
        "max_attempts": "whole",
        "rate_limit_per_minute": "number",
        "burst": "number",
        "verify_first": "flag",
    },
    "zendesk": {
        "subdomain": "text",
        "email": "text",
        "token": "text",
        "timeout": "number",
        "rate_per_minute": "number",
        "max_attempts": "whole",
        "max_retry_after": "number",
    },
    "incidentio": {
        "api_url": "text",
        "timeout_seconds": "number",
        "max_attempts": "whole",
        "tenant_field": "text",
        "severities": "table",
        "statuses": "table",
    },
    "slack": {"base_url": "text", "timeout_seconds": "whole"},
}

_TABLES = tuple(SCHEMA)


def printable(text: str) -> str:
    """``text`` with what cannot be UTF-8 (a file name's undecodable bytes) as ``\\udcff``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration: ``file:line: message`` (the line when known)."""

    file: str
    line: int | None
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "file", printable(self.file))
        object.__setattr__(self, "message", printable(self.message))

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.message}"
            if self.line
            else f"{self.file}: {self.message}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: file, line (or null), message."""
        return {"file": self.file, "line": self.line, "message": self.message}


class ProblemError(ConfigError):
    """A ``ConfigError`` about one place in the configuration (``problem``)."""

    def __init__(self, problem: Problem, message: str | None = None) -> None:
        self.problem = problem
        super().__init__(message or str(problem))


# Patterns as text: ``re`` compiles and caches them on first use, so a command that
# meets no problem never pays for them.
_KEY = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_KEY_LINE = rf"^\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*="
_HEADER_LINE = rf"^\s*\[\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*\]\s*(?:#.*)?$"


def _path(dotted: str) -> list[str]:
    return [p.strip("\"'") for p in re.findall(_KEY, dotted)]


def locate(text: str, table: str | None, key: str | None) -> int | None:
    """The line of comms.toml that sets ``[table] key`` (``key`` alone: a top-level key),
    else the line that opens ``[table]``, else None.  Understands ``[table]`` headers,
    ``table.key = …`` dotted keys and ``table = { … }`` inline tables."""
    want = [p for p in (table, key) if p]
    current: list[str] = []
    opened: int | None = None
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(_HEADER_LINE, line)
        if header:
            current = _path(header.group(1))
            path = current
        else:
            assigned = re.match(_KEY_LINE, line)
            if not assigned:
                continue
            path = current + _path(assigned.group(1))
        if want and path[: len(want)] == want:
            return number
        if table and opened is None and path[:1] == [table]:
            opened = number
    return opened


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
    text: str = field(default="", repr=False)  # the file as read, to name lines in problems

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


def user_config_file() -> Path:
    """``comms.toml`` in the user's config folder (``~/.config/comms`` on Linux)."""
    return _user_dir("config") / "comms.toml"


def _file_problem(path: Path, message: str) -> ProblemError:
    return ProblemError(Problem(str(path), None, message))


def _not_a_file(path: Path, hint: str) -> ProblemError | None:
    """Why ``path`` cannot be the config file, or None when it is a regular file or
    does not exist at all."""
    try:
        if path.is_file():
            return None
        if path.is_dir():
            return _file_problem(path, f"is a directory, not a config file; {hint}")
        if path.is_symlink() and not path.exists():
            return _file_problem(path, f"is a broken link; {hint}")
        if path.exists():
            return _file_problem(path, f"not a regular file; {hint}")
    except OSError as exc:  # a name too long, a folder we may not enter
        return _file_problem(path, f"cannot use it: {exc.strerror}; {hint}")
    return None


def find_config(
    explicit: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file to read, or None when there is none.

    A file named by ``explicit`` or ``COMMS_CONFIG`` must exist; a ``comms.toml`` in the
    working or user config folder that is a directory, a device or a broken link is an
    error too, rather than being skipped without a word.
    """
    env = os.environ if environ is None else environ
    named = explicit or (Path(env["COMMS_CONFIG"]) if env.get("COMMS_CONFIG") else None)
    if named is not None:
        hint = "point COMMS_CONFIG at a comms.toml file, or unset it"
        problem = _not_a_file(named, hint)
        if problem is not None:
            raise problem
        if not named.is_file():
            raise _file_problem(named, "does not exist; create it or unset COMMS_CONFIG")
        return named
    for candidate in (Path("comms.toml"), user_config_file()):
        problem = _not_a_file(candidate, "remove or rename it, or set COMMS_CONFIG")
        if problem is not None:
            raise problem
        if candidate.is_file():
            return candidate
    return None


def read_config(path: Path) -> tuple[str, dict[str, Any]]:
    """The text of a config file and its parsed tables; ``ConfigError`` as ``file:line:col:
    problem`` when it is not TOML, and for a file over 1 MiB (reading stops there)."""
    import tomllib  # ~5 ms of import: only when there is a file to read

    from comms.limits import MAX_INPUT_BYTES, TooLargeError, read_capped

    try:
        with path.open("rb") as stream:
            raw = read_capped(stream, "the file", MAX_INPUT_BYTES)
        text = raw.decode("utf-8")
    except TooLargeError as exc:
        raise _file_problem(path, str(exc)) from None
    except OSError as exc:
        raise _file_problem(path, f"cannot read it: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise _file_problem(path, f"not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 7)"; lead with file:line like a compiler.
        message = str(exc)
        where = re.search(r"\(at line (\d+), column (\d+)\)", message)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        if where:
            line, column = where.group(1), where.group(2)
            problem = Problem(str(path), int(line), f"column {column}: {reason}")
            raise ProblemError(problem, f"{path}:{line}:{column}: {reason}") from exc
        raise _file_problem(path, reason) from exc


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def type_problems(data: Mapping[str, Any], text: str, source: str) -> list[Problem]:
    """Every unknown key and every value of the wrong type in the file, in file order:
    the cheap check each command makes (see :data:`SCHEMA`)."""
    found: list[Problem] = []

    def add(table: str | None, key: str | None, message: str) -> None:
        found.append(Problem(source, locate(text, table, key), message))

    known = ", ".join((*_SCALARS, *_TABLES))
    for key, value in data.items():
        if key in _SCALARS:
            if not isinstance(value, str) or not value.strip():
                add(None, key, f"'{key}' must be a non-empty string, not {_shown(value)}")
        elif key not in SCHEMA:
            add(None, key, f"unknown key '{key}' (known: {known})")
        elif not isinstance(value, dict):
            add(None, key, f"'{key}' must be a table ([{key}])")
        else:
            for name, item in value.items():
                kind = SCHEMA[key].get(name)
                if kind is None:
                    keys = ", ".join(SCHEMA[key])
                    add(key, name, f"unknown key '{key}.{name}' (known: {keys})")
                elif not _KINDS[kind][0](item):
                    add(key, name, f"{key}.{name} must be {_KINDS[kind][1]}, not {_shown(item)}")
    found.sort(key=lambda p: p.line or 0)
    return found


def check_updates(table: Mapping[str, Any]) -> dict[str, int]:
    """The full check of ``[updates]``: minutes between customer updates per severity,
    over the defaults (S1 60, S2 120)."""
    intervals = dict(DEFAULT_INTERVALS)
    unknown = sorted(set(table) - {"interval_minutes"})
    if unknown:  # a typo here would silently keep the default cadence
        raise ConfigError(f"unknown key 'updates.{unknown[0]}' (known: interval_minutes)")
    minutes = table.get("interval_minutes", {})
    if not isinstance(minutes, dict):
        raise ConfigError("updates.interval_minutes must be a table like { S1 = 60 }")
    known: set[str] = set()
    if minutes:  # comms.models costs ~12 ms of import, and most files set no intervals
        from comms.models import Severity

        known = set(Severity)
    for severity, value in minutes.items():
        if severity not in known:
            raise ConfigError(f"updates.interval_minutes: unknown severity '{severity}' (S1–S4)")
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(
                f"updates.interval_minutes.{severity} must be a positive whole number of minutes"
            )
        intervals[severity] = value
    return intervals


def load_settings(config: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the configuration; raise ``ConfigError`` as ``file:line: problem``.

    Every key and type of the whole file is checked here (the first problem is raised);
    ``comms.bootstrap.Runtime`` adds the cheap full checks, ``comms config check`` all.
    """
    env = os.environ if environ is None else environ
    path = find_config(config, env)
    text, data = read_config(path) if path else ("", {})
    source = str(path) if path else "configuration"
    problems = type_problems(data, text, source)
    if problems:
        raise ConfigError(first_problem(problems))
    try:
        intervals = check_updates(data.get("updates", {}))
    except ConfigError as exc:
        line = locate(text, "updates", "interval_minutes") or locate(text, "updates", None)
        raise ConfigError(first_problem([Problem(source, line, str(exc))])) from None

    # Every scalar of the file was checked above even where the environment overrides it:
    # a broken file must not pass silently on one machine and fail on the next.
    file_values = {key: data.get(key) for key in _SCALARS}
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
        next_update_minutes=intervals,
        tables={name: data[name] for name in _TABLES if name in data},
        text=text,
    )


def first_problem(problems: list[Problem]) -> str:
    """The one line a command fails with: the first problem, and where to see them all."""
    more = len(problems) - 1
    tail = f"{more} more problem(s); " if more else ""
    return f"{problems[0]} ({tail}comms config check checks the whole file)"
