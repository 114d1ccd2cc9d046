"""How ``fix`` picks the spans to strip: the widest first, then the gravest, none
overlapping one kept already; and which findings the kept (widened) spans took with them.
Checked against the plain every-pair reading of those rules on random spans, including
empty, nested, touching and identical ones."""

from __future__ import annotations

import random

import pytest

from comms.lint.engine import LEVEL_RANK, Finding
from comms.lint.fixer import _disjoint, _inside

Span = tuple[int, int, Finding]


def _every_pair(spans: list[Span]) -> list[Span]:
    chosen: list[Span] = []
    for span in sorted(spans, key=lambda x: (x[0] - x[1], -LEVEL_RANK[x[2].level], x[0])):
        if all(span[1] <= c[0] or span[0] >= c[1] for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda c: c[0])


def _spans(rnd: random.Random, n: int, size: int) -> list[Span]:
    spans = []
    for k in range(n):
        start = rnd.randrange(size)
        end = min(size, start + rnd.choice((0, 1, 2, 5, 20, rnd.randrange(size))))
        level = rnd.choice(("error", "warning", "suggestion"))
        finding = Finding(f"Rule.{k}", level, f"m{k}", start, end)
        spans.append((start, end, finding))
    return spans


@pytest.mark.parametrize("seed", range(200))
def test_the_kept_spans_are_those_of_the_every_pair_reading(seed: int) -> None:
    rnd = random.Random(seed)
    spans = _spans(rnd, rnd.randrange(1, 60), rnd.choice((10, 100, 1000)))

    kept = _disjoint(spans)

    assert kept == _every_pair(spans)
    grown = [(max(0, a - rnd.randrange(3)), b + rnd.randrange(3), f) for a, b, f in kept]
    widened = sorted(grown, key=lambda c: c[0])  # in text order, as _widen returns them
    assert _inside(spans, widened) == [
        f for a, b, f in spans if any(c[0] <= a and b <= c[1] for c in widened)
    ]
