"""Record shapes shared by every part.

Hot path: records are NamedTuples (cheap to build, positional, picklable) carried in
lists per micro-batch. Timestamps are integers: microseconds since the Unix epoch, UTC.
Contract boundary: the pydantic models below describe `market.trades`, `market.quotes`
and `iot.readings`; `validate_*` checks a whole batch at once with a TypeAdapter (used
where records leave the process: capture parse output, backfill input, tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Trade(NamedTuple):
    venue: str
    symbol: str  # normalized BASE-QUOTE
    native_symbol: str
    trade_id: str
    price: float
    amount: float
    side: str  # buy / sell / unknown
    exchange_ts: int  # µs since epoch, UTC
    received_ts: int  # µs since epoch, UTC
    # spot / perpetual / future / option (dataflows/venues/instruments.py)
    instrument_type: str = "spot"
    native_amount: float = 0.0  # size as the venue reports it (contracts, USD, ...)
    contract_size: float = 1.0  # value of one native unit: BASE, or QUOTE when inverse


class Quote(NamedTuple):
    venue: str
    symbol: str
    native_symbol: str
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    exchange_ts: int
    received_ts: int
    instrument_type: str = "spot"
    # the venue's id of this best bid/ask update (Binance `u`, OKX `seqId`, Bybit `u`,
    # ...); 0 where it has none, then every field identifies the update
    update_id: int = 0
    # bid_size/ask_size are BASE units; the venue's own sizes (contracts, USD, ...) and the
    # value of one such unit (BASE, or QUOTE when inverse) as in Trade. None: the sizes
    # are the venue's (spot venues), stored as bid_size/ask_size
    native_bid_size: float | None = None
    native_ask_size: float | None = None
    contract_size: float = 1.0


class Reading(NamedTuple):
    device_id: str
    sensor: str
    seq: int
    value: float
    unit: str
    device_ts: int  # µs since epoch, UTC
    received_ts: int
    site: str = ""


class Invalid(NamedTuple):
    """A message that could not be parsed: the raw text and why."""

    raw: str
    reason: str


@dataclass(slots=True)
class ParseResult:
    """What one frame (or one micro-batch of frames) yielded."""

    trades: list[Trade] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    ignored: int = 0
    invalid: list[Invalid] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)

    def extend(self, other: ParseResult) -> None:
        self.trades.extend(other.trades)
        self.quotes.extend(other.quotes)
        self.ignored += other.ignored
        self.invalid.extend(other.invalid)
        self.readings.extend(other.readings)


# --- time helpers -----------------------------------------------------------------------


def us_from_s(seconds: float | str) -> int:
    return int(round(float(seconds) * 1_000_000))


def us_from_iso(text: str) -> int:
    """ISO-8601 (Z or offset, up to nanoseconds) -> µs since epoch."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python parses at most 6 fractional digits: cut longer fractions.
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        frac = text[dot + 1 : end][:6]
        text = text[: dot + 1] + frac + text[end:]
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def iso_from_us(us: int) -> str:
    """µs since epoch -> '2021-10-12T00:28:32.068000Z'."""
    seconds, micros = divmod(us, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}Z"


def datetime_from_us(us: int) -> datetime:
    seconds, micros = divmod(us, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)


# --- contract models (pydantic, validated per batch) --------------------------------------

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# 2009-01-03 (Bitcoin's first block): no crypto trade or quote is older, so an earlier
# exchange time is a corrupt field (a 1970 date from a truncated number), not market data
MARKET_EPOCH_US = 1_230_940_800_000_000
MarketTime = Annotated[int, Field(ge=MARKET_EPOCH_US)]
Name = Annotated[str, Field(min_length=1, max_length=128)]
InstrumentType = Literal["spot", "perpetual", "future", "option"]


class TradeModel(BaseModel):
    """One row of market.trades."""

    model_config = ConfigDict(frozen=True)

    venue: Name
    symbol: Annotated[str, Field(pattern=r"^[A-Z0-9.]+-[A-Z0-9.]+(-[A-Z0-9.]+)*$")]
    native_symbol: Name
    trade_id: Name
    price: PositiveFloat
    amount: PositiveFloat
    side: Literal["buy", "sell", "unknown"]
    exchange_ts: MarketTime
    received_ts: Annotated[int, Field(gt=0)]
    instrument_type: InstrumentType = "spot"
    native_amount: NonNegFloat = 0.0
    contract_size: NonNegFloat = 1.0


class QuoteModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    venue: Name
    symbol: Name
    native_symbol: Name
    bid_price: NonNegFloat
    bid_size: NonNegFloat
    ask_price: NonNegFloat
    ask_size: NonNegFloat
    exchange_ts: MarketTime
    received_ts: Annotated[int, Field(gt=0)]
    instrument_type: InstrumentType = "spot"
    update_id: Annotated[int, Field(ge=0)] = 0
    native_bid_size: NonNegFloat | None = None
    native_ask_size: NonNegFloat | None = None
    contract_size: NonNegFloat = 1.0


class ReadingModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    device_id: Name
    sensor: Name
    seq: Annotated[int, Field(ge=0)]
    value: Annotated[float, Field(allow_inf_nan=False)]
    unit: Annotated[str, Field(max_length=32)]
    device_ts: Annotated[int, Field(gt=0)]
    received_ts: Annotated[int, Field(gt=0)]
    site: str = ""


_trades_adapter = TypeAdapter(list[TradeModel])
_quotes_adapter = TypeAdapter(list[QuoteModel])
_readings_adapter = TypeAdapter(list[ReadingModel])


def validate_trades(trades: list[Trade]) -> list[TradeModel]:
    """Validate a batch against the market.trades contract (raises ValidationError)."""
    return _trades_adapter.validate_python([t._asdict() for t in trades])


def validate_quotes(quotes: list[Quote]) -> list[QuoteModel]:
    return _quotes_adapter.validate_python([q._asdict() for q in quotes])


def validate_readings(readings: list[Reading]) -> list[ReadingModel]:
    return _readings_adapter.validate_python([r._asdict() for r in readings])
