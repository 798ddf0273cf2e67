"""Make lap N of a looped recording new data: shifted trade ids, sequences, prices, times.

Each venue format has a `Shifter`. `observe(msg)` runs over every frame of lap 0 to learn,
per stream, the range of each id series; `shift(msg, lap, span_s)` then moves
- ids and sequence numbers by `lap * (max - min + 1)` of their stream, so a series that
  was consecutive in the recording stays consecutive across laps (no false sequence gaps)
  and every lap's ids are new;
- timestamps by `lap * span_s` (the recording's length);
- trade prices by a small deterministic factor (at most +0.1%).
UUID trade ids (Bybit) become uuid5(id, lap). Frames a shifter does not know go out
unchanged. Shifters live here, not in the venue adapters: only the load generator needs
them.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

Series = tuple[str, str]  # (id kind, stream)


def price_factor(lap: int) -> float:
    return 1.0 + 1e-4 * (1 + (lap - 1) % 10)


def scale_price(value, factor: float):
    """Scale a price given as number or decimal string; strings keep their decimals."""
    if isinstance(value, str):
        try:
            places = -Decimal(value).as_tuple().exponent
        except (InvalidOperation, TypeError):
            return value
        places = max(int(places), 0)
        return f"{float(value) * factor:.{places}f}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value * factor, 10)
    return value


def shift_iso(text, seconds: float):
    """'2021-04-17T16:43:37.089723Z' + seconds, same layout (Z or offset, precision)."""
    if not isinstance(text, str):
        return text
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    frac = text.partition(".")[2]
    digits = len(frac) - len(frac.lstrip("0123456789"))
    spec = "seconds" if digits == 0 else "milliseconds" if digits <= 3 else "microseconds"
    moved = (stamp + timedelta(seconds=seconds)).isoformat(timespec=spec)
    return moved.replace("+00:00", "Z") if text.endswith("Z") else moved


def shift_ms(value, seconds: float):
    """Epoch milliseconds as int or numeric string."""
    delta = int(round(seconds * 1000))
    if isinstance(value, int) and not isinstance(value, bool):
        return value + delta
    if isinstance(value, str) and value.isdigit():
        return str(int(value) + delta)
    return value


def shift_epoch_text(value, seconds: float, unit: float = 1.0):
    """Epoch in seconds ('1618678142.557535'), or µs with unit=1e6, as text; keeps decimals."""
    if not isinstance(value, str):
        return value
    try:
        number = Decimal(value)
    except InvalidOperation:
        return value
    moved = number + Decimal(int(round(seconds * unit)))
    return str(moved) if "." in value else str(int(moved))


class Shifter:
    """Base: learns id ranges per series, shifts ids by the series' stride per lap."""

    def __init__(self) -> None:
        self.ranges: dict[Series, list[int]] = {}

    def see(self, kind: str, stream: str, value) -> None:
        try:
            number = int(value)
        except (TypeError, ValueError):
            return
        span = self.ranges.get((kind, stream))
        if span is None:
            self.ranges[(kind, stream)] = [number, number]
        else:
            span[0] = min(span[0], number)
            span[1] = max(span[1], number)

    def move(self, kind: str, stream: str, value, lap: int):
        span = self.ranges.get((kind, stream))
        if span is None:
            return value
        delta = lap * (span[1] - span[0] + 1)
        if isinstance(value, int) and not isinstance(value, bool):
            return value + delta
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return str(int(value) + delta)
        return value

    def observe(self, msg) -> None:  # pragma: no cover - overridden
        pass

    def shift(self, msg, lap: int, span_s: float):  # pragma: no cover - overridden
        return msg

    def shift_text(self, raw: str, lap: int, span_s: float) -> str | None:
        """The frame shifted as text where its numbers' spelling matters; None: `shift`
        the decoded message (the default)."""
        return None


