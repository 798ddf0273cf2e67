"""Regenerate the golden files of every capture whose venue has an adapter.

    .venv/bin/python tests/golden/regenerate.py            # all captures
    .venv/bin/python tests/golden/regenerate.py BINANCE    # names containing BINANCE

For each capture under tests/fixtures/exchanges/ (and its docs/ folder, fixtures built
from API documentation), writes tests/golden/<capture>.trades.jsonl and .quotes.jsonl
(one JSON object per record, exactly as `feedhouse capture parse` prints trades) and
prints the counts per capture, for the tests' expected-count tables.

Golden files are the spec: after regenerating, read the diff and check changed values
by hand against the raw frames before committing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dataflows.sources.capture import (  # noqa: E402
    capture_url,
    parse_capture,
    quote_json,
    trade_json,
)
from dataflows.venues import venue_for_url  # noqa: E402

FIXTURES = ROOT / "feedhouse" / "app" / "sessions"
VENUE_DOCS = ROOT / "tests" / "fixtures" / "venue_docs"
GOLDEN = ROOT / "tests" / "golden"


def captures() -> list[Path]:
    found = sorted(FIXTURES.glob("*.ws.*")) + sorted(VENUE_DOCS.glob("*.ws.*"))
    return [p for p in found if p.is_file()]


def write_lines(path: Path, rows: list[dict]) -> None:
    if rows:
        path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    elif path.exists():
        path.unlink()


def regenerate(path: Path) -> dict | None:
    url = capture_url(path)
    if not url or venue_for_url(url) is None:
        return None
    venue, result, summary = parse_capture(path)
    write_lines(GOLDEN / f"{path.name}.trades.jsonl", [trade_json(t) for t in result.trades])
    write_lines(GOLDEN / f"{path.name}.quotes.jsonl", [quote_json(q) for q in result.quotes])
    return {
        "venue": venue.name,
        "frames": summary.frames,
        "trades": summary.trades,
        "quotes": summary.quotes,
        "ignored": summary.ignored,
        "invalid": summary.invalid,
    }


def main(argv: list[str]) -> int:
    wanted = argv[1:]
    for path in captures():
        if wanted and not any(w in path.name for w in wanted):
            continue
        counts = regenerate(path)
        if counts is None:
            print(f"# {path.name}: no adapter for its venue yet, skipped")
        else:
            print(f'"{path.name}": {counts},')
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
