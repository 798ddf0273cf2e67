"""`feedhouse drill fuzz`: mutated real frames and malformed MQTT payloads, pipeline running.

For every venue with a recorded session in the fixtures the drill writes a capture of
`--frames` mutated copies of the session's received frames (feedhouse.app.drills.mutate; laps
over the session) and serves them with the replay server; it starts
Mosquitto and publishes `--mqtt` malformed sensor payloads (mutated readings, garbage,
wrong types) to the topics an MQTT feed subscribes to. One `feedhouse run` ingests all
of it. Every message must end up stored, ignored or dead-lettered with a reason, and the
counts must add up. ok when:

    crashes == 0            the run stayed up, exits 0 on SIGTERM, no traceback in its log
    received == sent        per exchange feed (frames served) and MQTT (>= published, QoS 1)
    ledger invariants hold  received = with_records + invalid + ignored (per feed, minute)
                            parsed = duplicates + inserted + rejected + buffered - replayed
    dead_letter >= invalid  and no dead letter without a reason
    lost == 0               every distinct trade in an intact-enough frame stored (or rejected)

duplicates_stored is reported, not required to be 0: a mutated frame may repeat a trade id
with its timestamp moved to another day, and ReplacingMergeTree (partitioned by day) keeps
both rows, beyond the dedup window's reach; real venues do not resend a trade on another day.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import typer

from dataflows.sources.capture import capture_url, read_capture
from dataflows.venues import venue_for_url
from feedhouse.app.drills.mutate import mutate
from feedhouse.app.drills.options import STORE_OPTION
from feedhouse.app.drills.runner import DrillRun
from feedhouse.app.drills.served import CAPTURES
from feedhouse.app.drills.verdict import (
    bad_ledger_minutes,
    trade_counts_by_venue,
    trade_figures,
    verdict,
)
from feedhouse.app.mqtt.broker import BrokerStats
from feedhouse.store.client import warehouse
from feedhouse.store.ledger import ledger_totals

MQTT_FEED = "plant"
PUBLISH_WINDOW = 1000
SENSORS = ("temperature", "humidity", "pressure", "vibration", "current")


def fuzz_captures(source: Path = CAPTURES) -> list[str]:
    """Recorded sessions whose venue has an adapter, one name each."""

    names = []
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix != ".md":
            url = capture_url(path)
            if url and venue_for_url(url) is not None:
                names.append(path.name)
    return names


def _payload(data: str | bytes) -> str:
    if isinstance(data, bytes):
        return repr(data)
    # one event per line: a mutated frame must not break the line format
    return data.replace("\r", " ").replace("\n", " ")


def write_mutated_capture(src: Path, dest: Path, frames: int, rng: random.Random) -> int:
    """`frames` mutated copies of src's received frames, in laps; returns frames written."""

    events = list(read_capture(src))
    received = [e for e in events if e.kind == "received"]
    span = max(1.0, received[-1].ts - received[0].ts + 1.0)
    written = 0
    with dest.open("w", encoding="utf-8", errors="surrogateescape") as out:
        # one connection, no client frames: the server sends without waiting for a
        # subscribe (a feed's own subscribe may not match what the session recorded)
        out.write(f"{events[0].url} <-> {events[0].ts}\n")
        lap = 0
        while written < frames:
            for e in received:
                if written >= frames:
                    break
                out.write(f"{e.ts + lap * span}: {_payload(mutate(e.data, rng))}\n")
                written += 1
            lap += 1
    return written


def malformed_mqtt(i: int, rng: random.Random, ts_us: int) -> tuple[str, bytes]:
    """A topic of the MQTT feed and a broken (sometimes accidentally valid) payload."""
    sensor = SENSORS[i % len(SENSORS)]
    topic = f"plant/site{i % 3}/dev{i % 40:03d}/{sensor}"
    if i % 20 == 0:
        topic = f"plant//dev{i % 40:03d}/{sensor}"  # an empty topic level
    kind = i % 10
    if kind == 0:
        return topic, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    if kind == 1:
        return topic, orjson.dumps(rng.choice([[1, 2], "text", 42, None, {"seq": []}]))
    base = orjson.dumps({"seq": i, "value": round(rng.uniform(10, 30), 3), "ts": ts_us,
                         "unit": "C"}).decode()
    out = mutate(base, rng)
    return topic, out if isinstance(out, bytes) else out.encode("utf-8", "surrogatepass")


def publish_malformed(port: int, count: int, seed: int) -> int:
    """Publish `count` malformed payloads at QoS 1; returns how many the broker acked."""
    import paho.mqtt.client as mqtt

    rng = random.Random(seed)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(500)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        now = time.time_ns() // 1000
        acked = 0
        for start in range(0, count, PUBLISH_WINDOW):  # paho's queue is bounded: in windows
            infos = [client.publish(*malformed_mqtt(i, rng, now + i), qos=1)
                     for i in range(start, min(count, start + PUBLISH_WINDOW))]
            for info in infos:
                info.wait_for_publish(120)
            acked += sum(1 for info in infos if info.is_published())
        return acked
    finally:
        client.disconnect()
        client.loop_stop()


def _exchange_drained(status: dict, sent: dict[str, int]) -> bool:
    feeds = status.get("feeds", {})
    return all(feeds.get(f, {}).get("received", 0) >= n for f, n in sent.items())


