"""Capture files: recorded WebSocket sessions, one event per line (see the fixtures' README).

    <url> <-> <epoch>            a connection to <url> opened
    <url> <- <epoch>: <text>     the client sent <text>
    <epoch>: <text>              the client received <text>
    <epoch>: b'...'              a binary frame, as a Python bytes literal
    # text                       a comment (e.g. where a documentation-built fixture is from)

Read by `feedhouse capture parse`, the replay server and backfills; written by feeds
that have `record_dir` set (CaptureWriter), in the same format.
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from dataflows.venues import VENUES, venue_at, venue_for_url
from feedhouse.core.errors import InputError
from feedhouse.core.records import Invalid, ParseResult, Quote, Trade, iso_from_us, us_from_s


class CaptureEvent(NamedTuple):
    kind: str  # "connect", "sent" or "received"
    ts: float  # epoch seconds
    data: str | bytes  # URL for connect, frame text/bytes otherwise
    url: str  # URL of the connection this event belongs to


def _decode_payload(text: str) -> str | bytes:
    if text.startswith(("b'", 'b"')):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    return text


_MAX_EPOCH = 253402300800.0  # 10000-01-01: later times cannot be printed as ISO dates


def _epoch(text: str) -> float | None:
    """Epoch seconds of a capture line, None when not a number from 1970 to 9999."""
    try:
        ts = float(text)
    except ValueError:
        return None
    return ts if math.isfinite(ts) and 0 <= ts < _MAX_EPOCH else None


def read_capture(
    path: Path | str, on_malformed: Callable[[int, str], None] | None = None
) -> Iterator[CaptureEvent]:
    """Yield the events of a capture file in order. Raises FeedhouseError if unreadable.

    A line that fits none of the formats (e.g. a connect line whose epoch is not a number)
    yields no event: it is passed to `on_malformed(line_number, line)` when given, else
    skipped, so one bad line never stops a replay or a parse.
    """
    path = Path(path)
    try:
        handle = path.open("r", encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise InputError(f"capture {path}: cannot read ({exc.strerror})") from None
    url = ""
    with handle:
        for number, raw_line in enumerate(handle, 1):
            line = raw_line.rstrip("\n")
            if not line or line[0] == "#":  # '#' lines: comments (provenance of docs fixtures)
                continue
            event: CaptureEvent | None = None
            if line[0].isdigit():
                ts_text, sep, payload = line.partition(": ")
                ts = _epoch(ts_text) if sep else None
                if ts is not None:
                    event = CaptureEvent("received", ts, _decode_payload(payload), url)
            else:
                head, _, rest = line.partition(" ")
                if rest.startswith("<-> "):
                    ts = _epoch(rest[4:].strip())
                    if ts is not None:
                        url = head
                        event = CaptureEvent("connect", ts, head, head)
                elif rest.startswith("<- "):
                    ts_text, _, payload = rest[3:].partition(": ")
                    ts = _epoch(ts_text)
                    if ts is not None:
                        event = CaptureEvent("sent", ts, _decode_payload(payload), head)
            if event is not None:
                yield event
            elif on_malformed is not None:
                on_malformed(number, line)


def header_lines(path: Path | str) -> list[str]:
    """A capture's connect line and first subscribe, as written: the start of a new capture
    file of the same session (a session server waits for the subscribe before it sends)."""
    header: list[str] = []
    for event in read_capture(path):
        if event.kind == "connect":
            header.append(f"{event.url} <-> {event.ts}")
        elif event.kind == "sent":
            header.append(f"{event.url} <- {event.ts}: {event.data}")
            break
    return header


def capture_url(
    path: Path | str, on_malformed: Callable[[int, str], None] | None = None
) -> str | None:
    """The URL of the first connection in a capture (to infer its venue)."""
    for event in read_capture(path, on_malformed):
        if event.kind == "connect":
            return event.url
    return None


@dataclass
class CaptureSummary:
    frames: int = 0
    trades: int = 0
    quotes: int = 0
    ignored: int = 0
    invalid: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def parse_capture(path: Path | str, venue_name: str | None = None):
    """Parse every received frame of a capture with its venue's adapter.

    Returns (venue, ParseResult with all trades and quotes, CaptureSummary).
    """

    if venue_name is not None:
        venue = VENUES.get(venue_name)
        if venue is None:
            raise InputError(
                f"unknown venue {venue_name!r} (known: {', '.join(sorted(VENUES))})"
            )
        # the recorded endpoint picks the variant (Bybit's market, Coinbase's API)
        venue = venue_at(venue, capture_url(path, lambda _number, _line: None))
    else:
        skipped: list[int] = []
        url = capture_url(path, lambda number, _line: skipped.append(number))
        venue = venue_for_url(url) if url else None
        if venue is None:
            source = url or "no connect line"
            if not url and skipped:
                source += f" (line {skipped[0]} is malformed)"
            raise InputError(f"capture {path}: cannot infer the venue from {source}; pass --venue")
    total = ParseResult()
    summary = CaptureSummary()

    def malformed(number: int, line: str) -> None:
        reason = f"malformed capture line {number}"
        total.invalid.append(Invalid(line[:4096], reason))
        summary.reasons[reason] = summary.reasons.get(reason, 0) + 1

    parse = venue.parser()[0]  # this recording's own connection state
    for event in read_capture(path, malformed):
        if event.kind != "received":
            continue
        summary.frames += 1
        result = parse(event.data, us_from_s(event.ts))
        total.extend(result)
        for item in result.invalid:
            summary.reasons[item.reason] = summary.reasons.get(item.reason, 0) + 1
    summary.trades = len(total.trades)
    summary.quotes = len(total.quotes)
    summary.ignored = total.ignored
    summary.invalid = len(total.invalid)
    return venue, total, summary


def trade_json(trade: Trade) -> dict:
    """A trade as `feedhouse capture parse` prints it (fields of market.trades)."""
    return {
        "venue": trade.venue,
        "symbol": trade.symbol,
        "native_symbol": trade.native_symbol,
        "trade_id": trade.trade_id,
        "price": trade.price,
        "amount": trade.amount,
        "side": trade.side,
        "exchange_ts": iso_from_us(trade.exchange_ts),
        "received_ts": iso_from_us(trade.received_ts),
        "instrument_type": trade.instrument_type,
        "native_amount": trade.native_amount,
        "contract_size": trade.contract_size,
    }


def quote_json(quote: Quote) -> dict:
    data = quote._asdict()
    if quote.native_bid_size is None:  # the venue's sizes are the stored ones
        data["native_bid_size"] = quote.bid_size
    if quote.native_ask_size is None:
        data["native_ask_size"] = quote.ask_size
    data["exchange_ts"] = iso_from_us(quote.exchange_ts)
    data["received_ts"] = iso_from_us(quote.received_ts)
    return data


class CaptureWriter:
    """Appends a feed's traffic to capture files, one file per feed per UTC hour."""

    def __init__(self, folder: Path, feed: str) -> None:
        self.folder = Path(folder)
        self.feed = feed
        self.folder.mkdir(parents=True, exist_ok=True)
        self._hour: str | None = None
        self._handle = None
        self._url = ""

    def _file_for(self, ts: float):
        hour = time.strftime("%Y%m%dT%H", time.gmtime(ts))
        if hour != self._hour:
            if self._handle is not None:
                self._handle.close()
            self._hour = hour
            path = self.folder / f"{self.feed}.{hour}.ws"
            fresh = not path.exists()
            self._handle = path.open("a", encoding="utf-8")
            if fresh and self._url:
                # every file starts with a connect line so it can be parsed on its own
                self._handle.write(f"{self._url} <-> {ts}\n")
        return self._handle

    def connected(self, url: str, ts: float) -> None:
        self._url = url
        self._file_for(ts).write(f"{url} <-> {ts}\n")

    def sent(self, text: str, ts: float) -> None:
        self._file_for(ts).write(f"{self._url} <- {ts}: {text}\n")

    def received(self, frame: str | bytes, ts: float) -> None:
        payload = repr(frame) if isinstance(frame, bytes) else frame.replace("\n", " ")
        self._file_for(ts).write(f"{ts}: {payload}\n")

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
