"""Book parsers per venue: a frame -> [BookFrame] (FrameError when it is not valid).

`BOOK_PARSERS[venue]` is the registry the capture command (and later the live source)
looks up; a venue missing there has no book channel yet. Symbols and contract sizes come
from the venue adapters (their normalize rules and instrument catalogs), so a book row's
symbol and BASE amount agree with the venue's trades.

Consistency fields per venue (BookFrame.update_id / prev_update_id; state.py checks them):
- Binance spot `depthUpdate`: U..u; prev = U - 1 (the next event starts at last u + 1).
- Binance USD-M/COIN-M `depthUpdate`: u, prev = `pu` (the previous event's u).
- OKX `books`/`books-l2-tbt`/`books50-l2-tbt`: `seqId`/`prevSeqId` (none before 2022-08;
  the recorded session has none) and the CRC32 `checksum` of the top 25 levels.
- Bitget `books` (spot v1 and v2): OKX's shape and checksum (top 25, CRC32, signed).
- Coinbase Exchange `level2`: `snapshot` then `l2update`s; no sequence on this channel.
- Deribit `book.<instrument>.raw`: `change_id`, prev = `prev_change_id` (no checksum).
- BitMEX `orderBookL2`: levels keyed by `id` (no sequence id, no checksum): feedhouse
  numbers each symbol's events itself, and an update/delete of an id it never saw skips a
  number, so the book state reports a sequence gap (level_ids.py). A frame repeated at
  once (byte for byte the last book frame) gives the same events again, so the dedup
  window drops it as for the venues with sequence ids.
- Kraken v2 `book`: no sequence id; the CRC32 `checksum` of the top 10 levels on every
  frame, over the levels' wire text (books/kraken.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from contextlib import suppress

import orjson
from xxhash import xxh3_64_intdigest

from dataflows.books.columns import BookFrame
from dataflows.books.framing import BookParser, spec_of_venue
from dataflows.books.framing import book_frame as _frame
from dataflows.books.kraken import kraken
from dataflows.books.level_ids import LevelIds
from dataflows.venues import ALL, bitmex_units
from dataflows.venues import bitmex as bitmex_venue
from dataflows.venues.common import FrameError, check_ts, us_from_iso_z
from dataflows.venues.instruments import kind_of as instrument_kind
from dataflows.venues.instruments import spec_of as instrument_spec


def _message(frame: str | bytes) -> dict | None:
    """The frame's JSON object; None for a `pong` (the heartbeat answer of OKX, Bitget, BitMEX)."""
    if frame in ("pong", b"pong"):
        return None
    msg = orjson.loads(frame)
    if msg.__class__ is not dict:
        raise FrameError("not a JSON object")
    return msg


def _id(value: object, name: str) -> int:
    if value.__class__ is not int or not 0 <= value < 2**63:  # type: ignore[operator]
        raise FrameError(f"bad {name}: {value!r}")
    return value  # type: ignore[return-value]


# A REST depth reply as a feed's client injects it into the stream (dataflows/sources/
# depth_rest.py): {"stream": "<native lowercase>@depthSnapshot", "data": <the reply>}
SNAPSHOT_STREAM = "@depthSnapshot"
_RECENT = 256  # spot: (u, time) of a symbol's newest updates, to place a REST snapshot


def binance(venue: str) -> BookParser:
    spec_of = spec_of_venue(venue)
    futures = venue in ("binance_futures", "binance_delivery")
    recent: dict[str, deque] = {}  # spot: native -> its newest (u, exchange_ts)

    def parse(frame: str | bytes, received_ts: int) -> list[BookFrame]:
        msg = orjson.loads(frame)
        if msg.__class__ is not dict:
            raise FrameError("not a JSON object")
        data = msg.get("data", msg)
        if data.__class__ is not dict or data.get("e") != "depthUpdate":
            stream = msg.get("stream")
            if stream.__class__ is str and stream.endswith(SNAPSHOT_STREAM):
                native = stream[: -len(SNAPSHOT_STREAM)].upper()
                ts = _placed(recent.get(native), data["lastUpdateId"], received_ts)
                return [_snapshot(venue, spec_of, native, data, ts, received_ts)]
            return []
        first, last = _id(data["U"], "U"), _id(data["u"], "u")
        prev = _id(data["pu"], "pu") if futures else max(first - 1, 0)
        ms = data.get("T") or data["E"]
        native = data["s"]
        ts = check_ts(_id(ms, "time") * 1000)
        if not futures:
            (recent.get(native) or recent.setdefault(native, deque(maxlen=_RECENT))).append(
                (last, ts))
        return [_frame(venue, spec_of(native), native, ts, received_ts, False, last, prev,
                       data["b"], data["a"])]

    return parse


