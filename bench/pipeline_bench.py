"""Pipeline throughput and memory (docs/benchmarks.md reports its output; nothing here is asserted).

    ./run python bench/pipeline_bench.py --set samples          # the built-in samples
    ./run python bench/pipeline_bench.py --set generated --mb 1000 [--report-mb 32]

Measures, on the same files:
- baseline: libyaml load + dump of every document (yaml.CSafeLoader / CSafeDumper), one core;
- sanitize with 1 worker (per core) and with every core, as the real stage (`python -m stages.sanitize`);
- importer (post-process + import into a throwaway `db` container of our image);
- sync from a `collector` container over SSH on loopback (generated set only);
and the peak RSS of each stage process and its workers, next to the largest report.
Needs the images (`invoke build`) and a running Docker daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import config, db  # noqa: E402
from dr import configfile  # noqa: E402
from stages.layout import DataRoot  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def baseline(files: list[Path]) -> float:
    """MB/s of a plain CSafeLoader load + CSafeDumper dump, document by document, one core."""
    total, start = 0, time.perf_counter()
    for f in files:
        with open(f, "rb") as fh:
            try:
                for doc in yaml.load_all(fh, Loader=yaml.CSafeLoader):
                    yaml.dump(doc, Dumper=yaml.CSafeDumper)
            except yaml.YAMLError:
                pass  # the samples include broken reports; count the bytes read all the same
        total += f.stat().st_size
    return total / 1e6 / (time.perf_counter() - start)


# Runs one stage as a child and prints the peak RSS (KB) of it and its workers: a fresh process per stage,
# because ru_maxrss of RUSAGE_CHILDREN is the largest of every child ever waited for.
_WRAPPER = ("import resource, subprocess, sys; "
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); "
            "sys.stderr.write('\\nMAXRSS %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
            "sys.exit(r.returncode)")


def run_stage(stage: str, cfg_file: Path) -> tuple[dict, float, int]:
    """Run a stage as its own process; (summary, seconds, peak RSS in MB of it and its workers)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _WRAPPER, sys.executable, "-m", f"stages.{stage}",
                          "--config", str(cfg_file), "--json"], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    rss_kb = int(out.stderr.rsplit("MAXRSS ", 1)[1].split()[0])
    return json.loads(out.stdout), seconds, rss_kb // 1024


def write_cfg(path: Path, values: dict) -> Path:
    cfg = config.load(overrides=values)
    path.write_text(configfile.to_toml(cfg.as_dict()))
    return path


def make_set(kind: str, work: Path, mb: float, report_mb: float) -> list[Path]:
    src = work / "set"
    if kind == "samples":
        src.mkdir()
        for f in (ROOT / "samples" / "ooni-legacy").iterdir():
            if not f.name.endswith((".md", ".json")):
                shutil.copy(f, src / f.name)
    else:
        # A few distinct reports, replicated with new report ids (different content, cheap to make).
        base = work / "base"
        distinct = max(1, min(8, int(mb / report_mb)))
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_reports.py"), str(base),
                        str(distinct * report_mb), "--report-mb", str(report_mb)], check=True)
        src.mkdir()
        total, n = 0, 0
        bases = sorted(base.iterdir())
        while total < mb * 1e6:
            b = bases[n % len(bases)]
            text = b.read_bytes().replace(b"report_id: bench", f"report_id: copy{n:05d}x".encode(), 1)
            (src / f"report-{n:05d}.yaml").write_bytes(text)
            total += len(text)
            n += 1
    return sorted(src.iterdir())


