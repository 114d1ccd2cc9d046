"""The review server (``comms serve``): review queue, draft and incident pages, a JSON API.

Server-rendered pages (Jinja, autoescaped) over the same core use cases the CLI calls
(``comms.review``, ``comms.service``, ``comms.cadence``); no JavaScript, no front-end build.
Stateless: sessions are signed cookies keyed by the store's ``session_key``, so several
servers on one database serve the same users.

    config     the ``[serve]`` table and the command-line options (cheap: stdlib only)
    security   session cookies, CSRF tokens, trusted proxies, rate limits, headers
    views      core results → what a page or the API shows (marked text, diff, clocks)
    openapi    the JSON API's OpenAPI 3.1 document
    app        the Starlette application: routes, authentication, errors
    server     uvicorn, bound to a socket, with an access log that never logs a secret

This package imports Starlette and uvicorn only from ``app`` and ``server``, so that
``comms.web.config`` stays cheap enough for the configuration check every command runs.
"""