def _placed(seen: deque | None, last: object, received_ts: int) -> int:
    """A spot REST snapshot (no time of its own) at lastUpdateId `last`: the time of the
    newest update it holds (u <= last), so the updates after it sort after it (book_at);
    none seen: the oldest seen (all are newer), else its receive time."""
    if not seen:
        return received_ts
    for uid, ts in reversed(seen):
        if last.__class__ is int and uid <= last:  # type: ignore[operator]
            return ts
    return seen[0][1]


def _snapshot(venue: str, spec_of, native: str, msg: dict, ts: int, received_ts: int):
    last = _id(msg["lastUpdateId"], "lastUpdateId")
    ms = msg.get("T") or msg.get("E")  # futures replies carry times; spot's none
    if ms.__class__ is int:
        ts = check_ts(ms * 1000)
    return _frame(venue, spec_of(native), native, ts, received_ts, True, last, 0,
                  msg["bids"], msg["asks"])


def binance_snapshot(venue: str, native: str, body: str | bytes, received_ts: int) -> BookFrame:
    """A REST depth snapshot (`/api/v3/depth`, `/fapi/v1/depth`): lastUpdateId, bids, asks."""
    msg = orjson.loads(body)
    if msg.__class__ is not dict:
        raise FrameError("not a JSON object")
    return _snapshot(venue, spec_of_venue(venue), native, msg, received_ts, received_ts)


_OKX_BOOKS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt", "books5", "bbo-tbt"})


def okx(venue: str = "okx") -> BookParser:
    spec_of = spec_of_venue(venue)
    return _okx_like(venue, lambda arg: spec_of(arg["instId"]))


def bybit(venue: str = "bybit") -> BookParser:
    """Bybit v5 `orderbook.<depth>.<symbol>` (snapshot/delta, `u` consecutive per book, u = 1
    a reset) and the legacy `orderBookL2_25` of realtime_public (snapshot, then deltas
    with delete/update/insert entries; `cross_seq` is not consecutive per book)."""
    spec_of = spec_of_venue(venue)

    def legacy(msg: dict, received_ts: int) -> list[BookFrame]:
        data, snapshot = msg["data"], msg["type"] == "snapshot"
        groups = [data["order_book"] if data.__class__ is dict and "order_book" in data else data] \
            if snapshot else [data["delete"], data["update"], data["insert"]]
        bids, asks, native = [], [], msg["topic"].rpartition(".")[2]
        for number, entries in enumerate(groups):
            for entry in entries:
                level = [entry["price"], "0" if number == 0 and not snapshot else entry["size"]]
                side = entry["side"]
                if side not in _BYBIT_SIDES:
                    raise FrameError(f"bad side {side!r}")
                (bids if side == "Buy" else asks).append(level)
        ts = int(msg["timestamp_e6"])
        return [_frame(venue, spec_of(native), native, check_ts(ts), received_ts, snapshot,
                       0, 0, bids, asks)]

    def parse(frame: str | bytes, received_ts: int) -> list[BookFrame]:
        msg = orjson.loads(frame)
        if msg.__class__ is not dict:
            raise FrameError("not a JSON object")
        topic = msg.get("topic")
        if topic.__class__ is not str or not topic.startswith(("orderbook.", "orderBookL2")):
            return []
        if topic.startswith("orderBookL2"):
            return legacy(msg, received_ts)
        data, snapshot = msg["data"], msg["type"] == "snapshot"
        uid = _id(data["u"], "u")
        native = data["s"]
        # u = 1 is a new snapshot of the book; a delta's u follows the previous one by 1
        return [_frame(venue, spec_of(native), native, check_ts(_id(msg["ts"], "ts") * 1000),
                       received_ts, snapshot or uid == 1, uid,
                       0 if snapshot or uid == 1 else uid - 1, data["b"], data["a"])]

    return parse


_BYBIT_SIDES = frozenset({"Buy", "Sell"})


def bitget(venue: str = "bitget") -> BookParser:
    """Bitget `books` (spot v1 `sp`, v2): OKX's shape and checksum; sizes in BASE. A futures
    instType makes a bare pair a perpetual (as the trade adapter does)."""
    normalize = ALL[venue].normalize_symbol
    cache: dict[tuple[str, str], object] = {}

    def spec(arg: dict) -> object:
        key = (arg["instId"], str(arg.get("instType", "")).lower())
        found = cache.get(key)
        if found is None:
            symbol = normalize(key[0])
            futures = key[1] == "mc" or key[1].endswith("-futures")
            if futures and instrument_kind(symbol) == "spot":
                symbol += "-PERP"
            found = cache[key] = instrument_spec(symbol)
        return found

    return _okx_like(venue, spec)


