"""Dataflow sources. Exchange feeds: `ExchangeSource` (Bytewax) over `FeedClient` (websockets)."""

from dataflows.sources.exchange import ExchangeSource, FeedPartition, FrameQueue
from dataflows.sources.websocket import Backoff, FeedClient

__all__ = ["Backoff", "ExchangeSource", "FeedClient", "FeedPartition", "FrameQueue"]
