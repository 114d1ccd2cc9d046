"""``comms cadence``: status, check, watch and snooze the update cadence and other clocks.

``check`` is built for cron: one query, plain tuples, no pydantic, exit 1 when anything is
overdue.  ``watch`` sends reminders, alerts, escalations and resolves to sinks and keeps
its state in the comms database, so a restart neither repeats nor loses an alert.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import click

from comms.adapters.sqlite_alerts import SqliteAlerts, database_path
from comms.alerts import Action, AlertState, Key, Plan, plan
from comms.cadence import (
    DUE_SOON,
    OK,
    OVERDUE,
    Deadline,
    Policy,
    evaluate,
    human_duration,
    policy_from_config,
)
from comms.errors import (
    EXIT_FINDINGS,
    CommsError,
    ConfigError,
    NotFoundError,
    PublishError,
    UsageError,
)

_LABEL = {OVERDUE: "OVERDUE", DUE_SOON: "DUE SOON", OK: "ok"}
_ZERO = timedelta(0)


def _now() -> datetime:
    # COMMS_NOW pins the clock for replays and demos, as in every other command.
    from comms.commands.common import now

    return now()


def _at(text: str | None) -> datetime:
    if not text:
        return _now()
    from comms.times import parse_time

    try:
        return parse_time(text, _now())
    except ValueError as exc:
        raise UsageError(f"--at: {exc}") from None


def _open() -> tuple[SqliteAlerts, Policy, Any]:
    from comms.commands.common import settings as load

    settings = load()
    policy = policy_from_config(settings.table("cadence"), settings.next_update_minutes)
    return SqliteAlerts(database_path(settings.database_url)), policy, settings


def _deadlines(db: SqliteAlerts, policy: Policy, now: datetime) -> tuple[list[Deadline], int]:
    rows = (
        db.clock_rows(
            rca_severities=policy.rca_severities,
            resolved_since=now - policy.final_update_window,
        )
        or []
    )
    return evaluate(rows, policy, now), len(rows)


@lru_cache(maxsize=65536)
def _fmt(moment: datetime) -> str:
    # Cached: check may print 10,000 lines, and deadlines cluster on the same minutes.
    return moment.astimezone(UTC).isoformat(" ", "minutes")[:16] + " UTC"


@lru_cache(maxsize=65536)
def _ago(delta: timedelta) -> str:
    if delta >= _ZERO:
        return f"{human_duration(delta)} ago"
    return f"in {human_duration(-delta)}"


def _when(deadline: Deadline) -> str:
    return _ago(deadline.delta)


@click.group()
def cadence() -> None:
    """Track customer-update deadlines and the other incident clocks.

    \b
    S1: a customer update at least every 60 minutes and after every stage change;
    GDCMOC engaged within 10 minutes of an S1/S2; the Dedicated Director after 1 hour of
    an S1 without mitigation; internal and external RCA within 1 week of an S1.
    Policy: the [cadence] table of comms.toml.

    \b
    Example:
      comms cadence status
      comms cadence check || echo "an update is overdue"
    """


@cadence.command(short_help="Show every pending deadline as a table, most urgent first.")
@click.option(
    "--at", "at", metavar="TIME", help="Evaluate at TIME instead of now (14:30, +2h, ISO)."
)
@click.option("--all", "show_all", is_flag=True, help="Also list clocks that are not due yet.")
def status(at: str | None, show_all: bool) -> None:
    """Show every pending deadline as a table, most urgent first.

    \b
    Example:
      comms cadence status --all
      comms cadence status --at +45m     # what will be due in 45 minutes
    """
    now = _at(at)
    db, policy, _ = _open()
    with db:
        deadlines, count = _deadlines(db, policy, now)
        snoozed = db.snoozes(now)
    shown = [d for d in deadlines if show_all or d.state != OK]
    if not shown:
        click.echo(f"Nothing due at {_fmt(now)} ({count} incidents tracked).")
        return
    rows = [("STATE", "REF", "SEV", "CLOCK", "DUE", "WHEN", "REASON")]
    for d in shown:
        reason = d.reason
        if d.ref in snoozed:
            reason += f" [snoozed until {_fmt(snoozed[d.ref])}]"
        if not d.restricted and d.row.title:
            reason += f" · {d.row.title}"
        rows.append((_LABEL[d.state], d.ref, d.severity, d.clock, _fmt(d.due_at), _when(d), reason))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:6])) + "  " + r[6])
    hidden = len(deadlines) - len(shown)
    if hidden:
        click.echo(f"({hidden} more not due yet; --all lists them)")


@cadence.command(short_help="Print what is due; exit 1 if anything is overdue (for cron).")
@click.option(
    "--at", "at", metavar="TIME", help="Evaluate at TIME instead of now (14:30, +2h, ISO)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def check(at: str | None, fmt: str) -> None:
    """Exit 1 when any deadline is overdue, 0 otherwise (3 on an operational error).

    Output carries references, severities and deadlines only, never titles or tenants,
    so it is safe in logs for pubsec incidents.

    \b
    Example:
      */5 * * * *  comms cadence check --format json > /var/log/comms-cadence.json
      comms cadence check --at 14:30
    """

    now = _at(at)
    db, policy, _ = _open()
    with db:
        deadlines, count = _deadlines(db, policy, now)
    overdue = sum(1 for d in deadlines if d.state == OVERDUE)
    due_soon = sum(1 for d in deadlines if d.state == DUE_SOON)
    if fmt == "json":
        iso = "%Y-%m-%dT%H:%M:%SZ"
        doc = {
            "now": now.strftime(iso),
            "incidents": count,
            "overdue": overdue,
            "due_soon": due_soon,
            "deadlines": [
                {
                    "ref": d.ref,
                    "severity": d.severity,
                    "clock": d.clock,
                    "state": d.state,
                    "due_at": d.due_at.astimezone(UTC).strftime(iso),
                    "minutes": round(d.delta.total_seconds() / 60),
                    "reason": d.reason,
                }
                for d in deadlines
            ],
        }
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        lines = [
            f"{_LABEL[d.state]:<8}  {d.ref}  {d.severity}  {d.clock}  due {_fmt(d.due_at)}  "
            f"{_when(d)}  {d.reason}"
            for d in deadlines
            if d.state != OK
        ]
        lines.append(
            f"{overdue} overdue, {due_soon} due soon, {count} incidents tracked at {_fmt(now)}"
        )
        sys.stdout.write("\n".join(lines) + "\n")
    if overdue:
        sys.exit(EXIT_FINDINGS)


class Watcher:
    """One watcher loop over the comms database: evaluate, plan, send, remember.

    ``sinks`` are ``comms.adapters.alert_sinks`` objects.  An action counts as sent when
    every sink took it; otherwise its key keeps the previous state, so the next tick tries
    again, only on the sinks that have not taken it (stored, so a restart agrees).
    ``record(action, sink_names)`` is called for each action sent, after the state is
    saved (the watch command appends a ``cadence.alert`` event to the incident's log).
    """

    def __init__(
        self,
        db: SqliteAlerts,
        sinks: Sequence[Any],
        policy: Policy,
        warn: Callable[[str], None] = lambda message: click.echo(message, err=True),
        record: Callable[[Action, list[str]], None] | None = None,
    ) -> None:
        self.db = db
        self.sinks = list(sinks)
        self.policy = policy
        self.warn = warn
        self.record = record

    def tick(self, now: datetime) -> list[Action]:
        """Run once at ``now``; return the actions every sink took."""
        deadlines, _ = _deadlines(self.db, self.policy, now)
        previous = self.db.load()
        planned: Plan = plan(deadlines, previous, now, self.policy, self.db.snoozes(now))
        states: dict[Key, AlertState] = dict(planned.states)
        sent: list[tuple[Action, list[str]]] = []
        # Sinks that took an action another sink refused: the retry skips them.
        done = self.db.partial()
        partial: list[tuple[str, str, datetime]] = []
        finished: list[str] = []
        # A sink that failed once sits out the rest of this tick: after a 429 or a timeout,
        # hammering it with the remaining actions only makes things worse.
        resting: dict[int, int] = {}
        for action in planned.actions:
            failed = False
            after = states.get(action.key)
            token = f"{action.dedup_key}#{action.kind}#{after.sends if after else 0}"
            took: list[str] = []
            for index, sink in enumerate(self.sinks):
                slot = f"{index}:{sink.name}"
                if (token, slot) in done:
                    continue
                if id(sink) in resting:
                    resting[id(sink)] += 1
                    failed = True
                    continue
                try:
                    sink.send(action)
                    took.append(slot)
                except PublishError as exc:
                    failed = True
                    resting[id(sink)] = 0
                    self.warn(f"warning: {action.kind} {action.ref} {action.clock}: {exc}")
            if failed:
                partial.extend((token, slot, now) for slot in took)
            elif any(t == token for t, _ in done):
                finished.append(token)
            if failed:
                old = previous.get(action.key)
                if old is None:
                    states.pop(action.key, None)
                else:
                    states[action.key] = old
            else:
                sent.append((action, [sink.name for sink in self.sinks]))
        for sink in self.sinks:
            if resting.get(id(sink)):
                self.warn(
                    f"warning: {resting[id(sink)]} more for {sink.name} wait for the next check"
                )
        # Tokens of episodes that are over (resolved, or moved on to another action) go.
        live = {s.dedup_key for s in states.values()} | {a.dedup_key for a in planned.actions}
        finished += sorted({t for t, _ in done if t.split("#", 1)[0] not in live})
        self.db.save(states, sent=sent, partial=partial, finished=finished)
        if self.record is not None:
            for action, names in sent:
                self.record(action, names)
        return [action for action, _ in sent]


def _recorder(db: SqliteAlerts, closers: list[Any]) -> Callable[[Action, list[str]], None]:
    """Log each alert sent in the incident's event log, so the timeline shows it."""
    from comms.adapters.sqlite_store import SqliteStore

    store = SqliteStore(db.path)  # also creates the store's schema in a new file
    closers.append(store)

    def record(action: Action, sinks: list[str]) -> None:
        data = {
            "action": action.kind,
            "clock": action.clock,
            "due_at": action.due_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sinks": sinks,
        }
        store.append_event(
            action.ref, type="cadence.alert", actor="comms-cadence", now=action.at, data=data
        )

    return record


def _interval(text: str) -> float:
    from comms.times import parse_duration

    try:
        seconds = parse_duration(text).total_seconds()
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None
    if seconds < 1:
        raise UsageError("--interval must be at least 1s")
    return seconds


@cadence.command(short_help="Send reminders and alerts to stdout, Slack, PagerDuty or a webhook.")
@click.option(
    "--interval", default="60s", show_default=True, help="Time between checks (30s, 1m…)."
)
@click.option(
    "--sink",
    "sinks",
    multiple=True,
    metavar="SINK",
    help="stdout, slack:URL, pagerduty:ROUTING_KEY or webhook:URL; a value may be "
    "env:NAME. Repeatable. Default: sinks = [...] in the [alerts] table, else stdout.",
)
@click.option("--once", is_flag=True, help="Check once and exit.")
@click.option("--at", "at", metavar="TIME", help="With --once: act as if it were TIME.")
def watch(interval: str, sinks: tuple[str, ...], once: bool, at: str | None) -> None:
    """Send reminders, overdue alerts, escalations and resolves until stopped.

    Fifteen minutes before an update is due the reminder names the command to run; when
    it is overdue an alert fires, repeats, and escalates; sending the update resolves it.

    \b
    Example:
      comms cadence watch --sink stdout --sink slack:env:SLACK_WEBHOOK_URL \\
          --sink pagerduty:env:PAGERDUTY_ROUTING_KEY
      comms cadence watch --once --at 14:30     # what a watcher would send then
    """

    if at and not once:
        raise UsageError("--at only works with --once")
    seconds = _interval(interval)
    from comms.adapters.alert_sinks import build_sinks

    db, policy, settings = _open()
    configured = settings.table("alerts").get("sinks", [])
    if not isinstance(configured, list) or not all(isinstance(x, str) for x in configured):
        raise ConfigError('alerts.sinks must be a list like ["stdout", "slack:env:SLACK_URL"]')
    specs = list(sinks) or configured or ["stdout"]
    closers: list[Any] = []

    def client_factory() -> Any:
        import httpx

        closers.append(httpx.Client(timeout=10.0))
        return closers[-1]

    try:
        watcher = Watcher(
            db, build_sinks(specs, client_factory), policy, record=_recorder(db, closers)
        )
        while True:
            try:
                watcher.tick(_at(at) if at else _now())
            except CommsError as exc:
                # A service keeps watching through a locked or briefly unreadable database.
                if once:
                    raise
                click.echo(f"warning: {exc}; trying again in {interval}", err=True)
            if once:
                break
            time.sleep(seconds)
    except KeyboardInterrupt:
        pass
    finally:
        for closer in closers:
            closer.close()
        db.close()


@cadence.command(short_help="Mute the watcher's alerts for one incident for a while.")
@click.argument("ref")
@click.argument("duration")
@click.option("--at", "at", metavar="TIME", hidden=True, help="Start the snooze at TIME.")
def snooze(ref: str, duration: str, at: str | None) -> None:
    """Mute alerts for incident REF for DURATION (30m, 2h); 0m ends a snooze.

    The watcher holds reminders and alerts back until the snooze ends, then sends what is
    still due. ``comms cadence check`` still reports the truth.

    \b
    Example:
      comms cadence snooze INC-7 30m
      comms cadence snooze INC-7 0m      # end the snooze
    """

    from comms.commands.common import settings as load
    from comms.times import parse_duration

    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise UsageError(f"snooze: {exc}") from None
    now = _at(at)
    settings = load()
    with SqliteAlerts(database_path(settings.database_url)) as db:
        if not db.incident_exists(ref):
            raise NotFoundError(f"no incident '{ref}'; see the open ones with: comms incident list")
        if not length:
            had = db.unsnooze(ref)
            click.echo(f"{ref}: snooze ended." if had else f"{ref} was not snoozed.")
            return
        until = now + length
        db.snooze(ref, until, actor=settings.author, now=now)
    click.echo(f"{ref}: alerts snoozed until {_fmt(until)}.")
