"""Compiled regexes kept between processes, for one-shot command lines.

Python compiles every regex anew in each process.  The packs' combined scanners and the
trie of their ~2,000 phrases take 30-50 ms to parse and compile, which is most of what
`comms lint` of a short draft costs beyond the interpreter, and a tenth of linting a
megabyte.  A :class:`PatternStore` keeps what the compiler made of each source (the SRE
code and the group names) and the trie sources built from phrase lists, so a later process
passes them to ``_sre.compile`` (which validates the code) and skips the rest.

The core never reads or writes the store itself: ``comms lint`` loads one from the user's
cache folder, ``install``s it for the run and saves it when something new was compiled
(``cached`` does the three).  Without a store (the library, the review server, a long-lived
process) regexes are compiled as usual and nothing changes.  A store is tied to the exact
Python build that wrote it (version and SRE magic number are in the file); any other, a
damaged file, or code ``_sre`` refuses, and the regex is compiled from its source.  The
file is the user's own, like the ``.pyc`` files Python keeps.
"""

from __future__ import annotations

import re
import sys

# typing costs ~3 ms to import, pathlib ~8 ms, and only type checkers need them here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import TracebackType
    from typing import Any

FILE_NAME = "lint-regex-{}.bin"
MAX_ENTRIES = 600  # patterns; a store that grew past this starts again


def _engine() -> Any:
    """CPython's regex engine (no type stubs): its magic number, code size and compile."""
    import _sre  # type: ignore[import-not-found]

    return _sre


def _build_id() -> tuple[str, int, int]:
    engine = _engine()
    return (sys.version, engine.MAGIC, engine.CODESIZE)


class PatternStore:
    """Compiled pattern code and derived sources, by source (see the module docstring)."""

    __slots__ = ("changed", "derived", "patterns", "used")

    def __init__(
        self,
        patterns: dict[
            tuple[str, int], tuple[int, bytes, int, dict[str, int], tuple[str | None, ...]]
        ]
        | None = None,
        derived: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.patterns = dict(patterns or {})
        self.derived = dict(derived or {})
        self.changed = False
        self.used: set[tuple[str, int]] = set()

    def compile(self, source: str, flags: int) -> re.Pattern[str]:
        """``re.compile(source, flags)``, from the stored code when there is some."""
        flags = int(flags)
        key = (source, flags)
        entry = self.patterns.get(key)
        if entry is not None:
            try:
                regex = _from_code(source, entry)
            except (RuntimeError, TypeError, ValueError, OverflowError):
                del self.patterns[key]  # refused: compile it from the source below
            else:
                self.used.add(key)
                return regex
        try:
            entry = _code(source, flags)
            regex = _from_code(source, entry)
        except re.error:
            raise
        except Exception:  # an internal of `re` this Python lays out differently
            return re.compile(source, flags)
        self.patterns[key] = entry
        self.used.add(key)
        self.changed = True
        return regex

    def derive(self, kind: str, key: str, build: Callable[[], str]) -> str:
        """``build()``, kept under (kind, key)."""
        got = self.derived.get((kind, key))
        if got is None:
            got = self.derived[(kind, key)] = build()
            self.changed = True
        return got

    def dumps(self) -> bytes:
        """The store as bytes for ``loads`` (entries used in this process first kept)."""
        import marshal

        patterns = self.patterns
        if len(patterns) > MAX_ENTRIES:
            patterns = {k: v for k, v in patterns.items() if k in self.used}
        derived = self.derived if len(self.derived) <= MAX_ENTRIES else {}
        return marshal.dumps((_build_id(), patterns, derived))


def loads(data: bytes) -> PatternStore:
    """A store from ``dumps``'s bytes; an empty one for any other bytes or Python build."""
    import marshal

    try:
        build, patterns, derived = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return PatternStore()
    if build != _build_id() or not isinstance(patterns, dict) or not isinstance(derived, dict):
        return PatternStore()
    return PatternStore(patterns, derived)


def _code(
    source: str, flags: int
) -> tuple[int, bytes, int, dict[str, int], tuple[str | None, ...]]:
    """What ``re``'s compiler hands ``_sre.compile`` for ``source`` (CPython 3.11+)."""
    from array import array
    from re import _compiler, _parser  # type: ignore[attr-defined]

    parsed = _parser.parse(source, flags)
    code = _compiler._code(parsed, flags)
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    width = "I" if _build_id()[2] == 4 else "L"
    return (
        int(flags | parsed.state.flags),
        array(width, code).tobytes(),
        parsed.state.groups - 1,
        groupindex,
        tuple(indexgroup),
    )


def _from_code(
    source: str, entry: tuple[int, bytes, int, dict[str, int], tuple[str | None, ...]]
) -> re.Pattern[str]:
    from array import array

    engine = _engine()
    flags, code, groups, groupindex, indexgroup = entry
    width = "I" if engine.CODESIZE == 4 else "L"
    regex: re.Pattern[str] = engine.compile(
        source, flags, array(width, code).tolist(), groups, groupindex, indexgroup
    )
    return regex


_INSTALLED: list[PatternStore] = []


def install(store: PatternStore | None) -> None:
    """Use ``store`` for the regexes the linter compiles from now on (None: stop)."""
    _INSTALLED[:] = [store] if store is not None else []


def installed() -> PatternStore | None:
    """The store in use, if any."""
    return _INSTALLED[0] if _INSTALLED else None


def compile(source: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile``, through the installed store when there is one."""
    store = installed()
    if store is None:
        return re.compile(source, flags)
    return store.compile(source, int(flags))


def derive(kind: str, key: str, build: Callable[[], str]) -> str:
    """A source derived from ``key`` (``build()``), kept in the installed store if any."""
    store = installed()
    return build() if store is None else store.derive(kind, key, build)


def store_path(folder: Path) -> Path:
    """The store's file in ``folder``: one per Python version."""
    return folder / FILE_NAME.format(f"{sys.version_info[0]}{sys.version_info[1]}")


class cached:  # noqa: N801  (used as a function: `with cached(folder) as store:`)
    """Load the store from ``folder`` (the user's cache folder), install it for the block,
    and save it afterwards if something new was compiled.  A folder that cannot be read or
    written only costs the speed-up; None: no store."""

    def __init__(self, folder: Path | None) -> None:
        self.path = store_path(folder) if folder is not None else None
        self.store: PatternStore | None = None

    def __enter__(self) -> PatternStore | None:
        if self.path is None:
            return None
        try:
            self.store = loads(self.path.read_bytes())
        except OSError:
            self.store = PatternStore()
        install(self.store)
        return self.store

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.store is not None:
            install(None)
            if self.path is not None and self.store.changed:
                _save(self.path, self.store)


def _save(path: Path, store: PatternStore) -> None:
    """Write the store next to its file and move it in place (a reader never sees half)."""
    import os

    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(store.dumps())
        os.replace(partial, path)
    except (OSError, ValueError):  # a read-only folder, a full disk: only slower next time
        partial.unlink(missing_ok=True) if partial.parent.is_dir() else None
