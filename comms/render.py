"""Render customer messages from Jinja templates, strictly and in a sandbox.

A template file is ``<kind>.txt.j2``: an optional header comment declaring its variables
(TOML inside ``{#- comms … -#}``), then ``Subject: …``, a blank line and the plain-text
body.  The user's template folder is searched first, then the built-ins, which stay
reachable as ``default:<name>`` so an override can ``{% extends "default:update.txt.j2" %}``
and inherit the built-in's variable declarations.

Values are data: they are passed in the context and never compiled as template code.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from comms.errors import MissingVariablesError, TemplateError
from comms.models import Severity
from comms.times import format_time, isoformat, parse_past_time, parse_time, utc

BUILTIN_DIR = Path(__file__).resolve().parent / "templates"
if not BUILTIN_DIR.is_dir():  # source checkout without an install: templates/ beside comms/
    BUILTIN_DIR = Path(__file__).resolve().parent.parent / "templates"
SUFFIX = ".txt.j2"
_HEADER = re.compile(r"\A\{#-?\s*comms\s*\n(.*?)\n\s*-?#\}", re.S)
_TYPES = ("text", "time", "list")
# Line breaks printed by {{ … }} stand in as this token while rendering, so that a value
# can never split the "Subject:" line; they become spaces in the subject, newlines in the body.
# Stands for a line break inside a value until the subject line is cut; random per process,
# so that no value can spell it (a title of exactly a fixed marker once lost its subject).
_BREAK = f"\x00{os.urandom(8).hex()}\x00"
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")

STATUS_TEXT = {
    "investigating": "We are investigating.",
    "identified": "We have identified the cause and are working on a fix.",
    "mitigating": "We are applying a mitigation.",
    "monitoring": "A fix is in place and we are monitoring the results.",
    "resolved": "Resolved.",
}


@dataclass(frozen=True)
class Variable:
    """A template variable: its type, whether it is required, help text and default source."""

    name: str
    type: str = "text"
    required: bool = False
    help: str = ""
    default: str | None = None  # a name from the automatic context, e.g. "started_at"
    past: bool = False  # a time that already happened: a bare clock time means the latest one


@dataclass(frozen=True)
class TemplateSpec:
    """A template's identity and declared variables."""

    name: str
    title: str
    source: str  # "built-in" or the override file's path
    variables: tuple[Variable, ...] = field(default_factory=tuple)
    description: str = ""

    def variable(self, name: str) -> Variable | None:
        """The declared variable by that name, or None."""
        return next((v for v in self.variables if v.name == name), None)


@dataclass(frozen=True)
class Rendered:
    """A rendered message exactly as the customer will see it."""

    kind: str
    subject: str
    body: str
    variables: dict[str, str]


