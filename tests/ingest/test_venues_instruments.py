"""Instrument specs: the symbol rule's helpers, contract sizes from the venues' instrument
lists (recorded or documented replies), and the live refresh with its cache."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import orjson
import pytest

from dataflows.venues import binance_futures, bitmex, bitmex_list, get_venue, okx
from dataflows.venues import instruments as ins
from tests.golden import build_specs
from tests.support.paths import SESSIONS

REST = SESSIONS / "rest"

COIN_M = (binance_futures._coin_m, binance_futures._coin_m_list)  # rule, list reader


@pytest.mark.parametrize(("symbol", "kind"), [
    ("BTC-USDT", "spot"), ("BTC-USDT-PERP", "perpetual"), ("BTC-USD-240628", "future"),
    ("BTC-USD-240628-60000-C", "option"), ("ETH-USDC-240628-3000-P", "option"),
    ("TESTBTC-TESTUSD", "spot"), ("BTC-USD-INV-PERP", "perpetual"), ("BTC-USD-INV-251226", "future"),
])
def test_kind_of_reads_the_symbol_rule(symbol: str, kind: str) -> None:
    assert ins.kind_of(symbol) == kind


def test_inverse_marker_is_one_rule() -> None:
    assert ins.spec_of("BTC-USD-PERP", 100.0, True).symbol == "BTC-USD-INV-PERP"
    assert ins.spec_of("BTC-USD-PERP").symbol == "BTC-USD-PERP"  # linear: unmarked
    assert ins.inverse_symbol("BTC-USD-251226") == "BTC-USD-INV-251226"
    assert ins.inverse_symbol("BTC-USD-INV-PERP") == "BTC-USD-INV-PERP"
    assert ins.plain_symbol("BTC-USD-INV-251226") == "BTC-USD-251226"
    assert ins.is_inverse("ETH-USD-INV-PERP") and not ins.is_inverse("ETH-USD-PERP")


def test_expiries() -> None:
    assert ins.from_month_code("U21") == "210924"  # last Friday of September 2021
    assert ins.from_month_code("H23") == "230331"
    assert ins.from_ddmmmyy("27MAY20") == "200527" and ins.from_ddmmmyy("5JUN20") == "200605"
    with pytest.raises(ValueError, match="bad month code"):
        ins.from_month_code("A21")


def test_inverse_amounts_are_base_to_the_satoshi() -> None:
    deribit = ins.Spec("BTC-USD-PERP", "perpetual", 1.0, inverse=True)
    assert deribit.base(10.0, 8950.0) == 0.00111732
    okx_linear = ins.Spec("BTC-USDT-PERP", "perpetual", 0.01)
    assert okx_linear.base(3.0, 30000.0) == 0.03


def test_contract_sizes_from_recorded_and_documented_instrument_lists(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(ins, "_cache_dir", tmp_path)  # no cached list
    okx_catalog = ins.Catalog("okx", okx._spec, okx._listed)
    with pytest.raises(ValueError, match="instrument list not loaded"):
        okx_catalog("NEWCOIN-USDT-SWAP")  # a linear size is never guessed
    okx_catalog.shipped = {}  # without the shipped specs either
    with pytest.raises(ValueError, match="instrument list not loaded"):
        okx_catalog("BTC-USDT-SWAP")
    assert okx_catalog.load(ins.read_rest(REST / "OKX.0").values()) > 900
    assert okx_catalog("BTC-USDT-SWAP") == ins.Spec("BTC-USDT-PERP", "perpetual", 0.01)
    assert okx_catalog("BTC-USD-SWAP") == ins.Spec("BTC-USD-INV-PERP", "perpetual", 100.0, True)
    assert okx_catalog("BTC-USD-220514-22000-C") == ins.Spec(
        "BTC-USD-220514-22000-C", "option", 0.1)
    coin_m = ins.Catalog("binance_delivery", *COIN_M)
    assert coin_m.load(ins.read_rest(REST / "BINANCE_DELIVERY.docs").values()) == 3
    assert coin_m("ETHUSD_PERP") == ins.Spec("ETH-USD-INV-PERP", "perpetual", 10.0, True)
    assert coin_m("BTCUSD_200626").base(2.0, 9643.5) == 0.02073936  # 200 USD of BTC


def test_shipped_specs_are_the_recorded_lists() -> None:
    """dataflows/venues/specs/*.json are what tests/golden/build_specs.py builds from the
    recorded replies, and the catalogs use them when no fetched list has an instrument."""
    for venue in build_specs.SOURCES:
        built = build_specs.build(venue)["specs"]
        shipped = ins.shipped_specs(venue)
        assert {n: [s.symbol, s.contract_size, s.inverse, *([s.quanto] if s.quanto else [])]
                for n, s in shipped.items()} == built
    assert ins.shipped_specs("okx")["BTC-USDT-SWAP"] == ins.Spec("BTC-USDT-PERP", "perpetual", 0.01)
    bitmex_specs = ins.shipped_specs("bitmex")  # documented BitMEX list (rest/BITMEX.docs)
    assert bitmex_specs["XBTUSDT"] == ins.Spec("BTC-USDT-PERP", "perpetual", 1e-06)
    assert bitmex_specs["XBTUSD"] == ins.Spec("BTC-USD-INV-PERP", "perpetual", 1.0, True)
    # quanto: valued in XBT, no BASE constant; 1,000 satoshi = 0.00001 XBT per USDT point
    assert (bitmex_specs["UNIUSDT"].contract_size, bitmex_specs["UNIUSDT"].quanto) == (0.0, 1e-05)


def _bitmex_catalog(urls: tuple[str, ...] = ()) -> ins.Catalog:
    return ins.Catalog("bitmex", bitmex._spec, lambda r: bitmex_list.listed(r, bitmex.normalize), urls)


def test_bitmex_list_sizes_linear_contracts_not_quantos(monkeypatch, tmp_path) -> None:
    """BitMEX /instrument/active (documented reply): linear 1 / underlyingToPositionMultiplier
    BASE each, inverse multiplier / underlyingToSettleMultiplier USD, quanto (valued in XBT:
    multiplier satoshi per QUOTE point) no BASE constant."""
    monkeypatch.setattr(ins, "_cache_dir", tmp_path)
    catalog = _bitmex_catalog()
    catalog.shipped = {}
    assert catalog("XBTUSDT").contract_size == 0.0  # unlisted linear: unknown, never guessed
    assert catalog.load(ins.read_rest(REST / "BITMEX.docs").values()) == 13
    assert catalog("XBTUSDT") == ins.Spec("BTC-USDT-PERP", "perpetual", 1e-06)
    assert catalog("JTOUSDT") == ins.Spec("JTO-USDT-PERP", "perpetual", 1.0)
    assert catalog("XRPU21") == ins.Spec("XRP-BTC-210924", "future", 1.0)
    assert catalog("XBTUSD") == ins.Spec("BTC-USD-INV-PERP", "perpetual", 1.0, True)
    for quanto in ("ADAUSDT", "BCHUSD", "EOSUSDT", "MATICUSDT", "SOLUSDT", "TRXUSDT", "UNIUSDT"):
        assert catalog(quanto).contract_size == 0.0, quanto
    # an entry missing its fields costs only itself; indices (typ MR...) are not contracts
    odd = [{"typ": "FFWCSX", "symbol": "NEWUSDT"}, {"typ": "MRCXXX", "symbol": ".BXBT"},
           *ins.read_rest(REST / "BITMEX.docs")[bitmex_list.URL][:2]]
    assert [n for n, _ in bitmex_list.listed(odd, bitmex.normalize)] == ["XBTUSD", "XBTUSDT"]
    # the live adapter: XBTUSDT quote sizes in BASE, the venue's contracts kept beside them
    frame = ('{"table":"quote","action":"insert","data":[{"timestamp":"2024-03-02T02:44:10.789Z",'
             '"symbol":"XBTUSDT","bidSize":1500000,"bidPrice":62000.5,"askPrice":62001,"askSize":200}]}')
    (quote,) = get_venue("bitmex").parse(frame, 1).quotes
    assert (quote.symbol, quote.bid_size, quote.ask_size) == ("BTC-USDT-PERP", 1.5, 0.0002)
    assert (quote.native_bid_size, quote.native_ask_size, quote.contract_size) == (1500000.0, 200.0, 1e-06)


class _Lists(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


def test_live_refresh_fetches_caches_and_falls_back(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ins, "_cache_dir", tmp_path)
    reply = ins.read_rest(REST / "BINANCE_DELIVERY.docs")["https://dapi.binance.com/dapi/v1/exchangeInfo"]
    reply["symbols"][2]["contractSize"] = 20  # a list that differs from the built-in rule
    _Lists.body = orjson.dumps(reply)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Lists)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/dapi/v1/exchangeInfo"
    hosts = ("dstream.binance.com",)
    try:
        catalog = ins.Catalog("binance_delivery", *COIN_M, (url,))
        # a recorded session on loopback is not the live venue: nothing fetched
        assert ins.refresh(catalog, "ws://127.0.0.1:9000/X.ws", hosts) == 0
        assert ins.refresh(catalog, "wss://dstream.binance.com/stream", hosts) == 3
        assert catalog("ETHUSD_PERP").contract_size == 20.0
        assert (tmp_path / "binance_delivery.json").exists()
    finally:
        server.shutdown()
        server.server_close()
    # venue unreachable: the cached list is used
    again = ins.Catalog("binance_delivery", *COIN_M, (url,))
    assert ins.refresh(again, "wss://dstream.binance.com/stream", hosts, timeout=2) == 3
    assert again("ETHUSD_PERP").contract_size == 20.0
    # and a catalog that never refreshed reads the cache on first use
    lazy = ins.Catalog("binance_delivery", *COIN_M)
    assert lazy("ETHUSD_PERP").contract_size == 20.0


def test_bitmex_live_refresh_fetches_and_caches_its_list(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ins, "_cache_dir", tmp_path)
    reply = ins.read_rest(REST / "BITMEX.docs")[bitmex_list.URL]
    reply[1]["underlyingToPositionMultiplier"] = 10000  # XBTUSDT at 0.0001 XBT: the fetched list
    _Lists.body = orjson.dumps(reply)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Lists)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hosts = get_venue("bitmex").hosts
    try:
        catalog = _bitmex_catalog((f"http://127.0.0.1:{server.server_port}/api/v1/instrument/active",))
        assert ins.refresh(catalog, "wss://ws.bitmex.com/realtime", hosts) == 13
        assert catalog("XBTUSDT").contract_size == 0.0001
    finally:
        server.shutdown()
        server.server_close()
    assert _bitmex_catalog()("XBTUSDT").contract_size == 0.0001  # read from the cache
    monkeypatch.setattr(ins, "_cache_dir", tmp_path / "none")  # unreachable, no cache: shipped
    down = _bitmex_catalog(("http://127.0.0.1:9/api/v1/instrument/active",))
    assert ins.refresh(down, "wss://ws.bitmex.com/realtime", hosts, timeout=2) == 0
    assert down("XBTUSDT").contract_size == 1e-06
