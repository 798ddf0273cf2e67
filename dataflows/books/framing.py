"""What every venue's book parser shares: a venue's symbol -> instrument rule, and the
`BookFrame` of one event (frame fields once, the venue's level lists untouched).

Its own module so a venue's book parser can live beside `parsers.py` (Kraken's,
`dataflows/books/kraken.py`) without importing the registry that imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from dataflows.books.columns import BookFrame
from dataflows.venues import ALL
from dataflows.venues.common import FrameError
from dataflows.venues.instruments import spec_of as instrument_spec

BookParser = Callable[[str | bytes, int], list[BookFrame]]


def spec_of_venue(venue: str) -> Callable[[str], object]:
    """native symbol -> instruments.Spec (the adapter's catalog, else its normalize rule)."""
    adapter = ALL[venue]
    if adapter.catalog is not None:
        return adapter.catalog  # type: ignore[return-value]
    normalize = adapter.normalize_symbol
    cache: dict[str, object] = {}

    def spec(native: str) -> object:
        found = cache.get(native)
        if found is None:
            found = cache[native] = instrument_spec(normalize(native))
        return found

    return spec


def book_frame(key: str, spec, native: str, exchange_ts: int, received_ts: int, snapshot: bool,
               update_id: int, prev: int, bids: list, asks: list, checksum=None) -> BookFrame:
    """One event's BookFrame (`key`: the venue's registry key; `spec`: its instrument)."""
    if bids.__class__ is not list or asks.__class__ is not list:
        raise FrameError("bids/asks are not arrays")
    return BookFrame(ALL[key].name, spec.symbol, native, spec.kind, exchange_ts, received_ts, snapshot,
                     update_id, prev, bids, asks, checksum, spec.contract_size, spec.inverse)
