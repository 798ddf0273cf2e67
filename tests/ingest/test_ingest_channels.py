"""A feed's `channels` is honoured: `channels: [trades]` stores no quote, even when the
other end sends them (the demo stored 22,442 quotes from feeds configured for trades),
and a channel the venue does not offer is a setting error naming it."""

from __future__ import annotations

import pytest

from dataflows.parse.stage import parse_batch
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.config import load_settings
from feedhouse.core.errors import SettingsError
from feedhouse.store.client import warehouse
from feedhouse.store.ledger import COUNTERS
from tests.support.cli import run_cli
from tests.support.ingest import (
    bad_ledger_minutes,
    capture_messages,
    captures_dir,
    message_batches,
    run_until_all_received,
)

SESSION = "COINBASE.ws.28.0"  # trades and quotes (ticker) in one recorded session


def _totals(parsed) -> dict[str, int]:
    out = dict.fromkeys(COUNTERS, 0)
    for p in parsed:
        for values in p.ledger.cells.values():
            for name, n in zip(COUNTERS, values, strict=True):
                out[name] += n
    return out


def test_parse_drops_quotes_of_a_trades_only_feed_and_the_ledger_still_adds_up():
    batches = message_batches("cb", "coinbase", capture_messages(SESSION))
    both = [parse_batch(b) for b in batches]
    trades_only = [parse_batch(b, keep_quotes=False) for b in batches]
    assert sum(len(p.quotes) for p in both) > 100
    assert sum(len(p.quotes) for p in trades_only) == 0
    assert [p.trades for p in trades_only] == [p.trades for p in both]
    full, kept = _totals(both), _totals(trades_only)
    assert kept["parsed"] == sum(len(p.trades) for p in both)
    assert kept["received"] == full["received"]
    # messages that held only quotes now count as ignored: equation (1) still holds
    assert kept["with_records"] < full["with_records"]
    assert kept["with_records"] + kept["ignored"] + kept["invalid"] == kept["received"]
    trade_messages = {t.received_ts for p in both for t in p.trades}
    assert kept["with_records"] == len(trade_messages)


@pytest.mark.parametrize("channels", [["trades"], ["trades", "quotes"]])
def test_a_trades_only_feed_stores_no_quote(tmp_path, channels):
    server = SessionServer(captures_dir(tmp_path, (SESSION,)), speed=None, loop=False)
    server.start()
    try:
        feed = {"name": "cb", "venue": "coinbase", "url": server.url(SESSION),
                "symbols": ["SKL-USD", "SKL-BTC"], "channels": channels}
        settings = load_settings(home=str(tmp_path / "fh"), recovery=False, feeds=[feed])
        run_until_all_received(server, settings, timeout_s=30)
    finally:
        server.stop()
    with warehouse(settings) as client:
        trades = client.query("SELECT count() FROM market.trades").result_rows[0][0]
        quotes = client.query("SELECT count() FROM market.quotes").result_rows[0][0]
        bad = bad_ledger_minutes(client)
    assert trades > 0
    assert (quotes > 0) == ("quotes" in channels), quotes  # the server sends them either way
    assert bad == []


@pytest.mark.integration
def test_a_channel_the_venue_lacks_is_a_setting_error(tmp_path):
    with pytest.raises(SettingsError, match="venue 'bitstamp' has no 'quotes' channel"):
        load_settings(home=str(tmp_path), feeds=[{"name": "b", "venue": "bitstamp",
                                                  "channels": ["trades", "quotes"]}])
    config = tmp_path / "feedhouse.yaml"
    config.write_text("feeds:\n  - {name: b, venue: bybit, symbols: [BTC-USDT], channels: [trade]}\n")
    done = run_cli("--config", str(config), "init", cwd=tmp_path)
    assert done.returncode == 2
    assert "no 'trade' channel (has: trades, books)" in done.stderr and "Traceback" not in done.stderr
