"""Kraken spot book frames, WebSocket v2 `book` channel: a `snapshot`, then `update`s,
each item {symbol, bids, asks, checksum, timestamp} with levels {price, qty} (qty 0: the
level is removed). No sequence id: every frame carries the CRC32 checksum of the book's
top 10 levels after it (dataflows/books/checksum.py: kraken), which the book state proves.

The checksum is over the price and qty *text* as Kraken puts it on the wire: JSON numbers
at the instrument's full precision (trailing zeros kept, e.g. `0.00100000`). Kraken's
checksum guide says to decode the book message with a decimal or string decoder so that
text survives (`json.loads(..., parse_float=Decimal)`); orjson has no such option, so book
frames are decoded by the standard library's json with `parse_float=str` (and
`parse_int=str`): each level keeps its wire text, the checksum is built over it, and the
columns convert it to float64 as they do other venues' text levels. Sizes are BASE
(spot), as Kraken's trades are.

Kraken keeps a book at the subscribed depth and sends no removal for a level that falls
out of it; the book state truncates a Kraken book to that depth after every event
(state.KEPT_DEPTH, the depth dataflows/venues/kraken.py subscribes). v1 `book-N` arrays
are not parsed (the live feed subscribes v2; no v1 book recording exists).
"""

from __future__ import annotations

import json

from dataflows.books.columns import BookFrame
from dataflows.books.framing import BookParser, book_frame, spec_of_venue
from dataflows.venues.common import FrameError, check_ts, us_from_iso_z

_TYPES = frozenset({"snapshot", "update"})


def _levels(entries: object) -> list[list[str]]:
    if entries.__class__ is not list:
        raise FrameError("bids/asks are not arrays")
    out = []
    for entry in entries:  # type: ignore[attr-defined]
        if entry.__class__ is not dict or entry.get("price").__class__ is not str \
                or entry.get("qty").__class__ is not str:
            raise FrameError(f"bad level {str(entry)[:80]}")  # numbers decode to str
        out.append([entry["price"], entry["qty"]])
    return out


def _checksum(value: object) -> int | None:
    if value is None:
        return None
    if value.__class__ is not str or not value.isdigit() or int(value) >= 1 << 32:  # type: ignore[union-attr]
        raise FrameError(f"bad checksum {value!r}")
    return int(value)  # type: ignore[arg-type]


def kraken(venue: str = "kraken") -> BookParser:
    """Frames keep their `timestamp`; an item without one (a snapshot, in older documented
    examples) is stamped 1 µs after the newest event time seen of its symbol, as Coinbase
    snapshots are, so `book_at` orders it after the updates before it; with nothing seen
    yet, on receipt."""
    spec_of = spec_of_venue(venue)
    newest: dict[str, int] = {}  # native symbol -> newest event time (µs)

    def parse(frame: str | bytes, received_ts: int) -> list[BookFrame]:
        if (b'"book"' if frame.__class__ is bytes else '"book"') not in frame:
            return []  # trades, tickers, heartbeats: never decoded twice
        msg = json.loads(frame, parse_float=str, parse_int=str)
        if msg.__class__ is not dict or msg.get("channel") != "book" or "method" in msg:
            return []  # a subscribe ack names the channel too
        kind, data = msg.get("type"), msg.get("data")
        if kind not in _TYPES or data.__class__ is not list:
            raise FrameError(f"bad book message (type={kind!r})")
        out = []
        for item in data:
            if item.__class__ is not dict:
                raise FrameError("book data entry is not an object")
            native, stamp = item["symbol"], item.get("timestamp")
            if stamp.__class__ is str:
                ts = check_ts(us_from_iso_z(stamp))
                newest[native] = max(ts, newest.get(native, ts))
            else:
                ts = newest[native] + 1 if native in newest else received_ts
            out.append(book_frame(venue, spec_of(native), native, ts, received_ts,
                                  kind == "snapshot", 0, 0, _levels(item["bids"]),
                                  _levels(item["asks"]), _checksum(item.get("checksum"))))
        return out

    return parse
