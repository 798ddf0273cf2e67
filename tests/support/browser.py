"""Headless Chromium (Debian's package) for the report test, and a tiny PNG reader.

No Pillow: the PNG is decoded with zlib and numpy (8-bit RGB/RGBA, non-interlaced, as
Chromium writes its screenshots), which is all a "not blank" check needs.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from html import unescape
from pathlib import Path

import numpy as np

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _chromium(
    tmp: Path, *args: str, timeout: float = 60, offline: bool = False
) -> subprocess.CompletedProcess:
    """`offline`: in a network namespace of its own (`unshare -n`: no interface but a
    loopback that is down), so nothing can load from the internet."""
    profile = tmp / "chromium-profile"  # fresh per call: nothing shared with other runs
    if profile.exists():
        shutil.rmtree(profile)
    return subprocess.run(
        [*(["unshare", "--net"] if offline else []), CHROMIUM, *FLAGS,
         f"--user-data-dir={profile}", *args],
        capture_output=True,
        timeout=timeout,
        check=True,
    )


def screenshot(page: Path, tmp: Path, size: str = "1200,2000") -> bytes:
    out = tmp / "screenshot.png"
    _chromium(tmp, f"--screenshot={out}", f"--window-size={size}", page.resolve().as_uri())
    return out.read_bytes()


def offline_render(page: Path, tmp: Path, size: str = "1200,1400") -> tuple[bytes, str]:
    """(screenshot PNG, rendered DOM text) of `page` with the network off, after its
    scripts ran (5 s of virtual time)."""
    out = tmp / "offline.png"
    budget = "--virtual-time-budget=5000"
    uri = page.resolve().as_uri()
    _chromium(tmp, f"--screenshot={out}", f"--window-size={size}", budget, uri, offline=True)
    dom = _chromium(tmp, "--dump-dom", budget, uri, offline=True).stdout.decode()
    return out.read_bytes(), _text(dom)


def page_text(page: Path, tmp: Path) -> str:
    """The rendered DOM's text (tags dropped, entities decoded, whitespace collapsed)."""
    return _text(_chromium(tmp, "--dump-dom", page.resolve().as_uri()).stdout.decode())


def _text(dom: str) -> str:
    dom = re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", dom)).split())


def png_pixels(data: bytes) -> np.ndarray:
    """(height, width, channels) uint8 array of an 8-bit RGB/RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: running sum per channel along the row
            row = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint64) % 256
            row = row.astype(np.uint8).reshape(stride)
        elif kind == 2:  # Up
            row = line + prev
        else:  # Average (3) and Paeth (4) depend on the left neighbour: byte by byte
            row = _sequential(kind, line.tolist(), prev.tolist(), bpp)
        out[y] = row
        prev = out[y]
    return out.reshape(height, width, bpp)


def _sequential(kind: int, line: list[int], prev: list[int], bpp: int) -> np.ndarray:
    row = [0] * len(line)
    for i, x in enumerate(line):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        if kind == 3:
            row[i] = (x + (a + b) // 2) & 0xFF
        else:
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[i] = (x + pred) & 0xFF
    return np.array(row, dtype=np.uint8)


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    """Until `url` answers 200 (or the process died / time ran out: AssertionError)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer 200 (process exit code {proc.poll()})")


def render_url(url: str, tmp: Path, size: str = "1200,900", budget_ms: int = 10000):
    """(text, screenshot PNG) of a JavaScript page (the Dagster UI) in one Chromium run,
    taken once its virtual-time budget ran out."""
    out = tmp / "ui.png"
    dom = _chromium(
        tmp,
        f"--virtual-time-budget={budget_ms}",
        "--dump-dom",
        f"--screenshot={out}",
        f"--window-size={size}",
        url,
    ).stdout.decode()
    return _text(dom), out.read_bytes()
