"""What holding pulled reports on a collector until a release costs it (issue 22, item 6): the bytes per report
a collector keeps, measured by a real pull, and from them and an assumed report rate the extra bytes a collector
holds for an off-site copy every hour, 6 hours or day (docs/benchmarks.md reports its output; nothing here is
asserted).

    ./run python bench/hold_bench.py                                   # the samples and a 256 MB generated set
    ./run python bench/hold_bench.py --mb 1000 --report-mb 32 --work /var/tmp [--reports-per-hour 10,100,1000]
    (the second: the 1 GB set of 32 MB reports the importer's throughput was measured on)

For each set (the built-in samples: what the sample collector's image holds; and bench/gen_reports.py's generated
set) a `collector` container of our image (the sample collector, dr/services/collector.py, instance
aggr-holdrule) gets the reports in its archive, and the real sync stage (`python -m stages.sync`, as
bench/pipeline_bench.py runs it) pulls them, twice from a fresh archive and a fresh data root:
- `[sync] release = "pulled"`, the plain figure: the collector deletes each report once the copy here is
  verified, so it keeps nothing;
- `"set"` (what `"offsite"` does too, until a later release): each pulled report moved into `.pulled/`.
After each, on the collector: the files left and their bytes (apparent: the sum of their sizes) and the disk they take
(their blocks: `find -printf %b`, as du counts); and sync's own account of what it holds (`held`, `held_bytes`: what the status rule
collector_unreleased compares with its limit) and how long it took.

From the bytes per report held (sync's held_bytes / held) and per hour of reports:
  held at its peak = rate x (off-site interval + snapshot period)
(a release after an off-site copy frees what the newest copied set holds; that set may be up to one snapshot
period older than the copy), and the oldest held report is then about as old. The rate is NOT measured here:
reports per hour per collector are assumed (--reports-per-hour), and the ceiling is the importer's throughput
measured in docs/benchmarks.md (--import-mb-s: 7.86 MB/s, the 1 GB generated set, issue 11 item 5; for the
generated set only): a collector that sends more than the Aggregator imports grows a backlog whatever the
release does.
Prints one JSON document; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from pipeline_bench import free_port, make_set, run_stage, write_cfg  # noqa: E402

from common import config, runner  # noqa: E402
from dr.engine import docker_api  # noqa: E402
from dr.services import collector, stack  # noqa: E402

INSTANCE = "aggr-holdrule"
HOUR = 3600
INTERVALS = {"hourly": HOUR, "6h": 6 * HOUR, "daily": 24 * HOUR}  # the off-site copy's period
SNAPSHOT_SECONDS = HOUR  # [schedule] snapshot's default
PIPELINE_SECONDS = 300  # [schedule] pipeline's default: a report waits up to this long for its pull


def on_collector(container, script: str) -> str:
    out = container.exec_run(["sh", "-c", script], user="collector")
    if out.exit_code != 0:
        raise SystemExit(f"on the collector: {script}: {out.output.decode(errors='replace')}")
    return out.output.decode()


def what_it_keeps(container) -> dict:
    """The files the collector keeps under its archive folder (.pulled/ included), their apparent bytes and
    the disk they take."""
    a = collector.ARCHIVE
    files = int(on_collector(container, f"find {a} -type f | wc -l"))
    apparent = sum(int(n) for n in on_collector(container, f"find {a} -type f -printf '%s\\n'").split())
    disk = 512 * sum(int(n) for n in on_collector(container, f"find {a} -type f -printf '%b\\n'").split())
    return {"files": files, "bytes": apparent, "disk_bytes": disk}


def fill(container, work: Path) -> None:
    """A fresh archive on the collector: every report of work/set, nothing held."""
    on_collector(container, f"rm -rf {collector.ARCHIVE}/* {collector.ARCHIVE}/.pulled")
    tar = work / "set.tar"
    runner.run(["tar", "-C", str(work / "set"), "-cf", str(tar), "."], quiet=True)
    container.put_archive(collector.ARCHIVE, tar.read_bytes())
    container.exec_run(["chown", "-R", "collector:collector", collector.ARCHIVE])


def pull(container, entry: dict, work: Path, mode: str) -> dict:
    """The sync stage with [sync] release = mode from a fresh archive into a fresh data root."""
    fill(container, work)
    root = work / f"data-{mode}"
    shutil.rmtree(root, ignore_errors=True)
    cfg_file = write_cfg(work / f"cfg-{mode}.toml", {"data_root": str(root), "collectors": [entry],
                                                     "sync.release": mode, "sync.reserve_mb": 0})
    summary, seconds, rss = run_stage("sync", cfg_file)
    (c,) = summary["collectors"]
    shutil.rmtree(root, ignore_errors=True)
    return {"sync_seconds": round(seconds, 2), "pulled": c["pulled"], "pulled_bytes": c["bytes"],
            "held": c.get("held", 0), "held_bytes": c.get("held_bytes", 0), "collector_keeps": what_it_keeps(container)}


def measure(kind: str, work: Path, mb: float, report_mb: float, container, entry: dict) -> dict:
    set_dir = work / "set"
    shutil.rmtree(set_dir, ignore_errors=True)
    shutil.rmtree(work / "base", ignore_errors=True)
    files = make_set(kind, work, mb, report_mb)
    sizes = [f.stat().st_size for f in files]
    out = {"reports": len(files), "bytes": sum(sizes), "bytes_per_report_mean": round(statistics.mean(sizes)),
           "bytes_per_report_median": round(statistics.median(sizes)), "largest": max(sizes)}
    for mode in ("pulled", "set"):
        out[f"release_{mode}"] = pull(container, entry, work, mode)
        print(json.dumps({kind: {mode: out[f"release_{mode}"]}}), file=sys.stderr, flush=True)
    held = out["release_set"]
    out["held_bytes_per_report"] = round(held["held_bytes"] / held["held"]) if held["held"] else None
    out["disk_bytes_per_report"] = round(held["collector_keeps"]["disk_bytes"] / held["held"]) if held["held"] else None
    return out


def hold(bytes_per_report: float, disk_per_report: float, rates: list[float], import_mb_s: float | None) -> list[dict]:
    """For each rate (reports per hour per collector; and the importer's ceiling in bytes, when given) and each
    off-site interval: the bytes held at the peak, the disk they take, and the oldest held report's age then."""
    rows = []
    wanted = [(f"{r:g} reports/h (assumed)", r) for r in rates]
    if import_mb_s:  # reports per hour at the importer's throughput
        wanted.append((f"importer ceiling {import_mb_s:g} MB/s", import_mb_s * 1e6 * HOUR / bytes_per_report))
    for label, per_hour in wanted:
        row = {"rate": label, "reports_per_hour": round(per_hour, 1), "bytes_per_hour": round(per_hour * bytes_per_report)}
        for name, interval in INTERVALS.items():
            hours = (interval + SNAPSHOT_SECONDS) / HOUR
            row[name] = {"held_bytes": round(per_hour * hours * bytes_per_report),
                         "disk_bytes": round(per_hour * hours * disk_per_report),
                         "oldest_hours": round(hours + PIPELINE_SECONDS / HOUR, 2)}
        rows.append(row)
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=float, default=256, help="the generated set's size")
    p.add_argument("--report-mb", type=float, default=8, help="the generated reports' mean size")
    p.add_argument("--reports-per-hour", default="10,100,1000", help="assumed rates per collector, comma-separated")
    p.add_argument("--import-mb-s", type=float, default=7.86, help="the importer's measured throughput (the ceiling)")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = p.parse_args()
    rates = [float(r) for r in args.reports_per_hour.split(",")]
    work = Path(tempfile.mkdtemp(prefix="aggr-holdbench-", dir=args.work))
    cfg = config.load(overrides={"instance": INSTANCE, "secrets_dir": str(work / "secrets")})
    results: dict = {"snapshot_seconds": SNAPSHOT_SECONDS, "pipeline_seconds": PIPELINE_SECONDS,
                     "import_mb_s": args.import_mb_s}
    try:
        entry = collector.start(cfg, port=free_port())
        import docker

        container = docker.from_env().containers.get(collector.container_name(cfg))
        for kind in ("samples", "generated"):
            m = measure(kind, work, args.mb, args.report_mb, container, entry)
            if m["held_bytes_per_report"]:
                # the importer's throughput was measured on the generated set (its 32 MB reports), not on the
                # samples' small ones, where the per-report cost dominates: no ceiling for them
                ceiling = args.import_mb_s if kind == "generated" else None
                m["hold"] = hold(m["held_bytes_per_report"], m["disk_bytes_per_report"], rates, ceiling)
            results[kind] = m
    finally:
        collector.stop(cfg)
        docker_api.remove_network(stack.network_name(cfg))
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
