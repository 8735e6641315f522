"""Publish/subscribe against rsync polling (issue 24, item 5): the latency from a report's completion on a collector
to its publication on the web mirror and in the database, for small and large reports, through the broker (the
sample collector's publisher, the subscriber, sanitize and the importer following their inputs) and through the
scheduled pipeline polling the collector at its configured interval, side by side in one run; and how many
messages a second one subscriber sustains. Snapshot sets are taken on their own schedule meanwhile (every
--set-every seconds), as `invoke schedule` would, so their pauses are in the figures. Nothing is asserted.

    ./run python bench/pubsub_bench.py [--small 40] [--large 4 --large-mb 24] [--poll-minutes 1] [--flood 300]

An instance of its own (aggr-pubsub): `rebuild --sample` with broker.enabled, a repository, then:
1. small reports (the web_connectivity sample, 7 KB, each with a report id of its own), one completed every
   --small-every seconds on the collector (written as a dot-file and renamed into place, as a collector
   completes one); large ones (bench/gen_reports.py, --large-mb each) one every --large-every seconds;
2. the same through polling: the subscriber and the followers stopped (the publisher keeps publishing; nothing
   consumes), `invoke pipeline` run every --poll-minutes (the schedule's `<n>min`: 1, 2, 5, ...), reports
   completed at the same pace;
3. a flood: --flood small reports completed at once, the subscriber's drain measured from the first pull to the
   last (messages per second it sustains, each a verified pull).
A report is on the web mirror when its archive name (which holds its report id) is in the mirror's /index.json,
in the database when a document with its report id is in `reports` (both polled every 0.2 s).
Prints one JSON document; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]  # tests/instances.py: an instance removed

from common import config, log  # noqa: E402
from dr.jobs import backup, pipeline, rebuild, subscriber  # noqa: E402
from dr.services import collector, stack  # noqa: E402
from instances import free_port, remove_instance  # noqa: E402
from stages import journal  # noqa: E402
from stages.layout import DataRoot  # noqa: E402

SAMPLE = ROOT / "samples/ooni-legacy/extracted-probedocs-web_connectivity-2016.yaml"
SAMPLE_ID = "20160712T172644Z_AS7922_obPihyuYvZu6JmCKxb7NLCJgjJu7B1Zqbs6QuFxeJK1iPxJH0y"


def note(**kv):
    print(json.dumps(kv), file=sys.stderr, flush=True)


def complete(cfg, name: str, body: bytes) -> float:
    """Complete a report on the sample collector (collector.complete); the time it was complete."""
    collector.complete(cfg, name, body)
    return time.time()


class Watcher:
    """Polls the web mirror's index and the database for report ids; the first time each is seen in each."""

    def __init__(self, cfg):
        self.cfg, self.ids = cfg, {}
        self.mirror: dict[str, float] = {}
        self.db: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def expect(self, rid: str, completed: float) -> None:
        self.ids[rid] = completed

    def run(self) -> None:
        client = stack.db_client(self.cfg)
        url = f"http://127.0.0.1:{self.cfg.webmirror.port}/index.json"
        while not self.stop.is_set():
            pending = [r for r in list(self.ids) if r not in self.mirror or r not in self.db]
            if pending:
                try:
                    with urllib.request.urlopen(url, timeout=5) as resp:
                        names = " ".join(r["name"] for r in json.loads(resp.read())["reports"])
                    now = time.time()
                    for rid in pending:
                        if rid not in self.mirror and rid in names:
                            self.mirror[rid] = now
                    found = client[self.cfg.db.database].reports.find({"report_id": {"$in": pending}},
                                                                       {"report_id": 1})
                    now = time.time()
                    for doc in found:
                        self.db.setdefault(doc["report_id"], now)
                except (OSError, ValueError) as exc:
                    note(watcher=str(exc))
            self.stop.wait(0.2)
        client.close()

    def wait(self, rids: list[str], timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and not all(r in self.mirror and r in self.db for r in rids):
            time.sleep(0.5)

    def latencies(self, rids: list[str]) -> dict:
        def stats(seen: dict) -> dict:
            lat = sorted(seen[r] - self.ids[r] for r in rids if r in seen)
            if not lat:
                return {"n": 0}
            p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
            return {"n": len(lat), "median_s": round(statistics.median(lat), 2), "p99_s": round(p99, 2),
                    "max_s": round(lat[-1], 2)}
        return {"web_mirror": stats(self.mirror), "database": stats(self.db), "expected": len(rids)}


def small_body(rid: str) -> bytes:
    return SAMPLE.read_text().replace(SAMPLE_ID, rid, 1).encode()


def run_series(cfg, watcher: Watcher, label: str, bodies: list[tuple[str, bytes]], every: float,
               timeout: float) -> dict:
    rids = []
    for i, (rid, body) in enumerate(bodies):
        watcher.expect(rid, complete(cfg, f"{label}-{i:04d}.yaml", body))
        rids.append(rid)
        time.sleep(every)
    watcher.wait(rids, timeout)
    out = watcher.latencies(rids)
    note(**{label: out})
    return out


def sets_every(cfg, seconds: float, stop: threading.Event, pauses: list) -> None:
    """A snapshot set every `seconds` while the series run (their pauses kept)."""
    while not stop.wait(seconds):
        code, m = backup.run(cfg, "take")
        if code == 0:
            pauses.append(m.paused_seconds)


def large_bodies(work: Path, n: int, mb: float, tag: str) -> list[tuple[str, bytes]]:
    """n generated reports of about mb MB each (bench/gen_reports.py through pipeline_bench.make_set), each
    with a report id of its own: (report id, bytes)."""
    from pipeline_bench import make_set

    out = []
    for f in make_set("generated", work, n * mb, mb, tag=tag)[:n]:
        text = f.read_bytes()
        rid = re.search(rb"report_id: (\S+)", text).group(1).decode()
        out.append((rid, text))
    return out


def pull_rate(cfg, prefix: str) -> dict:
    """How fast the subscriber pulled the reports named prefix-*: their committed pulls in the journal, the
    first to the last."""
    times = [dt.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
             for _, e in journal.committed(DataRoot(cfg.data_root), stage="sync")
             if e.get("op") == "begin" and str((e.get("info") or {}).get("remote", "")).startswith(prefix)]
    if len(times) < 2:
        return {"pulls": len(times)}
    span = max(times) - min(times)
    return {"pulls": len(times), "seconds": round(span, 1), "messages_per_s": round((len(times) - 1) / span, 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--small", type=int, default=40)
    p.add_argument("--small-every", type=float, default=1.0)
    p.add_argument("--large", type=int, default=4)
    p.add_argument("--large-mb", type=float, default=24)
    p.add_argument("--large-every", type=float, default=20.0)
    p.add_argument("--poll-minutes", type=int, default=1, help="the polling run's [schedule] pipeline, <n>min")
    p.add_argument("--flood", type=int, default=300)
    p.add_argument("--set-every", type=float, default=60.0)
    p.add_argument("--work", type=Path, default=None)
    args = p.parse_args()
    log.setup()
    work = Path(tempfile.mkdtemp(prefix="aggr-pubsub-", dir=args.work))
    cfg = config.load(overrides={
        "instance": "aggr-pubsub", "data_root": str(work / "data"), "secrets_dir": str(work / "secrets"),
        "db.port": free_port(), "webmirror.port": free_port(), "backup.repository": str(work / "repo"),
        "host.min_free_gb": 1, "monitoring.textfile_dir": str(work / "metrics"), "history.dir": str(work / "history"),
        "status.page_dir": str(work / "status"), "broker.enabled": True,
        "schedule.pipeline": f"{args.poll_minutes}min", "images.tag": "pubsub-bench"})
    r: dict = {"poll_interval_s": args.poll_minutes * 60, "set_every_s": args.set_every}
    remove_instance(cfg)
    stop_sets = threading.Event()
    pauses: list[float] = []
    try:
        report = rebuild.rebuild(cfg, sample=True)
        r["rebuild_arrivals"] = report.notes().get("arrivals")
        cfg = config.derive(cfg, {"collectors": [collector.entry(cfg)]})  # what rebuild --sample added
        assert backup.run(cfg, "init")[0] == 0
        sets = threading.Thread(target=sets_every, args=(cfg, args.set_every, stop_sets, pauses), daemon=True)
        sets.start()
        watcher = Watcher(cfg)
        r["broker_small"] = run_series(cfg, watcher, "broker_small",
                                       [(f"20161208T000{i:03d}Z_AS7922_bsmall{i:04d}", small_body(
                                           f"20161208T000{i:03d}Z_AS7922_bsmall{i:04d}")) for i in range(args.small)],
                                       args.small_every, 300)
        r["broker_large"] = run_series(cfg, watcher, "broker_large", large_bodies(work, args.large, args.large_mb,
                                                                                    "blarge"), args.large_every, 900)
        # Polling: nothing consumes the queue; the pipeline runs every poll interval, as `invoke schedule` has it.
        subscriber.stop(cfg)
        stop_poll = threading.Event()

        def poll_loop():
            while not stop_poll.wait(args.poll_minutes * 60):
                pipeline.run(cfg)
        poller = threading.Thread(target=poll_loop, daemon=True)
        poller.start()
        r["polling_small"] = run_series(cfg, watcher, "polling_small",
                                        [(f"20161208T001{i:03d}Z_AS7922_psmall{i:04d}", small_body(
                                            f"20161208T001{i:03d}Z_AS7922_psmall{i:04d}")) for i in range(args.small)],
                                        args.small_every, args.poll_minutes * 60 * 3 + 300)
        r["polling_large"] = run_series(cfg, watcher, "polling_large", large_bodies(work, args.large, args.large_mb,
                                                                                     "plarge"), args.large_every,
                                        args.poll_minutes * 60 * 3 + 900)
        stop_poll.set()
        poller.join()
        pipeline.run(cfg)
        # The flood: one subscriber drains what arrives at once.
        subscriber.start(cfg)
        flood = [(f"20161208T002{i:03d}Z_AS7922_flood{i:04d}", small_body(f"20161208T002{i:03d}Z_AS7922_flood{i:04d}"))
                 for i in range(args.flood)]
        r["flood"] = run_series(cfg, watcher, "flood", flood, 0.0, 1800)
        r["flood"]["subscriber"] = pull_rate(cfg, "flood-")
        watcher.stop.set()
        r["set_pauses_s"] = {"n": len(pauses), "max": max(pauses, default=None),
                             "median": statistics.median(pauses) if pauses else None}
    finally:
        stop_sets.set()
        remove_instance(cfg)
    print(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
