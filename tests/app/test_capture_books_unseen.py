"""`feedhouse capture parse FILE --channel books` on sessions no other test has seen: laps 1
and 2 of each book-bearing recording as the session server sends them (its shifter moves
times and sequence ids per lap), written out as new capture files. The CLI's JSON lines
must match an independent plain-json count of the level updates and their
sum(price * size), and the shifted laps must chain without a sequence gap."""

from __future__ import annotations

import json

import pytest

from dataflows.sources.capture import header_lines
from feedhouse.app.session_server.stream import RecordedStream
from tests.support.books import independent_book_count
from tests.support.cli import run_cli
from tests.support.paths import corpus

SESSIONS = ("OKX.ws.1.0", "COINBASE.ws.28.0", "BYBIT.ws.25.0", "BINANCE_FUTURES.ws.1.0",
            "BINANCE.ws.1.0", "BITGET.ws.1.0")


def _unseen(name: str, out) -> list[dict]:
    """Laps 1-2 of `name` as a new capture file at `out`; its received JSON messages."""
    stream = RecordedStream.load(corpus(name))
    lines, messages = header_lines(corpus(name)), []
    for g in range(len(stream), 3 * len(stream)):
        frame = stream.frame(g)
        lines.append(f"{stream.start_ts + stream.time_of(g):.6f}: {frame}")
        if isinstance(frame, str) and frame.startswith("{"):
            messages.append(json.loads(frame))
    out.write_text("\n".join(lines) + "\n")
    return messages


@pytest.mark.parametrize("name", SESSIONS)
def test_capture_parse_books_matches_an_independent_count_on_unseen_laps(tmp_path, name):
    path = tmp_path / f"lap12.{name}"
    messages = _unseen(name, path)
    levels, notional, gaps = independent_book_count(messages)
    done = run_cli("capture", "parse", str(path), "--channel", "books")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert levels > 500
    assert len(rows) == levels
    assert sum(r["price"] * r["native_amount"] for r in rows) == pytest.approx(notional, rel=1e-9)
    assert gaps == []  # the shifter keeps each symbol's id chain across laps
    assert " gaps=0 " in done.stderr and "checksums_failed=0" in done.stderr
