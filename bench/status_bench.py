"""What publishing the status costs each job (issue 21): dr/watch/publish.py `publish(cfg)` on a generated month
(or three) of a busy Aggregator's job history, beside the plain cost of just reading that history.

    ./run python bench/status_bench.py                       # 30 days of history, 5 repeats
    ./run python bench/status_bench.py --days 90             # the [history] keep_days bound
    ./run python bench/status_bench.py --days 30 --unreached-collector --repeat 5 [--work /var/tmp] [--keep]

No Docker, no instance: a temporary folder holds the job history, a data root, the drills' reports, the gauges'
folder and the page's. The history: the pipeline every 5 minutes (sync with four collectors, sanitize, importer
Summary records; a few quarantined, flagged and failed inputs; the backlog and the free space at each end), a
snapshot set hourly (TakeResult, the portable dump in the first of each day), check, check-offsite and forget
daily, offsite hourly, a restore drill weekly (its report saved in drill.history_dir too), and a few failures
(jobs that stopped with an error, a check that failed, an unreachable collector now and then). The records are
the product's own types, written as history.append writes them (`json.dumps(run.to_dict())` per line, into the
month file of the run's end) but in bulk per month, then pruned once with history.prune: append's fsync and
prune per line would make generating 10,000 lines take minutes. --unreached-collector adds a fifth collector
that was never reached in the whole history (configured, but down or gone).

The database is never probed: publish(cfg) calls compute(cfg) with probe=True; here it runs with
dr.watch.model.compute wrapped to probe=False (the rest is publish's own code). With probe, each role's login
is tried at once, so a running database adds one login's time, a stopped one PROBE_SECONDS (3 s).

Measured --repeat times (median and max): (a) publish(cfg) whole in a fresh subprocess (`--child`): its own
time inside the process, the subprocess's wall time (interpreter start and imports included) and its peak RSS
(its VmHWM in /proc: ru_maxrss would carry the parent's from the fork; also its peak after the imports, before
publish); (b) its parts in this process: history.read, compute (history.read included; and each section of the
model), rules.evaluate, page.render, the gauges' write and the page's; how many results the model typed, and
(once) what typing every run read would take; (c) the plain floor on the same month files history.read reads:
`json.loads` of every line in Python (dropped, and kept in a list), and `wc -l` (a subprocess); (d) the page's
size and the history's.
Prints one JSON document; progress goes to stderr. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from common import config, log, runner  # noqa: E402
from dr.drills import drill_reports  # noqa: E402
from dr.drills.drill_reports import DrillPipeline, DrillQueries, RestoreDrillReport  # noqa: E402
from dr.jobs import history, monitoring  # noqa: E402
from dr.jobs.history import JobRun  # noqa: E402
from dr.jobs.pipeline import PipelineRun  # noqa: E402
from dr.watch import model, page, publish, results, rules  # noqa: E402
from snapshots.results import (  # noqa: E402
    ArtifactsSaved,
    ArtifactsVerdict,
    CheckResult,
    CopyResult,
    DatabaseContent,
    DirectorySummary,
    ForgetResult,
    PhysicalCopy,
    ResticCheck,
    SetVerdict,
    TakeResult,
)
from stages.cli import CollectorPull, Failed, Flagged, Summary  # noqa: E402
from stages.layout import STATE_DIRS, DataRoot  # noqa: E402

COLLECTORS = ("probe-eu-1", "probe-eu-2", "probe-us-1", "probe-asia-1")
UNREACHED = "probe-old-1"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchBenchBenchBenchBenchBenchBenchBench"
REASONS = {"unparseable": 40, "too_large": 6, "not_a_report": 12, "unsafe_tag": 8, "poison": 4}
MB = 1 << 20


def note(**kv):
    print(json.dumps(kv), file=sys.stderr, flush=True)


def overrides(work: Path, unreached: bool) -> dict:
    names = COLLECTORS + ((UNREACHED,) if unreached else ())
    return {"data_root": str(work / "data"), "secrets_dir": str(work / "secrets"),
            "history.dir": str(work / "history"), "drill.history_dir": str(work / "drills"),
            "monitoring.textfile_dir": str(work / "metrics"), "status.page_dir": str(work / "status"),
            "offsite.repository": "rest:https://backup-host:8000/aggregator",
            "collectors": [{"name": n, "host": f"{n}.example.org", "port": 22, "user": "collector",
                            "key_file": str(work / "secrets" / f"{n}.key"), "host_key": HOST_KEY,
                            "archive_path": "/var/lib/ooni/archive"} for n in names]}


# --- the history --------------------------------------------------------------------------------------------

def run_line(job: str, ended: dt.datetime, seconds: float, result=None, error: str | None = None,
             free: int | None = None, waiting: dict[str, int] | None = None) -> JobRun:
    return history.run_of(job, ended - dt.timedelta(seconds=seconds), ended, result, error, free, waiting)


def pipeline_result(rng: random.Random, n: int, unreached: bool) -> PipelineRun:
    """One busy pipeline run: every collector tried, a few reports pulled, sanitized and imported."""
    pulls, pulled = [], 0
    for c in COLLECTORS:
        if c == "probe-asia-1" and rng.random() < 0.03:  # a flaky link
            pulls.append(CollectorPull(c, error=f"ssh: connect to host {c}.example.org port 22: Connection timed out"))
            continue
        k = rng.choice((0, 0, 1, 1, 2, 3))
        pulls.append(CollectorPull(c, reached=True, listed=k + rng.randint(0, 2), pulled=k, left=rng.randint(0, 2),
                                   bytes=k * rng.randint(200_000, 4_000_000)))
        pulled += k
    if unreached:
        pulls.append(CollectorPull(UNREACHED, error=f"ssh: Could not resolve hostname {UNREACHED}.example.org"))
    sync = Summary("sync", {"pulled": pulled} if pulled else {}, sum(p.bytes for p in pulls),
                   round(rng.uniform(2, 9), 3), collectors=pulls)
    sanitize = Summary("sanitize", {}, sync.bytes_in, round(rng.uniform(1, 4) + pulled * 1.5, 3))
    imported = pulled
    if pulled:
        sanitize.count("sanitized", pulled)
    if pulled and rng.random() < 0.01:
        name = f"raw/{rng.choice(COLLECTORS)}/2026-{n:06d}-web_connectivity.yaml"
        sanitize.outcomes["sanitized"] -= 1
        sanitize.quarantine(name, "unparseable", "while scanning a simple key: could not find expected ':'",
                            f"quarantine/unparseable/{Path(name).name}")
        imported -= 1
    if pulled and rng.random() < 0.05:
        sanitize.flagged.append(Flagged(f"staging/2026-{n:06d}.yaml", f"staging/2026-{n:06d}.yaml",
                                        dropped_entries=rng.randint(1, 5)))
    importer = Summary("importer", {"imported": imported} if imported else {}, sanitize.bytes_in,
                       round(rng.uniform(2, 6) + imported * 6.0, 3))
    if imported and rng.random() < 0.004:
        importer.failed.append(Failed(f"reports/2026-{n:06d}.yaml", "write",
                                      "the database acknowledged 412 of 415 measurements"))
        importer.outcomes["imported"] -= 1
        importer.exit_code = 1
    return PipelineRun([sync, sanitize, importer])


def manifest_dirs(rng: random.Random, hours: int) -> dict[str, DirectorySummary]:
    grow = 1 + hours / 24
    return {s: DirectorySummary(files=int(200 * grow) + rng.randint(0, 9), reports=int(100 * grow),
                                bytes=int(40 * MB * grow), digest=f"{rng.getrandbits(256):064x}") for s in STATE_DIRS}


def take_result(rng: random.Random, start: dt.datetime, hours: int, dump: bool) -> TakeResult:
    reports = 5_000 + hours * 24
    counts = {"reports": reports, "measurements": reports * 410}
    sid = start.strftime(model.SET_ID)
    parts = ["files", "pg"] + (["db"] if dump else [])
    return TakeResult(
        format=1, set_id=sid, host="aggregator-1", version="0.1.0", started=history.stamp(start),
        locked=history.stamp(start + dt.timedelta(seconds=2)), ended=history.stamp(start + dt.timedelta(seconds=40)),
        paused_seconds=round(rng.uniform(0.7, 1.2), 2), lock_waited_seconds=round(rng.uniform(0, 30), 2),
        recovered=[], journal_position=hours * 9000, directories=manifest_dirs(rng, hours),
        database=DatabaseContent(counts, "aggregator",
                                 {f"web_connectivity {cc}": [reports // 7, reports * 58]
                                  for cc in ("DE", "FR", "IT", "US", "BR", "IN", "ID")} if dump else None),
        snapshots={k: f"{rng.getrandbits(256):064x}" for k in parts + ["manifest"]},
        added_bytes={"files": rng.randint(1, 40) * MB, "pg": rng.randint(5, 60) * MB}, parts=parts,
        physical=PhysicalCopy(bytes=3_000 * MB + hours * 4 * MB, postgres_version_num=170012, postgres_major=17,
                              ferretdb_version="v1.24.2", database="aggregator", collections=counts,
                              collections_at_start={"reports": reports - 2, "measurements": (reports - 2) * 410}),
        portable_dump=dump,
        artifacts=ArtifactsSaved(saved=False, fingerprint=f"{rng.getrandbits(128):032x}", snapshot="5f2a9c1e",
                                 artifacts=["ferretdb-v1.24.2.tar.gz", "restic-0.18.0"]))


def kept_sets(ids: list[str]) -> list[str]:
    """What forget keeps of the set ids so far (newest first): 24 hourly, 7 daily, 4 weekly."""
    newest = ids[::-1]
    daily = {i[:8]: i for i in ids}  # the last of each day
    weekly: dict[str, str] = {}
    for i in ids:
        weekly[dt.datetime.strptime(i, model.SET_ID).strftime("%G%V")] = i
    return sorted(set(newest[:24]) | set(sorted(daily.values())[-7:]) | set(sorted(weekly.values())[-4:]),
                  reverse=True)


def check_result(rng: random.Random, kept: list[str], ok: bool) -> CheckResult:
    sets = [SetVerdict(s, "ok", []) for s in kept]
    failed = [] if ok else [kept[-1]]
    if not ok:
        sets[-1] = SetVerdict(kept[-1], "FAILED", ["pack 3f9a1c... is damaged: ciphertext verification failed"])
    return CheckResult(ok, ResticCheck(ok, None if ok else "1 pack damaged"), "1/31", sets, failed,
                       ArtifactsVerdict("ok", "5f2a9c1e", ["ferretdb-v1.24.2.tar.gz", "restic-0.18.0"], []),
                       len(kept))


def drill_report(rng: random.Random, start: dt.datetime, set_id: str, set_started: str) -> RestoreDrillReport:
    restore = round(rng.uniform(28, 36), 1)
    return RestoreDrillReport(
        started=history.stamp(start), repository="/var/lib/aggregator-dr/restic", requested="latest",
        set_id=set_id, set_started=set_started, rpo_seconds=int((start - history.parse_time(set_started)).total_seconds()),
        bytes_restored=5_200 * MB, files_restored=218, documents_restored=443_384, database_from="physical copy",
        queries=DrillQueries(112, 5_000), pipeline=DrillPipeline(3, {"sanitize": {"sanitized": 3},
                                                                      "importer": {"imported": 3}}),
        phases={"restore": restore - 5, "start": 4.9, "verify": 0.3}, restore_seconds=restore,
        total_seconds=restore + 6, verdict=drill_reports.PASS, problems=[])


def generate_history(cfg, now: dt.datetime, days: int, unreached: bool, seed: int) -> dict:
    """The job history of the last `days` days before now, written per month file; then pruned once."""
    rng = random.Random(seed)
    start = (now - dt.timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    lines: list[JobRun] = []
    free = 400_000 * MB
    waiting = {"raw": 0, "staging": 0, "reports": 0}
    set_ids: list[str] = []
    newest_take: TakeResult | None = None
    t, n = start, 0
    while t < now:
        minute, hour = t.minute, t.hour
        free -= rng.randint(0, 12) * MB
        # the pipeline, every 5 minutes
        if rng.random() < 0.003:
            lines.append(run_line("pipeline", t + dt.timedelta(seconds=3), 3.0,
                                  error="the database is not running; run `invoke rebuild` first", free=free,
                                  waiting=dict(waiting)))
        else:
            result = pipeline_result(rng, n, unreached)
            secs = sum(s.seconds for s in result.stages) + 1.5
            waiting = {"raw": rng.choice((0, 0, 0, 1, 2)), "staging": rng.choice((0, 0, 1)),
                       "reports": rng.choice((0, 0, 0, 1))}
            lines.append(run_line("pipeline", t + dt.timedelta(seconds=secs), secs, result, free=free,
                                  waiting=dict(waiting)))
        if minute == 30:  # a snapshot set hourly, then the off-site copy
            hours = int((t - start).total_seconds() // 3600)
            if rng.random() < 0.004:
                lines.append(run_line("snapshot", t + dt.timedelta(seconds=610), 610.0,
                                      error="the pipeline's lock was not released within 600 s", free=free))
            else:
                take = take_result(rng, t, hours, dump=hour == 2)
                secs = 600.0 if take.portable_dump else rng.uniform(9, 14)
                lines.append(run_line("snapshot", t + dt.timedelta(seconds=secs), secs, take, free=free,
                                      waiting=dict(waiting)))
                set_ids.append(take.set_id)
                newest_take = take
            ended = t + dt.timedelta(minutes=12)
            if rng.random() < 0.01:
                lines.append(run_line("offsite", ended, 30.0, error="rest-server unreachable: connection refused"))
            elif set_ids:
                kept = kept_sets(set_ids)
                lines.append(run_line("offsite", ended, rng.uniform(20, 90),
                                      CopyResult([set_ids[-1]], kept[1:], len(kept),
                                                 "rest:https://backup-host:8000/aggregator")))
        if minute == 0 and hour == 3 and set_ids:  # forget, check, check-offsite daily
            kept = kept_sets(set_ids)
            gone = sorted(set(set_ids[-48:]) - set(kept))
            lines.append(run_line("forget", t + dt.timedelta(seconds=40), 40.0,
                                  ForgetResult(kept, gone, len(gone) * 4, False)))
            days_in = (t - start).days
            lines.append(run_line("check", t + dt.timedelta(minutes=15), 900.0,
                                  check_result(rng, kept, ok=days_in != days // 2)))
            lines.append(run_line("check-offsite", t + dt.timedelta(minutes=40), 1200.0, check_result(rng, kept, True)))
        if minute == 0 and hour == 4 and t.weekday() == 6 and newest_take is not None:  # a drill weekly
            report = drill_report(rng, t, newest_take.set_id, newest_take.started)
            lines.append(run_line("drill", t + dt.timedelta(seconds=report.total_seconds), report.total_seconds,
                                  report))
            drill_reports.save(cfg, report)
        t += dt.timedelta(minutes=5)
        n += 1
    by_month: dict[Path, list[str]] = {}
    for run in sorted(lines, key=lambda r: (r.ended, r.started)):
        by_month.setdefault(history.month_file(cfg, run.ended_at), []).append(
            json.dumps(run.to_dict(), separators=(",", ":")) + "\n")
    history.folder(cfg).mkdir(parents=True, exist_ok=True, mode=0o700)
    for path, text in by_month.items():
        path.write_text("".join(text))
    removed = history.prune(cfg, now)
    return {"lines": len(lines), "months": len(by_month), "pruned": [p.name for p in removed],
            "jobs": {j: sum(1 for r in lines if r.job == j) for j in sorted({r.job for r in lines})}}


# --- the data root ------------------------------------------------------------------------------------------

def put(path: Path, when: float, size: int, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rng.randbytes(size))
    os.utime(path, (when, when))


def generate_data_root(cfg, now: dt.datetime, seed: int) -> dict:
    """Inputs waiting in raw/<collector>/, staging/ and reports/ (a .yaml and its .jsonl), a quarantine per
    reason (each input with its reason file), a few archived reports and a journal."""
    rng = random.Random(seed)
    dr = DataRoot(Path(cfg.data_root)).ensure()
    base = now.timestamp()
    made = {"raw": 0, "staging": 0, "reports": 0, "quarantine": 0, "archive": 0}
    for i in range(180):
        put(dr.state("raw") / rng.choice(COLLECTORS) / f"2026-{i:05d}-web_connectivity.yaml.gz",
            base - rng.uniform(60, 6 * 3600), rng.randint(500, 4000), rng)
        made["raw"] += 1
    for i in range(60):
        put(dr.state("staging") / f"2026-{i:05d}-web_connectivity.yaml", base - rng.uniform(60, 3600),
            rng.randint(500, 4000), rng)
        made["staging"] += 1
    for i in range(40):
        when = base - rng.uniform(60, 3600)
        for ext in (".yaml", ".jsonl"):
            put(dr.state("reports") / f"2026-{i:05d}-web_connectivity{ext}", when, rng.randint(500, 4000), rng)
        made["reports"] += 1
    for reason, count in REASONS.items():
        for i in range(count):
            target = dr.state("quarantine") / reason / f"2026-{i:05d}-{reason}.yaml"
            when = base - rng.uniform(3600, 20 * 86400)
            put(target, when, rng.randint(500, 4000), rng)
            note_path = target.with_name(target.name + ".reason.json")
            note_path.write_text(json.dumps({"reason": reason, "error": "bench", "time": "2026-12-01T00:00:00Z"}))
            made["quarantine"] += 1
    for i in range(100):
        put(dr.state("archive") / "2026" / f"2026-{i:05d}.yaml", base - rng.uniform(3600, 20 * 86400), 2000, rng)
        made["archive"] += 1
    with open(dr.journal, "w") as fh:
        for i in range(20_000):
            stamp = (now - dt.timedelta(seconds=(20_000 - i) * 60)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            fh.write(json.dumps({"op": "move", "stage": "importer", "time": stamp, "txid": f"{i:08x}"},
                                sort_keys=True, separators=(",", ":")) + "\n")
    return made


# --- measuring ----------------------------------------------------------------------------------------------

def no_probe():
    """publish() as it runs after a job, but compute() never logs in to the database."""
    model.compute = functools.partial(model.compute, probe=False)


def peak_rss_mb() -> float:
    """This process's peak RSS so far (VmHWM: reset at exec, unlike ru_maxrss, which a child started by fork and
    exec inherits from its parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc/self/status")