def _okx_like(venue: str, spec_of: Callable[[dict], object]) -> BookParser:
    def parse(frame: str | bytes, received_ts: int) -> list[BookFrame]:
        msg = _message(frame)
        if msg is None:
            return []
        arg, data = msg.get("arg"), msg.get("data")
        if arg is None or data is None or arg.get("channel") not in _OKX_BOOKS:
            return []
        # books5 / bbo-tbt push the whole (top) book every time: snapshots without action
        snapshot = msg.get("action", "snapshot") == "snapshot"
        native = arg["instId"]
        spec = spec_of(arg)
        out = []
        for item in data:
            ts = item["ts"]
            if ts.__class__ is not str or not ts.isdigit():
                raise FrameError(f"bad ms timestamp {ts!r}")
            if item.__class__ is not dict:
                raise FrameError("book data entry is not an object")
            seq, prev = item.get("seqId", 0), item.get("prevSeqId", 0)
            checksum = item.get("checksum")
            if checksum is not None and checksum.__class__ is not int:
                raise FrameError(f"bad checksum {checksum!r}")
            out.append(_frame(venue, spec, native, check_ts(int(ts) * 1000), received_ts,
                              snapshot, _id(seq, "seqId"), _id(max(prev, 0), "prevSeqId"),
                              item["bids"], item["asks"], checksum))
        return out

    return parse


def coinbase_exchange(venue: str = "coinbase_exchange") -> BookParser:
    """`level2` snapshots carry no time: one is stamped 1 µs after the newest update this
    parser saw of its product, so by event time it follows every update before it and
    precedes the ones after it (`book_at` rebuilds books by event time). The receive
    time would not: updates sent after the snapshot may carry earlier exchange times
    (latency), and a replayed session's times are not the wall clock at all. Only a
    product's first snapshot, with no update seen yet, is stamped when received."""
    spec_of = spec_of_venue(venue)
    newest: dict[str, int] = {}  # product -> newest l2update time seen (µs)

    def parse(frame: str | bytes, received_ts: int) -> list[BookFrame]:
        msg = orjson.loads(frame)
        if msg.__class__ is not dict:
            raise FrameError("not a JSON object")
        kind = msg.get("type")
        if kind == "snapshot":
            native = msg["product_id"]
            seen = newest.get(native)
            ts = received_ts if seen is None else seen + 1
            return [_frame(venue, spec_of(native), native, ts, received_ts, True, 0, 0,
                           msg["bids"], msg["asks"])]
        if kind != "l2update":
            return []
        bids, asks = [], []
        for change in msg["changes"]:
            side = change[0]
            if side == "buy":
                bids.append(change[1:3])
            elif side == "sell":
                asks.append(change[1:3])
            else:
                raise FrameError(f"bad side {side!r}")
        native = msg["product_id"]
        ts = us_from_iso_z(msg["time"])
        event = _frame(venue, spec_of(native), native, ts, received_ts, False, 0, 0, bids, asks)
        newest[native] = max(ts, newest.get(native, ts))
        return [event]

    return parse


def deribit(venue: str = "deribit") -> BookParser:
    """Deribit `book.<instrument>.raw` (and `.100ms`): a snapshot, then changes whose
    `prev_change_id` is the previous event's `change_id`. Levels are [action, price,
    amount] with action new / change / delete (amount 0 on delete here, as the table
    wants); amounts in the instrument's unit (USD on inverse futures, coins on options),
    converted to BASE by the adapter's catalog as trades are."""
    spec_of = spec_of_venue(venue)

    def levels(entries: list) -> list:
        if entries.__class__ is not list:
            raise FrameError("bids/asks are not arrays")
        out = []
        for entry in entries:
            if entry.__class__ is not list or len(entry) != 3 or entry[0] not in _DERIBIT_ACTIONS:
                raise FrameError(f"bad level {entry!r}")
            out.append([entry[1], 0.0 if entry[0] == "delete" else entry[2]])
        return out

    def parse(frame: str | bytes, received_ts: int) -> list[BookFrame]:
        msg = orjson.loads(frame)
        if msg.__class__ is not dict or msg.get("method") != "subscription":
            return []
        params = msg.get("params")
        channel = params.get("channel") if params.__class__ is dict else None
        if channel.__class__ is not str or not channel.startswith("book."):
            return []
        data = params["data"]
        snapshot = data.get("type") == "snapshot"
        native = data["instrument_name"]
        prev = 0 if snapshot else _id(data["prev_change_id"], "prev_change_id")
        return [_frame(venue, spec_of(native), native, check_ts(_id(data["timestamp"], "timestamp") * 1000),
                       received_ts, snapshot, _id(data["change_id"], "change_id"), prev,
                       levels(data["bids"]), levels(data["asks"]))]

    return parse


