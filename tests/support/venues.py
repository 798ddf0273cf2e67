"""Venue adapter test helpers: one frame through a named venue, captures parsed once."""

from __future__ import annotations

from functools import cache

from dataflows.sources.capture import parse_capture
from dataflows.venues import get_venue
from feedhouse.core.records import ParseResult
from tests.support.paths import corpus

NOW_US = 1_700_000_000_000_000  # the received time the tests give single frames


def parse_frame(venue: str, frame: str | bytes, received_us: int = NOW_US) -> ParseResult:
    """One frame through the named venue's parser."""
    return get_venue(venue).parse(frame, received_us)


@cache
def parsed_capture(name: str):
    """(venue, result, summary) of a capture, parsed once per test session."""
    return parse_capture(corpus(name))
