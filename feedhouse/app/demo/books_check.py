"""The demo's order-book proof (issue 21): books stored per venue, every book break
explained, and `book_at` non-crossed for every synced symbol.

- venues: `market.book_updates` holds level updates of at least `min_venues` venues;
- breaks: each sequence gap / checksum mismatch in ops.feed_gaps is explained by an invalid
  frame of that feed (the demo's session server corrupts frames now and then: a lost book
  frame is a gap or a mismatch). More breaks than invalid frames on a feed are unexplained;
- crossed: after its last snapshot a symbol's book is synced until its first break (event
  time, as the break rows are stamped) or its feed's first disconnect or lost frame of a
  venue without sequence ids (wall clock); for each symbol with a snapshot, the analytics
  query `book_at` at its last update of that synced span must give a best bid below the
  best ask; a crossed book fails the demo.
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
    synced: int = 0  # symbols with a synced span after their last snapshot (book_at checked)
    crossed: list[str] = field(default_factory=list)  # "venue symbol" of crossed books

    def problems(self, min_venues: int) -> list[str]:
        out = []
        if len(self.venues) < min_venues:
            out.append(f"books stored for {len(self.venues)} venue(s), expected >= {min_venues}")
        out += [f"{n} unexplained book break(s) on {feed}" for feed, n in self.unexplained.items()]
        if not self.synced:
            out.append("no synced book to check book_at on")
        if self.crossed:
            out.append(f"book_at crossed for {len(self.crossed)} of {self.synced} synced "
                       f"symbol(s): {', '.join(sorted(self.crossed))}")
        return out

    def line(self) -> str:
        return (f"books: {sum(self.venues.values()):,} level updates from {len(self.venues)} "
                f"venues; {sum(self.breaks.values())} breaks, "
                f"{sum(self.unexplained.values())} unexplained; book_at non-crossed for "
                f"{self.synced - len(self.crossed)} of {self.synced} synced symbols"
                + (f" (crossed: {', '.join(sorted(self.crossed))})" if self.crossed else ""))


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
    # after its last snapshot a book is synced until its first break (event time) or its
    # feed's first disconnect or lost frame without sequence ids (symbol '*', wall clock)
    events = client.query(
        "SELECT venue, splitByChar(' ', substring(reason, position(reason, ': ') + 2))[1], "
        "gap_end FROM ops.feed_gaps WHERE kind IN ('sequence', 'checksum') AND "
        "(startsWith(reason, 'sequence gap: ') OR startsWith(reason, 'checksum mismatch: ')) "
        "AND NOT startsWith(reason, 'sequence gap: * ')").result_rows
    drops = client.query(
        "SELECT venue, gap_end FROM ops.feed_gaps WHERE kind = 'disconnect' OR "
        "startsWith(reason, 'sequence gap: * ')").result_rows
    symbols = client.query(
        "SELECT venue, symbol, argMax(exchange_ts, received_ts), max(received_ts) "
        "FROM market.book_updates WHERE is_snapshot = 1 GROUP BY venue, symbol").result_rows
    for venue, symbol, snapshot_ts, snapshot_received in symbols:
        broke = min((t for v, s, t in events if v == venue and s == symbol and t > snapshot_ts),
                    default=None)
        dropped = min((t for v, t in drops if v == venue and t > snapshot_received),
                      default=None)
        (at,), = client.query(
            "SELECT max(exchange_ts) FROM market.book_updates WHERE venue = {v:String} "
            "AND symbol = {s:String} AND exchange_ts >= {snap:DateTime64(6, 'UTC')} "
            "AND ({broke:Nullable(DateTime64(6, 'UTC'))} IS NULL OR exchange_ts < {broke:Nullable(DateTime64(6, 'UTC'))}) "
            "AND ({dropped:Nullable(DateTime64(6, 'UTC'))} IS NULL OR received_ts < {dropped:Nullable(DateTime64(6, 'UTC'))})",
            parameters={"v": venue, "s": symbol, "snap": snapshot_ts, "broke": broke,
                        "dropped": dropped}).result_rows
        proof.synced += 1
        names, rows = analytics.run(client, "book_at", {
            "venue": venue, "symbol": symbol, "at": at.isoformat(), "levels": "1"})
        best = {r[names.index("side")]: r[names.index("price")] for r in rows}
        if "bid" in best and "ask" in best and best["bid"] >= best["ask"]:
            proof.crossed.append(f"{venue} {symbol}")
    return proof
