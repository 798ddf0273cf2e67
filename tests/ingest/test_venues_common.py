"""Shared adapter helpers (dataflows/venues/common.py): time parsing, symbol normalizers, safe_parse."""

from __future__ import annotations

import pytest

from dataflows.venues.common import (
    FrameError,
    normalizer,
    safe_parse,
    split_concatenated,
    us_from_decimal_s,
    us_from_iso_z,
)
from feedhouse.core.records import ParseResult, Trade, iso_from_us, us_from_iso


@pytest.mark.parametrize(
    "text",
    [
        "2021-04-17T16:43:37.089723Z",
        "2021-04-17T16:43:05Z",
        "2021-04-17T16:43:05.5Z",
        "2023-09-25T07:48:36.925533123Z",  # nanoseconds: cut to µs like us_from_iso
        "2021-12-31T23:59:59.999999Z",
        "2021-04-17T16:43:05.000+00:00",  # not the fast shape: falls back
        "1970-01-01T00:00:00Z",
    ],
)
def test_fast_iso_agrees_with_records_helper(text: str) -> None:
    assert us_from_iso_z(text) == us_from_iso(text)


def test_fast_iso_new_seconds_agree_and_bad_clocks_fail_as_before() -> None:
    """A second not seen yet is its minute's or day's cached start plus the clock: every
    second of a day (and the next day's, across midnight) agrees with us_from_iso; a clock or date out of range raises
    what us_from_iso raises."""
    start = us_from_iso("2024-02-28T00:00:00Z")
    late = start + 86_400_000_000 - 100_000_000  # seconds of one minute: its cached start
    steps = [*range(start, start + 2 * 86_400_000_000, 997_000_123),
             *range(late, late + 200_000_000, 1_370_011)]
    for us in steps:
        text = iso_from_us(us)
        assert us_from_iso_z(text) == us_from_iso(text) == us, text
    for bad in ("2021-04-17T24:00:00Z", "2021-04-17T16:60:00Z", "2021-04-17T16:43:60.5Z",
                "2021-02-30T10:00:00Z", "2021-04-17T16:4a:30Z"):
        with pytest.raises(ValueError) as fast:
            us_from_iso_z(bad)
        with pytest.raises(ValueError) as slow:
            us_from_iso(bad)
        assert str(fast.value) == str(slow.value), bad


def test_decimal_seconds_are_exact() -> None:
    assert us_from_decimal_s("1618678142.557535") == 1618678142557535
    assert us_from_decimal_s("1618678142.5") == 1618678142500000
    assert us_from_decimal_s("1618678142") == 1618678142000000
    for bad in ("", "abc", "-1.5", "1.2.3", "1e9"):
        with pytest.raises(FrameError):
            us_from_decimal_s(bad)


def test_normalizer_checks_the_contract_once_per_symbol() -> None:
    calls = []

    def fn(native: str) -> str:
        calls.append(native)
        return split_concatenated(native)

    norm = normalizer(fn)
    assert norm("BTCUSDT") == norm("BTCUSDT") == "BTC-USDT"
    assert calls == ["BTCUSDT"]
    for bad in ("", "NOQUOTEKNOWN", "x" * 200, 5):
        with pytest.raises(FrameError):
            norm(bad)  # type: ignore[arg-type]


def test_safe_parse_turns_every_error_into_invalid() -> None:
    def broken(frame, ts):
        raise ZeroDivisionError("boom")

    def zero_time(frame, ts):
        return ParseResult(trades=[Trade("v", "A-B", "AB", "1", 1.0, 1.0, "buy", 0, ts)])

    result = safe_parse("v", broken)("{}", 1)
    assert result.invalid[0].reason == "v: unexpected ZeroDivisionError: boom"
    result = safe_parse("v", zero_time)("{}", 1)
    assert not result.trades and "bad trade id/time" in result.invalid[0].reason
    result = safe_parse("v", broken)(b"\xff\xfe", 1)
    assert result.invalid[0].raw == "\\xff\\xfe"
