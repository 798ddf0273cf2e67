"""The naive pipeline: what gluing a WebSocket client to ClickHouse usually looks like.

Same served corpus and replay server as bench/e2e.py. One thread per feed reads frames
with a plain `websockets` client, decodes each with stdlib `json`, builds one pydantic
model per trade (feedhouse's own `TradeModel`, the market.trades contract), and appends
a row; every 1,000 rows a row-oriented `client.insert` into chDB (clickhouse-connect).
No dedup window, no ledger, no recovery. trades/s = rows inserted / (last insert - first
frame); CPU µs/trade from this process's CPU time over the same span.
`e2e_ratio_vs_naive` = e2e_trades_per_s (same run of `python -m bench`) / this figure.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from datetime import UTC, datetime

from bench.common import Config, Figure, measured, module_command, set_aside, unavailable
from bench.e2e import corpus_folder
from bench.served import Server, build, feeds

BATCH = 1000
COLUMNS = ["venue", "symbol", "native_symbol", "trade_id", "price", "amount", "side",
           "exchange_ts", "received_ts", "feed"]


def _ms(value) -> int:
    return int(value) * 1000


def extract(venue: str, msg: dict) -> list[dict]:
    """Trade fields of one decoded frame, the obvious way per venue."""
    from feedhouse.core.records import us_from_iso

    if venue.startswith("binance"):
        data = msg.get("data", msg)
        if data.get("e") != "aggTrade":
            return []
        return [{"native_symbol": data["s"], "trade_id": str(data["a"]), "price": data["p"],
                 "amount": data["q"], "side": "sell" if data["m"] else "buy",
                 "exchange_ts": _ms(data["T"])}]
    if venue == "okx":
        if msg.get("arg", {}).get("channel") != "trades" or "data" not in msg:
            return []
        return [{"native_symbol": t["instId"], "trade_id": t["tradeId"], "price": t["px"],
                 "amount": t["sz"], "side": t["side"], "exchange_ts": _ms(t["ts"])}
                for t in msg["data"]]
    if venue in ("coinbase", "coinbase_exchange"):  # the ws-feed format
        if msg.get("type") not in ("match", "last_match"):
            return []
        return [{"native_symbol": msg["product_id"], "trade_id": str(msg["trade_id"]),
                 "price": msg["price"], "amount": msg["size"],
                 "side": "buy" if msg["side"] == "sell" else "sell",
                 "exchange_ts": us_from_iso(msg["time"])}]
    raise ValueError(f"naive pipeline: no parser for {venue}")


class Inserter:
    """1,000-row batches into market.trades, one insert at a time (shared by threads)."""

    def __init__(self, client) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.inserted = 0
        self.last_insert = 0.0

    def insert(self, rows: list[list]) -> None:
        with self.lock:
            self.client.insert("market.trades", rows, column_names=COLUMNS)
            self.inserted += len(rows)
            self.last_insert = time.time()


def consume(feed: dict, inserter: Inserter, first_frame: list[float]) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from dataflows.venues import get_venue
    from feedhouse.core.records import TradeModel

    venue = get_venue(feed["venue"])
    url = venue.url_for(feed["url"], feed["symbols"], feed["channels"]) if venue.url_for \
        else feed["url"]
    rows: list[list] = []
    with connect(url, max_size=2**24, compression=None) as ws:
        for frame in venue.subscribe(feed["symbols"], feed["channels"]):
            ws.send(frame)
        try:
            while True:
                raw = ws.recv()
                received = datetime.now(UTC)
                if not first_frame:
                    first_frame.append(time.time())
                msg = json.loads(raw)
                for fields in extract(venue.name, msg):
                    trade = TradeModel(venue=venue.name, received_ts=1,
                                       symbol=venue.normalize_symbol(fields["native_symbol"]),
                                       **fields)
                    rows.append([
                        trade.venue, trade.symbol, trade.native_symbol, trade.trade_id,
                        trade.price, trade.amount, trade.side,
                        datetime.fromtimestamp(trade.exchange_ts / 1e6, UTC), received,
                        feed["name"],
                    ])
                    if len(rows) >= BATCH:
                        inserter.insert(rows)
                        rows = []
        except ConnectionClosed:
            pass  # end of the capture (close code 4000)
    if rows:
        inserter.insert(rows)


def one_run(cfg: Config, served, home) -> dict:
    from feedhouse.core.config import load_settings
    from feedhouse.store.client import warehouse
    from feedhouse.store.migrations import init_schema

    set_aside(home)
    settings = load_settings(home=str(home), recovery=False)
    init_schema(settings)
    expected = sum(s.trades for s in served)
    with Server(corpus_folder(cfg), "max") as server, warehouse(settings) as client:
        inserter = Inserter(client)
        first_frame: list[float] = []
        errors: list[BaseException] = []
        cpu0 = time.process_time()

        def work(feed: dict) -> None:
            try:
                consume(feed, inserter, first_frame)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f,)) for f in feeds(served, server.port)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu = time.process_time() - cpu0
        stored = client.query("SELECT count() FROM market.trades").result_rows[0][0]
    set_aside(home)
    if errors:
        raise errors[0]
    if stored != expected:
        raise RuntimeError(f"naive pipeline stored {stored} of {expected} trades")
    span = inserter.last_insert - first_frame[0]
    return {"trades_per_s": stored / span, "cpu_us_per_trade": cpu / stored * 1e6}


def run(cfg: Config, context: dict) -> list[Figure]:
    served = build(corpus_folder(cfg), cfg.e2e_trades)
    results = [one_run(cfg, served, cfg.workdir / f"naive{r}") for r in range(cfg.e2e_repeats)]
    cmd = module_command("naive", cfg)
    settings = {"unique_trades": sum(s.trades for s in served), "batch_rows": BATCH,
                "pipeline": "websockets sync client per feed -> json.loads -> pydantic "
                            "TradeModel per trade -> client.insert(rows) per 1,000",
                "cpu_us_per_trade": [round(r["cpu_us_per_trade"], 1) for r in results]}
    naive = measured("naive_trades_per_s", "trades/s", cmd,
                     [round(r["trades_per_s"]) for r in results], settings=settings)
    e2e = next((f for f in context.get("e2e", []) if f.key == "e2e_trades_per_s"), None)
    if e2e is None or e2e.value is None:
        why = "e2e_trades_per_s not measured in this run" if e2e is None else e2e.unavailable
        return [naive, unavailable("e2e_ratio_vs_naive", "x", cmd, why)]
    ratios = [round(a / b, 2) for a, b in zip(e2e.repeats, naive.repeats, strict=False)]
    ratio = measured("e2e_ratio_vs_naive", "x", cmd, ratios or [e2e.value / naive.value],
                     settings={**settings, "e2e_median": e2e.value,
                               "naive_median": statistics.median(naive.repeats)},
                     note="feedhouse e2e trades/s / naive trades/s, same corpus and server")
    return [naive, ratio]
