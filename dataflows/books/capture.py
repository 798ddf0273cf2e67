"""Book level updates of a recorded session (`feedhouse capture parse FILE --channel books`).

Every received frame goes through the venue's book parser (parsers.BOOK_PARSERS); the
frames become one BookColumns batch, and a Books state follows each symbol so the summary
can say how many checksums were proven and which sequence gaps the recording holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from dataflows.books.columns import BookColumns, BookFrame
from dataflows.books.parsers import BOOK_PARSERS, book_parser
from dataflows.books.state import BookBreak, Books
from dataflows.sources.capture import capture_url, read_capture
from dataflows.venues import ALL, VENUES, venue_at, venue_for_url
from dataflows.venues.common import FrameError
from feedhouse.core.errors import InputError
from feedhouse.core.records import us_from_s

_BAD_FRAME = (orjson.JSONDecodeError, FrameError, KeyError, IndexError, TypeError,
              ValueError, AttributeError, OverflowError)


@dataclass
class BookSummary:
    frames: int = 0  # received frames
    events: int = 0  # book events (snapshots + updates)
    snapshots: int = 0
    ignored: int = 0  # frames without book data
    invalid: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    breaks: list[BookBreak] = field(default_factory=list)
    checksums_passed: int = 0
    checksums_failed: int = 0
    stale: int = 0  # updates already covered by the snapshot


def _venue_key(path: Path, venue_name: str | None) -> str:
    url = capture_url(path, lambda _number, _line: None)
    if venue_name is not None:
        venue = VENUES.get(venue_name)
        if venue is None:
            raise InputError(f"unknown venue {venue_name!r} (known: {', '.join(sorted(VENUES))})")
        return venue_at(venue, url).key
    venue = venue_for_url(url) if url else None
    if venue is None:
        raise InputError(f"capture {path}: cannot infer the venue from {url or 'no connect line'}; "
                         "pass --venue")
    return venue.key


def parse_book_capture(path: Path | str, venue_name: str | None = None):
    """(venue name, BookColumns of every level update, BookSummary)."""
    path = Path(path)
    key = _venue_key(path, venue_name)
    name = ALL[key].name
    if name not in BOOK_PARSERS:
        raise InputError(f"venue {name!r} has no book channel yet "
                         f"(have: {', '.join(sorted(BOOK_PARSERS))})")
    parse = book_parser(name, key)
    books = Books()
    summary = BookSummary()
    frames: list[BookFrame] = []
    for event in read_capture(path):
        if event.kind != "received":
            continue
        summary.frames += 1
        try:
            found = parse(event.data, us_from_s(event.ts))
        except _BAD_FRAME as exc:
            reason = f"{name}: {exc.__class__.__name__}: {str(exc)[:160]}"
            summary.invalid += 1
            summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
            continue
        if not found:
            summary.ignored += 1
            continue
        frames.extend(found)
    columns = BookColumns.of(frames)
    for _frame, why in columns.rejected:
        reason = f"{name}: {why}"
        summary.invalid += 1
        summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
    frames = columns.frames
    summary.breaks = books.apply(frames)
    summary.events = len(frames)
    summary.snapshots = sum(1 for f in frames if f.is_snapshot)
    for state in books.states.values():
        summary.checksums_passed += state.passed
        summary.checksums_failed += state.checked - state.passed
        summary.stale += state.stale
    return name, columns, summary


def summary_lines(label: str, venue: str, columns: BookColumns, summary: BookSummary) -> list[str]:
    """The stderr summary of `capture parse --channel books`: counts, then one line per
    break and per invalid reason."""
    gaps = sum(1 for b in summary.breaks if b.reason == "sequence gap")
    lines = [
        f"{label} ({venue}): frames={summary.frames} book_events={summary.events} "
        f"snapshots={summary.snapshots} levels={len(columns)} ignored={summary.ignored} "
        f"invalid={summary.invalid} checksums_passed={summary.checksums_passed} "
        f"checksums_failed={summary.checksums_failed} gaps={gaps} stale={summary.stale}"
    ]
    lines += [f"  {b.reason}: {b.symbol} at {b.exchange_ts} ({b.detail})" for b in summary.breaks]
    lines += [f"  invalid: {n} x {reason}" for reason, n in
              sorted(summary.reasons.items(), key=lambda kv: -kv[1])]
    return lines


def has_book_frames(path: Path | str) -> bool:
    """The recorded session holds book frames of a venue with a book parser."""
    try:
        _name, columns, _summary = parse_book_capture(path)
    except InputError:
        return False
    return len(columns) > 0


def book_symbols(path: Path | str) -> set[str]:
    """The symbols whose book frames the recorded session holds."""
    _name, columns, _summary = parse_book_capture(path)
    return {f.symbol for f in columns.frames}
