"""Pipeline throughput and memory (docs/benchmarks.md reports its output; nothing here is asserted).

    ./run python bench/pipeline_bench.py --set samples          # the built-in samples
    ./run python bench/pipeline_bench.py --set generated --mb 1000 [--report-mb 32]
    ./run python bench/pipeline_bench.py --set generated --mb 300 --only-importer --compare-importer ../before

Measures, on the same files:
- baseline: libyaml load + dump of every document (yaml.CSafeLoader / CSafeDumper), one core;
- sanitize with 1 worker (per core) and with every core, as the real stage (`python -m stages.sanitize`);
- importer (post-process + import into a throwaway postgres + db pair of our images), with the CPU seconds
  of its processes and of each database container, and how busy the machine was meanwhile;
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

from common import config  # noqa: E402
from database import db  # noqa: E402
from dr.machine import configfile  # noqa: E402
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
# Also the CPU seconds of the stage and its workers (user + system), to say where the time went.
_WRAPPER = ("import resource, subprocess, sys; "
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); "
            "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "sys.stderr.write('\\nMAXRSS %d CPU %.2f\\n' % (u.ru_maxrss, u.ru_utime + u.ru_stime)); "
            "sys.exit(r.returncode)")

LAST_CPU: dict = {}  # the CPU seconds of the last stage run_stage ran (its process and its workers)


def run_stage(stage: str, cfg_file: Path, cwd: Path = ROOT) -> tuple[dict, float, int]:
    """Run a stage as its own process, from the checkout at cwd (`python -m` imports from there); (summary,
    seconds, peak RSS in MB of it and its workers)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _WRAPPER, sys.executable, "-m", f"stages.{stage}",
                          "--config", str(cfg_file), "--json"], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    rss_kb, _, cpu = out.stderr.rsplit("MAXRSS ", 1)[1].split()[:3]
    LAST_CPU["seconds"] = float(cpu)
    return json.loads(out.stdout), seconds, int(rss_kb) // 1024


