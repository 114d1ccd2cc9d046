"""One answer from a test's fake HTTP server (``http.server`` handlers)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any


def reply_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: Any,
    headers: Mapping[str, str] = {},
    *,
    content_type: str = "application/json; charset=utf-8",
) -> None:
    """Send ``payload`` as JSON with ``status`` and ``headers``.  A client that gave up
    waiting (a timeout under test) has closed its end: that is not the fake's error, so
    nothing is raised or printed, and the connection is closed."""
    data = json.dumps(payload).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True