def _bytecode_cache(base: Path) -> Any:
    """Jinja's compiled-template cache under ``base``, or None if unusable.

    Compiling the templates is a visible share of a ``comms draft`` run; the cache is keyed
    by the template source's checksum, so an edited override is recompiled, never stale.
    """
    import hashlib
    import os

    from jinja2 import FileSystemBytecodeCache

    # Environment options (finalize, trim_blocks, …) are compiled into the bytecode but are
    # not part of Jinja's key (the template source), so each renderer version gets its own.
    version = hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:12]
    folder = os.path.join(base, f"jinja-{version}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None

    class _Quiet(FileSystemBytecodeCache):
        # A read-only or full cache folder must never stop a message from rendering.
        def dump_bytecode(self, bucket: Any) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

        def load_bytecode(self, bucket: Any) -> None:
            with contextlib.suppress(OSError):
                super().load_bytecode(bucket)

    return _Quiet(folder)


def _parse_header(text: str, origin: str) -> dict[str, Any] | None:
    match = _HEADER.match(text)
    if not match:
        return None
    try:
        return tomllib.loads(match.group(1))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{origin}: bad variable header: {exc}") from exc


def _spec_from_header(name: str, header: dict[str, Any], source: str) -> TemplateSpec:
    variables = []
    for var_name, raw in header.get("variables", {}).items():
        if not isinstance(raw, dict):
            raise TemplateError(f"{source}: variables.{var_name} must be a table")
        kind = raw.get("type", "text")
        if kind not in _TYPES:
            raise TemplateError(
                f"{source}: variables.{var_name}: type must be one of {', '.join(_TYPES)}"
            )
        variables.append(
            Variable(
                var_name,
                kind,
                bool(raw.get("required", False)),
                str(raw.get("help", "")),
                raw.get("default"),
                bool(raw.get("past", False)),
            )
        )
    return TemplateSpec(
        name=name,
        title=str(header.get("title", name)),
        source=source,
        variables=tuple(variables),
        description=str(header.get("description", "")),
    )


class Renderer:
    """Finds, describes and renders templates; one per process is enough.

    ``user_dir`` holds the team's overrides; ``cache_dir``, if given, keeps compiled
    templates between processes (the composition root passes the user's cache folder).
    """

    def __init__(self, user_dir: Path | None = None, *, cache_dir: Path | None = None) -> None:
        if user_dir is not None and not user_dir.is_dir():
            raise TemplateError(
                f"template folder {user_dir} does not exist; create it or unset COMMS_TEMPLATES_DIR"
            )
        self.user_dir = user_dir
        self.cache_dir = cache_dir
        self._env: Any = None

    @property
    def env(self) -> Any:
        """The sandboxed Jinja environment, built on first use (Jinja costs ~50 ms to import)."""
        if self._env is None:
            from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader, StrictUndefined
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            builtin = FileSystemLoader(str(BUILTIN_DIR))
            cache = _bytecode_cache(self.cache_dir) if self.cache_dir is not None else None
            loaders: list[Any] = []
            if self.user_dir is not None:
                loaders.append(FileSystemLoader(str(self.user_dir)))
            loaders += [PrefixLoader({"default": builtin}, delimiter=":"), builtin]
            env = ImmutableSandboxedEnvironment(
                loader=ChoiceLoader(loaders),
                undefined=StrictUndefined,
                autoescape=lambda name: bool(name and name.endswith(".html.j2")),
                keep_trailing_newline=True,
                trim_blocks=True,
                lstrip_blocks=True,
                bytecode_cache=cache,
                finalize=_finalize,
            )
            env.filters["when"] = format_time
            env.filters["date"] = lambda d: utc(d).strftime("%Y-%m-%d")
            self._env = env
        return self._env

    def names(self) -> list[str]:
        """Every template name: built-ins plus the user's own."""
        found = {p.name[: -len(SUFFIX)] for p in BUILTIN_DIR.glob(f"*{SUFFIX}")}
        if self.user_dir is not None:
            found |= {p.name[: -len(SUFFIX)] for p in self.user_dir.glob(f"*{SUFFIX}")}
        return sorted(found)

    def _path(self, name: str) -> tuple[Path, str]:
        if self.user_dir is not None and (self.user_dir / f"{name}{SUFFIX}").is_file():
            path = self.user_dir / f"{name}{SUFFIX}"
            return path, str(path)
        path = BUILTIN_DIR / f"{name}{SUFFIX}"
        if not path.is_file():
            raise TemplateError(
                f"unknown template '{name}'; choose one of: {', '.join(self.names())}"
            )
        return path, "built-in"

    def source(self, name: str) -> str:
        """The template file's text."""
        return _read(self._path(name)[0])

    def spec(self, name: str) -> TemplateSpec:
        """A template's declared variables; an override without a header inherits the built-in's."""
        path, origin = self._path(name)
        text = _read(path)
        header = _parse_header(text, origin)
        if header is None and origin != "built-in" and (BUILTIN_DIR / f"{name}{SUFFIX}").is_file():
            builtin = _builtin_spec(name)
            return TemplateSpec(name, builtin.title, origin, builtin.variables, builtin.description)
        return _spec_from_header(name, header or {}, origin)

    def render(
        self, name: str, values: dict[str, str], context: dict[str, Any], now: datetime
    ) -> Rendered:
        """Validate ``values`` against the template's spec, then render subject and body.

        ``context`` holds automatic values (incident fields, defaults such as
        ``next_update``); ``values`` are what the user typed, as strings.  Raises
        ``MissingVariablesError`` listing every missing required variable, or
        ``TemplateError`` for a malformed value or template.
        """
        spec = self.spec(name)
        unknown = sorted(set(values) - {v.name for v in spec.variables})
        if unknown:
            declared = ", ".join(v.name for v in spec.variables)
            raise TemplateError(
                f"template '{name}' has no variable '{unknown[0]}'; its variables are: {declared}"
            )
        typed, kept = self._typed(spec, values, context, now)
        template = self._load(name)
        try:
            text = template.render({**context, **typed})
        except TemplateError:
            raise
        except Exception as exc:  # Jinja raises many types; all mean "this template is broken"
            raise TemplateError(f"template '{name}' failed to render: {exc}") from exc
        subject, body = _split(text, name)
        return Rendered(kind=name, subject=subject, body=body, variables=kept)

    def _load(self, name: str) -> Any:
        from jinja2 import TemplateSyntaxError

        try:
            return self.env.get_template(f"{name}{SUFFIX}")
        except TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc
        except UnicodeDecodeError as exc:  # a file {% extends %} or {% include %} pulls in
            raise TemplateError(
                f"template '{name}' uses a file that is not UTF-8 text ({exc.reason}); save it as UTF-8"
            ) from exc

    def _typed(
        self, spec: TemplateSpec, values: dict[str, str], context: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], dict[str, str]]:
        typed: dict[str, Any] = {}
        kept: dict[str, str] = {}
        missing = []
        for var in spec.variables:
            raw = values.get(var.name)
            if raw is not None and not str(raw).strip():
                raw = None
            if raw is None:
                default = context.get(var.default) if var.default else None
                if default is None and var.required:
                    missing.append(var.name)
                typed[var.name] = (
                    default if default is not None else ([] if var.type == "list" else None)
                )
                continue
            typed[var.name] = _convert(var, raw, now)
            # Times are kept resolved (ISO UTC): re-reading "14:10" later would mean another day.
            kept[var.name] = isoformat(typed[var.name]) if var.type == "time" else raw
        if missing:
            raise MissingVariablesError(spec.name, missing)
        return typed, kept


