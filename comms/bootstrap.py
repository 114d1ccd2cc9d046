"""The composition root: settings → store, alert state, publishers, sinks, renderer, clock.

This is the one module outside ``adapters/`` that imports ``comms.adapters``: it picks
each adapter by name through a registry, so adding a backend or a channel is one adapter
module plus one line here.  Everything is built lazily (``comms --help`` and
``comms cadence check`` stay fast) and closed by ``Runtime.close``.

The core (``service``, ``review``, ``delivery``, ``watch``, ``cadence``, ``lint``) never
reads the environment or the clock; a ``Runtime`` hands it ready objects and a ``now``.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from comms.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from comms.cadence import Policy
    from comms.config_check import ConfigReport, TableCheck, TableContext, TableProblemsError
    from comms.delivery import Process
    from comms.incidentio.mapping import Rules
    from comms.incidentio.records import IncidentioAPI
    from comms.incidentio.slack import SlackPoster
    from comms.incidentio.webhooks import WebhookMemory, WebhookReceiver
    from comms.lint.config import LintConfig
    from comms.models import User
    from comms.notice import ReviewNotifier
    from comms.ports import AlertSink, AlertState, Publisher, Store, TenantDirectory
    from comms.render import Renderer
    from comms.review import ReviewPolicy
    from comms.settings import Settings

# scheme -> "module:function(DatabaseURL)"; a PostgreSQL store joins with one line.
STORES: dict[str, str] = {
    "sqlite": "comms.adapters.sqlite_store:open_store",
    "memory": "comms.adapters.memory_store:open_store",
    "postgresql": "comms.adapters.postgres_store:open_store",
}
ALERT_STATES: dict[str, str] = {
    "sqlite": "comms.adapters.sqlite_alerts:open_alert_state",
    "memory": "comms.adapters.memory_store:open_alert_state",
    "postgresql": "comms.adapters.postgres_alerts:open_alert_state",
}
# channel -> "module:function(table, environ)"; the table is [channel] of comms.toml.
PUBLISHERS: dict[str, str] = {
    "switchboard": "comms.adapters.rest:from_settings",
    "zendesk": "comms.adapters.zendesk:from_settings",
}
# channels that also serve the tenant directory (``comms tenants sync``)
DIRECTORIES: dict[str, str] = {"switchboard": "comms.adapters.rest:from_settings"}
SINKS = "comms.adapters.alert_sinks:build_sinks"
REVIEW_NOTIFIER = "comms.adapters.alert_sinks:review_notifier"
# Where review notices go when comms.toml has no [notify] review.
REVIEW_SLACK_ENV = "COMMS_REVIEW_SLACK_URL"
# channel -> "module:Class" that validates its [channel] table without building a client.
CHANNEL_CONFIGS: dict[str, str] = {
    "switchboard": "comms.adapters.rest:SwitchboardConfig",
    "zendesk": "comms.adapters.zendesk:ZendeskConfig",
}

# Services comms reads from or tells, not delivery channels: "module:function(table, environ)".
SERVICES: dict[str, str] = {
    "incidentio": "comms.adapters.incidentio:from_settings",
    "slack": "comms.adapters.slack_web:from_settings",
}

CHANNELS: tuple[str, ...] = tuple(PUBLISHERS)
INCIDENTIO_TOKEN_ENV = "COMMS_INCIDENTIO_TOKEN"
# The signing secret of the incident.io webhook endpoint (whsec_…), for comms serve.
INCIDENTIO_WEBHOOK_SECRET_ENV = "COMMS_INCIDENTIO_WEBHOOK_SECRET"
SLACK_TOKEN_ENV = "COMMS_SLACK_BOT_TOKEN"
SWITCHBOARD_URL_ENV = "COMMS_SWITCHBOARD_URL"
SWITCHBOARD_TOKEN_ENV = "COMMS_SWITCHBOARD_TOKEN"
# Stands in for a secret or URL the environment gives at send time, to check the rest.
_PLACEHOLDER_URL = "https://placeholder.invalid"


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


# -- checking comms.toml ------------------------------------------------------------------


def _unknown(name: str, table: Mapping[str, Any], known: Iterable[str]) -> None:
    keys = list(known)
    unknown = [key for key in table if key not in keys]
    if unknown:
        raise ConfigError(f"unknown key '{name}.{unknown[0]}' (known: {', '.join(keys)})")


def _check_updates(table: Mapping[str, Any], context: TableContext) -> None:
    from comms.settings import check_updates

    check_updates(table)


def _check_review(table: Mapping[str, Any], context: TableContext) -> None:
    from comms.review import ReviewPolicy

    ReviewPolicy.from_table(dict(table))


def _check_cadence(table: Mapping[str, Any], context: TableContext) -> None:
    from comms.cadence import policy_from_config

    policy_from_config(table, context.intervals)


def send_channels(table: Mapping[str, Any]) -> list[str]:
    """``[send] channels``, else Switchboard alone; ``ConfigError`` for an unknown channel."""
    channels = table.get("channels", ["switchboard"])
    if not isinstance(channels, list) or not channels or not set(channels) <= set(CHANNELS):
        known = ", ".join(f"'{c}'" for c in CHANNELS)
        raise ConfigError(f"[send]: channels must be a list drawn from {known}")
    return list(dict.fromkeys(channels))


def send_concurrency(value: Any) -> int:
    """``[send] concurrency`` (or ``--concurrency``): a whole number from 1 to 64."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 64:
        raise ConfigError("[send]: concurrency must be a whole number from 1 to 64")
    return value


