"""feedhouse: market-data and IoT ingestion into ClickHouse that you can prove."""

__version__ = "0.1.0"
