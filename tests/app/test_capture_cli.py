"""`feedhouse capture parse` on odd files: plain summary lines, malformed lines counted."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from dataflows.sources.capture import parse_capture, read_capture
from tests.support.cli import run_cli
from tests.support.paths import VENUE_DOCS

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser

URL = "wss://ws-feed.pro.coinbase.com"
MATCH = (
    '{"type":"match","trade_id":280232,"side":"sell","size":"985","price":"0.00001305",'
    '"product_id":"SKL-BTC","sequence":177100030,"time":"2021-04-17T16:43:37.089723Z"}'
)


def _write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_summary_is_plain_unwrapped_lines_even_with_markup_in_a_reason(tmp_path: Path) -> None:
    name = "a-capture-file-with-a-name-long-enough-to-pass-eighty-columns.ws"
    path = _write(tmp_path / name, f"{URL} <-> 1618677816.8", "1618677817.1: " + MATCH,
                  '1618677817.2: {"type":"[/x]"}', '1618677817.3: {"type":"[/x]"}')
    result = run_cli("capture", "parse", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{name} (coinbase_exchange): frames=3 trades=1 quotes=0 ignored=0 invalid=2 repeats=0",
        "  invalid: 2 x coinbase_exchange: unknown message type '[/x]'",
    ]
    assert [orjson.loads(line)["trade_id"] for line in result.stdout.splitlines()] == ["280232"]


def test_malformed_connect_and_sent_lines_are_invalid_not_a_crash(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "bad-lines.ws",
        f"{URL} <-> 1618677816.8",
        "wss://x <-> notanumber",
        "wss://x <- xx: {}",
        "1618677817.1: " + MATCH,
        "1e999: {}",
    )
    result = run_cli("capture", "parse", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "bad-lines.ws (coinbase_exchange): frames=1 trades=1 quotes=0 ignored=0 invalid=3 "
        "repeats=0",
        "  invalid: 1 x malformed capture line 2",
        "  invalid: 1 x malformed capture line 3",
        "  invalid: 1 x malformed capture line 5",
    ]
    assert len(result.stdout.splitlines()) == 1


def test_unreadable_header_is_one_line_exit_2(tmp_path: Path) -> None:
    path = _write(tmp_path / "no-header.ws", f"{URL} <-> notanumber", "1618677817.1: " + MATCH)
    result = run_cli("capture", "parse", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: capture {path}: cannot infer the venue from no connect line "
        "(line 1 is malformed); pass --venue"
    ]
    named = run_cli("capture", "parse", str(path), "--venue", "coinbase", cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    assert "invalid: 1 x malformed capture line 1" in named.stderr
    assert len(named.stdout.splitlines()) == 1


def test_read_capture_skips_malformed_lines_or_reports_them(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.ws", f"{URL} <-> 1.5", f"{URL} <- nan: {{}}", "2.5: hello",
                  "3x: nope", "not a capture line")
    kinds = [(e.kind, e.ts) for e in read_capture(path)]
    assert kinds == [("connect", 1.5), ("received", 2.5)]
    seen: list[tuple[int, str]] = []
    assert len(list(read_capture(path, lambda n, line: seen.append((n, line))))) == 2
    assert seen == [(2, f"{URL} <- nan: {{}}"), (4, "3x: nope"), (5, "not a capture line")]
    _, result, summary = parse_capture(path, "coinbase")
    assert summary.invalid == len(result.invalid) == 4  # 3 malformed lines + 'hello'


def test_a_trade_delivered_twice_is_printed_once_as_it_is_stored() -> None:
    # Bitfinex sends every trade as `te` and again as `tu` (same id): printed once, like
    # the pipeline stores it; --repeats prints every delivery
    path = VENUE_DOCS / "BITFINEX_TRADES.ws.docs"
    once = run_cli("capture", "parse", str(path))
    assert once.returncode == 0, once.stderr
    rows = [orjson.loads(line) for line in once.stdout.splitlines()]
    keys = [(r["venue"], r["symbol"], r["trade_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == 4
    assert "trades=4 quotes=1 ignored=4 invalid=0 repeats=2" in once.stderr
    every = run_cli("capture", "parse", str(path), "--repeats")
    assert len(every.stdout.splitlines()) == 6
    assert {line for line in every.stdout.splitlines()} >= set(once.stdout.splitlines())