def _check_send(table: Mapping[str, Any], context: TableContext) -> None:
    _unknown("send", table, ("channels", "concurrency"))
    send_channels(table)
    if "concurrency" in table:
        send_concurrency(table["concurrency"])


def _placeholders(specs: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with a placeholder URL for every ``env:NAME`` the specs name and it
    lacks: those are secrets the environment gives when the command runs, so an unset one
    is not a problem of the file (the parser builds no client, sends nothing)."""
    named = {m for spec in specs for m in re.findall(r"env:(\w+)", spec)}
    return {**dict.fromkeys(named, _PLACEHOLDER_URL), **environ}


def _check_alerts(table: Mapping[str, Any], context: TableContext) -> None:
    _unknown("alerts", table, ("sinks",))
    sinks = table.get("sinks", [])
    if not isinstance(sinks, list) or not all(isinstance(x, str) for x in sinks):
        raise ConfigError('alerts.sinks must be a list like ["stdout", "slack:env:SLACK_URL"]')
    # The sinks' own parser judges each spec.
    try:
        _load(SINKS)(sinks, lambda: None, _placeholders(sinks, context.environ))
    except UsageError as exc:
        raise ConfigError(f"alerts.sinks: {exc}") from None


# [auth] mode: "token" (every command authenticates with COMMS_TOKEN) or "none" (local,
# self-declared names).  A shared store is always "token": anyone who reaches the database
# could otherwise approve as anyone.
AUTH_MODES = ("none", "token")
TOKEN_ENV = "COMMS_TOKEN"
SHARED_SCHEMES = ("postgresql",)


def _check_auth(table: Mapping[str, Any], context: TableContext) -> None:
    _unknown("auth", table, ("mode",))
    mode = table.get("mode", "none")
    if mode not in AUTH_MODES:
        raise ConfigError(
            'auth.mode must be "token" or "none" (the default without a shared store)'
        )


def _shared(url: str) -> bool:
    """Whether ``url`` is a usable URL of a shared store (a bad one is reported elsewhere)."""
    try:
        return parse_database_url(url).scheme in SHARED_SCHEMES
    except ConfigError:
        return False


def auth_mode(database_url: str, table: Mapping[str, Any]) -> str:
    """The authentication mode for a database and an ``[auth]`` table: "token" on a shared
    (PostgreSQL) store, whatever the table says, and where the table asks for it; else
    "none".  ``mode = "none"`` with a shared store is a ``ConfigError``."""
    mode = table.get("mode")
    shared = parse_database_url(database_url).scheme in SHARED_SCHEMES
    if shared and mode == "none":
        raise ConfigError(
            'auth.mode = "none" is refused on a shared PostgreSQL store: there every command '
            'acts as the user whose COMMS_TOKEN it presents; remove it or set mode = "token"'
        )
    return "token" if shared or mode == "token" else "none"


def _check_notify(table: Mapping[str, Any], context: TableContext) -> None:
    _unknown("notify", table, ("review",))
    spec = table.get("review")
    if spec is None:
        return
    if not isinstance(spec, str):
        raise ConfigError("notify.review must be like 'slack:env:COMMS_REVIEW_SLACK_URL'")
    try:
        _load(REVIEW_NOTIFIER)(spec, lambda: None, _placeholders([spec], context.environ))
    except UsageError as exc:
        raise ConfigError(str(exc)) from None


def _check_serve(table: Mapping[str, Any], context: TableContext) -> None:
    from comms.web.config import check_serve  # standard library only: cheap at start-up

    check_serve(table, context)


def _check_switchboard(table: Mapping[str, Any], context: TableContext) -> None:
    config = _load(CHANNEL_CONFIGS["switchboard"])
    url = context.environ.get(SWITCHBOARD_URL_ENV)
    filled = dict(table)
    if "base_url" not in table:
        filled["base_url"] = url or _PLACEHOLDER_URL
    # The token is the environment's business (COMMS_SWITCHBOARD_TOKEN at send time).
    config.from_table(filled, {} if "token" in table else {SWITCHBOARD_TOKEN_ENV: "set-later"})
    if not context.has(table, "base_url") and not url:
        raise ConfigError(f"[switchboard]: no base_url; add one here or set {SWITCHBOARD_URL_ENV}")


def _check_incidentio(table: Mapping[str, Any], context: TableContext) -> None:
    _load("comms.adapters.incidentio:IncidentioConfig").from_table(table, context.environ)
    _check_incidentio_mapping(table, context)


def _check_incidentio_mapping(table: Mapping[str, Any], context: TableContext) -> None:
    from comms.incidentio.mapping import rules_from_table

    rules_from_table(table)


def _check_slack(table: Mapping[str, Any], context: TableContext) -> None:
    _load("comms.adapters.slack_web:SlackConfig").from_table(table)


def _pydantic_problems(name: str, table: Mapping[str, Any], exc: Any) -> TableProblemsError:
    from comms.config_check import TableProblemsError

    items: list[tuple[str | None, str]] = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        key = str(err["loc"][0]) if err["loc"] and err["loc"][0] in table else None
        items.append((key, f"{name}.{where or '(table)'}: {err['msg']}"))
    return TableProblemsError(items)


def _check_zendesk(table: Mapping[str, Any], context: TableContext) -> None:
    from pydantic import ValidationError

    model = _load(CHANNEL_CONFIGS["zendesk"])
    _unknown("zendesk", table, model.model_fields)
    filled = dict(table)
    for key, stand_in in (("subdomain", "placeholder"), ("email", "placeholder@example.com")):
        if key not in table and context.has(table, key):
            filled[key] = stand_in  # set in the file, checked on its own
    try:
        model.model_validate(filled)
    except ValidationError as exc:
        raise _pydantic_problems("zendesk", table, exc) from None


def _rule_ids(packs: Iterable[str], base_dir: Path) -> set[str]:
    """Every rule id of the shipped packs and of the team packs that can be read."""
    from comms.limits import read_capped
    from comms.lint.rules import PackError, default_packs, load_pack_source

    found = {rule.id for pack in default_packs() for rule in pack.rules}
    for name in packs:
        path = base_dir / name
        try:  # an unreadable pack is the full check's problem ("not found", ...)
            if not path.is_file():  # never /dev/zero or a pipe
                continue
            with path.open("rb") as stream:
                text = read_capped(stream, str(path)).decode("utf-8")
            pack = load_pack_source(path.stem, text)
        except (OSError, UnicodeDecodeError, PackError, UsageError):
            continue
        found |= {rule.id for rule in pack.rules}
    return found


def _check_lint_rules(table: Mapping[str, Any], context: TableContext) -> None:
    """The part of the ``[lint]`` check every command runs: each id in ``rules`` is a rule
    of the shipped packs or of a team pack (an unknown id would silently do nothing)."""
    rules = table.get("rules") or {}
    if not rules:
        return
    packs = (table if context.whole is None else context.whole).get("packs", [])
    known = _rule_ids(packs if isinstance(packs, list) else [], context.base_dir)
    unknown = [rule for rule in rules if rule not in known]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"lint.rules: no rule '{unknown[0]}' in the packs{hint}")


def _check_lint(table: Mapping[str, Any], context: TableContext) -> LintConfig:
    from comms.lint.config import LintConfig, validate

    _unknown("lint", table, LintConfig.model_fields)
    try:
        config = validate(dict(table), base_dir=context.base_dir)
    except OSError as exc:  # a pack path the system refuses (too long, no permission)
        raise ConfigError(f"lint.packs: cannot read {exc.filename}: {exc.strerror}") from None
    _check_lint_rules(table, context)
    return config


# [table] -> its checks.  Switchboard, Zendesk, lint and the alert sinks import httpx,
# zenpy, pydantic or an adapter (100-240 ms): every command checks their keys and types
# (settings.SCHEMA) and `comms config check` the rest; the others are checked in full.
TABLE_CHECKS: dict[str, TableCheck] = {  # (full, load): see config_check.TableCheck
    "updates": (_check_updates, _check_updates),
    "review": (_check_review, _check_review),
    "cadence": (_check_cadence, _check_cadence),
    "send": (_check_send, _check_send),
    "alerts": (_check_alerts, None),
    "auth": (_check_auth, _check_auth),
    "serve": (_check_serve, _check_serve),
    "notify": (_check_notify, None),
    "lint": (_check_lint, _check_lint_rules),
    "switchboard": (_check_switchboard, None),
    "zendesk": (_check_zendesk, None),
    "incidentio": (_check_incidentio, _check_incidentio_mapping),
    "slack": (_check_slack, None),
}


def check_table(
    name: str,
    table: Mapping[str, Any],
    *,
    base_dir: Path,
    intervals: Mapping[str, int] | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """The full check of one ``[table]``; raises ``ConfigError`` with the first problem."""
    from comms.config_check import TableContext

    context = TableContext(
        base_dir, dict(intervals or {}), os.environ if environ is None else environ
    )
    TABLE_CHECKS[name][0](table, context)


def _scalar_problems(
    data: Mapping[str, Any], base_dir: Path, environ: Mapping[str, str]
) -> list[tuple[str, str]]:
    """What is wrong with ``database_url`` and ``templates_dir`` beyond their type, and an
    ``[auth] mode`` the database refuses."""
    found = []
    url = data.get("database_url")
    if isinstance(url, str) and url.strip():
        try:
            parse_database_url(url)
        except ConfigError as exc:
            found.append(("database_url", str(exc).replace("COMMS_DATABASE_URL", "database_url")))
    auth = data.get("auth")
    # The URL the commands would use: the environment's over the file's.
    chosen = environ.get("COMMS_DATABASE_URL") or (url if isinstance(url, str) else "")
    if isinstance(auth, dict) and auth.get("mode") == "none" and _shared(chosen):
        try:
            auth_mode(chosen, auth)
        except ConfigError as exc:
            found.append(("auth.mode", str(exc)))
    folder = data.get("templates_dir")
    if isinstance(folder, str) and folder.strip():
        path = base_dir / Path(folder).expanduser()
        try:
            usable = path.is_dir()
        except OSError:  # a name too long
            usable = False
        if not usable:
            found.append(
                ("templates_dir", f"templates_dir: no folder {path}; create it or fix the path")
            )
    return found


def check_config(
    config: Path | None = None, environ: Mapping[str, str] | None = None
) -> ConfigReport:
    """Check the whole configuration file the commands would read (``config``, else
    ``COMMS_CONFIG``, ``./comms.toml``, the user config folder): TOML, every key and type,
    and every table with its full check.  Never raises for a problem in the file."""
    from comms.config_check import ConfigReport, config_problems, well_typed
    from comms.settings import (
        DEFAULT_INTERVALS,
        Problem,
        ProblemError,
        check_updates,
        find_config,
        locate,
        read_config,
        type_problems,
        user_config_file,
    )

    env = os.environ if environ is None else environ
    looked_in = (Path("comms.toml"), user_config_file())
    try:
        path = find_config(config, env)
        text, data = read_config(path) if path else ("", {})
    except ProblemError as exc:
        return ConfigReport(None, (exc.problem,), looked_in)
    if path is None:
        return ConfigReport(None, (), looked_in)
    source = str(path)
    problems = type_problems(data, text, source)
    problems += [
        Problem(source, locate(text, *_where(k)), m)
        for k, m in _scalar_problems(data, path.parent, env)
    ]
    typed = well_typed(data)
    try:
        intervals = check_updates(typed.get("updates", {}))
    except ConfigError:
        intervals = dict(DEFAULT_INTERVALS)  # reported by the [updates] check below
    problems += config_problems(
        typed,
        TABLE_CHECKS,
        text=text,
        source=source,
        base_dir=path.parent,
        intervals=intervals,
        environ=env,
        full=True,
    )
    problems.sort(key=lambda p: p.line or 0)
    return ConfigReport(path, tuple(problems), looked_in)


def _where(key: str) -> tuple[str | None, str]:
    """``("auth", "mode")`` for ``"auth.mode"``, ``(None, key)`` for a top-level key."""
    table, _, name = key.rpartition(".")
    return (table or None, name)


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed ``COMMS_DATABASE_URL``: the scheme picks the store, ``target`` is its
    file path (sqlite), name (memory) or the whole URL (servers)."""

    scheme: str
    target: str

    @property
    def path(self) -> Path:
        """The file of a SQLite URL."""
        return Path(self.target)


def parse_database_url(url: str) -> DatabaseURL:
    """Read ``COMMS_DATABASE_URL``: a path, ``sqlite:///path``, ``memory://name`` or a
    server URL whose scheme a registered store handles; ``ConfigError`` otherwise."""
    text = url.strip()
    if not text:
        raise ConfigError("COMMS_DATABASE_URL is empty; give a file path or sqlite:///path")
    if "://" not in text:
        return DatabaseURL("sqlite", str(Path(text).expanduser()))
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite":
        # sqlite:///abs/path and sqlite://rel/path, as SQLAlchemy spells them
        path = rest[1:] if rest.startswith("/") and not rest.startswith("//") else rest
        path = "/" + path.lstrip("/") if rest.startswith("//") else path
        if not path:
            raise ConfigError(f"COMMS_DATABASE_URL '{url}' names no file; use sqlite:///path")
        return DatabaseURL("sqlite", str(Path(path).expanduser()))
    if scheme == "memory":
        return DatabaseURL("memory", rest or "default")
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql"
    if scheme not in STORES:
        known = ", ".join(f"{s}://" for s in STORES)
        raise ConfigError(
            f"COMMS_DATABASE_URL scheme '{scheme}' is not supported by this version of comms "
            f"(known: a file path, {known})"
        )
    return DatabaseURL(scheme, text)


def open_store(url: str) -> Store:
    """The store for a database URL (no caching: the caller closes it)."""
    parsed = parse_database_url(url)
    opener: Callable[[DatabaseURL], Store] = _load(STORES[parsed.scheme])
    return opener(parsed)


def open_alert_state(url: str) -> AlertState:
    """The cadence watcher's state for a database URL (the caller closes it)."""
    parsed = parse_database_url(url)
    if parsed.scheme not in ALERT_STATES:
        raise ConfigError(f"comms cadence cannot keep its state in a {parsed.scheme} database")
    opener: Callable[[DatabaseURL], AlertState] = _load(ALERT_STATES[parsed.scheme])
    return opener(parsed)


def switchboard_stub() -> Any:
    """The Switchboard API stub server (``serve``, ``serve_in_thread``, ``FaultPlan`` …),
    for ``comms switchboard serve`` and ``comms demo``."""
    return importlib.import_module("comms.adapters.stub_server")


def webhook_memory(store: Store) -> WebhookMemory:
    """What the incident.io webhook receiver remembers between deliveries: the store's own,
    shared by every ``comms serve`` on the database, or this process's for a store that
    keeps none."""
    if all(hasattr(store, name) for name in ("webhook_seen", "webhook_newest", "record_webhook")):
        return cast("WebhookMemory", store)
    from comms.incidentio.webhooks import LocalWebhookMemory

    return LocalWebhookMemory()


def pinned_now(environ: Mapping[str, str]) -> datetime | None:
    """``COMMS_NOW`` (ISO 8601 with a zone) as a time, for replays and tests; None if unset."""
    pinned = environ.get("COMMS_NOW")
    if not pinned:
        return None
    from comms.times import from_iso

    try:
        return from_iso(pinned)
    except ValueError as exc:
        raise UsageError(f"COMMS_NOW: {exc}") from exc


class Runtime:
    """Ready objects for one process: built from settings on first use, closed together.

    ``environ`` defaults to ``os.environ``; ``clock`` (a zero-argument function returning a
    timezone-aware time) defaults to ``COMMS_NOW`` if set, else the system clock.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
        config: Path | None = None,
    ) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self._settings = settings
        self._config = config
        self._clock = clock
        self._store: Store | None = None
        self._user: User | None = None
        self._token_mode: bool | None = None
        self._alerts: AlertState | None = None
        self._closers: list[Callable[[], None]] = []

    # -- settings and time ------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The validated configuration (read once).

        Every key and type of the whole file, and every table whose check is cheap, is
        checked here (``TABLE_CHECKS``), so that a broken file fails the first command.
        """
        if self._settings is None:
            from comms.settings import first_problem, load_settings

            loaded = load_settings(self._config, dict(self.environ))
            source = loaded.source
            if loaded.tables:
                from comms.config_check import config_problems

                problems = config_problems(
                    loaded.tables,
                    TABLE_CHECKS,
                    text=loaded.text,
                    source=str(source) if source else "configuration",
                    base_dir=source.parent if source else Path.cwd(),
                    intervals=loaded.next_update_minutes,
                    environ=self.environ,
                    full=False,
                )
                if problems:
                    raise ConfigError(first_problem(problems))
            self._settings = loaded
        return self._settings

    def now(self) -> datetime:
        """The current time: the injected clock, ``COMMS_NOW``, or the system clock."""
        if self._clock is not None:
            return self._clock()
        return pinned_now(self.environ) or datetime.now(UTC)

    # -- who acts ---------------------------------------------------------------------------

    @property
    def token_mode(self) -> bool:
        """Whether every command authenticates with ``COMMS_TOKEN``: a shared (PostgreSQL)
        store, or ``[auth] mode = "token"``.  ``ConfigError`` for ``mode = "none"`` on a
        shared store."""
        if self._token_mode is None:
            settings = self.settings
            try:
                mode = auth_mode(settings.database_url, settings.table("auth"))
            except ConfigError as exc:
                from comms.settings import Problem, locate

                source = str(settings.source) if settings.source else "configuration"
                line = locate(settings.text, "auth", "mode") if settings.text else None
                raise ConfigError(str(Problem(source, line, str(exc)))) from None
            self._token_mode = mode == "token"
        return self._token_mode

    @property
    def token(self) -> str | None:
        """The API token this process presents (``COMMS_TOKEN``), or None."""
        return self.environ.get(TOKEN_ENV) or None

    @property
    def user(self) -> User | None:
        """The authenticated user in token mode (authenticated once, on first use: a
        missing, wrong or disabled token is an ``AuthError``, before anything is read or
        recorded); None without token mode."""
        if not self.token_mode:
            return None
        if self._user is None:
            from comms.identity import authenticate

            self._user = authenticate(self.raw_store, self.token)
        return self._user

    @property
    def actor(self) -> str:
        """Who this process acts as: the authenticated user in token mode, else ``author``
        / ``COMMS_AUTHOR`` (self-declared)."""
        user = self.user
        return user.name if user is not None else self.settings.author

    @property
    def reviewer(self) -> str:
        """Who reviews from this process: the authenticated user in token mode, else
        ``reviewer`` / ``COMMS_REVIEWER`` (self-declared)."""
        user = self.user
        return user.name if user is not None else self.settings.reviewer

    # -- storage --------------------------------------------------------------------------

    @property
    def raw_store(self) -> Store:
        """The configured store, opened on first use, without authenticating anyone: for
        ``comms db`` (the schema), ``comms users`` (the first user needs no token; the
        others authenticate in ``comms.identity``) and ``comms serve`` (each request
        authenticates).  Everything else uses ``store``."""
        if self._store is None:
            self._store = open_store(self.settings.database_url)
            self._closers.append(self._store.close)
        return self._store

    @property
    def store(self) -> Store:
        """The configured store, opened on first use; in token mode only once
        ``COMMS_TOKEN`` authenticated its user (``AuthError`` otherwise)."""
        store = self.raw_store
        self.user  # noqa: B018 - authenticates in token mode, before any read or write
        return store

    def existing_store(self) -> Store | None:
        """The store if its database exists already, else None (never creates one).

        Not authenticated: ``comms lint`` reads only tenant names through it (to catch
        another tenant named in a message), records nothing, and needs no token."""
        parsed = parse_database_url(self.settings.database_url)
        if parsed.scheme == "sqlite" and not parsed.path.is_file():
            return None
        return self.raw_store

    @property
    def alert_state(self) -> AlertState:
        """The cadence watcher's state in the configured database, opened on first use."""
        if self._alerts is None:
            self.user  # noqa: B018 - the watcher's state is the team's: authenticate first
            self._alerts = open_alert_state(self.settings.database_url)
            self._closers.append(self._alerts.close)
        return self._alerts

    # -- content --------------------------------------------------------------------------

    def renderer(self) -> Renderer:
        """The template renderer with the team's override folder, if configured."""
        from comms.render import Renderer
        from comms.settings import user_cache_dir

        return Renderer(self.settings.templates_dir, cache_dir=user_cache_dir())

    def lint_config(self) -> LintConfig | None:
        """The validated ``[lint]`` table, or None for the defaults.

        None skips pydantic (~45 ms of import) when there is nothing to validate; pack
        paths are relative to the config file's folder.
        """
        table = self.settings.lint
        if not table:
            return None
        from comms.config_check import TableContext

        source = self.settings.source
        context = TableContext(source.parent if source else Path.cwd(), environ=self.environ)
        return _check_lint(table, context)

    def cadence_policy(self) -> Policy:
        """The ``[cadence]`` policy, with ``[updates]`` intervals as the default gaps."""
        from comms.cadence import policy_from_config

        return policy_from_config(self.settings.table("cadence"), self.settings.next_update_minutes)

    def review_policy(self) -> ReviewPolicy:
        """The ``[review]`` policy."""
        from comms.review import ReviewPolicy

        return ReviewPolicy.from_table(self.settings.table("review"))

    # -- channels ---------------------------------------------------------------------

    def default_channels(self) -> list[str]:
        """``[send] channels``, else Switchboard alone."""
        return send_channels(self.settings.table("send"))

    def concurrency(self, option: int | None = None) -> int:
        """Deliveries in flight at once: the option, else ``[send] concurrency``, else 8."""
        return send_concurrency(option or self.settings.table("send").get("concurrency", 8))

    def process(self) -> Process:
        """This process as delivery leases see it: host name, pid, and whether another pid
        on this host still runs (a lease of a dead sender is taken over at once)."""
        import socket

        from comms.delivery import Process

        def alive(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:  # it exists, owned by another user
                return True
            return True

        return Process(host=socket.gethostname(), pid=os.getpid(), alive=alive)

    def publishers(self, channels: Iterable[str]) -> dict[str, Publisher]:
        """A ready publisher per channel name, closed with the runtime."""
        built: dict[str, Publisher] = {}
        for channel in dict.fromkeys(channels):
            if channel not in PUBLISHERS:
                raise UsageError(f"unknown channel '{channel}' (known: {', '.join(CHANNELS)})")
            factory = _load(PUBLISHERS[channel])
            publisher = factory(self.settings.table(channel), self.environ)
            self._closers.append(publisher.close)
            built[channel] = publisher
        return built

    def tenant_directory(self, channel: str = "switchboard") -> TenantDirectory:
        """The channel that lists tenants, closed with the runtime."""
        factory = _load(DIRECTORIES[channel])
        directory = factory(self.settings.table(channel), self.environ)
        self._closers.append(directory.close)
        directory_port: TenantDirectory = directory
        return directory_port

    def incidentio(self) -> IncidentioAPI:
        """The incident.io client (``[incidentio]``, ``COMMS_INCIDENTIO_TOKEN``), closed with
        the runtime."""
        client: IncidentioAPI = _load(SERVICES["incidentio"])(
            self.settings.table("incidentio"), self.environ
        )
        self._closers.append(client.close)
        return client

    def slack(self) -> SlackPoster:
        """The Slack bot (``[slack]``, ``COMMS_SLACK_BOT_TOKEN``) for notes on send."""
        poster: SlackPoster = _load(SERVICES["slack"])(self.settings.table("slack"), self.environ)
        return poster

    def slack_configured(self) -> bool:
        """Whether a Slack bot token is set: only then does ``comms send`` post notes."""
        return bool(self.environ.get(SLACK_TOKEN_ENV, "").strip())

    def incidentio_rules(self) -> Rules:
        """How incident.io's severities, statuses and tenant field map (``[incidentio]``)."""
        from comms.incidentio.mapping import rules_from_table

        return rules_from_table(self.settings.table("incidentio"))

    def webhook_memory(self) -> WebhookMemory:
        """What the webhook receiver remembers (:func:`webhook_memory`)."""
        return webhook_memory(self.raw_store)

    def incidentio_receiver(self) -> WebhookReceiver | None:
        """The receiver of incident.io webhooks for ``comms serve``, or None when
        ``COMMS_INCIDENTIO_WEBHOOK_SECRET`` is not set; ``ConfigError`` for a secret that is
        not ``whsec_…``.  With ``COMMS_INCIDENTIO_TOKEN`` it fetches private incidents too."""
        secret = self.environ.get(INCIDENTIO_WEBHOOK_SECRET_ENV, "").strip()
        if not secret:
            return None
        from comms.incidentio.webhooks import WebhookReceiver

        source = self.incidentio() if self.environ.get(INCIDENTIO_TOKEN_ENV, "").strip() else None
        try:
            return WebhookReceiver(
                secret, self.webhook_memory(), rules=self.incidentio_rules(), source=source
            )
        except ConfigError as exc:
            raise ConfigError(f"{INCIDENTIO_WEBHOOK_SECRET_ENV}: {exc}") from None

    def sinks(self, specs: Sequence[str] = ()) -> list[AlertSink]:
        """Alert sinks from ``--sink`` specs, else ``[alerts] sinks``, else stdout."""
        configured = self.settings.table("alerts").get("sinks", [])
        if not isinstance(configured, list) or not all(isinstance(x, str) for x in configured):
            raise ConfigError('alerts.sinks must be a list like ["stdout", "slack:env:SLACK_URL"]')
        chosen = list(specs) or configured or ["stdout"]
        build = _load(SINKS)
        sinks: list[AlertSink] = build(chosen, self._http_client, dict(self.environ))
        return sinks

    def _http_client(self) -> Any:
        """An ``httpx.Client`` for sinks and notifiers, closed with the runtime."""
        import httpx

        client = httpx.Client(timeout=10.0)
        self._closers.append(client.close)
        return client

    def public_url(self) -> str | None:
        """The address people open ``comms serve`` at (``[serve] public_url``), or None."""
        url = self.settings.table("serve").get("public_url")
        return str(url) if url else None

    def review_notifier(self) -> ReviewNotifier | None:
        """Where review notices go: ``[notify] review``, else a Slack incoming webhook in
        ``COMMS_REVIEW_SLACK_URL``, else nowhere (None)."""
        spec = self.settings.table("notify").get("review")
        if spec is None and self.environ.get(REVIEW_SLACK_ENV):
            spec = f"slack:env:{REVIEW_SLACK_ENV}"
        if spec is None:
            return None
        notifier: ReviewNotifier = _load(REVIEW_NOTIFIER)(spec, self._http_client, self.environ)
        return notifier

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Close everything built, newest first."""
        while self._closers:
            self._closers.pop()()
        self._store = None
        self._user = None
        self._alerts = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
