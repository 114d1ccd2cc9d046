"""The keys each ``[table]`` of comms.toml accepts, read off the validators themselves.

Every full check in ``comms.bootstrap.TABLE_CHECKS`` rejects an unknown key with
``unknown key '…' (known: a, b, c)``; probing it with a key no table has yields the list,
so the README and the load-time schema are compared with what the code accepts, not with
a list someone has to keep by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from comms.errors import ConfigError

PROBE = "no_such_key_in_any_table"


def accepted_keys(table: str) -> list[str]:
    """The keys the full check of ``[table]`` accepts."""
    from comms.bootstrap import check_table

    with pytest.raises(ConfigError) as caught:
        check_table(table, {PROBE: 0}, base_dir=Path.cwd(), environ={})
    message = str(caught.value)
    assert PROBE in message, f"[{table}] did not name the unknown key: {message}"
    known = re.search(r"\(known: ([^)]*)\)", message)
    assert known, f"[{table}] does not list the keys it knows: {message}"
    return [key.strip() for key in known.group(1).split(",")]
