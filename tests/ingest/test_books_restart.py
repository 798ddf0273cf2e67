"""Book state across a restart (docs/books.md, "Book state and restarts"): the books live in
the parse step, which Bytewax does not snapshot, so a restarted process starts every book
unsynced; updates it receives before the venue's next snapshot are stored as plain
updates, with no gap, no checksum proven and no resync; the snapshot a new subscription
brings syncs them. A book restored from before the restart would be stale: the updates
missed while the process was down break it (recorded OKX frames, checksums)."""

from __future__ import annotations

from bytewax.testing import TestingSource

from dataflows.books.live import IS_SNAPSHOT, book_feeds
from dataflows.books.resync import take_resync
from dataflows.flow import build_flow
from dataflows.frames import Gap, MessageBatch
from dataflows.parse.stage import parse_batch
from feedhouse.core.config import load_settings
from tests.support.ingest import capture_messages

FEED = "okx-books"
SNAPSHOTS = slice(15, 100)  # subscribe answers, the three books' snapshots (24-26), updates
BEFORE, MISSED, AFTER = slice(0, 100), slice(100, 130), slice(130, 200)


def _settings(tmp_path):
    feeds = [{"name": FEED, "venue": "okx", "symbols": ["BTC-USDT"], "channels": ["books"]}]
    return load_settings(home=str(tmp_path / "fh"), feeds=feeds, recovery=True)


def _parse(feed, messages, gaps=()):
    return parse_batch(MessageBatch(FEED, "okx", FEED, 0, messages, list(gaps)), books=feed)


def _stateful_steps(step) -> list[str]:
    found = [step.step_id] if type(step).__name__ == "stateful_batch" else []
    for sub in getattr(step, "substeps", []):
        found += _stateful_steps(sub)
    return found


def test_the_books_are_not_in_the_recovery_snapshot(tmp_path):
    """Bytewax snapshots the state of stateful steps (and source positions) only; the parse
    step that holds the books is a plain map, so a restart cannot bring a book back."""
    flow = build_flow(_settings(tmp_path), sources=[("in", TestingSource([]))])
    assert _stateful_steps(flow) == ["feedhouse.dedup"]


def test_a_restart_leaves_every_book_unsynced_until_the_venues_next_snapshot(tmp_path):
    messages = capture_messages("OKX.ws.1.0")
    settings = _settings(tmp_path)
    before = book_feeds(settings.feeds)[FEED]  # what build_flow makes when a process starts
    first = _parse(before, messages[BEFORE])
    assert first.books is not None and not first.gaps
    assert len(before.books.states) == 3 and all(s.synced for s in before.books.states.values())

    # the process is down while messages[MISSED] go by; the restarted one builds its books anew
    restarted = book_feeds(settings.feeds)[FEED]
    assert restarted is not before and restarted.books.states == {}
    resumed = _parse(restarted, messages[AFTER])
    assert resumed.books is not None and len(resumed.books) > 0  # stored as plain updates
    assert not any(resumed.books.field_values(IS_SNAPSHOT))  # no snapshot among them
    assert resumed.gaps == [] and not take_resync(FEED)  # no false break, no resync
    states = restarted.books.states.values()
    assert len(states) == 3 and not any(s.synced for s in states)
    assert sum(s.checked for s in states) == 0  # no checksum proven on an unsynced book

    # the same updates on the book from before the restart (as a restored one would be):
    # the missed updates make it stale, its checksums fail
    stale = _parse(before, messages[AFTER])
    assert stale.gaps and {g.kind for g in stale.gaps} == {"checksum"}
    assert take_resync(FEED)

    # a new subscription's snapshots sync every book; the updates after them are proven
    synced = _parse(restarted, messages[SNAPSHOTS])
    assert synced.gaps == []
    assert all(s.synced and s.passed > 0 for s in restarted.books.states.values())


def test_a_disconnect_unsyncs_every_book_of_the_feed(tmp_path):
    messages = capture_messages("OKX.ws.1.0")
    feed = book_feeds(_settings(tmp_path).feeds)[FEED]
    _parse(feed, messages[BEFORE])
    assert all(s.synced for s in feed.books.states.values())
    down = Gap(FEED, "okx", messages[100][0], messages[130][0], "disconnect", "closed")
    parsed = _parse(feed, messages[AFTER], gaps=[down])
    assert parsed.gaps == [down]  # the disconnect row only: no break is claimed after it
    assert not any(s.synced for s in feed.books.states.values())
