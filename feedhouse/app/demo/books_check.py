"""The demo's order-book proof (issue 21): books stored per venue, every book break
explained, and `book_at` non-crossed for every synced symbol.

- venues: `market.book_updates` holds level updates of at least `min_venues` venues;
- breaks: each sequence gap / checksum mismatch in ops.feed_gaps is explained by an invalid
  frame of that feed (the demo's session server corrupts frames now and then: a lost book
  frame is a gap or a mismatch). More breaks than invalid frames on a feed are unexplained;
- crossed: a symbol is synced when its last snapshot came after its last break (event
  time, as the break rows are stamped) and after its feed's last disconnect or lost frame
  of a venue without sequence ids (wall clock); for each, the analytics query `book_at`
  at the symbol's newest update must give a best bid below the best ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from feedhouse.app import analytics

_BREAKS = """
SELECT feed, venue, splitByChar(' ', substring(reason, position(reason, ': ') + 2))[1] AS symbol,
    max(gap_end) AS last_break, count() AS breaks
FROM ops.feed_gaps WHERE kind IN ('sequence', 'checksum')
    AND (startsWith(reason, 'sequence gap: ') OR startsWith(reason, 'checksum mismatch: '))
GROUP BY feed, venue, symbol
"""


@dataclass
class BookProof:
    venues: dict[str, int] = field(default_factory=dict)  # venue -> level updates stored
    breaks: dict[str, int] = field(default_factory=dict)  # feed -> sequence/checksum breaks
    unexplained: dict[str, int] = field(default_factory=dict)  # feed -> breaks beyond invalid
    synced: int = 0  # symbols synced at the end (book_at checked)
    crossed: list[str] = field(default_factory=list)  # "venue symbol" of crossed books

    def problems(self, min_venues: int) -> list[str]:
        out = []
        if len(self.venues) < min_venues:
            out.append(f"books stored for {len(self.venues)} venue(s), expected >= {min_venues}")
        out += [f"{n} unexplained book break(s) on {feed}" for feed, n in self.unexplained.items()]
        if self.crossed:
            out.append(f"book_at crossed for {', '.join(self.crossed)}")
        return out

    def line(self) -> str:
        return (f"books: {sum(self.venues.values()):,} level updates from {len(self.venues)} "
                f"venues; {sum(self.breaks.values())} breaks, "
                f"{sum(self.unexplained.values())} unexplained; book_at non-crossed for "
                f"{self.synced - len(self.crossed)} of {self.synced} synced symbols")


def prove_books(client) -> BookProof:
    proof = BookProof()
    proof.venues = {v: int(n) for v, n in client.query(
        "SELECT venue, count() FROM market.book_updates GROUP BY venue").result_rows}
    breaks = client.query(_BREAKS).result_rows
    for feed, _venue, _symbol, _last, n in breaks:
        proof.breaks[feed] = proof.breaks.get(feed, 0) + int(n)
    invalid = dict(client.query("SELECT feed, sum(invalid) FROM ops.ingest_ledger "
                                "GROUP BY feed").result_rows)
    for feed, n in proof.breaks.items():
        if n > int(invalid.get(feed, 0)):
            proof.unexplained[feed] = n - int(invalid.get(feed, 0))
    last_break = {(venue, symbol): last for _feed, venue, symbol, last, _n in breaks
                  if symbol != "*"}
    # disconnects, and lost frames of venues without sequence ids (symbol '*'): wall clock
    last_drop = dict(client.query(
        "SELECT venue, max(gap_end) FROM ops.feed_gaps WHERE kind = 'disconnect' OR "
        "startsWith(reason, 'sequence gap: * ') GROUP BY venue").result_rows)
    symbols = client.query(
        "SELECT venue, symbol, maxIf(exchange_ts, is_snapshot = 1), "
        "maxIf(received_ts, is_snapshot = 1), max(exchange_ts) FROM market.book_updates "
        "GROUP BY venue, symbol HAVING countIf(is_snapshot = 1) > 0").result_rows
    for venue, symbol, snapshot_ts, snapshot_received, newest in symbols:
        broke, dropped = last_break.get((venue, symbol)), last_drop.get(venue)
        if (broke and snapshot_ts <= broke) or (dropped and snapshot_received <= dropped):
            continue  # broken (event time) or disconnected since its last snapshot
        proof.synced += 1
        names, rows = analytics.run(client, "book_at", {
            "venue": venue, "symbol": symbol, "at": newest.isoformat(), "levels": "1"})
        best = {r[names.index("side")]: r[names.index("price")] for r in rows}
        if "bid" in best and "ask" in best and best["bid"] >= best["ask"]:
            proof.crossed.append(f"{venue} {symbol}")
    return proof
