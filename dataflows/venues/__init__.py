"""Venue adapters, one module per exchange. Each module exposes `VENUES: list[Venue]`.

Modules are discovered, so adding a venue is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from urllib.parse import urlsplit

from dataflows.venues.base import Venue
from feedhouse.core.settings import KNOWN_VENUES

_SKIP = {"base", "common"}


def _discover() -> dict[str, Venue]:
    found: dict[str, Venue] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for venue in getattr(module, "VENUES", []):
            if venue.name in found:
                raise RuntimeError(f"venue {venue.name!r} registered twice")
            found[venue.name] = venue
    return found


VENUES: dict[str, Venue] = _discover()
# lets settings name an unknown venue or channel in one line
KNOWN_VENUES.update({name: tuple(venue.channels) for name, venue in VENUES.items()})


def venue_for_url(url: str) -> Venue | None:
    """The venue whose hosts include this URL's host (for captures' connect lines)."""
    host = (urlsplit(url).hostname or "").lower()
    for venue in VENUES.values():
        if host in venue.hosts:
            return venue
    return None


def get_venue(name: str) -> Venue:
    try:
        return VENUES[name]
    except KeyError:
        known = ", ".join(sorted(VENUES))
        raise KeyError(f"unknown venue {name!r} (known: {known})") from None
