"""Checking comms.toml table by table: what ``comms config check`` and the start-up of every
command run over the tables, beyond the key and type check of ``settings.SCHEMA``.

Each ``[table]`` has a :class:`TableCheck` in ``comms.bootstrap.TABLE_CHECKS`` (the
registry lives in the composition root because some checks are the adapters' own
validators).  A check raises ``ConfigError`` at its first problem; to report every
problem, :func:`config_problems` then checks each key on its own, and names the line of
comms.toml that each problem is about (``settings.locate``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comms.errors import ConfigError

if TYPE_CHECKING:
    from comms.settings import Problem


class TableContext:
    """What a table's check needs besides the table: the folder of comms.toml (lint packs),
    the ``[updates]`` intervals (cadence), the environment (``COMMS_SWITCHBOARD_URL`` stands
    in for ``base_url``), and ``whole``, the table as the file has it when the check sees
    only some of its keys (a required key is missing only when ``whole`` lacks it).

    A plain class, not a frozen dataclass: generating a dataclass's methods costs ~1 ms of
    every command whose comms.toml has a table."""

    __slots__ = ("base_dir", "environ", "intervals", "whole")

    def __init__(
        self,
        base_dir: Path,
        intervals: Mapping[str, int] | None = None,
        environ: Mapping[str, str] | None = None,
        whole: Mapping[str, Any] | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.intervals = {} if intervals is None else intervals
        self.environ = {} if environ is None else environ
        self.whole = whole

    def __repr__(self) -> str:
        return (
            f"TableContext(base_dir={self.base_dir!r}, intervals={self.intervals!r}, "
            f"environ={self.environ!r}, whole={self.whole!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableContext):
            return NotImplemented
        return (self.base_dir, self.intervals, self.environ, self.whole) == (
            other.base_dir,
            other.intervals,
            other.environ,
            other.whole,
        )

    __hash__ = None  # type: ignore[assignment]

    def has(self, table: Mapping[str, Any], key: str) -> bool:
        """Whether the file sets ``key`` in the table being checked."""
        return key in (table if self.whole is None else self.whole)


class TableProblemsError(ConfigError):
    """Several problems in one table at once, each ``(key or None, message)``."""

    def __init__(self, items: list[tuple[str | None, str]]) -> None:
        self.items = items
        super().__init__(items[0][1])


TableCheckFunction = Callable[[Mapping[str, Any], TableContext], object]


# How one ``[table]`` of comms.toml is checked: (full, load).  ``full`` is everything
# (``comms config check`` and the code that uses the table); ``load`` is the part every
# command runs at start-up, which imports nothing slow (None: the key and type check of
# settings.SCHEMA only).  Plain pairs: the registry costs nothing to build.
TableCheck = tuple[TableCheckFunction, TableCheckFunction | None]


def _mentioned(name: str, message: str, table: Mapping[str, Any], alone: str | None) -> str | None:
    """Which key of the table a message is about: the first key of the table it names
    (None when that key is missing from the file), else the key checked alone."""
    from comms.settings import SCHEMA

    hits = [
        (match.start(), key)
        for key in {*SCHEMA.get(name, {}), *table}
        if (match := re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", message))
    ]
    if not hits:
        return alone
    key = min(hits)[1]
    return key if key in table else None


def _table_problems(
    name: str,
    table: Mapping[str, Any],
    check: TableCheckFunction,
    context: TableContext,
    *,
    full: bool,
) -> list[tuple[str | None, str]]:
    try:
        check(table, context)
        return []
    except TableProblemsError as exc:
        return exc.items
    except ConfigError as exc:
        first = str(exc)
    if not full:  # a command stops at the first problem
        return [(_mentioned(name, first, table, None), first)]
    # Each key on its own, so that every bad key is reported, not just the first.
    found: dict[str, str | None] = {}
    alone = TableContext(context.base_dir, context.intervals, context.environ, table)
    for key in table:
        try:
            check({key: table[key]}, alone)
        except TableProblemsError as exc:
            found.update({message: k for k, message in exc.items if message not in found})
        except ConfigError as exc:
            found.setdefault(str(exc), _mentioned(name, str(exc), table, key))
    if not found:  # only the keys together are wrong
        found[first] = _mentioned(name, first, table, None)
    return [(key, message) for message, key in found.items()]


def config_problems(
    tables: Mapping[str, Any],
    checks: Mapping[str, TableCheck],
    *,
    text: str,
    source: str,
    base_dir: Path,
    intervals: Mapping[str, int],
    environ: Mapping[str, str],
    full: bool,
) -> list[Problem]:
    """The problems of the tables of a config file whose keys and types are right (see
    ``settings.type_problems``), each by its check in ``checks``, in file order;
    ``full=False`` runs only the checks every command runs at start-up, and stops at the
    first problem of a table."""
    from comms.settings import Problem, locate

    found: list[Problem] = []
    context = TableContext(base_dir, intervals, environ)
    for name, table in tables.items():
        if name not in checks or not isinstance(table, dict):
            continue
        check = checks[name][0] if full else checks[name][1]
        if check is None:
            continue
        for key, message in _table_problems(name, table, check, context, full=full):
            line = locate(text, name, key) if key else None
            found.append(Problem(source, line or locate(text, name, None), message))
    found.sort(key=lambda p: p.line or 0)
    return found


class ConfigReport:
    """What ``comms config check`` found: the file read (None: none, the defaults apply)
    and every problem, in file order.  (A plain class, like ``TableContext``.)"""

    __slots__ = ("file", "looked_in", "problems")

    def __init__(
        self, file: Path | None, problems: tuple[Problem, ...], looked_in: tuple[Path, ...] = ()
    ) -> None:
        self.file = file
        self.problems = problems
        self.looked_in = looked_in

    def __repr__(self) -> str:
        return (
            f"ConfigReport(file={self.file!r}, problems={self.problems!r}, "
            f"looked_in={self.looked_in!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfigReport):
            return NotImplemented
        return (self.file, self.problems, self.looked_in) == (
            other.file,
            other.problems,
            other.looked_in,
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def ok(self) -> bool:
        """True when there is nothing to fix."""
        return not self.problems

    def lines(self) -> list[str]:
        """The report for people: the file, then each problem as ``file:line: problem``
        or ``ok``.  A file that cannot be read at all is its one problem line."""
        if self.file is None and self.problems:
            return [str(p) for p in self.problems]
        from comms.settings import printable

        where = (
            printable(str(self.file.resolve()))
            if self.file
            else "none found; the defaults apply (looked for "
            + " and ".join(str(p) for p in self.looked_in)
            + ")"
        )
        return [f"config: {where}", *([str(p) for p in self.problems] or ["ok"])]

    def to_dict(self) -> dict[str, Any]:
        """The report for scripts: file (absolute, or null), ok, problems."""
        from comms.settings import printable

        return {
            "file": printable(str(self.file.resolve())) if self.file else None,
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
        }


def well_typed(data: Mapping[str, Any]) -> dict[str, Any]:
    """The file without its unknown keys and mistyped values, which ``type_problems`` has
    reported: the full checks then report what else is wrong, not the same thing twice."""
    from comms.settings import SCHEMA, type_problems

    kept: dict[str, Any] = {}
    for name, table in data.items():
        if name in SCHEMA and isinstance(table, dict):
            kept[name] = {
                key: value
                for key, value in table.items()
                if not type_problems({name: {key: value}}, "", "")
            }
        elif not type_problems({name: table}, "", ""):
            kept[name] = table
    return kept
