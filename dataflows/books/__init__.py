"""Order books (issue 21): L2 level updates and snapshots as columns, per-venue book
parsers, and a book state per symbol that proves sequence continuity and checksums.

`parsers.BOOK_PARSERS` maps a venue name to its book parser (frame -> BookFrames); the
venue adapters in dataflows/venues keep trades and quotes, and lend their symbol rules
and instrument catalogs. `live.BookFeed` is a feed's book channel on the live path
(dataflows/flow.py); docs/books.md says what is done and what is not.
"""
