"""The demo's book proof (feedhouse/app/demo/books_check.py) fails on a crossed book: a
symbol whose `book_at` at the end of its synced span has best bid >= best ask is a
problem, not a line of output (issue 21)."""

from __future__ import annotations

from dataflows.books.columns import BookColumns, BookFrame
from feedhouse.app.demo.books_check import prove_books
from feedhouse.store.client import warehouse
from feedhouse.store.insert import insert_arrow

T0 = 1_700_000_000_000_000


def _book(venue: str, symbol: str, bid: str, ask: str) -> list[BookFrame]:
    """A snapshot, then an update that moves the best bid to `bid` (ask stays `ask`)."""
    return [BookFrame(venue, symbol, symbol, "spot", T0, T0, True, 0, 0,
                      [["99", "1"]], [[ask, "1"]]),
            BookFrame(venue, symbol, symbol, "spot", T0 + 1000, T0 + 1000, False, 0, 0,
                      [[bid, "2"]], [])]


def test_a_crossed_book_is_a_problem_of_the_proof(initialized):
    frames = _book("okx", "BTC-USDT", "100", "101") + _book("bybit", "ETH-USDT", "102", "101")
    with warehouse(initialized) as client:
        insert_arrow(client, "market.book_updates",
                     BookColumns.of(frames).to_arrow(feed="demo"), "books-check")
        proof = prove_books(client)
    assert proof.synced == 2 and proof.crossed == ["bybit ETH-USDT"]
    assert proof.problems(2) == ["book_at crossed for 1 of 2 synced symbol(s): bybit ETH-USDT"]
    assert "non-crossed for 1 of 2 synced symbols (crossed: bybit ETH-USDT)" in proof.line()
