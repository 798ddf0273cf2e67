"""BitMEX quanto contracts in BASE units (dataflows/venues/bitmex_units.py, stored_quanto.py):
BitMEX's worked example through the real parser, the recorded session's quotes against
BitMEX's own homeNotional, and a real chDB store whose quanto rows in contracts are
converted at the store's XBT price (or, with none near, left marked and named).
"""

from __future__ import annotations

import logging

import orjson
import pytest

from dataflows.sink.batches import QUOTES, TRADES, rows_table
from dataflows.sources.capture import parse_capture
from dataflows.venues import get_venue
from dataflows.venues import instruments as ins
from dataflows.venues.bitmex_units import MAX_GAP_US
from dataflows.venues.stored import convert_stored
from feedhouse.core.records import ParseResult
from feedhouse.store.client import warehouse
from tests.support.paths import SESSIONS

SESSION = SESSIONS / "BITMEX.ws.1.0"
QUANTO = {n: s for n, s in ins.shipped_specs("bitmex").items() if s.quanto}
T0 = 1_588_680_000_000_000  # 2020-05-05T12:00:00Z in us


def _quote(native: str, bid: float, bid_size: float, ask: float, ask_size: float, ts_us: int) -> str:
    stamp = f"2020-05-05T12:{(ts_us - T0) // 60_000_000:02d}:00.000Z"
    return orjson.dumps({"table": "quote", "action": "insert", "data": [{
        "timestamp": stamp, "symbol": native, "bidSize": bid_size, "bidPrice": bid,
        "askPrice": ask, "askSize": ask_size}]}).decode()


def _index(price: float) -> str:  # BitMEX's instrument table: an update of the .BXBT index
    return orjson.dumps({"table": "instrument", "action": "update", "data": [{
        "symbol": ".BXBT", "lastPrice": price, "timestamp": "2020-05-05T12:00:00.000Z"}]}).decode()


def test_quanto_quotes_subscribe_the_xbt_index() -> None:
    bitmex = get_venue("bitmex")
    assert [orjson.loads(f) for f in bitmex.subscribe(["ETH-USD-PERP"], ["trades", "quotes"])] == [
        {"op": "subscribe", "args": ["trade:ETHUSD", "quote:ETHUSD"]},
        {"op": "subscribe", "args": ["instrument:.BXBT"]}]
    # no quanto, or no quotes: nothing more
    assert len(bitmex.subscribe(["BTC-USD-INV-PERP", "BTC-USDT-PERP"], ["quotes"])) == 1
    assert len(bitmex.subscribe(["ETH-USD-PERP"], ["trades"])) == 1
    parse, _ = bitmex.parser()
    assert parse(_index(10000.0), 0) == ParseResult(ignored=1)  # stored nowhere


def test_bitmex_worked_example_ethusd() -> None:
    """BitMEX's ETHUSD guide: 0.000001 XBT per USD, .BXBT 10,000, ETHUSD 500: one contract
    is 0.0005 XBT = 5 USD = 0.01 ETH, so 1,000 contracts are 10 ETH (the price cancels)."""
    assert QUANTO["ETHUSD"].quanto == 1e-06  # the shipped list's multiplier: 100 satoshi
    parse, _ = get_venue("bitmex").parser()
    before = parse(_quote("ETHUSD", 500.0, 1000, 500.05, 2000, T0), 0).quotes[0]
    parse(_index(10000.0), 0)  # the XBT price: .BXBT 10,000
    (eth,) = parse(_quote("ETHUSD", 500.0, 1000, 500.05, 2000, T0 + 60_000_000), 0).quotes
    parse(_quote("XBTUSD", 11999.5, 100, 12000.5, 100, T0 + 60_000_000), 0)  # XBTUSD: 12,000
    (later,) = parse(_quote("ETHUSD", 500.0, 1000, 500.05, 2000, T0 + 60_000_000), 0).quotes
    late = T0 + MAX_GAP_US + 120_000_000
    (stale,) = parse(_quote("ETHUSD", 600.0, 1000, 600.05, 2000, late), 0).quotes
    # no XBT price yet: sizes stay contracts, marked contract_size 0
    assert (before.bid_size, before.contract_size) == (1000.0, 0.0)
    assert (eth.symbol, eth.bid_size, eth.ask_size, eth.contract_size) == ("ETH-USD-PERP", 10.0, 20.0, 0.01)
    assert (eth.native_bid_size, eth.native_ask_size) == (1000.0, 2000.0)
    assert (later.bid_size, later.contract_size) == (12.0, 0.012)  # the latest XBT price
    assert (stale.bid_size, stale.contract_size) == (1000.0, 0.0)  # the price is 16 min old
    # an older price (a trade partial's last trade, an hour old) does not replace a newer one
    parse(orjson.dumps({"table": "trade", "action": "partial", "data": [{
        "timestamp": "2020-05-05T11:00:00.000Z", "symbol": "ETHUSD", "side": "Buy", "size": 10,
        "price": 210.0, "trdMatchID": "00000000-0000-0000-0000-000000000001",
        "homeNotional": 0.09, "foreignNotional": 18.9}]}).decode(), 0)
    (kept,) = parse(_quote("ETHUSD", 500.0, 1000, 500.05, 2000, T0 + 60_000_000), 0).quotes
    assert kept.contract_size == 0.012
    # each connection has its own XBT price: a new one has none
    fresh, _ = get_venue("bitmex").parser()
    assert fresh(_quote("ETHUSD", 500.0, 1000, 500.05, 2000, T0), 0).quotes[0].contract_size == 0.0


