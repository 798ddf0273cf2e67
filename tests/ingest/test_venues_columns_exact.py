"""The column-wise pieces of the venues' fast paths give exactly what the per-trade code
gives: Python's `round` (in C: the contract sizes in BASE, trade_columns), the C reader of
decoded structs (checked.Reader: ISO and digit times, `str` of ids, exact classes) against
the per-frame readers. Exact means the same float bits (repr tells -0.0, nan and the last digit apart), also next to rounding halves."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
from dataflows.parse._fast_path import flatten, round_each, split
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.parse.trade_columns import Symbols, trade_columns
from dataflows.venues import checked, typed
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
    got = np.frombuffer(round_each(np.array(values, dtype=np.float64), digits)).tolist()
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
    got = trade_columns("v", natives, Symbols.of(natives, specs.__getitem__), ["1"] * len(rows),
                        price, size, ["buy"] * len(rows), ts, ts)
    want = [ins.trade("v", specs[n], n, "1", p, q, "buy", MARKET_EPOCH_US, MARKET_EPOCH_US).amount
            for n, p, q in rows]
    assert list(map(repr, got.amount.tolist())) == list(map(repr, want))


ISO_TEXT = st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)).map(
    lambda t: t.isoformat(timespec="microseconds") + "Z")
# one character replaced (same width: texts the C reader must leave to `_us`)
CHARS = st.sampled_from(list("0123456789-:.TZ +a") + ["\u0663"])
_Texts = typed.struct("_Texts", [("text", str)])
_Values = typed.struct("_Values", [("value", object)])


def _mutated(data, text: str) -> str:
    at = data.draw(st.integers(0, len(text) - 1))
    return text[:at] + data.draw(CHARS) + text[at + 1:]


def _read(kind: tuple, values: list, struct=_Texts) -> tuple[list[bool], list]:
    ok, (column,) = checked.Reader(kind)([struct(v) for v in values])
    return ok.tolist(), column.tolist() if isinstance(column, np.ndarray) else column


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.data())
def test_iso_times_are_the_per_frame_readers(data) -> None:
    """The ISO time reader ("z") equals `_us` (coinbase's per-frame reader) per text: valid
    times of any year, texts with one character changed (invalid dates, hours, separators,
    non-ASCII) and other widths."""
    texts = data.draw(st.lists(ISO_TEXT, min_size=1, max_size=40))
    texts = [_mutated(data, t) if data.draw(st.booleans()) else t for t in texts]
    if data.draw(st.booleans()):
        texts.append(data.draw(st.sampled_from(["2021-04-17T16:43:30Z",
                                                "2021-04-17T16:43:30.1234567Z"])))
    ok, got = _read(("text", "z", _us), texts)
    assert got == [_us(t) for t in texts]
    assert ok == [True] * len(texts)  # the range is the venue's check (checked.within)


def test_iso_times_on_calendar_edges() -> None:
    texts = ["2024-02-29T23:59:59.999999Z", "2023-02-29T00:00:00.000000Z",
             "2000-02-29T12:00:00.000001Z", "1900-02-29T00:00:00.000000Z",
             "2021-04-31T00:00:00.000000Z", "2021-12-31T24:00:00.000000Z",
             "2021-12-31T23:60:00.000000Z", "2021-12-31T23:59:60.000000Z",
             "0000-01-01T00:00:00.000000Z", "1970-01-01T00:00:00.000000Z",
             "0001-01-01T00:00:00.000000Z", "1969-12-31T23:59:59.999999Z"]
    assert _read(("text", "z", _us), texts)[1] == [_us(t) for t in texts]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.integers(0, 10**19).map(str), st.text("0123456789\u0663\u00b2 +-",
                                                                 max_size=20)),
                min_size=1, max_size=30))
def test_digit_times_are_the_per_frame_reader(texts) -> None:
    """Digit texts ("d") read as `parse` reads them (str.isdigit, int), Unicode digits and
    superscripts included; anything else -1 (refused by the range check)."""
    assert _read(("text", "d"), texts)[1] == [checked.int_of_digits(t) for t in texts]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.integers(-(2**64), 2**64), st.booleans(), st.floats(),
                          st.text(max_size=5)), min_size=1, max_size=50))
def test_int_ids_are_str_of_int64s_only(values) -> None:
    """Ids ("t"): `str` of each int within int64; a bool, float, text or bigger int refuses
    its row (`parse` wants an int64, as orjson reads it)."""
    taken = [v.__class__ is int and -(2**63) <= v < 2**63 for v in values]
    ok, got = _read(("value", "t"), values, _Values)
    assert ok == taken
    assert [g for g, t in zip(got, taken, strict=True) if t] == [
        str(v) for v, t in zip(values, taken, strict=True) if t]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.integers(-(2**64), 2**64), st.booleans(), st.floats(),
                          st.sampled_from(["buy", "sell", "Buy"])), min_size=1, max_size=50))
def test_classes_are_exact(values) -> None:
    """Floats ("f") and ints ("i") of exactly that class, text ids ("s") of 1-128
    characters; sides ("m") in the table and of its class (True == 1 is no side)."""
    ok, got = _read(("value", "f"), values, _Values)
    assert ok == [v.__class__ is float for v in values]
    assert [repr(g) for g, k in zip(got, ok, strict=True) if k] == [
        repr(v) for v in values if v.__class__ is float]
    ok, got = _read(("value", "i"), values, _Values)
    assert ok == [v.__class__ is int and -(2**63) <= v < 2**63 for v in values]
    assert [g for g, k in zip(got, ok, strict=True) if k] == [v for v, k in zip(values, ok,
                                                                                strict=True) if k]
    ok, got = _read(("value", "s"), values + ["x" * 128, "x" * 129, ""], _Values)
    assert ok == [v.__class__ is str and 0 < len(v) <= 128 for v in values] + [True, False, False]
    table = {1: "sell", 0: "buy", "buy": "sell", "sell": "buy"}
    for cls in (int, str):
        ok, got = _read(("value", "m", table, cls), values, _Values)
        want = [table.get(v) if v.__class__ is cls else None for v in values]
        assert got == want
        assert ok == [w is not None for w in want]


def test_a_reader_names_what_it_cannot_read() -> None:
    with pytest.raises(AttributeError, match="nope"):
        checked.Reader(("nope", "o"))([_Texts("x")])
    with pytest.raises(ValueError, match="kind one of"):
        checked.Reader(("text", "x"))([_Texts("x")])
    with pytest.raises(TypeError, match="not a struct field"):
        checked.Reader(("__len__", "o"))([[1]])
    with pytest.raises(TypeError, match="text is not a list"):
        flatten([_Texts("x")], "text")
    ok, (texts, times) = checked.Reader(("text", "o"), ("text", "d"))([])
    assert (len(ok), texts, len(times)) == (0, [], 0)


def test_a_batch_splits_into_times_and_frames() -> None:
    """split: received_ts as int64, the frames as they are, and whether a typed decoder may
    take them whole (all text, or all ASCII bytes: it skips undeclared fields unchecked)."""
    received, frames, typed_ok = split([(5, "a"), (7, "é")])
    assert (np.frombuffer(received, np.int64).tolist(), frames, typed_ok) == ([5, 7], ["a", "é"],
                                                                             True)
    assert split([(1, b"ab"), (2, b"cd")])[2] is True
    assert split([(1, b"ab"), (2, "é".encode())])[2] is False  # UTF-8 unchecked: not typed
    assert split([(1, b"ab"), (2, "cd")])[2] is False
    assert split([])[2] is False
    with pytest.raises(TypeError, match="message 0"):
        split([(1,)])
