"""What ``comms send`` shows while it runs: progress on standard error (a line redrawn in
place on a terminal, plain lines otherwise), never on standard output."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from delivery_support import Stub, comms_process, prepare

from comms.commands.delivery import SendProgress
from comms.delivery import Outcome
from comms.models import Delivery


class Clock:
    """A monotonic clock in exact tenths of a second."""

    def __init__(self) -> None:
        self.tenths = 0

    def advance(self, seconds: float) -> None:
        self.tenths += round(seconds * 10)

    def __call__(self) -> float:
        return self.tenths / 10


def _deliveries(count: int) -> list[Delivery]:
    return [
        Delivery(
            idempotency_key=f"k{n}",
            incident_ref="INC-1",
            draft_id=1,
            revision=1,
            tenant=f"t{n:03d}",
            channel="switchboard",
            text_sha256="0" * 64,
        )
        for n in range(count)
    ]


def _run(progress: SendProgress, clock: Clock, count: int, seconds_each: float) -> None:
    planned = _deliveries(count)
    progress.start(planned)
    for n, d in enumerate(planned):
        clock.advance(seconds_each)
        progress.advance(Outcome(d, "failed" if n % 50 == 0 else "delivered"))
        progress.tick()
    progress.close()


def test_plain_lines_every_tenth_or_five_seconds_when_not_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    _run(SendProgress(out, tty=False, clock=clock), clock, 500, 0.1)  # 50 s in all
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert 10 <= len(lines) <= 13
    shape = re.compile(r"sending: (\d+)/500 done, (\d+) failed, (\d+)/min, about (\d+) s left")
    seen = [shape.fullmatch(line) for line in lines[:-1]]
    assert all(seen), lines
    done = [int(m[1]) for m in seen if m]
    assert done == sorted(done)
    assert done[0] >= 49  # nothing during the first five seconds
    assert all(580 <= int(m[3]) <= 600 for m in seen if m)
    assert max(b - a for a, b in zip([0, *done], done, strict=False)) <= 55
    assert lines[-1] == "sent: 500/500 done, 10 failed in 50 s"


def test_a_quick_send_prints_no_progress_when_not_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    _run(SendProgress(out, tty=False, clock=clock), clock, 40, 0.1)  # 4 s
    assert out.getvalue() == ""


def test_a_stalled_send_still_says_how_it_goes_every_five_seconds() -> None:
    out, clock = io.StringIO(), Clock()
    progress = SendProgress(out, tty=False, clock=clock)
    progress.start(_deliveries(10))
    progress.advance(Outcome(_deliveries(1)[0], "delivered"))
    for _ in range(12):  # a 429 storm: nothing completes for 12 s
        clock.advance(1)
        progress.tick()
    assert out.getvalue().splitlines() == [
        "sending: 1/10 done, 0 failed, 12/min, about 45 s left",
        "sending: 1/10 done, 0 failed, 6/min, about 1 min 30 s left",
    ]


def test_on_a_terminal_one_line_is_redrawn_and_ended() -> None:
    out, clock = io.StringIO(), Clock()
    _run(SendProgress(out, tty=True, clock=clock), clock, 20, 0.5)
    text = out.getvalue()
    assert text.startswith("\r")
    assert text.count("\n") == 1
    assert text.endswith("\rsent: 20/20 done, 1 failed in 10 s\x1b[K\n")
    assert "\rsending: 10/20 done, 1 failed, 120/min, about 5 s left\x1b[K" in text


def test_one_delivery_shows_no_progress() -> None:
    out, clock = io.StringIO(), Clock()
    _run(SendProgress(out, tty=True, clock=clock), clock, 1, 9.0)
    assert out.getvalue() == ""


def test_the_json_report_stays_alone_on_standard_output(stub: Stub, tmp_path: Path) -> None:
    draft = prepare(["acme", "globex"], severity="S3")
    sender = comms_process(["send", str(draft), "--format", "json"], cwd=tmp_path)
    stdout, stderr = sender.communicate(timeout=60)
    assert sender.returncode == 0, stderr
    assert json.loads(stdout)["sent"] is True
    assert "Traceback" not in stderr