_DERIBIT_ACTIONS = frozenset({"new", "change", "delete"})


def bitmex(venue: str = "bitmex") -> BookParser:
    """BitMEX `orderBookL2` / `orderBookL2_25`: a `partial` (the book), then `insert`,
    `update`, `delete` rows keyed by `id` (LevelIds). Sizes are contracts, converted to
    BASE as the adapter's quotes are (inverse XBTUSD: 1 USD each; quanto contracts at the
    connection's XBT price, which this parser takes from the trade, quote and .BXBT
    instrument frames beside the books; a quanto level before any XBT price is invalid).
    Rows before a symbol's first `partial` are ignored (BitMEX's documented rule).
    A book frame repeated at once (a duplicate delivery) gives the events it gave the
    first time (same numbers, the ids' prices untouched), which the dedup window drops;
    numbered anew, a repeated delete would be an unknown id (a false gap) and a repeated
    partial a second snapshot. Only the last book frame counts: the same bytes later are a new event (2021 rows carry no time, and
    a level going 100 -> 200 -> 100 repeats a frame: 199 of the 1,969 update frames of
    BITMEX.ws.1.0 equal an earlier one, none the one just before)."""
    spec_of = spec_of_venue(venue)
    books: dict[str, LevelIds] = {}
    rates = bitmex_units.Rates()
    last: list = [0, []]  # (hash, events) of the last book frame

    def parse(frame: str | bytes, received_ts: int) -> list[BookFrame]:
        msg = _message(frame)
        if msg is None:
            return []
        table = msg.get("table")
        if table in _BITMEX_PRICED:  # the XBT price quanto sizes need
            with suppress(FrameError, KeyError, TypeError, ValueError):  # the trade path reports it
                bitmex_venue.parse(frame, received_ts, rates)
            return []
        if table not in _BITMEX_BOOKS:
            return []
        action, data = msg["action"], msg["data"]
        if action not in _BITMEX_ACTIONS or data.__class__ is not list:
            raise FrameError(f"bad book message (action={action!r})")
        digest = xxh3_64_intdigest(frame if frame.__class__ is bytes else frame.encode())
        if digest == last[0]:
            return list(last[1])
        rows: dict[str, list] = {}
        for row in data:
            rows.setdefault(row["symbol"], []).append(row)
        if action == "partial" and not data:  # an empty book
            rows[msg["filter"]["symbol"]] = []
        out = []
        for native, entries in rows.items():
            book = books.get(native)
            if book is None:
                if action != "partial":
                    continue
                book = books[native] = LevelIds()
            bids, asks, uid, prev = book.event(action, entries)
            stamp = entries[0].get("timestamp") if entries else None
            ts = check_ts(us_from_iso_z(stamp)) if stamp.__class__ is str else received_ts
            # rows without a time (the 2021 API's): the connection's latest XBT price sizes
            # them; the receive time is not comparable with a replayed session's times
            spec = rates.sized(spec_of(native), ts if stamp.__class__ is str else rates.ts)
            if not spec.contract_size:
                raise FrameError(f"no contract size for {native} (a quanto before any XBT price)")
            out.append(_frame(venue, spec, native, ts, received_ts, action == "partial", uid, prev,
                              bids, asks))
        last[:] = digest, out
        return out

    return parse


_BITMEX_BOOKS = frozenset({"orderBookL2", "orderBookL2_25"})
_BITMEX_PRICED = frozenset({"trade", "quote", "instrument"})
_BITMEX_ACTIONS = frozenset({"partial", "insert", "update", "delete"})


# venue name -> parser factory, called with the venue's registry key (its endpoint
# variant, e.g. "bybit@spot", whose catalog gives the symbols and contract terms)
BOOK_PARSERS: dict[str, Callable[[str], BookParser]] = {
    "binance": binance,
    "binance_us": binance,
    "binance_futures": binance,
    "binance_delivery": binance,
    "okx": okx,
    "bitget": bitget,
    "bybit": bybit,
    "coinbase_exchange": coinbase_exchange,
    "deribit": deribit,
    "bitmex": bitmex,
    "kraken": kraken,
}


def book_parser(venue: str, key: str | None = None) -> BookParser:
    """A new parser for `venue`'s book frames (`key`: the endpoint variant, default the
    venue itself); FrameError naming the venues that have one."""
    make = BOOK_PARSERS.get(venue)
    if make is None:
        raise FrameError(f"no book channel for venue {venue!r} (have: {', '.join(sorted(BOOK_PARSERS))})")
    return make(key or venue)
