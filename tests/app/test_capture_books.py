"""`feedhouse capture parse FILE --channel books`: one JSON line per level update with the
market.book_updates fields, counted against the recording independently; trades stay the
default output."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from feedhouse.app.cli.main import app
from feedhouse.core.errors import InputError
from tests.support.cli import run_cli
from tests.support.paths import corpus

FIELDS = {"venue", "symbol", "native_symbol", "instrument_type", "exchange_ts", "received_ts",
          "is_snapshot", "side", "price", "amount", "native_amount", "update_id",
          "prev_update_id"}


def _okx_levels() -> tuple[int, float]:
    """Level updates and sum(price * size) of OKX's books frames, read with json only."""
    n, notional = 0, 0.0
    for line in corpus("OKX.ws.1.0").read_text().splitlines():
        head, sep, payload = line.partition(": ")
        if sep and head[:1].isdigit() and '"channel":"books"' in payload and '"data"' in payload:
            for item in json.loads(payload)["data"]:
                for price, size, *_ in item["bids"] + item["asks"]:
                    n += 1
                    notional += float(price) * float(size)
    return n, notional


def test_books_channel_prints_every_level_update():
    done = CliRunner().invoke(app, ["capture", "parse", str(corpus("OKX.ws.1.0")),
                                    "--channel", "books"])
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    count, notional = _okx_levels()
    assert len(rows) == count == 8264
    assert sum(r["price"] * r["native_amount"] for r in rows) == pytest.approx(notional, rel=1e-9)
    assert set(rows[0]) == FIELDS
    assert {r["side"] for r in rows} == {"bid", "ask"}
    assert {r["symbol"] for r in rows if r["is_snapshot"]} == {
        "BTC-USD-INV-220527", "UNI-USD-INV-PERP", "BTC-USDT"}
    assert "levels=8264" in done.stderr and "checksums_passed=290 checksums_failed=0" in done.stderr


def test_unknown_channel_is_a_one_line_error():
    done = CliRunner().invoke(app, ["capture", "parse", str(corpus("OKX.ws.1.0")),
                                    "--channel", "quotes"])
    # the command's entry point turns an InputError into one line and exit status 2
    assert isinstance(done.exception, InputError)
    assert str(done.exception) == "--channel: 'quotes' is not trades or books"


@pytest.mark.integration
def test_trades_stay_the_default_and_books_come_on_request():
    trades = run_cli("capture", "parse", str(corpus("BINANCE.ws.1.0")))
    books = run_cli("capture", "parse", str(corpus("BINANCE.ws.1.0")), "--channel", "books")
    assert trades.returncode == books.returncode == 0
    assert all("trade_id" in json.loads(line) for line in trades.stdout.splitlines())
    assert len(books.stdout.splitlines()) == 422
    assert "gaps=0" in books.stderr
