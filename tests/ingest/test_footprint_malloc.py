"""glibc malloc's bounds set by `feedhouse run` (dataflows.footprint.tune_malloc).

Each check runs in a fresh interpreter: mallopt changes the process for good."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.paths import ROOT

PROBE = r"""
import ctypes, json, sys, threading
from dataflows.footprint import _MALLINFO, tune_malloc

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.open_memstream.restype = ctypes.c_void_p
libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]

def arenas():
    buf, size = ctypes.c_char_p(), ctypes.c_size_t()
    fp = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    return buf.value.decode().count("<heap nr=")

tuned = tune_malloc(int(sys.argv[1]), int(sys.argv[2]))
# glibc raises a sliding mmap threshold to the size of each mmapped block freed: after an
# 8 MB block, blocks up to 8 MB come from the heap and stay there when freed
big = libc.malloc(8 << 20)
libc.free(big)
before = _MALLINFO().hblks
mid = libc.malloc(1 << 20)
mmapped_after_big = _MALLINFO().hblks - before
libc.free(mid)
# threads that allocate at the same time each take an arena, up to the cap
start = threading.Barrier(8)
hold = []
def work():
    start.wait()
    hold.append([libc.malloc(200) for _ in range(2000)])
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"tuned": tuned, "mmapped_after_big": mmapped_after_big,
                  "arenas": arenas()}))
"""


def _probe(arena_max: int, mmap_threshold_kb: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(arena_max), str(mmap_threshold_kb)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


def test_tuned_malloc_caps_arenas_and_keeps_big_blocks_mmapped():
    got = _probe(2, 256)
    assert got["tuned"] == {"arena_max": 2, "mmap_threshold_kb": 256}
    assert got["mmapped_after_big"] == 1  # a 1 MB block is mmapped (returned on free)
    assert got["arenas"] <= 2


def test_glibc_defaults_slide_the_threshold_and_add_arenas():
    # what the bounds are for: without them the 1 MB block lands in the heap, and threads
    # take arenas of their own
    got = _probe(0, 0)
    assert got["tuned"] == {}
    assert got["mmapped_after_big"] == 0
    assert got["arenas"] > 2


MAPS_PROBE = r"""
import json, threading
import pyarrow as pa
from dataflows.footprint import label_maps, mapping_figures, read_maps

start = threading.Barrier(6)
hold = []
def work():
    start.wait()
    hold.append([bytearray(1000) for _ in range(3000)])  # above Python's small-object size
threads = [threading.Thread(target=work) for _ in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
arrow = pa.array(range(10_000_000), type=pa.int64())  # 80 MB in Arrow's own allocator
maps = read_maps()
label_maps(maps)
arenas = [m for m in maps if m["kind"] == "glibc_heaps" and m["path"] == ""]
print(json.dumps({"figures": mapping_figures(), "arenas": len(arenas)}))
"""


def test_mapping_figures_tell_glibc_arenas_from_arrows_reservation():
    proc = subprocess.run([sys.executable, "-c", MAPS_PROBE], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    got = json.loads(proc.stdout)
    assert got["arenas"] >= 1  # threads allocating at once got arenas of their own
    figures = got["figures"]
    assert set(figures) == {"glibc_heaps", "aligned_2m", "reservations", "stacks", "other_anon"}
    assert figures["reservations"] >= 70  # mimalloc's 1 GiB arena holds the 80 MB array
    assert figures["glibc_heaps"] >= 15  # 6 threads x 3 MB of bytearrays + the brk heap


TRIM_PROBE = r"""
import ctypes, json, threading
from dataflows.footprint import tune_malloc
from dataflows.malloc_trim import trim

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

def rss_anon_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024

tune_malloc(2, 256)  # as `feedhouse run` does
# a thread allocates 60 MB in 2 KB chunks (touched: resident) and frees all but every 64th:
# the survivors pin the heap, so glibc cannot give the freed chunks back from its top
kept = []
def work():
    blocks = [libc.malloc(2048) for _ in range(30_000)]
    for b in blocks:
        libc.memset(b, 1, 2048)
    kept.extend(blocks[::64])
    for i, b in enumerate(blocks):
        if i % 64:
            libc.free(b)
t = threading.Thread(target=work)
t.start()
t.join()
before = rss_anon_mb()
gave_back = trim()
print(json.dumps({"before": before, "after": rss_anon_mb(), "gave_back": gave_back}))
"""


def test_trim_gives_freed_but_held_memory_back():
    proc = subprocess.run([sys.executable, "-c", TRIM_PROBE], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    got = json.loads(proc.stdout)
    assert got["gave_back"] is True
    assert got["before"] - got["after"] >= 30  # of the ~59 MB freed between survivors