def _convert(var: Variable, raw: str, now: datetime) -> Any:
    if var.type == "time":
        try:
            return (parse_past_time if var.past else parse_time)(raw, now)
        except ValueError as exc:
            raise TemplateError(f"--set {var.name}: {exc}") from exc
    if var.type == "list":
        parts = re.split(r"\s*(?:\n|;|,)\s*", raw.strip())
        return [p for p in parts if p]
    return raw.strip()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except OSError as exc:
        raise TemplateError(f"cannot read template {path}: {exc.strerror}") from exc


def _finalize(value: Any) -> Any:
    # Applied to every {{ … }} after its filters, so filters still see real line breaks.
    return _LINE_BREAKS.sub(_BREAK, value) if type(value) is str else value


def _split(text: str, name: str) -> tuple[str, str]:
    text = re.sub(r"[ \t]+\n", "\n", text.lstrip("\n"))
    head, _, body = text.partition("\n")
    if not head.startswith("Subject:"):
        raise TemplateError(f"template '{name}' must start with a 'Subject: …' line")
    body = re.sub(r"\n{3,}", "\n\n", body.strip("\n")) + "\n"
    subject = re.sub(rf"\s*(?:{re.escape(_BREAK)}\s*)+", " ", head[len("Subject:") :]).strip()
    return subject, body.replace(_BREAK, "\n")


@cache
def _builtin_spec(name: str) -> TemplateSpec:
    path = BUILTIN_DIR / f"{name}{SUFFIX}"
    return _spec_from_header(
        name, _parse_header(path.read_text(encoding="utf-8"), "built-in") or {}, "built-in"
    )


def automatic_context(
    *, incident: Any, now: datetime, interval_minutes: int | None
) -> dict[str, Any]:
    """Values every template may use without the user typing them.

    ``next_update`` defaults to now plus the severity's interval while the incident is
    open (60 minutes for S1); ``rca_due`` is one week after resolution for S1.
    """
    now = utc(now)
    next_update = (
        now + timedelta(minutes=interval_minutes) if incident.is_open and interval_minutes else None
    )
    resolved_at = incident.resolved_at or now
    return {
        "ref": incident.ref,
        "title": incident.title,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "status_text": STATUS_TEXT[incident.status.value],
        "is_open": incident.is_open,
        "security": incident.security,
        "now": now,
        "started_at": incident.started_at,
        "resolved_at": resolved_at,
        "next_update": next_update,
        "summary": incident.title,
        "rca_due": resolved_at + timedelta(days=7) if incident.severity is Severity.S1 else None,
    }
