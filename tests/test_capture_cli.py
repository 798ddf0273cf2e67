"""`feedhouse capture parse` on odd files: plain summary lines."""

from __future__ import annotations

from pathlib import Path

import orjson
from conftest import run_cli

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
        f"{name} (coinbase): frames=3 trades=1 quotes=0 ignored=0 invalid=2",
        "  invalid: 2 x coinbase: unknown message type '[/x]'",
    ]
    assert [orjson.loads(line)["trade_id"] for line in result.stdout.splitlines()] == ["280232"]