class BinanceShifter(Shifter):
    """aggTrade (a, f, l), trade (t); event/trade times E, T; depthUpdate ids U, u, pu, moved
    so a symbol's chain continues across laps (lap N+1's first `pu` is lap N's last `u`;
    spot: its first `U` is last `u` + 1)."""

    @staticmethod
    def _data(msg):
        data = msg.get("data", msg) if isinstance(msg, dict) else None
        return data if isinstance(data, dict) else None

    def observe(self, msg) -> None:
        data = self._data(msg)
        if data is None:
            return
        event, sym = data.get("e"), data.get("s", "")
        if event == "aggTrade":
            self.see("a", sym, data.get("a"))
            self.see("t", sym, data.get("f"))
            self.see("t", sym, data.get("l"))
        elif event == "trade":
            self.see("t", sym, data.get("t"))
        elif event == "depthUpdate":
            for key in ("U", "u", "pu"):
                self.see("depth" if "pu" in data else "depth_spot", sym, data.get(key))

    def shift(self, msg, lap: int, span_s: float):
        data = self._data(msg)
        if data is None:
            return msg
        for key in ("E", "T"):
            if key in data:
                data[key] = shift_ms(data[key], lap * span_s)
        event, sym = data.get("e"), data.get("s", "")
        if event in ("aggTrade", "trade"):
            for key, kind in (("a", "a"), ("f", "t"), ("l", "t"), ("t", "t")):
                if key in data and not (event == "aggTrade" and key == "t"):
                    data[key] = self.move(kind, sym, data[key], lap)
            data["p"] = scale_price(data.get("p"), price_factor(lap))
        elif event == "depthUpdate":
            kind = "depth" if "pu" in data else "depth_spot"
            span = self.ranges.get((kind, sym))
            if span is not None:  # futures: stride max - min (min is the first pu)
                delta = lap * (span[1] - span[0] + (kind == "depth_spot"))
                for key in ("U", "u", "pu"):
                    if isinstance(data.get(key), int):
                        data[key] += delta
        return msg


class CoinbaseShifter(Shifter):
    """match/last_match/ticker: trade_id and sequence per product, time, price."""

    def observe(self, msg) -> None:
        if not isinstance(msg, dict):
            return
        product = msg.get("product_id", "")
        if "trade_id" in msg:
            self.see("trade_id", product, msg["trade_id"])
        if "sequence" in msg:
            self.see("sequence", product, msg["sequence"])

    def shift(self, msg, lap: int, span_s: float):
        if not isinstance(msg, dict):
            return msg
        product = msg.get("product_id", "")
        for key in ("trade_id", "sequence"):
            if key in msg:
                msg[key] = self.move(key, product, msg[key], lap)
        if "time" in msg:
            msg["time"] = shift_iso(msg["time"], lap * span_s)
        if msg.get("type") in ("match", "last_match", "ticker") and "price" in msg:
            msg["price"] = scale_price(msg["price"], price_factor(lap))
        return msg


class OkxShifter(Shifter):
    """v5 push: trades (tradeId, px, ts), any data row's ts, books seqId/prevSeqId."""

    @staticmethod
    def _rows(msg):
        rows = msg.get("data") if isinstance(msg, dict) else None
        arg = msg.get("arg") if isinstance(msg, dict) else None
        if not isinstance(rows, list) or not isinstance(arg, dict):
            return None, []
        return arg.get("channel"), [r for r in rows if isinstance(r, dict)]

    def observe(self, msg) -> None:
        channel, rows = self._rows(msg)
        for row in rows:
            inst = row.get("instId") or msg["arg"].get("instId", "")
            if channel == "trades":
                self.see("tradeId", inst, row.get("tradeId"))
            for key in ("seqId", "prevSeqId"):
                if key in row and int(row[key]) >= 0:
                    self.see("seqId", inst, row[key])

    def shift(self, msg, lap: int, span_s: float):
        channel, rows = self._rows(msg)
        for row in rows:
            inst = row.get("instId") or msg["arg"].get("instId", "")
            if "ts" in row:
                row["ts"] = shift_ms(row["ts"], lap * span_s)
            if channel == "trades":
                row["tradeId"] = self.move("tradeId", inst, row.get("tradeId"), lap)
                row["px"] = scale_price(row.get("px"), price_factor(lap))
            for key in ("seqId", "prevSeqId"):
                if key in row and int(row[key]) >= 0:
                    row[key] = self.move("seqId", inst, row[key], lap)
        return msg


class KrakenShifter(Shifter):
    """v1 trade arrays (no ids: the derived id follows the shifted time/price) and v2.
    v2 `book` frames move as text: Kraken's checksum is over the numbers' wire spelling
    (trailing zeros kept), which decoding and encoding again would lose; only their
    times move (no id, prices kept so the checksums still hold)."""

    def shift_text(self, raw: str, lap: int, span_s: float) -> str | None:
        if '"channel":"book"' not in raw:
            return None
        return _ISO_FIELD.sub(
            lambda m: f'"timestamp":"{shift_iso(m.group(1), lap * span_s)}"', raw)

    def observe(self, msg) -> None:
        if isinstance(msg, dict) and msg.get("channel") == "trade":
            for row in msg.get("data") or []:
                if isinstance(row, dict):
                    self.see("trade_id", row.get("symbol", ""), row.get("trade_id"))

    def shift(self, msg, lap: int, span_s: float):
        factor = price_factor(lap)
        if isinstance(msg, list) and len(msg) >= 4 and msg[-2] == "trade":
            for row in msg[1] if isinstance(msg[1], list) else []:
                if isinstance(row, list) and len(row) >= 3:
                    row[0] = scale_price(row[0], factor)
                    row[2] = shift_epoch_text(row[2], lap * span_s)
        elif isinstance(msg, dict) and msg.get("channel") == "trade":
            for row in msg.get("data") or []:
                if isinstance(row, dict):
                    sym = row.get("symbol", "")
                    row["trade_id"] = self.move("trade_id", sym, row.get("trade_id"), lap)
                    row["timestamp"] = shift_iso(row.get("timestamp"), lap * span_s)
                    row["price"] = scale_price(row.get("price"), factor)
        return msg


