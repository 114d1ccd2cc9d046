"""A Slack Web API fake: ``chat.postMessage`` as Slack answers it, over real HTTP.

``slack_sdk.WebClient(base_url=fake.url)`` posts here as to ``https://slack.com/api/``.
As Slack does, an API error is HTTP 200 with ``{"ok": false, "error": …}`` (``invalid_auth``
for another token, ``channel_not_found``, ``not_in_channel`` for ``fake.outside``); a rate
limit is HTTP 429 with ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``
(queue it with ``fake.rate_limit(times)``).  ``fake.posts`` holds every accepted message;
``fake.delay`` seconds pass before each answer (a slow Slack, to widen a race).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.http_reply import reply_json


class FakeSlack:
    def __init__(self, *, token: str, channels: set[str] | None = None) -> None:
        self.token = token
        self.channels = channels or set()
        self.outside: set[str] = set()  # channels the bot is not a member of
        self.posts: list[dict[str, Any]] = []
        self.limited = 0
        self.calls = 0
        self.delay = 0.0
        self._lock = threading.Lock()  # the server answers requests in threads
        self._http: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}/api/"

    def rate_limit(self, times: int = 1) -> None:
        self.limited += times

    def __enter__(self) -> FakeSlack:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._http is not None
        self._http.shutdown()
        self._http.server_close()

    def handle(
        self, path: str, auth: str | None, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            return self._answer(path, auth, body)

    def _answer(
        self, path: str, auth: str | None, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.calls += 1
        if path != "/api/chat.postMessage":
            return 200, {"ok": False, "error": "unknown_method"}, {}
        if self.limited:
            self.limited -= 1
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
        if auth != f"Bearer {self.token}":
            return 200, {"ok": False, "error": "invalid_auth" if auth else "not_authed"}, {}
        channel = body.get("channel")
        if channel not in self.channels:
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        if channel in self.outside:
            return 200, {"ok": False, "error": "not_in_channel"}, {}
        if not body.get("text") and not body.get("blocks"):
            return 200, {"ok": False, "error": "no_text"}, {}
        ts = f"1764251520.{len(self.posts) + 1:06d}"
        self.posts.append({**body, "ts": ts})
        message = {"type": "message", "text": body.get("text"), "ts": ts, "bot_id": "B01"}
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": message}, {}


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            status, answer, headers = fake.handle(
                self.path, self.headers.get("Authorization"), body
            )
            reply_json(self, status, answer, headers)

    return Handler