def _session():
    _, result, _ = parse_capture(SESSION)
    return result


def test_session_quanto_quotes_agree_with_bitmex_homenotional() -> None:
    result = _session()
    xbt = sorted((t.exchange_ts, t.price) for t in result.trades if t.native_symbol == "XBTUSD")
    per_contract = {t.native_symbol: t.contract_size for t in result.trades if t.native_symbol in QUANTO}
    quanto = [q for q in result.quotes if q.native_symbol in QUANTO]
    assert len(quanto) == 147 and {q.native_symbol for q in quanto} == set(per_contract)
    unsized = [q for q in quanto if q.contract_size == 0]
    # only UNIUSDT's first quote, before the connection saw any XBT price, stays contracts
    assert [(q.native_symbol, q.bid_size) for q in unsized] == [("UNIUSDT", 750.0)]
    for q in quanto:
        if q.contract_size:
            spec = QUANTO[q.native_symbol]
            # multiplier x the XBT price: within 0.2% of BitMEX's own homeNotional / size
            # of the instrument's latest trade (up to 6 min older), within 0.1% of the
            # nearest XBTUSD trade price
            assert q.contract_size == pytest.approx(per_contract[q.native_symbol], rel=2e-3)
            nearest = min(xbt, key=lambda t: abs(t[0] - q.exchange_ts))[1]
            assert q.contract_size / spec.quanto == pytest.approx(nearest, rel=1e-3)
            assert q.bid_size == pytest.approx(q.native_bid_size * q.contract_size)
            assert q.ask_size == pytest.approx(q.native_ask_size * q.contract_size)
    # quanto trades: BitMEX's homeNotional is the amount, homeNotional / size the size
    assert all(t.contract_size > 0 for t in result.trades)
    assert _session().quotes == result.quotes  # one XBT price per capture: reproducible


def test_stored_quanto_rows_are_converted_at_the_stores_xbt_price(initialized, caplog) -> None:
    """The session stored as parsed (one quote in contracts), plus a UNIUSDT trade and quote
    stored in contracts as before migration 010 at its time, and a quote three hours later
    that no XBT price is near: the step converts what it can and names the rest."""
    result = _session()
    uni = next(t for t in result.trades if t.native_symbol == "UNIUSDT")
    old_trade = uni._replace(trade_id="old-1", amount=219.0, native_amount=219.0, contract_size=0.0)
    lone = next(q for q in result.quotes if q.contract_size == 0)
    far = lone._replace(exchange_ts=lone.exchange_ts + 3 * 3600 * 1_000_000)
    with warehouse(initialized) as client:
        client.insert_arrow(TRADES, rows_table(TRADES, [*result.trades, old_trade], {"feed": "b"}))
        client.insert_arrow(QUOTES, rows_table(QUOTES, [*result.quotes, far], {"feed": "b"}))
        with caplog.at_level(logging.WARNING, logger="dataflows.venues.stored"):
            done = convert_stored(client)
        left = client.query("SELECT native_symbol, exchange_ts FROM market.quotes "
                            "WHERE contract_size = 0 UNION ALL SELECT native_symbol, exchange_ts "
                            "FROM market.trades WHERE contract_size = 0").result_rows
        (trade,) = client.query("SELECT amount, native_amount, contract_size FROM market.trades "
                                "WHERE trade_id = 'old-1'").result_rows
        (quote,) = client.query(
            "SELECT bid_size, native_bid_size, contract_size FROM market.quotes WHERE "
            f"native_symbol = 'UNIUSDT' AND exchange_ts = fromUnixTimestamp64Micro({lone.exchange_ts})"
        ).result_rows
        counts = client.query("SELECT (SELECT count() FROM market.trades), "
                              "(SELECT count() FROM market.quotes)").result_rows[0]
        volume = client.query("SELECT sum(volume) FROM market.ohlcv_1m FINAL WHERE minute = "
                              f"toStartOfMinute(fromUnixTimestamp64Micro({uni.exchange_ts}))").result_rows[0][0]
        again = convert_stored(client)
    assert (done.trades, done.quotes) == (1, 1)
    assert done.unknown == {} and done.unpriced == {"bitmex/UNIUSDT": 1}
    assert "1 stored rows stay in contracts" in caplog.text
    assert "no XBT price within 15 min of the quanto rows of bitmex/UNIUSDT (1)" in caplog.text
    # the one row left is the far quote, queryable as contract_size = 0
    assert [n for n, _ in left] == ["UNIUSDT"]
    # the XBT price of the trade's minute is BitMEX's own (XBTUSD trades and the quanto
    # trades' rate, 32,154-32,187 here): 0.00001 XBT x ~32,170 per contract
    assert trade[1] == 219.0 and trade[2] == pytest.approx(uni.contract_size, rel=2e-3)
    assert trade[0] == pytest.approx(219.0 * trade[2])
    assert quote[1] == 750.0 and quote[2] == pytest.approx(0.32175, rel=1e-3)
    assert quote[0] == pytest.approx(750.0 * quote[2])
    assert counts == (len(result.trades) + 1, len(result.quotes) + 1)  # rewritten, not added
    assert volume == pytest.approx(uni.amount + trade[0])  # the candle follows
    assert (again.trades, again.quotes, again.unpriced) == (0, 0, done.unpriced)
