"""The one exception tree of comms.

    CommsError                 exit 3 unless a subclass says otherwise
    ├── UsageError             exit 2: the command line or its input is wrong
    │   ├── TemplateError      unknown template, template syntax, bad override
    │   │   └── MissingVariablesError   required variables not given
    │   ├── NotFoundError      no incident, draft or tenant by that name
    │   └── TransitionError    a status change the process does not allow
    ├── ConfigError            malformed comms.toml or COMMS_* variable (exit 3)
    ├── AuthError              missing, wrong or disabled token (exit 3; HTTP 401)
    ├── RefusedError           a rule refused an authenticated user: role, four eyes
    │                          (exit 1; HTTP 403)
    ├── StoreError             the database cannot be opened, read or written
    └── PublishError           a channel refused or failed a delivery (channel, status)

Lint findings and overdue deadlines are data, not exceptions.  The CLI catches
``CommsError`` in one place, prints ``Error: <message>`` (click's form) and exits with ``exit_code``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_OPERATIONAL = 3


class CommsError(Exception):
    """Base of every error comms raises on purpose; ``str()`` is one line saying what to do."""

    exit_code = EXIT_OPERATIONAL


class UsageError(CommsError):
    """The user asked for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class TemplateError(UsageError):
    """A template is unknown, malformed, or cannot render with the given values."""


class MissingVariablesError(TemplateError):
    """Required template variables are missing; ``missing`` names them in template order."""

    def __init__(self, template: str, missing: list[str]) -> None:
        self.template = template
        self.missing = list(missing)
        hint = " ".join(f"--set {name}=…" for name in self.missing)
        names = ", ".join(f"'{name}'" for name in self.missing)
        super().__init__(f"template '{template}' needs {names}; pass {hint}")


class NotFoundError(UsageError):
    """No record by the given identifier."""


class TransitionError(UsageError):
    """A state change that the incident or review process does not allow."""


class ConfigError(CommsError):
    """Configuration is malformed or names something unusable."""


class AuthError(CommsError):
    """No token, a wrong one, or a disabled user's: nothing is read or recorded (exit 3)."""


class RefusedError(CommsError):
    """A rule of the review process refused what the user asked: the wrong role, or the
    author approving their own text.  ``str()`` names the rule (exit 1)."""

    exit_code = EXIT_FINDINGS


class StoreError(CommsError):
    """The store cannot be opened, migrated, read or written."""


class PublishError(CommsError):
    """A delivery channel failed; ``retryable`` says whether trying again may help, and
    ``maybe_sent`` whether the message may have been taken all the same (no answer in time)."""

    def __init__(
        self,
        message: str,
        *,
        channel: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        self.channel = channel
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent
        super().__init__(message)
