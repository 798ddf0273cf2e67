"""`feedhouse run --processes N`: MQTT subscribers spread over a Bytewax cluster whose
sink (the only store writer) lives in process 0; nothing is acked before it is committed,
across processes too, and a killed ingest leaves no worker behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from bytewax.recovery import init_db_dir

from dataflows.cluster import Cluster, free_addresses
from dataflows.sink.stage import ClickHouseSink
from feedhouse.app.drills.mqtt import MALFORMED
from feedhouse.core.config import load_settings
from tests.support.cli import run_cli
from tests.support.paths import ROOT


def test_a_cluster_process_holds_its_share_of_the_partitions_and_only_process_0_the_store(
        tmp_path):
    parts = [f"feedhouse-{i}" for i in range(5)]
    addresses = ("127.0.0.1:1", "127.0.0.1:2")
    mine = [Cluster(i, addresses).mine(parts) for i in range(2)]
    assert mine == [["feedhouse-0", "feedhouse-2", "feedhouse-4"], ["feedhouse-1", "feedhouse-3"]]
    settings = load_settings(home=str(tmp_path), feeds=[{"name": "plant", "kind": "mqtt"}])
    assert ClickHouseSink(settings, ["plant"], local=True).list_parts() == ["plant"]
    assert ClickHouseSink(settings, ["plant"], local=False).list_parts() == []
    assert len(set(free_addresses(3))) == 3


@pytest.mark.integration
def test_source_snapshots_in_either_process_follow_the_sink_snapshot_of_the_epoch_before(
        tmp_path):
    """The order MqttPartition's acks rely on (it acks at snapshot n what it emitted before
    snapshot n-1), in a real two-process cluster with a slow sink snapshot."""
    log, recovery = tmp_path / "log.txt", tmp_path / "recovery"
    recovery.mkdir()
    init_db_dir(recovery, 1)
    addresses = ",".join(free_addresses(2))
    procs = [subprocess.Popen([sys.executable, "-m", "tests.support.cluster_probe", str(log),
                               str(recovery), str(i), addresses], cwd=ROOT) for i in range(2)]
    for proc in procs:
        assert proc.wait(120) == 0
    rows = [line.split() for line in log.read_text().splitlines()]
    sink_done = {int(r[4]): float(r[0]) for r in rows if r[2] == "sink"}
    sources = [(float(r[0]), int(r[1]), int(r[4])) for r in rows if r[2] == "source"]
    assert len({pid for _, pid, _ in sources}) == 2  # sources in both processes
    assert len({int(r[1]) for r in rows if r[2] == "sink"}) == 1
    checked = 0
    for at, _, n in sources:
        if n >= 2:
            assert n - 1 in sink_done and at >= sink_done[n - 1], (n, at, sink_done.get(n - 1))
            checked += 1
    assert checked >= 10


@pytest.mark.integration
def test_drill_with_two_ingest_processes_survives_kill_and_broker_restart(tmp_path):
    work = tmp_path / "drill"
    try:
        proc = run_cli("drill", "mqtt", "--rate", "1000", "--seconds", "9", "--devices", "40",
                       "--restart-broker", "--kill-ingest", "--processes", "2",
                       "--work-dir", str(work), timeout=400)
    except subprocess.TimeoutExpired as exc:  # say where it stood, not just that it hung
        pytest.fail(f"drill hung: {exc.stderr[-3000:]}\ningest.log ends:\n"
                    f"{(work / 'ingest.log').read_text()[-3000:]}")
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, (result, (work / "ingest.log").read_text()[-3000:])
    assert result["ingest_processes"] == 2
    assert result["sent_acked_by_broker"] == result["sent"] > 0 and result["drained"]
    assert result["lost"] == 0 and result["duplicates_stored"] == 0 and result["ok"]
    assert result["dead_lettered"] == len(MALFORMED) <= result["dead_letter_rows"]
    log = (work / "ingest.log").read_text()
    assert log.count("cluster of 2 processes") == 2  # both starts ran a cluster
    # the worker wrote its own status (it holds a subscriber, no sink: no counts)
    worker = orjson.loads(Path(work / "fh" / "run_status.1.json").read_bytes())
    assert worker["state"] == "stopped" and not worker["feeds"]
    leftover = subprocess.run(["pgrep", "-f", f"{work}.*--cluster-index"], capture_output=True)
    assert leftover.returncode == 1  # no worker outlived its process 0
