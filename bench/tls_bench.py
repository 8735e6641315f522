"""The importer and a set's database part over TLS against the same without (issue 12, "Speed": at most 20%
more), on one host, alternating (plain, tls, plain, tls, ...) so that any drift of the machine touches both.

    ./run python bench/tls_bench.py --mb 200 [--rounds 2] [--work /var/tmp]

Each run is an instance of its own (`rebuild`; with `db.tls` it makes the certificates), the same generated
reports put into raw/, the sanitizer run, then timed: the importer stage in its container (post-process and
import through FerretDB, over TLS or not), and a first snapshot set's database part (FerretDB's version and
the counts, then the physical copy, which does not go through FerretDB, and the portable dump, which does:
`portable_dump = "every"`), from restic's own start and end times of those snapshots. Prints one JSON
document; nothing is asserted. Across two hosts: not yet (docs/tls.md, TODO).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from dr_bench import instance, note, ok, part_times, timed  # noqa: E402

from common import config, log  # noqa: E402
from dr import backup, pipeline, rebuild  # noqa: E402


def stage_ok(result) -> None:
    if result.exit_code != 0:
        raise SystemExit(f"stage {result.stage} failed: {result.summary.errors[:3]}")


def one_run(work: Path, files: list[Path], tls: bool, i: int) -> dict:
    mode = "tls" if tls else "plain"
    folder = work / f"{mode}-{i}"
    with instance(folder, f"aggr-tlsb-{mode}", **{"db.tls": tls, "backup.portable_dump": "every"}) as cfg:
        rebuild.rebuild(cfg)
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
    p.add_argument("--rounds", type=int, default=2, help="how many plain/tls pairs")
    p.add_argument("--work", type=Path, default=None)
    args = p.parse_args()
    log.setup()
    work = Path(tempfile.mkdtemp(prefix="aggr-tlsbench-", dir=args.work))
    try:
        from pipeline_bench import make_set

        with redirect_stdout(sys.stderr):
            files = make_set("generated", work, args.mb, args.report_mb)
        rows = [one_run(work, files, tls, i) for i in range(args.rounds) for tls in (False, True)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out: dict = {"mb": args.mb, "runs": rows}
    for key in ("importer_seconds", "database_part_seconds", "dump_seconds"):
        plain = statistics.median(r[key] for r in rows if r["mode"] == "plain")
        tls = statistics.median(r[key] for r in rows if r["mode"] == "tls")
        out[key] = {"plain_median": plain, "tls_median": tls, "tls_vs_plain": round(tls / plain, 2) if plain else None}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
