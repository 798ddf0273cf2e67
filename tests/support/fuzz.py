"""What a fuzzed parser may answer: Invalid with a declared reason, never a hidden crash."""

from __future__ import annotations


def assert_declared_error(reason: str) -> None:
    """A venue parser turns bad input into Invalid for the errors bad input causes (not
    JSON, a missing field, too few elements, a bad value, FrameError); anything else
    (a NameError, a RecursionError...) is wrapped as "unexpected" so a live feed keeps
    going, but in a test it is a bug in the parser."""
    assert ": unexpected " not in reason, reason
