"""What the recorded-session server serves a drill, and what it says it sent.

The drills, the demo and the tests serve recorded sessions (package data in
`feedhouse.app.sessions`) with `SessionServer`; these helpers pick and link the sessions,
build the feed settings pointing at the server, and read the server's per-path counters
(sent totals, unique trades per venue, positions) that a verdict compares the store with.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from dataflows.books.capture import book_symbols, has_book_frames
from dataflows.sources.capture import parse_capture, read_capture
from feedhouse.app.drills.process import wait_for_status
from feedhouse.app.session_server.server import SessionServer
from feedhouse.app.sessions import SESSIONS_DIR

CAPTURES = SESSIONS_DIR
# trade-only sessions the session server shifts per lap (ids, times): every lap is new data
DRILL_CAPTURES = ("BYBIT.ws.25.0", "KRAKEN.ws.48.0", "BITSTAMP.ws.1.0")


def link_sessions(folder: Path, names: Iterable[str], source: Path = CAPTURES) -> Path:
    """`folder` holding only `names` (symlinks into `source`), so a server loads just those."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        link = folder / name
        if not link.exists():
            link.symlink_to(source / name)
    return folder


def captures_folder(dest: Path, names=DRILL_CAPTURES, source: Path = CAPTURES) -> Path:
    """`dest/captures` with only `names` (symlinks), so the session server loads just those."""
    return link_sessions(dest / "captures", names, source)


def server_feeds(server: SessionServer, names=DRILL_CAPTURES,
                 source: Path = CAPTURES, books: bool = False) -> list[dict]:
    """Feed settings (dicts) for each capture served by `server`; `books`: feeds whose
    session holds book frames of a venue with a book parser subscribe `books` too."""

    feeds = []
    for name in names:
        venue, result, _ = parse_capture(source / name)
        symbols = sorted({t.symbol for t in result.trades} | {q.symbol for q in result.quotes})
        feeds.append({"name": venue.name, "venue": venue.name, "url": server.url(name),
                      "symbols": symbols,
                      # what the session recorded: a feed stores only its channels
                      "channels": ["trades", "quotes"] if result.quotes else ["trades"]})
        if books and has_book_frames(source / name):
            feeds[-1]["channels"].append("books")
            feeds[-1]["symbols"] = sorted(set(symbols) | book_symbols(source / name))
    return feeds


def feed_of_path(feeds: list[dict]) -> dict[str, str]:
    """Server path (capture name) -> feed name, for feeds built by server_feeds."""
    return {f["url"].rsplit("/", 1)[1]: f["name"] for f in feeds if f.get("url")}


def recorded_trade_rate(names=DRILL_CAPTURES, source: Path = CAPTURES) -> float:
    """Trades per second of the recordings at their own pace (summed)."""

    total = 0.0
    for name in names:
        times = [e.ts for e in read_capture(source / name) if e.kind == "received"]
        _, result, _ = parse_capture(source / name)
        if len(times) > 1 and times[-1] > times[0]:
            total += len(result.trades) / (times[-1] - times[0])
    return total


def sent_totals(stats: dict) -> dict[str, int]:
    keys = ("frames_sent", "trades_sent", "unique_trades_sent", "duplicates_sent")
    return {k: sum(p[k] for p in stats.values()) for k in keys}


def unique_sent_by_venue(server: SessionServer) -> dict[str, int]:
    """Distinct trades the session server sent intact, per venue (summed over its paths).

    The server counts, per path, distinct (symbol, trade_id) keys as the venue adapter
    parses them, each shifted lap a new key range; corrupted frames (never valid) count
    nothing. Per venue that is the count of distinct (venue, symbol, trade_id) a correct
    pipeline stores, provided a venue's paths serve disjoint trades (one path per venue in
    every drill)."""
    out: dict[str, int] = {}
    for name, st in server.stats().items():
        venue = server.streams[name].venue
        key = venue.name if venue is not None else name
        out[key] = out.get(key, 0) + st["unique_trades_sent"]
    return out


def max_positions(server: SessionServer) -> dict[str, int]:
    """Highest position the session server sent, per path."""
    return {name: st["max_pos"] for name, st in server.stats().items()}


def wait_caught_up(server: SessionServer, before: dict[str, int],
                   timeout_s: float = 120) -> bool:
    """After a SIGKILL and restart: until the server sent past `before` on every path.

    Frames the killed run held in memory (its queue) were counted as sent; the restarted
    run asks for them again from its snapshot position (?from=N), and only once it passed
    the old highest position has every trade counted as sent been offered to it again.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = max_positions(server)
        if all(now[name] > pos for name, pos in before.items()):
            return True
        time.sleep(0.2)
    return False


def drain_held(server: SessionServer, status_file: Path, feed_of: dict[str, str],
               timeout_s: float = 180) -> bool:
    """Hold the server (nothing new is sent) until the run received every frame sent.

    Stopping the server at once could leave frames in socket buffers when it gives up
    closing: counted as sent, never delivered. Positions, not frames sent, are compared:
    a connection cut while backpressured had frames in flight, which the client asks for
    again. `feed_of` maps server paths to feed names. True when the run caught up within
    timeout_s.
    """
    server.hold()
    want = {feed_of[p]: pos + 1 for p, pos in max_positions(server).items()}

    def has_all(status: dict) -> bool:
        feeds = status.get("feeds", {})
        return all(feeds.get(f, {}).get("received", 0) >= n for f, n in want.items())

    return has_all(wait_for_status(status_file, has_all, timeout_s))
