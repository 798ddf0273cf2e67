"""Faults the replay server injects: dropped connections, duplicated and corrupted frames.

Spec (CLI `--faults`): comma-separated `drop=5s` (abort every connection after this long;
`ms` or `s`), `dup=0.01` (repeat this fraction of frames), `corrupt=0.001` (truncate or
garble this fraction of frames).

Duplicates and corruption are deterministic functions of the frame number, so a stream
with faults is still one fixed sequence of positions and `?from=N` can resume in it: the
frames are cut in blocks of k = round(1/dup) and one frame per block, chosen by a hash of
the block, is sent twice (taking two positions).
"""

from __future__ import annotations

from dataclasses import dataclass

_MASK = (1 << 64) - 1


def mix(value: int, salt: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread deterministic hash of an int."""
    z = (value * 0x9E3779B97F4A7C15 + salt) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _seconds(text: str) -> float:
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return float(text.removesuffix("s"))


@dataclass(frozen=True)
class Faults:
    drop_s: float | None = None
    dup: float = 0.0
    corrupt: float = 0.0

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        """Raises ValueError with a one-line message on a bad spec."""
        if not spec:
            return cls()
        values: dict = {}
        for part in spec.split(","):
            key, sep, value = part.strip().partition("=")
            try:
                if key == "drop" and sep:
                    values["drop_s"] = _seconds(value)
                    ok = values["drop_s"] > 0
                elif key in ("dup", "corrupt") and sep:
                    values[key] = float(value)
                    ok = 0 <= values[key] <= 1
                else:
                    raise ValueError
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(
                    f"bad fault {part.strip()!r} (use drop=5s, dup=0.01, corrupt=0.001)"
                )
        return cls(**values)

    @property
    def dup_block(self) -> int:
        return max(1, round(1 / self.dup)) if self.dup > 0 else 0

    def _dup_offset(self, block: int) -> int:
        return mix(block, 1) % self.dup_block

    def base_of(self, pos: int) -> tuple[int, bool]:
        """Position in the sent stream -> (frame number, is the repeated copy)."""
        k = self.dup_block
        if not k:
            return pos, False
        block, rest = divmod(pos, k + 1)
        d = self._dup_offset(block)
        if rest <= d:
            return block * k + rest, False
        return block * k + rest - 1, rest == d + 1

    def positions_for(self, frames: int) -> int:
        """How many positions the first `frames` frames take (duplicates included)."""
        k = self.dup_block
        if not k:
            return frames
        full, rest = divmod(frames, k)
        return frames + full + (1 if rest > self._dup_offset(full) else 0)

    def corrupts(self, frame_no: int) -> bool:
        return self.corrupt > 0 and mix(frame_no, 2) < self.corrupt * 2.0**64

    @staticmethod
    def corrupt_frame(frame: str | bytes, frame_no: int) -> str | bytes:
        """Truncate (odd hash) or garble the first byte (even): never valid JSON/gzip."""
        if mix(frame_no, 3) & 1 or len(frame) < 2:
            return frame[: len(frame) // 2]
        return ("#" if isinstance(frame, str) else b"#") + frame[1:]

    def __str__(self) -> str:
        parts = []
        if self.drop_s:
            parts.append(f"drop={self.drop_s:g}s")
        if self.dup:
            parts.append(f"dup={self.dup:g}")
        if self.corrupt:
            parts.append(f"corrupt={self.corrupt:g}")
        return ",".join(parts) or "none"
