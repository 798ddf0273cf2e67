"""Bytewax dataflows and their pieces: sources, venue adapters, dedup window, sinks."""
