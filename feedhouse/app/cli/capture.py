"""`feedhouse capture parse FILE`: normalized trades (or, with `--channel books`, book level
updates) of a recorded session as JSON lines."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import typer

from dataflows.books.capture import parse_book_capture, summary_lines
from dataflows.sources.capture import parse_capture, trade_json
from feedhouse.core.errors import InputError

capture_app = typer.Typer(help="Work with recorded WebSocket sessions (capture files).")


@capture_app.command("parse")
def parse(
    file: Path = typer.Argument(..., help="capture file (fixture format)"),
    venue: str | None = typer.Option(None, help="venue; default: inferred from the connect URL"),
    repeats: bool = typer.Option(
        False, "--repeats", help="also print a trade each time it is delivered again"),
    channel: str = typer.Option(
        "trades", "--channel", help="trades (market.trades rows) or books (market.book_updates)"),
) -> None:
    """Print the normalized trades of a recorded session as JSON lines; summary on stderr.

    A trade delivered twice (Bitfinex sends each one as `te` and again as `tu`; snapshots
    repeat recent trades) is printed once, as it is stored: its key (venue, symbol,
    trade_id) is market.trades' key. `repeats=N` in the summary counts the others."""
    if channel != "trades":
        _books(file, venue, channel)
        return
    found, result, summary = parse_capture(file, venue)
    unique = first_deliveries(result.trades)
    trades = result.trades if repeats else unique
    out = sys.stdout.buffer
    for trade in trades:
        out.write(orjson.dumps(trade_json(trade)) + b"\n")
    out.flush()
    # plain lines, not the rich console: rich wraps at 80 columns off a terminal and would
    # read a reason holding '[/x]' (frame text) as markup
    name = _one_line(file.name)
    err = sys.stderr
    err.write(
        f"{name} ({found.name}): frames={summary.frames} trades={len(trades)} "
        f"quotes={summary.quotes} ignored={summary.ignored} invalid={summary.invalid} "
        f"repeats={summary.trades - len(unique)}\n"
    )
    for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
        err.write(f"  invalid: {count} x {_one_line(reason)}\n")
    err.flush()


def _books(file: Path, venue: str | None, channel: str) -> None:
    """One JSON line per level update (market.book_updates fields), summary on stderr."""
    if channel != "books":
        raise InputError(f"--channel: {channel!r} is not trades or books")
    found, columns, summary = parse_book_capture(file, venue)
    out = sys.stdout.buffer
    for row in columns.json_rows():
        out.write(orjson.dumps(row) + b"\n")
    out.flush()
    sys.stderr.write("".join(_one_line(line) + "\n" for line in
                             summary_lines(file.name, found, columns, summary)))


def first_deliveries(trades: list) -> list:
    """Each trade once, in arrival order (first delivery wins, as in the dedup window)."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for t in trades:
        key = (t.venue, t.symbol, t.trade_id)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def _one_line(text: str) -> str:
    """`text` with control characters escaped, so it cannot break the summary's lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def register(app: typer.Typer) -> None:
    app.add_typer(capture_app, name="capture")
