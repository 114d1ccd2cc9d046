"""``comms cadence``: status, check, watch and snooze the update cadence and other clocks.

``check`` is built for cron: it reads only the incidents that can be due, as plain tuples,
without pydantic, and exits 1 when someone must act now.  ``watch`` sends reminders, alerts, escalations and resolves to sinks and keeps
its state in the comms database, so a restart neither repeats nor loses an alert.

Each command parses its options, makes one call to :mod:`comms.watch` and prints; the
alert state, sinks, store, settings and clock come from the process's runtime.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import TYPE_CHECKING

import click

from comms import watch
from comms.cadence import (
    ACT_NOW,
    DUE_SOON,
    OK,
    OVERDUE,
    Deadline,
    human_duration,
)
from comms.commands import common
from comms.errors import EXIT_FINDINGS, CommsError, PublishError, UsageError

if TYPE_CHECKING:
    from comms.bootstrap import Runtime

_LABEL = {OVERDUE: "OVERDUE", DUE_SOON: "DUE SOON", OK: "ok"}
_ZERO = timedelta(0)
_ISO = "%Y-%m-%dT%H:%M:%SZ"
_AT_OPTION = click.option(
    "--at", "at", metavar="TIME", help="Evaluate at TIME instead of now (14:30, +2h, ISO)."
)


def _at(rt: Runtime, text: str | None) -> datetime:
    now = rt.now()
    if not text:
        return now
    from comms.times import parse_time

    try:
        return parse_time(text, now)
    except ValueError as exc:
        raise UsageError(f"--at: {exc}") from None


def _duration(option: str, text: str) -> timedelta:
    from comms.times import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


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


def _warn(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def cadence() -> None:
    """Track customer-update deadlines and the other incident clocks.

    \b
    S1: a customer update at least every 60 minutes and after every stage change, owed
    to each affected tenant; GDCMOC engaged within 10 minutes of an S1/S2 (comms incident
    engage REF); the Dedicated Director after 1 hour of an S1 without mitigation (record
    it: comms incident escalate REF --director); internal and external RCA within 1 week
    of an S1.  Policy: the [cadence] table of comms.toml.

    \b
    Example:
      comms cadence status
      comms cadence check || echo "someone must act now: see the lines above"
    """


# -- status -------------------------------------------------------------------------------


@cadence.command("status", short_help="Show every pending deadline as a table, most urgent first.")
@_AT_OPTION
@click.option("--all", "show_all", is_flag=True, help="Also list clocks that are not due yet.")
def status_command(at: str | None, show_all: bool) -> None:
    """Show every pending deadline as a table, most urgent first.

    \b
    Example:
      comms cadence status --all
      comms cadence status --at +45m     # what will be due in 45 minutes
    """
    rt = common.runtime()
    now = _at(rt, at)
    found = watch.board(rt.alert_state, rt.cadence_policy(), now)
    click.echo("\n".join(_table(found, show_all)))


def _table(found: watch.Board, show_all: bool) -> list[str]:
    shown = [d for d in found.deadlines if show_all or d.state != OK]
    if not shown:
        return [f"Nothing due at {_fmt(found.now)} ({found.incidents} incidents tracked)."]
    rows = [("STATE", "REF", "SEV", "CLOCK", "DUE", "WHEN", "REASON")]
    for d in shown:
        reason = d.reason + _owed(d)
        if d.ref in found.snoozed:
            reason += f" [snoozed until {_fmt(found.snoozed[d.ref])}]"
        if not d.restricted and d.row.title:
            reason += f" · {d.row.title}"
        rows.append((_LABEL[d.state], d.ref, d.severity, d.clock, _fmt(d.due_at), _when(d), reason))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:6])) + "  " + r[6] for r in rows]
    hidden = len(found.deadlines) - len(shown)
    if hidden:
        lines.append(f"({hidden} more not due yet; --all lists them)")
    return lines


# -- check --------------------------------------------------------------------------------


@cadence.command(
    "check", short_help="Print what is due; exit 1 when someone must act now (for cron)."
)
@_AT_OPTION
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def check_command(at: str | None, fmt: str) -> None:
    """List every deadline due soon or overdue, and which clock it is.

    \b
    Exit 1 when someone must act now, 0 otherwise (3 on an operational error):
      update    a customer update is overdue (for any tenant): send one
      engage    the GDCMOC is not engaged: comms incident engage REF
      director  an S1 ran 1 hour without mitigation and the Director escalation is
                not recorded: escalate, then comms incident escalate REF --director
    An overdue RCA (a week-long clock) is listed but does not make the exit 1.

    Lines name the tenants an update is owed to by id, never for pubsec or security
    incidents (those say "tenant 2 of 3"); titles are never printed, so the output is
    safe in logs.

    \b
    Example:
      */5 * * * *  comms cadence check --format json > /var/log/comms-cadence.json
      comms cadence check --at 14:30
    """
    rt = common.runtime()
    now = _at(rt, at)
    # The check allocates a few hundred thousand tuples per 100k incidents and makes no
    # reference cycles: the cyclic collector would spend ~15% of the run finding nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        found = watch.board(rt.alert_state, rt.cadence_policy(), now, snoozes=False, due_only=True)
        output = _check_json(found) if fmt == "json" else _check_text(found)
    finally:
        if collecting:
            # Left out of later collections, the full one at exit included: they are
            # acyclic and still freed by reference counting when dropped.
            gc.freeze()
            gc.enable()
    sys.stdout.write(output)
    # found.act_now > 0, stopping at the first: overdue deadlines come first.
    if any(d.state == OVERDUE and d.clock in ACT_NOW for d in found.deadlines):
        sys.exit(EXIT_FINDINGS)


def _owed(d: Deadline) -> str:
    """Whom an update deadline is owed to, safe for logs: ids, or positions when restricted."""
    return _owed_to(d.tenants, d.row.tenants, d.restricted) if d.tenants else ""


@lru_cache(maxsize=65536)
def _owed_to(tenants: tuple[str, ...], everyone: tuple[str, ...], restricted: bool) -> str:
    # Cached: check may print 10,000 lines, most for the same few tenant lists.
    if restricted and len(tenants) == len(everyone):
        return ""
    if restricted:
        numbers = ", ".join(str(everyone.index(t) + 1) for t in tenants)
        return f"  for tenant{'s' if len(tenants) > 1 else ''} {numbers} of {len(everyone)}"
    if len(tenants) == len(everyone) > 1:
        return f"  for all {len(everyone)} tenants"
    more = len(tenants) - 5
    return f"  for {', '.join(tenants[:5])}" + (f" and {more} more" if more > 0 else "")


def _check_text(found: watch.Board) -> str:
    # Hot path (tens of thousands of lines): the deadline unpacked, plain dict caches.
    label = {state: f"{text:<8}" for state, text in _LABEL.items()}
    # due_at -> (delta, "due ...  ...ago"): delta is now - due_at, the same for every
    # deadline due then (checked, so a different one is formatted afresh).
    due_text: dict[datetime, tuple[timedelta, str]] = {}
    owed_all: dict[bool, dict[tuple[str, ...], str]] = {False: {}, True: {}}
    lines: list[str] = []
    append = lines.append
    overdue = due_soon = 0
    for (
        ref,
        clock,
        severity,
        due_at,
        _,
        state,
        delta,
        reason,
        restricted,
        row,
        tenants,
    ) in found.deadlines:
        if state == OK:
            continue
        if state == OVERDUE:
            overdue += 1
        elif state == DUE_SOON:
            due_soon += 1
        due = due_text.get(due_at)
        if due is None or due[0] != delta:
            due = due_text[due_at] = (delta, f"due {_fmt(due_at)}  {_ago(delta)}")
        owed: str | None = ""
        if tenants and tenants is row.tenants:
            # Owed to every tenant (the common case): one lookup by the shared tuple.
            owed = owed_all[restricted].get(tenants)
            if owed is None:
                owed = owed_all[restricted][tenants] = _owed_to(tenants, tenants, restricted)
        elif tenants:
            owed = _owed_to(tenants, row.tenants, restricted)
        append(f"{label[state]}  {ref}  {severity}  {clock}  {due[1]}  {reason}{owed}")
    append(
        f"{overdue} overdue, {due_soon} due soon, "
        f"{found.incidents} incidents tracked at {_fmt(found.now)}"
    )
    return "\n".join(lines) + "\n"


def _check_json(found: watch.Board) -> str:
    doc = {
        "now": found.now.strftime(_ISO),
        "incidents": found.incidents,
        "overdue": found.overdue,
        "due_soon": found.due_soon,
        "act_now": found.act_now,
        "deadlines": [_deadline_json(d) for d in found.deadlines],
    }
    return json.dumps(doc) + "\n"


def _deadline_json(d: Deadline) -> dict[str, object]:
    doc: dict[str, object] = {
        "ref": d.ref,
        "severity": d.severity,
        "clock": d.clock,
        "state": d.state,
        "due_at": d.due_at.astimezone(UTC).strftime(_ISO),
        "minutes": round(d.delta.total_seconds() / 60),
        "reason": d.reason,
    }
    everyone = d.row.tenants
    # Several tenants: say which the deadline is owed to (positions, for restricted ones).
    if len(everyone) > 1 and d.tenants:
        if not d.restricted:
            doc["tenants"] = list(d.tenants)
        elif len(d.tenants) < len(everyone):
            doc["tenant_numbers"] = [everyone.index(t) + 1 for t in d.tenants]
    return doc


# -- watch --------------------------------------------------------------------------------


@cadence.command(
    "watch", short_help="Send reminders and alerts to stdout, Slack, PagerDuty or a webhook."
)
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
@click.option("--once", is_flag=True, help="Check once and exit (3 when a sink failed).")
@click.option("--at", "at", metavar="TIME", help="With --once: act as if it were TIME.")
def watch_command(interval: str, sinks: tuple[str, ...], once: bool, at: str | None) -> None:
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
    rt = common.runtime()
    policy = rt.cadence_policy()
    run = partial(
        watch.tick,
        rt.alert_state,
        rt.sinks(sinks),
        policy,
        warn=_warn,
        record=watch.recorder(rt.store),
    )
    try:
        if once:
            _once(run, _at(rt, at))
        else:
            _forever(run, rt.now, seconds, interval)
    except KeyboardInterrupt:
        pass


def _interval(text: str) -> float:
    seconds = _duration("--interval", text).total_seconds()
    if seconds < 1:
        raise UsageError("--interval must be at least 1s")
    return seconds


def _once(run: Callable[[datetime], watch.Tick], now: datetime) -> None:
    failed = list(dict.fromkeys(run(now).failed))
    if not failed:
        return
    if len(failed) == 1:
        message = f"alert sink {failed[0]} failed; what it missed goes out at the next check"
    else:
        names = ", ".join(failed)
        message = f"alert sinks {names} failed; what they missed goes out at the next check"
    raise PublishError(message, channel=failed[0], retryable=True)


def _forever(
    run: Callable[[datetime], watch.Tick], now: Callable[[], datetime], seconds: float, every: str
) -> None:
    while True:
        try:
            run(now())
        except CommsError as exc:
            # A service keeps watching through a locked or briefly unreadable database.
            _warn(f"warning: {exc}; trying again in {every}")
        time.sleep(seconds)


# -- snooze -------------------------------------------------------------------------------


@cadence.command("snooze", short_help="Mute the watcher's alerts for one incident for a while.")
@click.argument("ref")
@click.argument("duration")
@click.option("--at", "at", metavar="TIME", hidden=True, help="Start the snooze at TIME.")
def snooze_command(ref: str, duration: str, at: str | None) -> None:
    """Mute alerts for incident REF for DURATION (30m, 2h); 0m ends a snooze.

    The watcher holds reminders and alerts back until the snooze ends, then sends what is
    still due. ``comms cadence check`` still reports the truth.

    \b
    Example:
      comms cadence snooze INC-7 30m
      comms cadence snooze INC-7 0m      # end the snooze
    """
    length = _duration("snooze", duration)
    rt = common.runtime()
    done = watch.snooze(rt.alert_state, ref, length, actor=rt.actor, now=_at(rt, at))
    if done.until is not None:
        click.echo(f"{ref}: alerts snoozed until {_fmt(done.until)}.")
    elif done.ended:
        click.echo(f"{ref}: snooze ended.")
    else:
        click.echo(f"{ref} was not snoozed.")