def start_db(work: Path):
    """A database of its own (postgres + db, as the drills' sandbox starts it) with the importer's
    collections; returns (sandbox.Database, its port, the secrets folder with the role passwords)."""
    from dr import sandbox
    from stages import schema

    secrets_dir = work / "secrets"
    cfg = config.load(overrides={"instance": "aggr-bench-db", "secrets_dir": str(secrets_dir)})
    database = sandbox.start_database(cfg)
    owner = db.client_as(cfg.db, secrets_dir, "owner", host="127.0.0.1", port=database.port)
    schema.ensure(owner[cfg.db.database])
    owner.close()
    return database, database.port, secrets_dir


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--set", choices=("samples", "generated"), default="samples")
    p.add_argument("--mb", type=float, default=1000)
    p.add_argument("--report-mb", type=float, default=32)
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aggr-bench-", dir=args.work))
    results: dict = {"set": args.set, "cores": os.cpu_count()}
    container = None
    try:
        files = make_set(args.set, work, args.mb, args.report_mb)
        size = sum(f.stat().st_size for f in files)
        results.update(reports=len(files), mb=round(size / 1e6, 1),
                       largest_report_mb=round(max(f.stat().st_size for f in files) / 1e6, 1))
        results["baseline_load_dump_mb_s_per_core"] = round(baseline(files), 2)
        print(json.dumps(results), file=sys.stderr, flush=True)

        container, port, secrets_dir = start_db(work)
        for workers in (1, 0):
            root = work / f"data-{workers}"
            dr = DataRoot(root).ensure()
            shutil.copytree(work / "set", dr.state("raw") / "bench")
            cfg_file = write_cfg(work / f"cfg-{workers}.toml", {
                "data_root": str(root), "secrets_dir": str(secrets_dir), "db.port": port,
                "pipeline.workers": workers})
            summary, seconds, rss = run_stage("sanitize", cfg_file)
            label = "sanitize_1_worker" if workers == 1 else f"sanitize_{os.cpu_count()}_workers"
            results[label] = {"seconds": round(seconds, 1), "mb_s": round(size / 1e6 / seconds, 2),
                              "outcomes": summary["outcomes"], "peak_rss_mb": rss}
            print(json.dumps({label: results[label]}), file=sys.stderr, flush=True)
            if workers == 0:
                staged = sum(f.stat().st_size for f in dr.state("staging").iterdir())
                summary, seconds, rss = run_stage("importer", cfg_file)
                results["importer"] = {"seconds": round(seconds, 1), "mb_s": round(staged / 1e6 / seconds, 2),
                                       "outcomes": summary["outcomes"], "peak_rss_mb": rss}
        results["sanitize_vs_baseline_per_core"] = round(
            results["sanitize_1_worker"]["mb_s"] / results["baseline_load_dump_mb_s_per_core"], 2)
        if args.set == "generated":
            results["sync"] = bench_sync(work, files, size)
    finally:
        if container is not None:
            from dr import docker_api, sandbox
            sandbox.stop_database(container)
            docker_api.remove_network("aggr-bench-db")
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


def bench_sync(work: Path, files: list[Path], size: int) -> dict:
    import docker

    from dr import collector

    cfg = config.load(overrides={"instance": "aggr-bench", "secrets_dir": str(work / "secrets")})
    entry = collector.start(cfg, port=free_port())
    try:
        c = docker.from_env().containers.get(collector.container_name(cfg))
        c.exec_run(["sh", "-c", "rm -f /srv/collector/archive/*"])
        subprocess.run(["tar", "-C", str(work / "set"), "-cf", str(work / "set.tar"), "."], check=True)
        with open(work / "set.tar", "rb") as fh:
            c.put_archive("/srv/collector/archive", fh.read())
        c.exec_run(["chown", "-R", "collector:collector", "/srv/collector/archive"])
        root = work / "data-sync"
        cfg_file = write_cfg(work / "cfg-sync.toml", {"data_root": str(root), "collectors": [entry]})
        summary, seconds, rss = run_stage("sync", cfg_file)
        return {"seconds": round(seconds, 1), "mb_s": round(size / 1e6 / seconds, 2),
                "outcomes": summary["outcomes"], "peak_rss_mb": rss}
    finally:
        collector.stop(cfg)


if __name__ == "__main__":
    main()