def child(work: Path) -> None:
    """--child: publish(cfg) once in this fresh process; prints its time and its peak RSS before and after."""
    log.setup()
    cfg = config.load(overrides=json.loads((work / "overrides.json").read_text()))
    no_probe()
    before = peak_rss_mb()
    t0 = time.perf_counter()
    publish.publish(cfg)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_after_imports_mb": before}))


def publish_in_child(work: Path) -> dict:
    """publish(cfg) in a fresh `python status_bench.py --child`: its own seconds, the subprocess's wall seconds
    (interpreter and imports included), its peak RSS and its RSS after the imports (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(work)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the child publish exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return {**json.loads(proc.stdout), "wall_seconds": wall}


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def sections(cfg, now: dt.datetime, every: bool) -> tuple[dict[str, float], dict]:
    """compute()'s steps one by one (as model.compute does them, probe off), timed; and how many results the
    model read back into their types, per job, of how many runs read (every: and what typing them all takes)."""
    since = now - dt.timedelta(days=model.history_days(cfg))
    out: dict[str, float] = {}
    read, out["history.read"] = timed(history.read, cfg, since)
    runs, out["Runs (sort)"] = timed(model.Runs, read)
    for name, fn, args in (("pipeline_section", model.pipeline_section, (cfg, runs, now)),
                           ("backups_section", model.backups_section, (cfg, runs, now)),
                           ("restores_section", model.restores_section, (cfg, now)),
                           ("database_section", model.database_section, (cfg, runs, now, False)),
                           ("disk_section", model.disk_section, (cfg, runs, now))):
        _, out[name] = timed(fn, *args)
    typed: dict[str, int] = {}
    for i in runs._typed:  # noqa: SLF001 (what the model asked for: the bench's question)
        typed[runs.runs[i].job] = typed.get(runs.runs[i].job, 0) + 1
    all_runs: dict[str, int] = {}
    for r in runs.runs:
        all_runs[r.job] = all_runs.get(r.job, 0) + 1
    out_typed = {"runs_read": len(runs.runs), "typed": typed, "runs_by_job": all_runs}
    if every:
        _, out_typed["typing_every_run_seconds"] = timed(lambda: [results.typed(r) for r in runs.runs])
    return out, out_typed


def plain_floor(paths: list[Path]) -> dict[str, float]:
    """Just reading the month files: json.loads per line in Python (each line dropped, and all of them kept in a
    list as history.read keeps its runs: the garbage collector then walks the growing heap), and wc -l."""
    def loads(keep: list | None):
        for p in paths:
            with open(p, "rb") as fh:
                for raw in fh:
                    obj = json.loads(raw)
                    if keep is not None:
                        keep.append(obj)

    _, dropped = timed(loads, None)
    _, kept = timed(loads, [])
    _, wc = timed(runner.run, ["wc", "-l", *paths], capture=True, quiet=True)
    return {"json.loads per line": dropped, "json.loads per line, kept": kept, "wc -l": wc}


def stats(values: list[float], digits: int = 4) -> dict:
    return {"median": round(statistics.median(values), digits), "max": round(max(values), digits)}


def measure(cfg, work: Path, repeat: int) -> dict:
    no_probe()
    parts: dict[str, list[float]] = {}
    floor: dict[str, list[float]] = {}
    detail: dict[str, list[float]] = {}
    child_runs = []
    typed: dict = {}
    now = dt.datetime.now(dt.timezone.utc)
    since = now - dt.timedelta(days=model.history_days(cfg))
    read_paths = [p for p in history.files(cfg)
                  if tuple(map(int, history.FILE.match(p.name).groups())) >= (since.year, since.month)]
    for i in range(repeat):
        child_runs.append(publish_in_child(work))
        now = dt.datetime.now(dt.timezone.utc)
        since = now - dt.timedelta(days=model.history_days(cfg))
        one: dict[str, float] = {}
        _, one["history.read"] = timed(history.read, cfg, since)
        m, one["compute (history.read included)"] = timed(model.compute, cfg, now)
        findings, one["rules.evaluate"] = timed(rules.evaluate, m, cfg)
        html, one["page.render"] = timed(page.render, m, findings, cfg)
        _, one["write gauges (monitoring.write_status)"] = timed(monitoring.write_status, cfg,
                                                                 publish.samples(m, findings))
        _, one["write page (render + atomic write)"] = timed(publish.write_page, cfg, m, findings)
        for k, v in one.items():
            parts.setdefault(k, []).append(v)
        for k, v in plain_floor(read_paths).items():
            floor.setdefault(k, []).append(v)
        steps, found = sections(cfg, now, every=i == 0)
        typed = typed or found
        for k, v in steps.items():
            detail.setdefault(k, []).append(v)
        note(repeat=i + 1, publish_seconds=round(child_runs[-1]["seconds"], 3),
             compute=round(one["compute (history.read included)"], 3))
    page_path = Path(cfg.status.page_dir) / publish.PAGE
    all_files = history.files(cfg)
    return {
        "publish_in_fresh_process": {k: stats([c[k] for c in child_runs], 1 if k.endswith("_mb") else 4)
                                     for k in child_runs[0]},
        "parts_seconds": {k: stats(v) for k, v in parts.items()},
        "compute_steps_seconds": {k: stats(v) for k, v in detail.items()},
        "plain_floor_seconds": {k: stats(v) for k, v in floor.items()},
        "typed_results": typed,
        "page_kb": round(page_path.stat().st_size / 1024, 1),
        "page_html_chars": len(html),
        "findings": [f.rule for f in findings],
        "history_mb": round(sum(p.stat().st_size for p in all_files) / 1e6, 2),
        "history_files": [p.name for p in all_files],
        "history_read_mb": round(sum(p.stat().st_size for p in read_paths) / 1e6, 2),
        "history_read_files": [p.name for p in read_paths],
        "history_days_read": model.history_days(cfg),
        "history_lines_read": sum(1 for p in read_paths for _ in open(p, "rb")),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--days", type=int, default=30, help="days of job history to generate")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--unreached-collector", action="store_true",
                   help="a fifth collector configured but never reached in the whole history")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--work", type=Path, default=None, help="scratch folder's parent (default: the system's)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (printed in the JSON)")
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child)
        return
    log.setup()
    work = Path(tempfile.mkdtemp(prefix="aggr-statusbench-", dir=args.work))
    try:
        values = overrides(work, args.unreached_collector)
        (work / "overrides.json").write_text(json.dumps(values))
        cfg = config.load(overrides=values)
        now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
        r: dict = {"days": args.days, "repeat": args.repeat, "unreached_collector": args.unreached_collector,
                   "probe": False, "python": sys.version.split()[0]}
        gen, r["generate_history_seconds"] = timed(generate_history, cfg, now, args.days, args.unreached_collector,
                                                   args.seed)
        r["history"] = gen
        r["data_root"] = generate_data_root(cfg, now, args.seed)
        note(generated=gen["lines"], seconds=round(r["generate_history_seconds"], 1))
        r.update(measure(cfg, work, args.repeat))
        if args.keep:
            r["work"] = str(work)
        print(json.dumps(r, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
