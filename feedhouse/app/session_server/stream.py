"""A capture file as the replay server serves it: one numbered stream of frames.

Frame g of the (looped) stream is recorded frame g % K of lap g // K, where K is the
number of frames the capture received (greeting, acks and data alike, in recorded order;
all connections of the file one after the other). Lap 0 is sent as recorded; on later
laps the frames holding trades or quotes go through the venue's shifter so they carry new
trade ids and times.

For the server's counters each recorded frame is parsed once with its venue adapter: the
trades it holds become small integer keys, so "unique trades sent" is a bitmap lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from dataflows.books.parsers import BOOK_PARSERS, book_parser
from dataflows.sources.capture import read_capture
from dataflows.venues import VENUES, venue_for_url
from dataflows.venues.base import Venue
from feedhouse.app.session_server.peer import encode_frame
from feedhouse.app.session_server.shift import Shifter, shifter_for
from feedhouse.core.errors import InputError
from feedhouse.core.records import us_from_s


@dataclass
class RecordedStream:
    name: str  # file name, the URL path
    url: str  # the recorded connect URL
    venue: Venue | None
    frames: list[str | bytes]
    offsets: list[float]  # seconds since the first frame
    greeting: int  # frames received before the recorded client sent anything
    expects_subscribe: bool  # the recorded client sent frames: wait for ours
    span_s: float  # one lap's length, for shifting timestamps between laps (`_index`)
    keys: list[tuple[int, ...]] = field(default_factory=list)  # trade keys per frame
    n_keys: int = 0
    # frames holding trades or quotes: the only ones shifted on later laps (books,
    # heartbeats and acks go out as recorded, which keeps looping cheap)
    market: list[bool] = field(default_factory=list)
    shifter: Shifter | None = None
    start_ts: float = 0.0  # epoch seconds of the first recorded frame
    wire: list[bytes] = field(default_factory=list)  # each frame's wire form (lap 0)
    # book frames (no trade or quote): always moved by whole laps, never stamped `at`, so
    # they keep the recording's spacing (two events of a book never share a time) and a
    # duplicated frame is the same event again
    book_frames: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> RecordedStream:
        frames: list[str | bytes] = []
        times: list[float] = []
        url = ""
        greeting: int | None = None
        sent = False
        for event in read_capture(path):
            if event.kind == "connect":
                url = url or event.url
            elif event.kind == "sent":
                sent = True
                if greeting is None:
                    greeting = len(frames)
            else:
                frames.append(event.data)
                times.append(event.ts)
        if not url or not frames:
            raise InputError(f"capture {path}: no connection or no frames received")
        venue = venue_for_url(url) or _venue_from_name(path.name)
        start = times[0]
        stream = cls(
            name=path.name,
            url=url,
            venue=venue,
            frames=frames,
            offsets=[t - start for t in times],
            greeting=len(frames) if greeting is None else greeting,
            expects_subscribe=sent,
            span_s=float(int(times[-1] - start) + 1),
            shifter=shifter_for(venue.name if venue else None),
            start_ts=start,
        )
        stream._index(times)
        return stream

    def _index(self, times: list[float]) -> None:
        """Trade keys per frame (venue adapter), the shifter's id ranges (lap 0), and a lap
        stride wide enough for the book events' own times."""
        ids: dict[tuple[str, str], int] = {}
        book_times: list[int] = []  # µs, every book event's own time
        for frame, ts in zip(self.frames, times, strict=True):
            keys: tuple[int, ...] = ()
            market = False
            if self.venue is not None:
                result = self.venue.parse(frame, us_from_s(ts))
                keys = tuple(
                    ids.setdefault((t.symbol, t.trade_id), len(ids)) for t in result.trades
                )
                # book frames too (books channel): their times and ids move per lap
                market = bool(result.trades or result.quotes)
                found = [] if market else self._book_times(frame, ts)
                if found:
                    market = True
                    self.book_frames.add(len(self.market))
                    book_times += found
            self.wire.append(encode_frame(frame))
            self.keys.append(keys)
            self.market.append(market)
            if self.shifter is not None and isinstance(frame, str):
                try:
                    self.shifter.observe(orjson.loads(frame))
                except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, IndexError,
                        AttributeError):
                    pass  # a frame of unexpected shape (e.g. fuzzed) teaches the shifter nothing
        self.n_keys = len(ids)
        if book_times:
            # a lap must move book events past every event of the lap before, or a book
            # rebuilt by event time (`book_at`) mixes laps: a snapshot's time can be older
            # than the recording's first frame (Bybit's legacy snapshot carries its book's
            # last change, seconds earlier on a quiet symbol), so the received span is
            # not enough
            events_s = (max(book_times) - min(book_times)) / 1e6
            self.span_s = max(self.span_s, float(int(events_s) + 1))

    def _book_times(self, frame: str | bytes, ts: float) -> list[int]:
        """The event times (µs) of the book events a frame holds ([]: no book frame)."""
        parse = self._book_parse
        if parse is None:
            return []
        try:
            return [f.exchange_ts for f in parse(frame, us_from_s(ts))]
        except Exception:  # noqa: BLE001 - a frame the book parser refuses is no book frame
            return []

    @property
    def _book_parse(self):
        if not hasattr(self, "_book_parser"):
            name = self.venue.name if self.venue is not None else ""
            key = self.venue.key if self.venue is not None else None
            self._book_parser = book_parser(name, key) if name in BOOK_PARSERS else None
        return self._book_parser

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, g: int, at: float | None = None) -> str | bytes:
        """Frame g (laps included). `at` (epoch s): stamp its event times with `at`
        instead of moving them by whole laps, so a fast replay still looks live."""
        lap, i = divmod(g, len(self.frames))
        raw = self.frames[i]
        if i in self.book_frames:
            at = None
        if lap == 0 or self.shifter is None or not self.market[i] or not isinstance(raw, str):
            return raw
        # shifters move times by lap * span: pick the span that moves them to `at`
        span = self.span_s if at is None else (at - self.start_ts - self.offsets[i]) / lap
        text = self.shifter.shift_text(raw, lap, span)
        if text is not None:
            return text
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        return orjson.dumps(self.shifter.shift(msg, lap, span)).decode()

    def wire_of(self, g: int, at: float | None = None) -> bytes:
        """`frame(g, at)` in its wire form: encoded once at load unless it changes per lap."""
        lap, i = divmod(g, len(self.frames))
        if lap == 0 or self.shifter is None or not self.market[i] or \
                not isinstance(self.frames[i], str):
            return self.wire[i]
        return encode_frame(self.frame(g, at))

    def time_of(self, g: int) -> float:
        """Recorded time of frame g (seconds from the stream's start, laps included)."""
        lap, i = divmod(g, len(self.frames))
        return lap * self.span_s + self.offsets[i]

    def laps_until(self, epoch_s: float) -> int:
        """The first lap whose shifted times lie at or after `epoch_s` (0 without a shifter).

        Serving from that lap on (with `frame(g, at=send time)`) makes a years-old
        recording look live: event times are the send times, ids are new, and the rest
        of the pipeline (audits of closed minutes, lag) sees data as from the exchange.
        """
        if self.shifter is None:
            return 0
        return max(0, int((epoch_s - self.start_ts) // self.span_s) + 1)

    def key_base(self, lap: int) -> int:
        """Offset of a lap's trade keys: laps are new trades only when shifted."""
        return lap * self.n_keys if self.shifter is not None else 0


def _venue_from_name(file_name: str) -> Venue | None:
    """Recordings made against the replay server have a loopback URL; their file name
    (`<feed>.<hour>.ws`) names the venue when the feed is named after it."""
    return VENUES.get(file_name.split(".", 1)[0].lower())


def load_streams(folder: Path) -> dict[str, RecordedStream]:
    """Every capture file in a folder (README and hidden files skipped), by file name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"captures folder {folder}: not a directory")
    streams = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix in (".md", ".json"):
            continue
        try:
            streams[path.name] = RecordedStream.load(path)
        except InputError:
            continue  # not a capture
    if not streams:
        raise InputError(f"captures folder {folder}: no capture files")
    return streams
