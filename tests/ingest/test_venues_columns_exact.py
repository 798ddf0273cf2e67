"""The column-wise pieces of the venues' fast paths give exactly what the per-trade code
gives: Python's `round` (trade_columns.rounded, the contract sizes in BASE), the per-frame
ISO time reader (checked.iso_z), `str` of ids (checked.int_texts). Exact means the same
float bits (repr tells -0.0, nan and the last digit apart), also next to rounding halves."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.parse.text_columns import _ISO_MIN_ROWS as ISO_MIN_ROWS
from dataflows.parse.trade_columns import rounded, trade_columns
from dataflows.venues import checked
from dataflows.venues import instruments as ins
from dataflows.venues.coinbase import _us
from feedhouse.core.records import MARKET_EPOCH_US


def _halves(digits: int):
    """Values at, just below and just above a half of the last kept digit."""
    half = st.integers(0, 2**52).map(lambda k: (k + 0.5) / 10**digits)
    return st.tuples(half, st.sampled_from([-1, 0, 1])).map(
        lambda h: h[0] if h[1] == 0 else math.nextafter(h[0], h[1] * math.inf))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.sampled_from([8, 12]).flatmap(lambda d: st.tuples(st.just(d), st.lists(
    st.one_of(st.floats(), _halves(d)), min_size=1, max_size=40))))
def test_rounded_is_pythons_round(case) -> None:
    digits, values = case
    got = rounded(np.array(values, dtype=np.float64), digits).tolist()
    assert list(map(repr, got)) == [repr(round(v, digits)) for v in values]


POSITIVE = st.floats(1e-9, 1e9, allow_subnormal=False)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(["I", "L", "S", "U"]), POSITIVE, POSITIVE),
                min_size=1, max_size=30),
       st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_contract_amounts_are_instruments_trade_amounts(rows, inverse_size, linear_size) -> None:
    """Inverse (quotient to 8 decimals, or 6 significant digits under 1e-4) and linear
    (product to 12 decimals) contracts, column-wise, equal `instruments.trade` row by row."""
    specs = {"I": ins.spec_of("BTC-USD-INV-PERP", inverse_size, True),
             "L": ins.spec_of("ETH-USDT-PERP", linear_size), "S": ins.spec_of("BTC-USDT"),
             "U": ins.spec_of("X-Y-PERP", 0.0)}
    natives = [n for n, _, _ in rows]
    price = np.array([p for _, p, _ in rows])
    size = np.array([q for _, _, q in rows])
    ts = np.full(len(rows), MARKET_EPOCH_US, dtype=np.int64)
    got = trade_columns("v", natives, specs, ["1"] * len(rows), price, size, ["buy"] * len(rows),
                        ts, ts)
    want = [ins.trade("v", specs[n], n, "1", p, q, "buy", MARKET_EPOCH_US, MARKET_EPOCH_US).amount
            for n, p, q in rows]
    assert list(map(repr, got.amount.tolist())) == list(map(repr, want))


ISO_TEXT = st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)).map(
    lambda t: t.isoformat(timespec="microseconds") + "Z")
# one character replaced (same width: the matrix path with rows it must leave to `_us`)
CHARS = st.sampled_from(list("0123456789-:.TZ +a") + ["\u0663"])


def _mutated(data, text: str) -> str:
    at = data.draw(st.integers(0, len(text) - 1))
    return text[:at] + data.draw(CHARS) + text[at + 1:]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.data())
def test_iso_times_are_the_per_frame_readers(data) -> None:
    """checked.iso_z equals `_us` (coinbase's per-frame reader) per text: valid times of any
    year, texts with one character changed (invalid dates, hours, separators, non-ASCII)
    and a column of mixed widths, in batches below and above the numpy read's minimum;
    out of range refuses the row."""
    rows = data.draw(st.sampled_from([1, 5, ISO_MIN_ROWS, ISO_MIN_ROWS + 30]))  # both paths
    texts = data.draw(st.lists(ISO_TEXT, min_size=rows, max_size=rows))
    texts = [_mutated(data, t) if data.draw(st.booleans()) else t for t in texts]
    if data.draw(st.booleans()):
        texts.append(data.draw(st.sampled_from(["2021-04-17T16:43:30Z",
                                                "2021-04-17T16:43:30.1234567Z"])))
    ok = np.ones(len(texts), dtype=bool)
    got = checked.iso_z(texts, ok, MARKET_EPOCH_US, 2**62, _us)
    want = [_us(t) for t in texts]
    assert got.tolist() == want
    assert ok.tolist() == [MARKET_EPOCH_US <= w < 2**62 for w in want]


def test_iso_times_on_calendar_edges() -> None:
    texts = ["2024-02-29T23:59:59.999999Z", "2023-02-29T00:00:00.000000Z",
             "2000-02-29T12:00:00.000001Z", "1900-02-29T00:00:00.000000Z",
             "2021-04-31T00:00:00.000000Z", "2021-12-31T24:00:00.000000Z",
             "2021-12-31T23:60:00.000000Z", "2021-12-31T23:59:60.000000Z",
             "0000-01-01T00:00:00.000000Z", "1970-01-01T00:00:00.000000Z"] * 7  # numpy read
    assert len(texts) >= ISO_MIN_ROWS
    ok = np.ones(len(texts), dtype=bool)
    assert checked.iso_z(texts, ok, -(2**62), 2**62, _us).tolist() == [_us(t) for t in texts]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50))
def test_int_texts_are_str(values) -> None:
    assert checked.int_texts(values) == list(map(str, values))
