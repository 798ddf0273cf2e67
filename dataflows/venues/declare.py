"""Declaring a venue: one call names its endpoint, channel map, subscribe/unsubscribe
message builder, symbol rules, heartbeat and sequence check; the shared pieces (safe_parse,
the batch fast path, the channel-map lookup, the subscribe/unsubscribe pair) are applied
here, so a venue module reads as its declaration plus its parse functions.

A message builder is `frames(op, symbols, channels) -> [frame, ...]`: `op` is the venue's
verb ("subscribe"/"unsubscribe" unless the venue declares its own pair), `symbols` are
normalized (the builder spells them natively), `channels` are the venue's own channel
names, already looked up in the channel map (channels it lacks are left out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from dataflows.venues.base import Frame, ParseFn, Venue
from dataflows.venues.common import (
    FrameError,
    check_ts,
    join_separated,
    json_object,
    loads,
    ms_us,
    normalizer,
    quote_table,
    quotes_or_ignored,
    safe_parse,
    split_concatenated,
    split_with,
    stable_trade_id,
    text_id,
    trades_or_ignored,
    us_from_decimal_s,
    us_from_iso_z,
)
from dataflows.venues.typed import fast_many

# Besides its own names, the kit a venue module declares with (symbol rules, ids, times,
# frame outcomes), re-exported from common so a venue imports it in one line; the
# per-record helpers (num, price_size, side_of, book_top...) come from common itself.
__all__ = [
    "FrameError", "check_ts", "dumps", "join_separated", "json_object", "loads",
    "ms_us", "normalizer", "op_args", "ping_answer", "quote_table", "quotes_or_ignored",
    "safe_parse", "sequence_check", "split_concatenated", "split_with", "stable_trade_id",
    "text_id", "trades_or_ignored", "us_from_decimal_s", "us_from_iso_z",
]

Frames = Callable[[str, Sequence[str], Sequence[str]], list[str]]
Pairs = Callable[[object], list[tuple[str, int]]]


def venue(name: str, url: str, hosts: tuple[str, ...], parse: ParseFn, *,
            channels: dict[str, str], frames: Frames | None = None,
            ops: tuple[str, str] = ("subscribe", "unsubscribe"),
            native: Callable[[str], str] = str, normalize: Callable[[str], str] = str,
            fast: tuple[str, Callable, Callable] | None = None, safe: bool = True, **more) -> Venue:
    """The Venue a module declares. `parse` is wrapped by safe_parse (unless `safe` is
    False: it already is); `fast` = (marker, typed decoder, column builder) makes the
    batch parse (typed.fast_many); `more` passes the other Venue fields through (ping, sequence_of,
    url_for, catalog, key, select, session...)."""
    parse = safe_parse(name, parse) if safe else parse
    names = channels

    def builder(op: str) -> Callable[[Sequence[str], Sequence[str]], list[str]]:
        if frames is None:
            return lambda symbols, channels: []

        def build(symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
            return frames(op, symbols, [names[c] for c in channels if c in names])

        return build

    return Venue(
        name=name, url=url, hosts=hosts, parse=parse,
        parse_many=fast_many(parse, *fast) if fast else more.pop("parse_many", None),
        subscribe=builder(ops[0]), unsubscribe=builder(ops[1]),
        native_symbol=native, normalize_symbol=normalize, channels=tuple(channels), **more,
    )


def dumps(msg: object) -> str:
    return orjson.dumps(msg).decode()


def op_args(arg: Callable[[str, str], object], always: bool = False) -> Frames:
    """The {"op": op, "args": [one per channel and symbol]} message (OKX, Bybit, BitMEX,
    Bitget); `arg(channel, symbol)`. No args: no message, unless `always`."""

    def frames(op: str, symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
        args = [arg(c, s) for c in channels for s in symbols]
        return [dumps({"op": op, "args": args})] if args or always else []

    return frames


def sequence_check(marker: str, pairs: Pairs) -> Callable[[Frame], list[tuple[str, int]]]:
    """A venue's gap check (Venue.sequence_of): frames holding `marker` are decoded and
    `pairs(message)` names their (stream, number) pairs, which must rise by one per stream
    (dataflows/sources/sequence.py tracks them). A frame it cannot read yields none: the
    parser reports it."""
    marker_bytes = marker.encode()

    def sequence_of(frame: Frame) -> list[tuple[str, int]]:
        if marker not in frame if frame.__class__ is str else marker_bytes not in frame:
            return []
        try:
            return pairs(orjson.loads(frame))
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            return []

    return sequence_of


def ping_answer(marker: str, limit: int, reply: Callable[[object], str | None],
                decode: Callable[[Frame], object] = loads) -> Callable[[Frame], str | None]:
    """A venue's answer to its own ping frame (Venue.answer_ping): frames of at most
    `limit` bytes holding `marker` are decoded and `reply(message)` answers (None: no
    answer)."""
    marker_bytes = marker.encode()

    def answer(frame: Frame) -> str | None:
        if len(frame) > limit or marker_bytes not in (
            frame if frame.__class__ is bytes else frame.encode()  # type: ignore[union-attr]
        ):
            return None
        try:
            return reply(decode(frame))
        except (FrameError, ValueError, KeyError, AttributeError, TypeError):
            return None

    return answer
