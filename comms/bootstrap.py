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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comms.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from comms.cadence import Policy
    from comms.delivery import Process
    from comms.lint.config import LintConfig
    from comms.ports import AlertSink, AlertState, Publisher, Store, TenantDirectory
    from comms.render import Renderer
    from comms.review import ReviewPolicy
    from comms.settings import Settings

# scheme -> "module:function(DatabaseURL)"; a PostgreSQL store joins with one line.
STORES: dict[str, str] = {
    "sqlite": "comms.adapters.sqlite_store:open_store",
    "memory": "comms.adapters.memory_store:open_store",
}
ALERT_STATES: dict[str, str] = {
    "sqlite": "comms.adapters.sqlite_alerts:open_alert_state",
    "memory": "comms.adapters.memory_store:open_alert_state",
}
# channel -> "module:function(table, environ)"; the table is [channel] of comms.toml.
PUBLISHERS: dict[str, str] = {
    "switchboard": "comms.adapters.rest:from_settings",
    "zendesk": "comms.adapters.zendesk:from_settings",
}
# channels that also serve the tenant directory (``comms tenants sync``)
DIRECTORIES: dict[str, str] = {"switchboard": "comms.adapters.rest:from_settings"}
SINKS = "comms.adapters.alert_sinks:build_sinks"

CHANNELS: tuple[str, ...] = tuple(PUBLISHERS)


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


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


def pinned_now(environ: Mapping[str, str]) -> datetime | None:
    """``COMMS_NOW`` (ISO 8601 with a zone) as a time, for replays and tests; None if unset."""
    pinned = environ.get("COMMS_NOW")
    if not pinned:
        return None
    from comms.times import from_iso

    try:
        return from_iso(pinned)
    except ValueError as exc:
        raise UsageError(f"COMMS_NOW='{pinned}' is not an ISO 8601 time with a zone") from exc


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
        self._alerts: AlertState | None = None
        self._closers: list[Callable[[], None]] = []

    # -- settings and time ------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The validated configuration (read once)."""
        if self._settings is None:
            from comms.settings import load_settings

            self._settings = load_settings(self._config, dict(self.environ))
        return self._settings

    def now(self) -> datetime:
        """The current time: the injected clock, ``COMMS_NOW``, or the system clock."""
        if self._clock is not None:
            return self._clock()
        return pinned_now(self.environ) or datetime.now(UTC)

    @property
    def actor(self) -> str:
        """Who this process acts as (``author`` / ``COMMS_AUTHOR``)."""
        return self.settings.author

    @property
    def reviewer(self) -> str:
        """Who reviews from this process (``reviewer`` / ``COMMS_REVIEWER``)."""
        return self.settings.reviewer

    # -- storage --------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The configured store, opened on first use."""
        if self._store is None:
            self._store = open_store(self.settings.database_url)
            self._closers.append(self._store.close)
        return self._store

    def existing_store(self) -> Store | None:
        """The store if its database exists already, else None (never creates one)."""
        parsed = parse_database_url(self.settings.database_url)
        if parsed.scheme == "sqlite" and not parsed.path.is_file():
            return None
        return self.store

    @property
    def alert_state(self) -> AlertState:
        """The cadence watcher's state in the configured database, opened on first use."""
        if self._alerts is None:
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
        from comms.lint.config import validate

        source = self.settings.source
        return validate(table, base_dir=source.parent if source else Path.cwd())

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
        channels = self.settings.table("send").get("channels", ["switchboard"])
        if not isinstance(channels, list) or not channels or not set(channels) <= set(CHANNELS):
            known = ", ".join(f"'{c}'" for c in CHANNELS)
            raise ConfigError(f"[send]: channels must be a list drawn from {known}")
        return list(dict.fromkeys(channels))

    def concurrency(self, option: int | None = None) -> int:
        """Deliveries in flight at once: the option, else ``[send] concurrency``, else 8."""
        value = option or self.settings.table("send").get("concurrency", 8)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 64:
            raise ConfigError("[send]: concurrency must be a whole number from 1 to 64")
        return value

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

    def sinks(self, specs: Sequence[str] = ()) -> list[AlertSink]:
        """Alert sinks from ``--sink`` specs, else ``[alerts] sinks``, else stdout."""
        configured = self.settings.table("alerts").get("sinks", [])
        if not isinstance(configured, list) or not all(isinstance(x, str) for x in configured):
            raise ConfigError('alerts.sinks must be a list like ["stdout", "slack:env:SLACK_URL"]')
        chosen = list(specs) or configured or ["stdout"]

        def client_factory() -> Any:
            import httpx

            client = httpx.Client(timeout=10.0)
            self._closers.append(client.close)
            return client

        build = _load(SINKS)
        sinks: list[AlertSink] = build(chosen, client_factory, dict(self.environ))
        return sinks

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Close everything built, newest first."""
        while self._closers:
            self._closers.pop()()
        self._store = None
        self._alerts = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
