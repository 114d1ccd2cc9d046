"""Size caps on what comms accepts, in one place (documented in the README, "Limits").

Nothing in the published facts about Switchboard or Zendesk fixes a size, so the caps are
generous bounds that no real update comes near, chosen so that a pasted log, a binary file
or ``/dev/zero`` is refused with one line instead of being stored, sent or read forever:

- ``MAX_VALUE_BYTES``: one value (a ``--set``/``--vars`` value, a title, a tenant's name,
  URL, alias or e-mail address): 64 KiB;
- ``MAX_MESSAGE_BYTES``: one message as rendered or edited (subject and body): 64 KiB;
- ``MAX_INPUT_BYTES``: one input file or stream (``comms lint``, ``--vars``,
  ``tenants import``, ``comms.toml``): 1 MiB, and reading stops there.

Sizes are UTF-8 bytes.  Pure: no I/O beyond the bounded read of an open stream.
"""

from __future__ import annotations

from typing import BinaryIO

from comms.errors import UsageError

KIB = 1024
MAX_VALUE_BYTES = 64 * KIB
MAX_MESSAGE_BYTES = 64 * KIB
MAX_INPUT_BYTES = 1024 * KIB


class TooLargeError(UsageError, ValueError):
    """A value, message or input is over its cap, or a value is not text (exit 2).

    Also a ``ValueError``, so that a model's ``__post_init__`` can raise it and pydantic
    reports it as a validation error of that field.
    """


def describe(size: int) -> str:
    """``65536`` → ``64 KiB``; ``1048576`` → ``1 MiB``."""
    if size >= KIB * KIB and size % (KIB * KIB) == 0:
        return f"{size // (KIB * KIB)} MiB"
    if size >= KIB and size % KIB == 0:
        return f"{size // KIB} KiB"
    return f"{size} bytes"


def check_size(name: str, value: str, limit: int = MAX_VALUE_BYTES) -> str:
    """Return ``value`` when it is text whose UTF-8 form is at most ``limit`` bytes, else
    raise ``TooLargeError`` naming ``name`` (``--set impact``, ``title``, ``tenant name``)
    and the cap.  Text that cannot be UTF-8 (bytes a terminal could not decode, which
    Python keeps as lone surrogates) is refused too: no store or channel can take it."""
    if len(value) > limit:  # at least one byte a character: no need to encode it all
        raise TooLargeError(f"{name} is over {describe(limit)}, the most comms accepts; shorten it")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise TooLargeError(
            f"{name} is not UTF-8 text (bytes the terminal could not decode); retype it"
        ) from None
    if size > limit:
        raise TooLargeError(f"{name} is over {describe(limit)}, the most comms accepts; shorten it")
    return value


def read_capped(stream: BinaryIO, name: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """Read ``stream`` to its end, or raise ``TooLargeError`` as soon as it passes ``limit``
    bytes (so ``/dev/zero`` or an endless pipe stops at once instead of filling memory)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(
            f"{name} is over {describe(limit)} (the cap on one input); split it or shorten it"
        )
    return data
