"""The same trade frames through cryptofeed's own feed handlers, without network.

    python -m bench.cryptofeed_side --venue binance --frames FILE [--seconds 1 --repeats 5]
    python -m bench.cryptofeed_side --venue binance --frames FILE --serve  # one per stdin line

Runs in its own process (the bench harness starts it with the cryptofeed interpreter, so
a separate venv works too). The feed is built as cryptofeed builds it: its symbol table
comes from the recorded REST replies in feedhouse/app/sessions/rest/ (served to
cryptofeed's `HTTPSync.read` by URL, as cryptofeed's own `playback` does), then every frame
goes through the feed's `message_handler` into a TRADES callback. Prints one JSON line:
trades per CPU second for each repeat.

Coinbase: cryptofeed 2.4 speaks the Advanced Trade API (`market_trades` channel, product
list from api.coinbase.com/api/v3/brokerage/products), not the Exchange `ws-feed` of the
capture. Each recorded `match` is rewritten, before timing, as a one-trade
`market_trades` update with the same fields, and the recorded product list as the
brokerage `products` reply; the trades are the same, one per frame, as on our side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

# its own process (maybe its own venv): the path, not an import of feedhouse
REST = Path(__file__).resolve().parents[1] / "feedhouse" / "app" / "sessions" / "rest"
# our venue -> (cryptofeed exchange id, recorded REST file)
FEEDS = {
    "binance": ("BINANCE", "BINANCE.0"),
    "binance_futures": ("BINANCE_FUTURES", "BINANCE_FUTURES.0"),
    "okx": ("OKX", "OKX.0"),
    "coinbase": ("COINBASE", "COINBASE.0"),
}
COINBASE_PRODUCTS = "https://api.coinbase.com/api/v3/brokerage/products"


def recorded_replies(rest_file: str) -> tuple[dict[str, object], dict]:
    """{url: decoded JSON body} and the recorded configuration (channels -> symbols)."""
    replies: dict[str, object] = {}
    config: dict = {}
    for line in (REST / rest_file).read_text(encoding="utf-8").splitlines():
        if line.startswith("configuration: "):
            config = json.loads(line.split(": ", 1)[1])
        elif " -> " in line:
            url, rest = line.split(" -> ", 1)
            replies[url] = json.loads(rest.split(": ", 1)[1])
    return replies, config


def _coinbase_products(products: list[dict]) -> dict:
    return {"products": [
        {"product_id": p["id"], "base_currency_id": p["base_currency"],
         "quote_currency_id": p["quote_currency"], "quote_increment": p["quote_increment"]}
        for p in products
    ]}


def _coinbase_frame(frame: str) -> str:
    match = json.loads(frame)
    trade = {
        "trade_id": str(match["trade_id"]), "product_id": match["product_id"],
        "price": match["price"], "size": match["size"], "time": match["time"],
        # Advanced Trade reports the taker's side; ws-feed's `side` is the maker's
        "side": "SELL" if match["side"] == "buy" else "BUY",
    }
    return json.dumps({
        "channel": "market_trades", "client_id": "", "timestamp": match["time"],
        "sequence_num": match.get("sequence", 0),
        "events": [{"type": "update", "trades": [trade]}],
    })


def build_feed(venue: str):
    """(feed, handler, frames translator) with cryptofeed's REST reads served offline."""
    from cryptofeed.connection import HTTPSync
    from cryptofeed.defines import TRADES
    from cryptofeed.exchanges import EXCHANGE_MAP
    from cryptofeed.symbols import Symbols

    exchange, rest_file = FEEDS[venue]
    replies, config = recorded_replies(rest_file)
    translate = None
    if venue == "coinbase":
        replies = {COINBASE_PRODUCTS: _coinbase_products(replies.popitem()[1])}
        translate = _coinbase_frame

    def read(self, address, params=None, headers=None, json=False, text=True, uuid=None):
        return replies[address]  # KeyError: cryptofeed asked for a URL not recorded

    HTTPSync.read = read
    Symbols.clear() if hasattr(Symbols, "clear") else None
    counted = [0]

    async def on_trade(trade, receipt_timestamp):
        counted[0] += 1

    feed = EXCHANGE_MAP[exchange](
        subscription={TRADES: config["trades"]}, callbacks={TRADES: on_trade},
    )
    handler = feed.message_handler
    return feed, handler, translate, counted


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venue", required=True, choices=sorted(FEEDS))
    ap.add_argument("--frames", required=True, help="JSON file: [[received_ts_us, frame], ...]")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--serve", action="store_true",
                    help="time one repeat per line on stdin (an empty line ends)")
    args = ap.parse_args()
    import cryptofeed

    feed, handler, translate, counted = build_feed(args.venue)
    messages = json.loads(Path(args.frames).read_text())
    frames = [(ts / 1e6, translate(f) if translate else f) for ts, f in messages]

    class Conn:  # what handlers may read from the connection
        uuid = "bench"
        conn_type = "wss"

    conn = Conn()

    async def one_pass() -> int:
        before = counted[0]
        for ts, frame in frames:
            await handler(frame, conn, ts)
        return counted[0] - before

    async def timed() -> float:
        done = 0
        start = time.process_time()
        while True:
            done += await one_pass()
            elapsed = time.process_time() - start
            if elapsed >= args.seconds:
                return done / elapsed

    version = getattr(cryptofeed, "__version__", None) or _version()

    def report(first: int, rates: list[float]) -> None:
        print(json.dumps({"venue": args.venue, "cryptofeed": version, "trades_per_pass": first,
                          "frames": len(frames), "trades_per_s": rates}), flush=True)

    async def run() -> None:
        first = await one_pass()  # warm-up; also proves every trade came out
        if not args.serve:
            report(first, [await timed() for _ in range(args.repeats)])
            return
        # --serve: one timed repeat per line read from stdin (the harness alternates sides)
        report(first, [])
        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            report(first, [await timed()])

    asyncio.run(run())
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("cryptofeed")


if __name__ == "__main__":
    raise SystemExit(main())