_ISO_FIELD = re.compile(r'"timestamp":"([^"]+)"')


def _lap_uuid(value, lap: int):
    try:
        return str(uuid.uuid5(uuid.UUID(value), str(lap)))
    except (ValueError, TypeError, AttributeError):
        return value


class BybitShifter(Shifter):
    """Legacy `trade.*` (uuid trade_id, timestamp, trade_time_ms) and v5 `publicTrade.*`."""

    def observe(self, msg) -> None:
        if not isinstance(msg, dict) or not str(msg.get("topic", "")).startswith("publicTrade"):
            return
        for row in msg.get("data") or []:
            if isinstance(row, dict) and str(row.get("i", "")).isdigit():
                self.see("i", row.get("s", ""), row["i"])

    def shift(self, msg, lap: int, span_s: float):
        if not isinstance(msg, dict):
            return msg
        topic = str(msg.get("topic", ""))
        dt = lap * span_s
        if "ts" in msg:
            msg["ts"] = shift_ms(msg["ts"], dt)
        if "timestamp_e6" in msg:  # legacy orderBookL2_25
            msg["timestamp_e6"] = shift_epoch_text(msg["timestamp_e6"], dt, 1e6)
        rows = msg.get("data")
        if not isinstance(rows, list):
            return msg
        factor = price_factor(lap)
        for row in rows:
            if not isinstance(row, dict):
                continue
            if topic.startswith("trade."):
                row["trade_id"] = _lap_uuid(row.get("trade_id"), lap)
                row["timestamp"] = shift_iso(row.get("timestamp"), dt)
                row["trade_time_ms"] = shift_ms(row.get("trade_time_ms"), dt)
                row["price"] = scale_price(row.get("price"), factor)
            elif topic.startswith("publicTrade."):
                ident = row.get("i")
                if isinstance(ident, str) and ident.isdigit():
                    row["i"] = self.move("i", row.get("s", ""), ident, lap)
                else:
                    row["i"] = _lap_uuid(ident, lap)
                row["T"] = shift_ms(row.get("T"), dt)
                row["p"] = scale_price(row.get("p"), factor)
        return msg


class BitstampShifter(Shifter):
    """`trade` events: id per channel, timestamp (s), microtimestamp (µs), price."""

    def observe(self, msg) -> None:
        if isinstance(msg, dict) and msg.get("event") == "trade":
            data = msg.get("data")
            if isinstance(data, dict):
                self.see("id", msg.get("channel", ""), data.get("id"))

    def shift(self, msg, lap: int, span_s: float):
        if not isinstance(msg, dict) or not isinstance(msg.get("data"), dict):
            return msg
        data, dt = msg["data"], lap * span_s
        if "timestamp" in data:
            data["timestamp"] = shift_epoch_text(data["timestamp"], dt)
        if "microtimestamp" in data:
            data["microtimestamp"] = shift_epoch_text(data["microtimestamp"], dt, 1e6)
        if msg.get("event") == "trade":
            data["id"] = self.move("id", msg.get("channel", ""), data.get("id"), lap)
            factor = price_factor(lap)
            for key in ("price", "price_str"):
                if key in data:
                    data[key] = scale_price(data[key], factor)
        return msg


_SHIFTERS: dict[str, type[Shifter]] = {
    "coinbase": CoinbaseShifter,
    "coinbase_exchange": CoinbaseShifter,  # the ws-feed recordings' venue since issue 23
    "okx": OkxShifter,
    "kraken": KrakenShifter,
    "bybit": BybitShifter,
    "bitstamp": BitstampShifter,
}


def shifter_for(venue_name: str | None) -> Shifter | None:
    """A fresh shifter for a venue (binance* share one format), or None."""
    if not venue_name:
        return None
    if venue_name.startswith("binance"):
        return BinanceShifter()
    cls = _SHIFTERS.get(venue_name)
    return cls() if cls is not None else None
