"""Fault campaign: real `comms send` processes killed with SIGKILL at random points, injected
faults on both channels, idempotency keys expiring at the servers; `comms send --resume`
until done; then every post is counted on the servers' own side.

Ten tenants, one S2 incident, three approved updates, each sent through Switchboard (the
stub, adapters/stub_server.py) and Zendesk (tests/zendesk/server.py) at once. For each
update, a seeded random plan queues faults on both servers (Switchboard: 429, 500, 503,
slow, drop, reset, after_commit, after_commit_500 on create or send; Zendesk: 429, 500,
drop, timeout, commit_then_drop, commit_then_500 on ticket creation or reply), starts
`comms send` as a real process and kills it -9 once a random number of requests has reached
the servers (or after a random delay, or not at all), then runs `comms send --resume`
(itself killed now and then) until it exits 0. Afterwards the Switchboard stub's send log
and the Zendesk server's tickets and comments must hold each update exactly once per tenant:
0 duplicates, 0 lost.

``test_…_with_key_expiry`` also makes both servers forget every idempotency key before a
resume, as the real services do after their retention time: a resume must then find what
already landed instead of trusting the key. The Switchboard stub expires keys through
``POST /_admin/idempotency/expire``; the Zendesk test server through
``forget_idempotency_keys()`` (or, where the server predates it, by clearing its key table).

Bounded: about 15-25 s per test on two cores. ``COMMS_CAMPAIGN_SEED`` picks another plan;
every failure prints the seed, the plan and what each process printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

SEED = int(os.environ.get("COMMS_CAMPAIGN_SEED", "20261127"))
TENANTS = [f"fc{n:02d}" for n in range(1, 11)]
CHANNELS = ("switchboard", "zendesk")
ROUNDS = (
    ("investigation-start", "impact=Users cannot open merge requests (update 1)."),
    ("update", "actions=We are restarting the merge request service (update 2)."),
    ("mitigation-in-progress", "actions=We moved traffic to healthy capacity (update 3)."),
)
SWITCHBOARD_FAULTS = ("429", "500", "503", "slow", "drop", "reset", "after_commit")
SWITCHBOARD_FAULTS += ("after_commit_500",)
SWITCHBOARD_STEPS = ("POST /api/v1/notifications", "POST /api/v1/notifications/*/send")
ZENDESK_FAULTS = ("429", "500", "drop", "timeout", "commit_then_drop", "commit_then_500")
# Faults after which the server has the post and comms does not know it: with the key gone,
# only a look at what landed keeps a resume from posting again.
LANDED_SILENTLY = {
    "switchboard": ("slow", "after_commit", "after_commit_500"),
    "zendesk": ("timeout", "commit_then_drop", "commit_then_500"),
}
SLOW = 0.8  # a slow answer or a delayed one arrives after comms gave up (0.5 s)
MAX_RUNS = 14  # `comms send` and resumes per update before the campaign calls it stuck


@dataclass
class Round:
    """What happened to one update: the plan, and each process run."""

    number: int
    draft: int = 0
    faults: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"update {self.number} (draft {self.draft}): faults {self.faults or 'none'}"]
        lines += [f"    {run}" for run in self.runs]
        return "\n".join(lines)


class Campaign:
    """Drives comms against both servers and counts what they received."""

    def __init__(
        self, switchboard: Any, zendesk: Any, env: dict[str, str], seed: int, expiry: bool
    ) -> None:
        self.switchboard = switchboard
        self.zendesk = zendesk
        self.env = env
        self.work = Path(env["COMMS_DATABASE_URL"]).parent
        self.rng = random.Random(seed)
        self.seed = seed
        self.expiry = expiry
        self.rounds: list[Round] = []
        self.bodies: list[str] = []

    # -- comms ------------------------------------------------------------------------------

    def cli(self, *args: str, **env: str) -> str:
        """Run comms in-process (setup steps); insist on exit 0."""
        from comms.cli import cli

        old = os.getcwd()
        os.chdir(self.work)
        try:
            # Only this campaign's COMMS_* settings, not those of the test process.
            unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("COMMS_")}
            result = CliRunner().invoke(cli, list(args), env={**unset, **self.env, **env})
        finally:
            os.chdir(old)
        assert result.exit_code == 0, f"comms {' '.join(args)}: {result.output}"
        return result.stdout

    def process(self, args: list[str], kill: tuple[str, float] | None) -> str:
        """Run ``comms ARGS`` as a real process, SIGKILLed at ``kill`` (("requests", n): once
        n more requests reached the servers; ("seconds", s): after s seconds)."""
        started, base = time.monotonic(), self.requests()
        sender = subprocess.Popen(
            [sys.executable, "-m", "comms", *args],
            env=self.env,
            cwd=self.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        killed = ""
        try:
            while kill is not None and sender.poll() is None:
                what, amount = kill
                due = (
                    self.requests() - base >= amount
                    if what == "requests"
                    else time.monotonic() - started >= amount
                )
                if due:
                    sender.send_signal(signal.SIGKILL)
                    killed = f" killed -9 at {what} {amount:g}"
                    break
                time.sleep(0.005)
            output, _ = sender.communicate(timeout=60)
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.communicate()
        last = output.strip().splitlines()[-1:] if output.strip() else ["(no output)"]
        return f"$ comms {' '.join(args)}  -> exit {sender.returncode}{killed}: {last[0][:160]}"

    def requests(self) -> int:
        with self.zendesk.state.lock:
            zendesk = len(self.zendesk.state.requests)
        return self.switchboard.requests() + zendesk

    # -- faults -----------------------------------------------------------------------------

    def plan_faults(self, current: Round) -> None:
        queue = []
        for _ in range(self.rng.randint(0, 3)):
            kind = self.kind(SWITCHBOARD_FAULTS, "switchboard")
            step = self.rng.choice(SWITCHBOARD_STEPS)
            times = self.rng.choice((1, 2, 2) if self.expiry else (1, 1, 2))
            queue.append({"kind": kind, "match": step, "times": times})
            current.faults.append(f"switchboard {kind} x{times} on {step}")
        self.switchboard.faults(queue=queue, slow_seconds=SLOW, retry_after=0)
        # Zendesk: the first update creates tickets (POST), the later ones reply (PUT).
        method = "POST" if current.number == 1 else "PUT"
        for _ in range(self.rng.randint(0, 3)):
            kind = self.kind(ZENDESK_FAULTS, "zendesk")
            times = (
                1 if kind == "timeout" else self.rng.choice((1, 2, 2) if self.expiry else (1, 1, 2))
            )
            skip = self.rng.randint(0, 6)
            self.zendesk.inject(
                kind, method=method, times=times, skip=skip, delay=SLOW, retry_after=0
            )
            current.faults.append(f"zendesk {kind} x{times} on {method} after {skip}")

    def kind(self, kinds: tuple[str, ...], channel: str) -> str:
        """A fault kind; with key expiry, half of them land the post and hide it."""
        if self.expiry and self.rng.random() < 0.5:
            return self.rng.choice(LANDED_SILENTLY[channel])
        return self.rng.choice(kinds)

    def kill_point(self) -> tuple[str, float] | None:
        roll = self.rng.random()
        if roll < 0.2:
            return None
        if roll < 0.45:
            return ("seconds", round(self.rng.uniform(0.05, 1.5), 2))
        return ("requests", self.rng.randint(0, 2 * len(TENANTS)))

    def expire_keys(self, current: Round) -> None:
        """Both servers forget every idempotency key (retention ran out)."""
        expired = self.switchboard.expire_keys()
        forget = getattr(self.zendesk, "forget_idempotency_keys", None)
        if forget is not None:
            forget()
        else:  # a server without the hook: its key table is the whole of its memory
            with self.zendesk.state.lock:
                self.zendesk.state.idempotency.clear()
        current.runs.append(f"(keys expired on both servers; switchboard had {expired})")

    # -- the campaign -----------------------------------------------------------------------

    def setup(self) -> None:
        self.cli("tenants", "sync")
        tenants = [a for t in TENANTS for a in ("--tenant", t)]
        self.cli("incident", "open", "--severity", "S2", "--title", "Merge requests", *tenants)

    def run_round(self, number: int, kind: str, value: str) -> None:
        current = Round(number)
        self.rounds.append(current)
        out = self.cli("draft", kind, "--incident", "INC-1", "--set", value, "--format", "json")
        current.draft = int(json.loads(out)["id"])
        draft = str(current.draft)
        via = ["--via", "switchboard", "--via", "zendesk"]
        self.cli("review", "approve", draft, *via, COMMS_REVIEWER="campaign-imoc")
        shown = json.loads(self.cli("drafts", "show", draft, "--format", "json"))
        self.bodies.append(shown["body"])
        self.plan_faults(current)
        current.runs.append(self.process(["send", draft, *via], self.kill_point()))
        state = self.state(draft)
        for attempt in range(1, MAX_RUNS):
            if state == "sent":
                break
            if self.expiry and self.rng.random() < 0.8:
                self.expire_keys(current)
            kill = self.kill_point() if attempt <= 2 else None
            # Killed before it stored a single intent, a send leaves nothing to resume:
            # the operator runs the same send again, which is just as safe.
            again = "nothing to resume" in current.runs[-1]
            args = ["send", draft, *via] if again else ["send", "--resume"]
            current.runs.append(self.process(args, kill))
            state = self.state(draft)
        assert state == "sent", f"draft {draft} is {state} after {MAX_RUNS} runs\n{self}"
        self.switchboard.faults()

    def state(self, draft: str) -> str:
        return str(json.loads(self.cli("drafts", "show", draft, "--format", "json"))["state"])

    def counts(self) -> dict[tuple[str, str, int], int]:
        """(channel, tenant, update number) -> how many times the server has it."""
        numbers = {hashlib.sha256(b.encode()).hexdigest(): n for n, b in enumerate(self.bodies, 1)}
        by_text = {b: n for n, b in enumerate(self.bodies, 1)}
        found: Counter[tuple[str, str, int]] = Counter()
        for tenant, digest in self.switchboard.sends():
            found["switchboard", tenant, numbers.get(digest, 0)] += 1
        with self.zendesk.state.lock:
            users = {u["id"]: u["email"] for u in self.zendesk.state.users.values()}
            for ticket_id, ticket in self.zendesk.state.tickets.items():
                email = users.get(ticket["requester_id"], "")
                tenant = email.split("@")[-1].split(".")[0]
                for comment in self.zendesk.state.public_comments(ticket_id):
                    found["zendesk", tenant, by_text.get(comment["body"], 0)] += 1
        return dict(found)

    def verdict(self) -> str:
        """'' when every update reached every tenant once on each channel, else why not."""
        time.sleep(SLOW + 0.4)  # slow answers still sleeping at a server land first
        found = self.counts()
        expected = {(c, t, n) for c in CHANNELS for t in TENANTS for n in range(1, len(ROUNDS) + 1)}
        duplicates = {k: v - 1 for k, v in found.items() if k in expected and v > 1}
        lost = sorted(k for k in expected if found.get(k, 0) == 0)
        strays = {k: v for k, v in found.items() if k not in expected}
        if not duplicates and not lost and not strays:
            return ""
        with self.zendesk.state.lock:
            tickets = Counter(
                t["requester_id"] for t in self.zendesk.state.tickets.values()
            ).most_common(3)
        return (
            f"{sum(duplicates.values())} duplicate(s), {len(lost)} lost, "
            f"{sum(strays.values())} unexpected post(s) counted at the servers\n"
            f"  duplicates (channel, tenant, update): extra posts {duplicates}\n"
            f"  lost: {lost}\n  unexpected: {strays}\n"
            f"  zendesk tickets per requester (top 3): {tickets}\n{self}"
        )

    def __str__(self) -> str:
        head = f"seed {self.seed} (COMMS_CAMPAIGN_SEED={self.seed} reproduces the plan)"
        return "\n".join([head, *(str(r) for r in self.rounds)])


def campaign(switchboard: Any, zendesk: Any, env: dict[str, str], *, expiry: bool) -> Campaign:
    run = Campaign(switchboard, zendesk, env, SEED + (1 if expiry else 0), expiry)
    run.setup()
    for number, (kind, value) in enumerate(ROUNDS, 1):
        run.run_round(number, kind, value)
    return run


@pytest.mark.slow
def test_kills_and_faults_on_both_channels_post_each_update_exactly_once(
    switchboard: Any, zendesk: Any, campaign_env: dict[str, str]
) -> None:
    run = campaign(switchboard, zendesk, campaign_env, expiry=False)
    problem = run.verdict()
    print(run)  # the plan and every run, for `pytest -s`
    assert not problem, problem


@pytest.mark.slow
def test_kills_and_faults_with_key_expiry_post_each_update_exactly_once(
    switchboard: Any, zendesk: Any, campaign_env: dict[str, str]
) -> None:
    # Needs comms to verify what landed before re-posting once a key is gone (pending work
    # of the delivery engineer): until then this may find duplicates. Not skipped on purpose.
    run = campaign(switchboard, zendesk, campaign_env, expiry=True)
    problem = run.verdict()
    print(run)  # the plan and every run, for `pytest -s`
    assert not problem, problem
