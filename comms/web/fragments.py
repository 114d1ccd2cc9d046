"""Pieces of pages rendered once per distinct input and kept, per process, in a bounded
LRU: the queue's rows, which are the same for every viewer.

A piece is a pure function of its key (a ``NamedTuple`` holding every value the piece
shows, and nothing else), so a kept piece can never be stale: a changed draft, incident,
finding count or deadline, or a minute more on the clock ("in 12m"), is another key.
Nothing about the viewer (user, role, CSRF token) is in a piece; those parts of a page are
rendered on every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from jinja2 import Environment
from markupsafe import Markup

from comms.web.views import QueueRow, Shown

# Queue rows kept: a queue of a few hundred drafts, each in the few versions a minute or
# two of clock makes, fits many times over (about 1 KB each).
ROWS_KEPT = 4096


class Fragments:
    """The kept pieces of one server's pages (``env`` renders them)."""

    def __init__(self, env: Environment, size: int = ROWS_KEPT) -> None:
        self._row_template = env.get_template("queue_row.html")
        # lru_cache is thread-safe: handlers run in the thread pool.
        self._row = lru_cache(maxsize=size)(self._render_row)

    def queue_rows(self, rows: Sequence[QueueRow], now: datetime) -> Markup:
        """The queue's table rows at ``now``, as HTML."""
        return Markup("\n".join([self._row(row.shown(now)) for row in rows]))

    def _render_row(self, shown: Shown) -> str:
        return self._row_template.render(row=shown)
