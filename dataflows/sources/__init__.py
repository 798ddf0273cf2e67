"""Dataflow sources. Exchange feeds: `ExchangeSource` (Bytewax) over `FeedClient` (picows)."""

from dataflows.sources.exchange import ExchangeSource, FeedPartition, FrameQueue
from dataflows.sources.websocket import Backoff
from dataflows.sources.ws_picows import FeedClient
from dataflows.sources.ws_websockets import WebsocketsFeedClient

__all__ = ["Backoff", "ExchangeSource", "FeedClient", "FeedPartition", "FrameQueue",
           "WebsocketsFeedClient"]