def container_cpu(database) -> dict[str, float]:
    """CPU seconds used so far by each container of the database (PostgreSQL, FerretDB), from Docker."""
    out = {}
    for c in database.containers:
        wrapped = c.get_wrapped_container()
        stats = wrapped.stats(stream=False)
        out[wrapped.name] = stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
    return out


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of every core so far, from /proc/stat."""
    values = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def write_cfg(path: Path, values: dict) -> Path:
    cfg = config.load(overrides=values)
    path.write_text(configfile.to_toml(cfg.as_dict()))
    return path


def make_set(kind: str, work: Path, mb: float, report_mb: float, tag: str = "") -> list[Path]:
    """The raw reports of a set in work/set<tag>/: the samples, or generated ones (tag: a second set with
    report ids of its own)."""
    src = work / f"set{tag}"
    if kind == "samples":
        src.mkdir()
        for f in (ROOT / "samples" / "ooni-legacy").iterdir():
            if not f.name.endswith((".md", ".json")):
                shutil.copy(f, src / f.name)
    else:
        # A few distinct reports, replicated with new report ids (different content, cheap to make).
        base = work / "base"
        distinct = max(1, min(8, int(mb / report_mb)))
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_reports.py"), str(base),
                        str(distinct * report_mb), "--report-mb", str(report_mb)], check=True,
                       stdout=sys.stderr)  # what it says is progress: a caller's stdout may be JSON
        src.mkdir()
        total, n = 0, 0
        bases = sorted(base.iterdir())
        while total < mb * 1e6:
            b = bases[n % len(bases)]
            text = b.read_bytes().replace(b"report_id: bench", f"report_id: copy{tag}{n:05d}x".encode(), 1)
            (src / f"report-{n:05d}.yaml").write_bytes(text)
            total += len(text)
            n += 1
    return sorted(src.iterdir())


def start_db(work: Path):
    """A database of its own (postgres + db, as the drills' sandbox starts it) with the importer's
    collections; returns (sandbox.Database, its port, the secrets folder with the role passwords)."""
    from database import schema
    from dr.drills import sandbox

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
    p.add_argument("--only-importer", action="store_true",
                   help="skip the baseline, the 1-worker sanitize and sync: sanitize (every core), then the importer")
    p.add_argument("--compare-importer", type=Path, default=None, metavar="CHECKOUT",
                   help="another checkout of the project (e.g. the commit before a change): its importer runs "
                   "first, on a copy of the same staged reports, into the same database emptied again after it")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aggr-bench-", dir=args.work))
    results: dict = {"set": args.set, "cores": os.cpu_count()}
    container = None
    try:
        files = make_set(args.set, work, args.mb, args.report_mb)
        size = sum(f.stat().st_size for f in files)
        results.update(reports=len(files), mb=round(size / 1e6, 1),
                       largest_report_mb=round(max(f.stat().st_size for f in files) / 1e6, 1))
        if not args.only_importer:
            results["baseline_load_dump_mb_s_per_core"] = round(baseline(files), 2)
        print(json.dumps(results), file=sys.stderr, flush=True)

        container, port, secrets_dir = start_db(work)
        for workers in (0,) if args.only_importer else (1, 0):
            root = work / f"data-{workers}"
            dr = DataRoot(root).ensure()
            shutil.copytree(work / "set", dr.state("raw") / "bench")
            cfg_file = write_cfg(work / f"cfg-{workers}.toml", {
                "data_root": str(root), "secrets_dir": str(secrets_dir), "db.port": port,
                "pipeline.workers": workers, "db.role": "importer"})  # as dr/jobs/contract.py configures it
            summary, seconds, rss = run_stage("sanitize", cfg_file)
            label = "sanitize_1_worker" if workers == 1 else f"sanitize_{os.cpu_count()}_workers"
            results[label] = {"seconds": round(seconds, 1), "mb_s": round(size / 1e6 / seconds, 2),
                              "outcomes": summary["outcomes"], "peak_rss_mb": rss}
            print(json.dumps({label: results[label]}), file=sys.stderr, flush=True)
            if workers == 0 and args.compare_importer:
                results["importer_compared"] = compare_importer(args.compare_importer, work, root, cfg_file,
                                                                container, secrets_dir)
                print(json.dumps({"importer_compared": results["importer_compared"]}), file=sys.stderr, flush=True)
            if workers == 0:
                results["importer"] = bench_importer(dr, cfg_file, container)
        if args.only_importer:
            print(json.dumps(results, indent=2))
            return
        results["sanitize_vs_baseline_per_core"] = round(
            results["sanitize_1_worker"]["mb_s"] / results["baseline_load_dump_mb_s_per_core"], 2)
        if args.set == "generated":
            results["sync"] = bench_sync(work, files, size)
    finally:
        if container is not None:
            from dr.drills import sandbox
            from dr.engine import docker_api
            sandbox.stop_database(container)
            docker_api.remove_network("aggr-bench-db")
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


def compare_importer(checkout: Path, work: Path, root: Path, cfg_file: Path, database, secrets_dir: Path) -> dict:
    """Another checkout's importer on a copy of the staged reports; then the database is emptied again (as
    owner: the collections dropped and made again), so that ours starts from the same state."""
    from database import schema

    other = work / "data-compared"
    shutil.copytree(root, other, symlinks=True)
    cfg_other = work / "cfg-compared.toml"
    cfg_other.write_text(cfg_file.read_text().replace(str(root), str(other)))
    result = bench_importer(DataRoot(other), cfg_other, database, cwd=checkout.resolve())
    cfg = config.load(overrides={"instance": "aggr-bench-db", "secrets_dir": str(secrets_dir)})
    owner = db.client_as(cfg.db, secrets_dir, "owner", host="127.0.0.1", port=database.port)
    for name in schema.COLLECTIONS:
        owner[cfg.db.database].drop_collection(name)
    schema.ensure(owner[cfg.db.database])
    owner.close()
    shutil.rmtree(other)
    return {"checkout": str(checkout), **result}


def bench_importer(dr: DataRoot, cfg_file: Path, database, cwd: Path = ROOT) -> dict:
    """The importer on what the sanitizer staged: throughput, memory, and where the CPU went (the stage's
    own processes, each database container, and how busy the machine's cores were: other work on the
    machine shows there)."""
    staged = sum(f.stat().st_size for f in dr.state("staging").iterdir())
    before, (busy0, total0) = container_cpu(database), machine_busy()
    summary, seconds, rss = run_stage("importer", cfg_file, cwd)
    after, (busy1, total1) = container_cpu(database), machine_busy()
    cpu = {"importer_processes": round(LAST_CPU["seconds"], 1),
           **{name: round(after[name] - before.get(name, 0), 1) for name in after}}
    return {"seconds": round(seconds, 1), "mb_s": round(staged / 1e6 / seconds, 2), "staged_mb": round(staged / 1e6, 1),
            "outcomes": summary["outcomes"], "peak_rss_mb": rss, "cpu_seconds": cpu,
            "machine_busy": round((busy1 - busy0) / max(1, total1 - total0), 2)}


def bench_sync(work: Path, files: list[Path], size: int) -> dict:
    import docker

    from dr.services import collector

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
