"""The Slack Web API adapter: posts ``comms.incidentio.slack.SlackNote`` with Slack's own SDK.

``SlackWebPoster`` implements the core's ``SlackPoster`` port over
``slack_sdk.WebClient.chat_postMessage`` with a bot token (``COMMS_SLACK_BOT_TOKEN``, scope
``chat:write``; the bot must be in the incident's channel).  The SDK's own retry handlers
are switched off: the shared policy (``comms.adapters.retry``) retries what Slack did not
take, and only that.  ``chat.postMessage`` has no idempotency key, so a post that may have
landed (a time-out, a 5xx) is not repeated: a second note in the channel would be noise,
a missing one is reported.  ``base_url`` (``[slack] base_url``) points the client at a
local fake in tests.
"""

from __future__ import annotations

import logging
import os
import urllib.error
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from comms.adapters.retry import RetryPolicy, retry_after_seconds
from comms.errors import ConfigError, PublishError
from comms.incidentio.slack import SlackNote

NAME = "slack"
TOKEN_ENV = "COMMS_SLACK_BOT_TOKEN"
DEFAULT_URL = "https://slack.com/api/"
# Errors that mean the token itself is wrong (docs.slack.dev/reference/methods/chat.postMessage).
TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
CHANNEL_HINTS = {
    "channel_not_found": "the channel does not exist or the bot cannot see it",
    "not_in_channel": "invite the bot to the channel (/invite @bot)",
    "is_archived": "the incident's channel is archived",
    "missing_scope": "give the bot the chat:write scope",
}

# The SDK logs a failed connection at ERROR level; comms reports it as one line instead.
_QUIET = logging.getLogger("comms.slack_sdk")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


class SlackWebPoster:
    """Posts notes through a ``slack_sdk.WebClient``; ``policy`` retries rate limits and
    refused connections (nothing posted) only."""

    name = NAME

    def __init__(self, client: WebClient, *, policy: RetryPolicy | None = None) -> None:
        self.client = client
        self.policy = policy or RetryPolicy(max_attempts=3)

    def close(self) -> None:
        """Nothing to release: the SDK opens a connection per call."""

    def post(self, note: SlackNote) -> str:
        """Post ``note``; return the message's ``ts``.  ``ConfigError`` for a refused
        token; ``PublishError`` (channel ``slack``) for anything else."""

        def attempt() -> str:
            try:
                response = self.client.chat_postMessage(**note.payload())
            except SlackApiError as exc:
                raise _api_error(exc, note.channel) from exc
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    raise _timed_out() from exc
                refused = isinstance(exc.reason, ConnectionRefusedError)
                raise PublishError(
                    f"cannot reach Slack at {self.client.base_url} ({exc.reason})",
                    channel=NAME,
                    retryable=refused,  # refused: nothing was sent
                ) from exc
            except TimeoutError as exc:
                raise _timed_out() from exc
            ts = response.get("ts")
            return str(ts) if ts else ""

        return self.policy.call(attempt)


def _timed_out() -> PublishError:
    return PublishError(
        "Slack did not answer chat.postMessage in time; the note may have been posted, so "
        "it is not posted again",
        channel=NAME,
        maybe_sent=True,
    )


def _api_error(exc: SlackApiError, channel: str) -> Exception:
    data: Any = exc.response.data if exc.response is not None else {}
    error = str(data.get("error", "error")) if isinstance(data, dict) else "error"
    status = exc.response.status_code if exc.response is not None else None
    if error in TOKEN_ERRORS:
        return ConfigError(f"Slack refused the bot token in {TOKEN_ENV}: {error}")
    if status == 429 or error == "ratelimited":
        headers = exc.response.headers if exc.response is not None else {}
        retry_after = retry_after_seconds(headers.get("retry-after") or headers.get("Retry-After"))
        return PublishError(
            "Slack rate-limited chat.postMessage",
            channel=NAME,
            status=429,
            retryable=True,
            retry_after=retry_after,
        )
    hint = CHANNEL_HINTS.get(error, "")
    return PublishError(
        f"Slack refused the note for channel {channel}: {error}" + (f"; {hint}" if hint else ""),
        channel=NAME,
        status=status,
        retryable=status in (502, 503) and error in ("service_unavailable", "error"),
    )


@dataclass(frozen=True)
class SlackConfig:
    """The ``[slack]`` table: where the Web API is (a local fake in tests), how long to wait."""

    base_url: str = DEFAULT_URL
    timeout_seconds: int = 10

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> SlackConfig:
        """Validate the raw table; ``ConfigError`` names the first bad key."""
        known = ("base_url", "timeout_seconds")
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise ConfigError(f"[slack]: unknown key '{unknown[0]}' (known: {', '.join(known)})")
        url = table.get("base_url", DEFAULT_URL)
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f'[slack]: base_url must be an http(s) URL, e.g. "{DEFAULT_URL}"')
        timeout = table.get("timeout_seconds", 10)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 120:
            raise ConfigError("[slack]: timeout_seconds must be a whole number from 1 to 120")
        return cls(url, timeout)


def from_settings(
    table: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> SlackWebPoster:
    """The poster for the raw ``[slack]`` table and ``COMMS_SLACK_BOT_TOKEN``; ``ConfigError``
    without a token or with a bad table."""
    config = SlackConfig.from_table(table)
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"no Slack bot token: set {TOKEN_ENV} (a bot with chat:write)")
    client = WebClient(
        token=token,
        base_url=config.base_url,
        timeout=config.timeout_seconds,
        retry_handlers=[],
        logger=_QUIET,
    )
    return SlackWebPoster(client)
