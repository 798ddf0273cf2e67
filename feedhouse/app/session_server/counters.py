"""The session server's counters per path (what drills compare the ingest against)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from feedhouse.app.session_server.stream import RecordedStream


@dataclass
class PathStats:
    connections: int = 0
    client_frames: int = 0
    frames_sent: int = 0
    trades_sent: int = 0
    unique_trades_sent: int = 0
    duplicates_sent: int = 0
    corrupted_sent: int = 0
    corrupted_trades: int = 0
    drops: int = 0
    completed: int = 0
    max_pos: int = -1
    _seen: bytearray = field(default_factory=bytearray, repr=False)

    def count(self, stream: RecordedStream, pos: int, g: int, copy: bool, corrupt: bool):
        self.frames_sent += 1
        if pos > self.max_pos:
            self.max_pos = pos
        if copy:
            self.duplicates_sent += 1
        lap, i = divmod(g, len(stream))
        keys = stream.keys[i]
        if corrupt:
            self.corrupted_sent += 1
            self.corrupted_trades += len(keys)
            return
        if not keys:
            return
        self.trades_sent += len(keys)
        base, seen = stream.key_base(lap), self._seen
        for key in keys:
            bit = base + key
            byte = bit >> 3
            if byte >= len(seen):
                seen.extend(bytes(byte - len(seen) + 4096))
            mask = 1 << (bit & 7)
            if not seen[byte] & mask:
                seen[byte] |= mask
                self.unique_trades_sent += 1

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("_seen")
        return data
