"""Quote keys identify an update (issue 16 item 4): every distinct bookTicker update of the
Binance USD-M recording is stored, through the pipeline's dedup window and sink, into a
real chDB store; 17 of its 613 updates share (symbol, time, bid, ask) with an earlier one
and differ only in sizes and update id `u`: the old key merged them."""

from __future__ import annotations

import orjson
from bytewax.testing import TestingSource

from dataflows.dedup.window import quote_keys
from dataflows.runner import run
from feedhouse.core.config import load_settings
from feedhouse.core.records import Quote
from feedhouse.store.client import warehouse
from tests.support.ingest import capture_messages, message_batches
from tests.support.paths import ROOT

GOLDEN = ROOT / "tests" / "golden" / "BINANCE_FUTURES.ws.1.0.quotes.jsonl"


def test_every_distinct_bookticker_update_is_stored(tmp_path) -> None:
    golden = [orjson.loads(line) for line in GOLDEN.read_bytes().splitlines()]
    assert len(golden) == 613
    assert len({(q["symbol"], q["update_id"]) for q in golden}) == 613  # no true repeat
    old_key = {(q["symbol"], q["exchange_ts"], q["bid_price"], q["ask_price"]) for q in golden}
    assert len(golden) - len(old_key) == 17  # what the old key took for repeats

    settings = load_settings(home=str(tmp_path), recovery=False,
                             feeds=[{"name": "bf", "venue": "binance_futures",
                                     "channels": ["trades", "quotes"]}],
                             sink={"batch_ms": 5})
    messages = capture_messages("BINANCE_FUTURES.ws.1.0")
    batches = message_batches("bf", "binance_futures", messages, per=100)
    # the recording delivered twice: the second copy is all true repeats
    batches += message_batches("bf", "binance_futures", messages, per=100, start=len(messages))
    run(settings, sources=[("test_in", TestingSource(batches))], handle_signals=False)
    with warehouse(settings) as client:
        rows = client.query(
            "SELECT symbol, update_id, bid_price, bid_size, ask_price, ask_size, "
            "instrument_type FROM market.quotes FINAL ORDER BY symbol, update_id").result_rows
        (stored,) = client.query("SELECT count() FROM market.quotes").result_rows[0]
    expected = sorted((q["symbol"], q["update_id"], q["bid_price"], q["bid_size"],
                       q["ask_price"], q["ask_size"], q["instrument_type"]) for q in golden)
    assert [tuple(r) for r in rows] == expected
    assert stored == 613  # the repeated delivery was dropped by the dedup window


def test_quote_key_is_the_update_id_else_every_field() -> None:
    base = Quote("v", "BTC-USD", "BTCUSD", 1.0, 2.0, 3.0, 4.0, 10, 11)
    keys = quote_keys([
        base,
        base._replace(received_ts=99),  # a resend: same update
        base._replace(bid_size=2.5),  # only a size changed: another update
        base._replace(update_id=7),
        base._replace(update_id=7, exchange_ts=12, received_ts=13),  # same venue update id
        base._replace(update_id=8),
    ])
    assert keys[0] == keys[1] and keys[0] != keys[2]
    assert keys[3] == keys[4] and keys[3] != keys[5] and keys[3] != keys[0]
