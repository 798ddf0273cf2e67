"""REST depth snapshots consistent with a Binance recording, served over real loopback HTTP.

The recordings hold `depthUpdate` frames but no REST depth reply. `snapshot_body(events, k)`
builds the reply Binance would have given right after event k of a symbol: lastUpdateId =
that event's `u`, the levels every event up to it left (absolute sizes, 0 removes), and on
futures the event's times. `DepthServer` serves such bodies at `/api/v3/depth`,
`/fapi/v1/depth` and `/dapi/v1/depth` (`?symbol=`), counts the requests, and can answer
the first N with HTTP 500 to exercise the client's retries, and wait before each reply.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson

from dataflows.sources.capture import read_capture
from tests.support.paths import corpus


def depth_events(name: str) -> dict[str, list[dict]]:
    """native symbol -> its `depthUpdate` payloads, in the recording's order."""
    out: dict[str, list[dict]] = {}
    for entry in read_capture(corpus(name)):
        if entry.kind != "received" or "depthUpdate" not in entry.data:
            continue
        data = orjson.loads(entry.data)["data"]
        out.setdefault(data["s"], []).append(data)
    return out


def book_after(events: list[dict]) -> tuple[dict, dict]:
    """(bids, asks) as price -> (price, size) text after applying `events` to an empty book."""
    bids: dict[float, tuple[str, str]] = {}
    asks: dict[float, tuple[str, str]] = {}
    for event in events:
        for side, levels in ((bids, event["b"]), (asks, event["a"])):
            for price, size in levels:
                if float(size) == 0:
                    side.pop(float(price), None)
                else:
                    side[float(price)] = (price, size)
    return bids, asks


def snapshot_body(events: list[dict], k: int, futures: bool) -> bytes:
    bids, asks = book_after(events[: k + 1])
    body = {"lastUpdateId": events[k]["u"]}
    if futures:
        body |= {"E": events[k]["E"], "T": events[k]["T"]}
    body["bids"] = [list(bids[p]) for p in sorted(bids, reverse=True)]
    body["asks"] = [list(asks[p]) for p in sorted(asks)]
    return orjson.dumps(body)


class DepthServer:
    """A loopback HTTP server answering depth requests with `bodies[symbol]`."""

    def __init__(self, bodies: dict[str, bytes], fail_first: int = 0,
                 delay_s: float = 0.0) -> None:
        self.bodies = bodies
        self.fail_first = fail_first
        self.delay_s = delay_s  # before each reply (a slow REST endpoint)
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                symbol = parse_qs(parts.query).get("symbol", [""])[0]
                server.requests.append(self.path)
                time.sleep(server.delay_s)
                if len(server.requests) <= server.fail_first:
                    self._reply(500, b'{"code":-1000,"msg":"internal"}')
                elif parts.path.endswith("/depth") and symbol in server.bodies:
                    self._reply(200, server.bodies[symbol])
                else:
                    self._reply(400, b'{"code":-1121,"msg":"Invalid symbol."}')

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> DepthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
