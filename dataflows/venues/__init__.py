"""Venue adapters, one module per exchange. Each module exposes `VENUES: list[Venue]`.

Modules are discovered, so adding a venue is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from urllib.parse import urlsplit

from dataflows.venues.base import Venue
from feedhouse.core.settings import KNOWN_VENUES

_SKIP = {"base", "common", "declare", "instruments", "stored"}


def _discover() -> dict[str, Venue]:
    found: dict[str, Venue] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for venue in getattr(module, "VENUES", []):
            if venue.key in found:
                raise RuntimeError(f"venue {venue.key!r} registered twice")
            found[venue.key] = venue
    return found


# every registry key, endpoint variants ("bybit@spot") included
ALL: dict[str, Venue] = _discover()
# the venue names a feed can be configured with
VENUES: dict[str, Venue] = {k: v for k, v in ALL.items() if k == v.name}


def venue_at(venue: Venue, url: str | None) -> Venue:
    """The variant of `venue` that serves this URL (itself when it has none)."""
    if venue.select is None or not url:
        return venue
    return ALL.get(venue.select(url), venue)


# lets settings name an unknown venue or channel in one line
KNOWN_VENUES.update({name: tuple(venue.channels) for name, venue in VENUES.items()})


def venue_for_url(url: str) -> Venue | None:
    """The venue whose hosts include this URL's host (for captures' connect lines)."""
    host = (urlsplit(url).hostname or "").lower()
    for venue in VENUES.values():
        if host in venue.hosts:
            return venue_at(venue, url)
    return None


def get_venue(name: str) -> Venue:
    try:
        return ALL[name]
    except KeyError:
        known = ", ".join(sorted(VENUES))
        raise KeyError(f"unknown venue {name!r} (known: {known})") from None