def run_fuzz_drill(
    frames: int = 100_000,
    mqtt_messages: int = 100_000,
    seed: int = 7,
    store: Path | None = None,
    timeout_s: float = 900.0,
) -> dict:

    published, crashes = 0, 0
    with DrillRun.fresh("fuzz", store) as d:
        names = fuzz_captures()
        folder = d.home / "captures"
        folder.mkdir(exist_ok=True)
        rng = random.Random(seed)
        for name in names:
            write_mutated_capture(CAPTURES / name, folder / name, frames, rng)
        d.echo(f"{len(names)} venues x {frames} mutated frames written; loading the server")
        server = d.serve(names, folder=folder, loop=False)  # symbols from the intact sessions
        broker = d.start_broker()
        feed_of_path = d.feed_of_path
        d.feeds.append({"name": MQTT_FEED, "kind": "mqtt",
                        "mqtt": {"host": "127.0.0.1", "port": broker.port, "clients": 2}})
        settings = d.configure()
        run = d.run
        stats = BrokerStats(broker.port)
        served = {feed_of_path[p]: server.stream_positions(p) for p in server.streams}
        run.start()
        if not stats.wait("shared_subscriptions", lambda n: n >= 2, 90, 0.0):
            raise RuntimeError(f"the MQTT feed did not subscribe: see {run.log_path}")
        published = publish_malformed(broker.port, mqtt_messages, seed)
        d.echo(f"{published} malformed MQTT payloads published")
        # every position of every stream received (a frame re-sent after a reconnect
        # is counted once by position), and every publish
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and run.alive:
            status = d.status()
            if _exchange_drained(status, served) and status.get("feeds", {}).get(
                    MQTT_FEED, {}).get("received", 0) >= published:
                break
            time.sleep(1.0)
        stats.wait("held", lambda n: n == 0, 60, 2.0)
        crashes += not run.alive
        code = d.stop()
    sent = d.sent()
    by_venue = d.unique_by_venue()
    feeds = d.feeds
    with warehouse(settings) as client:
        trades = trade_counts_by_venue(client)  # merges (OPTIMIZE ... FINAL)
        readings = client.query("SELECT count() FROM iot.readings").result_rows[0][0]
        dead = dict(client.query(
            "SELECT feed = {m:String}, count() FROM ops.dead_letter GROUP BY 1",
            parameters={"m": MQTT_FEED}).result_rows)
        no_reason = client.query(
            "SELECT count() FROM ops.dead_letter WHERE empty(trim(error))").result_rows[0][0]
        bad = bad_ledger_minutes(client)
        per_feed = {f: ledger_totals(client, f) for f in [*served, MQTT_FEED]}
    ex = {k: sum(per_feed[f][k] for f in served) for k in per_feed[MQTT_FEED]}
    mq = per_feed[MQTT_FEED]
    short = {f: (per_feed[f]["received"], n) for f, n in served.items()
             if per_feed[f]["received"] != n}
    venue_of = {f["name"]: f["venue"] for f in feeds if f.get("kind") != "mqtt"}
    rejected: dict[str, int] = {}
    for f in served:
        rejected[venue_of[f]] = rejected.get(venue_of[f], 0) + per_feed[f]["rejected"]
    figures = trade_figures(by_venue, trades["stored"], trades["distinct"],
                            trades["rows_before_merge"], rejected)
    lost, duplicates = figures["lost"], figures["duplicates_stored"]
    counts = {
        "exchange": {"frames_sent": sum(served.values()), **_counts(ex, dead.get(0, 0))},
        "mqtt": {"published": published, **_counts(mq, dead.get(1, 0))},
    }
    crashes += run.tracebacks() > 0 or code != 0
    result = {
        "drill": "fuzz", "sent": sent["trades_sent"], "unique_sent": sent["unique_trades_sent"],
        "stored": sum(trades["stored"].values()), "duplicates_stored": duplicates,
        "duplicates_inserted": figures["duplicates_inserted"],
        "dead_lettered": int(sum(dead.values())), "lost": lost, "readings_stored": int(readings),
        "crashes": int(crashes), "counts": counts, "feeds_short": short,
        "dead_letters_without_reason": int(no_reason), "ledger_ok": not bad,
        "venues": len(served), "run_exit": code, "peak_rss_mb": d.peak_rss_mb,
        "store": str(d.store),
    }
    result["ok"] = bool(
        crashes == 0 and not short and mq["received"] >= published > 0 and not bad
        and no_reason == 0 and lost == 0 and sum(served.values()) > 0
        and all(c["dead_letter"] >= c["invalid"] for c in counts.values())
    )
    if bad:
        result["ledger_bad_minutes"] = bad[:10]
    d.kept()
    return result


def _counts(t: dict, dead: int) -> dict:
    return {"received": t["received"], "with_records": t["with_records"], "invalid": t["invalid"],
            "ignored": t["ignored"], "dead_letter": dead,
            "adds_up": t["received"] == t["with_records"] + t["invalid"] + t["ignored"]}


def fuzz(
    frames: int = typer.Option(100_000, "--frames", min=1, help="mutated frames per venue"),
    mqtt_messages: int = typer.Option(100_000, "--mqtt", min=1,
                                      help="malformed MQTT payloads published"),
    seed: int = typer.Option(7, "--seed", help="seed of the mutations"),
    store: Path | None = STORE_OPTION,
) -> None:
    """Mutated frames and malformed MQTT payloads: no crash, every message accounted for."""
    verdict(run_fuzz_drill(frames, mqtt_messages, seed, store))


def register(drill_app: typer.Typer) -> None:
    drill_app.command("fuzz")(fuzz)
