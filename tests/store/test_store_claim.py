"""A store another process works on is never wiped or written by a demo, a drill or
`init`: each says so in one line naming the holder's pid (two `make demo` at once used to
die in shutil.rmtree with a traceback while wiping the first one's store)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import clean_env, run_cli
from tests.support.paths import FEEDHOUSE

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser

HOLD = """
import sys, time
from pathlib import Path
from feedhouse.store.lock import claim_store
claim_store(Path(sys.argv[1]), "a test holder")
print("claimed", flush=True)
if len(sys.argv) > 2:  # a child of the holder (its `feedhouse run`, say) may work on it
    import subprocess
    done = subprocess.run(sys.argv[2:], capture_output=True, text=True)
    print("child", done.returncode, done.stderr.strip(), flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path):
    procs = []

    def hold(store: Path, *child: str, **env: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(store), *child],
                                stdout=subprocess.PIPE, text=True, env=clean_env(**env))
        procs.append(proc)
        assert proc.stdout.readline().strip() == "claimed"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def _one_line_naming(done, pid: int) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"in use by pid {pid} " in lines[0], lines[0]
    return lines[0]


def test_demo_init_and_drill_refuse_a_claimed_store_without_touching_it(tmp_path, holder):
    home = tmp_path / "home"
    store = home / "clickhouse"
    store.mkdir(parents=True)
    (home / ".demo").write_text("a demo store\n")  # the demo would wipe this one
    (store / "keep").write_text("the first demo's data\n")
    proc = holder(store)

    demo = run_cli("demo", "--seconds", "20", FEEDHOUSE_HOME=str(home))
    line = _one_line_naming(demo, proc.pid)
    assert "feedhouse demo will not touch it" in line and str(store) in line
    init = run_cli("init", FEEDHOUSE_HOME=str(home))
    assert "feedhouse init will not touch it" in _one_line_naming(init, proc.pid)
    assert sorted(p.name for p in store.iterdir()) == ["keep"]  # not wiped, no schema
    assert (home / ".demo").exists()

    drill_store = tmp_path / "drill-store"
    drill_proc = holder(drill_store)
    drill = run_cli("drill", "crash", "--store", str(drill_store), "--seconds", "5")
    assert "drill crash will not touch it" in _one_line_naming(drill, drill_proc.pid)
    assert not drill_store.exists()


def test_the_claimants_children_and_later_processes_may_use_the_store(tmp_path, holder):
    home = tmp_path / "home"
    proc = holder(home / "clickhouse", FEEDHOUSE, "init", FEEDHOUSE_HOME=str(home))
    assert proc.stdout.readline().split()[:2] == ["child", "0"]
    proc.kill()
    proc.wait()
    time.sleep(0.1)  # the kernel dropped the flock with the process
    again = run_cli("init", FEEDHOUSE_HOME=str(home))
    assert again.returncode == 0 and "nothing to apply" in again.stdout, again.stderr
