"""Pieces of the replay server: numbered streams from captures, lap shifting, faults."""
