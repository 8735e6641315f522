"""The importer and a set's database part over TLS against the same without (issue 12, "Speed": at most 20%
more), on one host, alternating (plain, tls, plain, tls, ...) so that any drift of the machine touches both.

    ./run python bench/tls_bench.py --mb 200 [--rounds 2] [--modes plain,tls,remote] [--work /var/tmp]

Each run is an instance of its own (`rebuild`; with `db.tls` it makes the certificates), the same generated
reports put into raw/, the sanitizer run, then timed: the importer stage in its container (post-process and
import through FerretDB, over TLS or not), and a first snapshot set's database part (FerretDB's version and
the counts, then the physical copy, which does not go through FerretDB, and the portable dump, which does:
`portable_dump = "every"`), from restic's own start and end times of those snapshots. `remote` puts the
database on the other instance of a pair on this Docker Engine (tests/instances.py: its ports published on
the gateway of the Aggregator's network, TLS on every hop), which stands for a second host without a real
network between them. Prints one JSON document; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from dr_bench import instance, note, ok, part_times, timed  # noqa: E402

from common import config, log  # noqa: E402
from dr.jobs import backup, pipeline, rebuild  # noqa: E402
from instances import two_instances  # noqa: E402


def stage_ok(summary) -> None:
    if summary.exit_code != 0:
        raise SystemExit(f"stage {summary.stage} failed: {summary.errors[:3]}")


@contextlib.contextmanager
def aggregator(folder: Path, mode: str):
    """The Aggregator of one run, rebuilt: plain or tls on one host, or (remote) with its database on the
    other instance of a pair on this Docker Engine (tests/instances.py), over TLS."""
    if mode == "remote":
        with two_instances(folder, "aggr-tlsb", **{"backup.portable_dump": "every"}) as (app, dbh):
            rebuild.rebuild(dbh)
            rebuild.rebuild(app)
            yield app
        return
    with instance(folder, f"aggr-tlsb-{mode}", **{"db.tls": mode == "tls", "backup.portable_dump": "every"}) as cfg:
        rebuild.rebuild(cfg)
        yield cfg


def one_run(work: Path, files: list[Path], mode: str, i: int) -> dict:
    folder = work / f"{mode}-{i}"
    with aggregator(folder, mode) as cfg:
        dest = cfg.data_root_path / "raw" / "bench"
        dest.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, dest / f.name)
        stage_ok(pipeline.run_stage(cfg, "sanitize"))
        result, importer_seconds = timed(pipeline.run_stage, cfg, "importer")
        stage_ok(result)
        ok(backup.run(cfg, "init"), "repo-init")
        m, set_seconds = timed(lambda: ok(backup.run(config.derive(cfg, {"backup.portable_dump": "every"}),
                                                     "take"), "snapshot"))
        t = part_times(cfg, folder).get(m.set_id, {})
        began = t["files"]["start"] if m.database_beside_files else t["files"]["end"]
        row = {"mode": mode, "importer_seconds": importer_seconds, "documents": sum(m.database.collections.values()),
               "database_part_seconds": round((t["db"]["end"] - began).total_seconds(), 1),
               "copy_seconds": t["pg"]["seconds"], "dump_seconds": t["db"]["seconds"], "set_seconds": set_seconds}
    shutil.rmtree(folder, ignore_errors=True)
    note(**row)
    return row


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=float, default=200, help="size of the generated raw reports")
    p.add_argument("--report-mb", type=float, default=16)
    p.add_argument("--rounds", type=int, default=2, help="how many rounds of the modes")
    p.add_argument("--modes", default="plain,tls", help="plain, tls (one host), remote (the database on the "
                   "other instance of a pair, over TLS), comma-separated; the first is the baseline")
    p.add_argument("--work", type=Path, default=None)
    args = p.parse_args()
    log.setup()
    work = Path(tempfile.mkdtemp(prefix="aggr-tlsbench-", dir=args.work))
    try:
        from pipeline_bench import make_set

        with redirect_stdout(sys.stderr):
            files = make_set("generated", work, args.mb, args.report_mb)
        modes = args.modes.split(",")
        rows = [one_run(work, files, mode, i) for i in range(args.rounds) for mode in modes]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out: dict = {"mb": args.mb, "runs": rows}
    base = modes[0]
    for key in ("importer_seconds", "database_part_seconds", "dump_seconds"):
        medians = {m: statistics.median(r[key] for r in rows if r["mode"] == m) for m in modes}
        out[key] = {**{f"{m}_median": v for m, v in medians.items()},
                    **{f"{m}_vs_{base}": round(v / medians[base], 2) if medians[base] else None
                       for m, v in medians.items() if m != base}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
