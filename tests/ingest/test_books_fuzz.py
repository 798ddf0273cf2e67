"""Book frames mangled at random (a seeded fuzz of the recorded frames) never stop a feed:
a parser returns frames or raises one of the errors the capture reports as invalid, and
whatever it returned goes through the columns (bad levels rejected whole frame by frame)
and the book state without an exception."""

from __future__ import annotations

import random

import orjson

from dataflows.books.capture import _BAD_FRAME
from dataflows.books.columns import BookColumns
from dataflows.books.parsers import book_parser
from dataflows.books.state import Books
from tests.support.paths import corpus

CASES = {"BINANCE_FUTURES.ws.1.0": "binance_futures", "OKX.ws.1.0": "okx",
         "COINBASE.ws.28.0": "coinbase_exchange", "BITGET.ws.1.0": "bitget",
         "BYBIT.ws.25.0": "bybit"}
NASTY = ["", "-1", "NaN", "1e999", "null", "true", "[]", "{}", '"x"', "0", '"-5"', '["1"]']


def _book_frames(name: str, limit: int) -> list[str]:
    out = []
    for line in corpus(name).read_text().splitlines():
        head, sep, payload = line.partition(": ")
        if sep and head[:1].isdigit() and ("depthUpdate" in payload or '"books"' in payload
                                           or "l2update" in payload or "orderBook" in payload
                                           or '"snapshot"' in payload):
            out.append(payload)
    return out[:limit]


def _mutate(rng: random.Random, text: str) -> str:
    kind = rng.randrange(4)
    if kind == 0:  # truncate
        return text[: rng.randrange(len(text))]
    if kind == 1:  # replace one JSON value with a nasty one
        quotes = [i for i, c in enumerate(text) if c in ":,["]
        at = rng.choice(quotes) + 1
        end = min((j for j in (text.find(",", at), text.find("]", at), text.find("}", at)) if j > 0),
                  default=len(text))
        return text[:at] + rng.choice(NASTY) + text[end:]
    if kind == 2:  # a level price or size as a nasty string
        return text.replace('"', '"' + rng.choice(["-", "x", "1e400", "nan"]), 1 + rng.randrange(8))
    return text.replace("[", "{", 1) if rng.random() < 0.5 else text + "}"


def test_mangled_book_frames_are_invalid_never_a_crash():
    rng = random.Random(21)
    for name, venue in CASES.items():
        parse = book_parser(venue)
        frames = []
        invalid = 0
        for text in _book_frames(name, 150):
            for _ in range(6):
                mangled = _mutate(rng, text)
                try:
                    frames += parse(mangled, 1_650_000_000_000_000)
                except _BAD_FRAME:
                    invalid += 1
        columns = BookColumns.of(frames)
        Books().apply(columns.frames)
        assert len(columns.frames) + len(columns.rejected) == len(frames)
        assert invalid > 0, name
        if columns.rejected:
            assert all(reason for _, reason in columns.rejected)


def test_a_frame_with_one_bad_level_is_rejected_whole_and_the_rest_kept():
    parse = book_parser("okx")
    good = ('{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":'
            '[["30243.5","1.2","0","4"]],"bids":[["30237.2","0.5","0","1"]],"ts":"1652459225464",'
            '"checksum":1}]}')
    bad_size = good.replace('"1.2"', '"-1.2"')
    bad_text = good.replace('"0.5"', '"half"')
    frames = [f for text in (good, bad_size, bad_text) for f in parse(text, 0)]
    columns = BookColumns.of(frames)
    assert len(columns.frames) == 1 and len(columns) == 2
    assert [why for _, why in columns.rejected] == [
        "could not convert string to float: 'half'", "price must be > 0 and size >= 0 (finite)"]
    assert orjson.loads(orjson.dumps(next(columns.json_rows())))["price"] == 30237.2
