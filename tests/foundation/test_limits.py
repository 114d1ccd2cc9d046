"""The size caps of comms/limits.py: at the cap is accepted, one byte over is refused."""

from __future__ import annotations

import io

import pytest

from comms.errors import UsageError
from comms.limits import (
    MAX_INPUT_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_VALUE_BYTES,
    TooLargeError,
    check_size,
    describe,
    read_capped,
)


def test_the_caps() -> None:
    assert (MAX_VALUE_BYTES, MAX_MESSAGE_BYTES, MAX_INPUT_BYTES) == (65536, 65536, 1048576)
    assert (describe(MAX_VALUE_BYTES), describe(MAX_INPUT_BYTES), describe(200)) == (
        "64 KiB",
        "1 MiB",
        "200 bytes",
    )


@pytest.mark.parametrize("char", ["x", "é", "€", "😀"])
def test_check_size_counts_utf8_bytes(char: str) -> None:
    width = len(char.encode("utf-8"))
    fits = char * (MAX_VALUE_BYTES // width)
    assert check_size("--set impact", fits) is fits
    with pytest.raises(TooLargeError, match=r"--set impact is over 64 KiB"):
        check_size("--set impact", fits + char)
    with pytest.raises(TooLargeError, match="over 10 bytes"):
        check_size("title", "x" * 11, 10)


def test_text_that_is_not_utf8_is_refused() -> None:
    undecodable = b"caf\xff".decode("utf-8", "surrogateescape")  # how argv keeps bad bytes
    with pytest.raises(TooLargeError, match="not UTF-8 text"):
        check_size("tenant name", undecodable)


def test_the_error_is_usage_and_a_value_error() -> None:
    with pytest.raises(UsageError) as caught:
        check_size("x", "y" * (MAX_VALUE_BYTES + 1))
    assert caught.value.exit_code == 2
    assert isinstance(caught.value, ValueError)


def test_read_capped_stops_after_the_cap() -> None:
    assert read_capped(io.BytesIO(b"a" * 10), "in", 10) == b"a" * 10

    class Endless(io.RawIOBase):
        read_total = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            self.read_total += len(buffer)
            buffer[:] = b"\0" * len(buffer)
            return len(buffer)

    endless = Endless()
    with pytest.raises(TooLargeError, match="in is over 1 MiB"):
        read_capped(io.BufferedReader(endless), "in")
    assert endless.read_total < 2 * MAX_INPUT_BYTES
