"""Snapshot, restore, drill and rebuild (RTO) measurements on the samples or on a generated data set, with
plain tools on the same data in the same run for comparison (issue 11, "Speed").

    ./run python bench/dr_bench.py --set samples
    ./run python bench/dr_bench.py --set generated --mb 2048 [--work /var/tmp]
    ./run python bench/dr_bench.py --set generated --mb 2048 --bare-host --work /var/tmp

Steps: an instance of its own (rebuild; with the samples pulled through the pipeline, or the generated
reports run through sanitize and importer), repo-init, a first snapshot set with the portable dump
(`backup.portable_dump = "every"`), a no-change set and another one (the default `daily`: no dump, files +
physical copy, what an hourly set is; the second one after the cluster settled, see snapshots()). Each part's own time comes from restic's snapshot summary (backup_start ..
backup_end); a set's database part is from the end of its files snapshot to the end of its physical copy
(the counts around the copy and restic's start included), as the host's wall time includes the backup
container's start.

Then, plain, in the backup image: a repository of its own gets `restic backup` of the same data root and
`pg_basebackup -D - -Ft -X fetch -c fast | restic backup --stdin` of the same cluster (role `backup`, a
pgpass file), first and again (no change), the way a set takes them; the same pipe once more into the
sets' repository (everything deduplicated). Restores: a drill of the latest set; the database restore of
the latest set's physical copy on the live instance (dr/jobs/restore.restore_copy: PostgreSQL stopped,
`pg-restore`, PostgreSQL and FerretDB started, verified); plain `restic restore` of its files and
`restic dump <pg> /postgres.tar | tar x` into an empty folder; the portable dump of the first set restored
into an empty database as `invoke restore --from-dump` does (`snapshots.cli restore --no-files`) and plain
(`restic dump | dbdump restore`); and a rebuild of a second instance (empty data root and database, same
repository) that restores the latest set: its phases are the RTO. `ratios` puts each against its plain
counterpart (the issue's targets); nothing is asserted. Prints one JSON document; progress goes to stderr.

--pause MB (issue 23): after the pipeline, the pause of a first set backed up under the lock and of one from a
cut (backup.cut), each into a repository of its own, beside a walk of the data root alone; then MB more reports
through the pipeline and one more set of each (an hourly set).

    ./run python bench/dr_bench.py --set generated --mb 2048 --pause 300 --work /var/tmp

--bare-host (issue 19): after the pipeline, one set (files and physical copy), then the bare-host drill of it
(docs/runbook.md executed on a simulated fresh Debian server, its Docker data on this host's disk): each
runbook block's time and the phases of the runbook's rebuild on the server (its RTO), beside a rebuild on
this host from the same set (the plain case: no simulated server).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shlex
import shutil
import socket
import sys
import tempfile
import time
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import config, log, secrets  # noqa: E402
from database import db  # noqa: E402
from dr.drills import drill, sandbox  # noqa: E402
from dr.engine import containers  # noqa: E402
from dr.jobs import backup, pipeline, rebuild  # noqa: E402
from dr.jobs import restore as dr_restore  # noqa: E402
from dr.services import stack  # noqa: E402
from snapshots import manifest, pgcopy, sets  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def note(**kv):
    print(json.dumps(kv), file=sys.stderr, flush=True)


@contextmanager
def instance(work: Path, name: str, keep_data: bool = False, **overrides):
    import docker

    from dr.services import collector

    values = {"instance": name, "data_root": str(work / "data"), "secrets_dir": str(work / "secrets"),
              "db.port": free_port(), "webmirror.port": free_port(), "backup.repository": str(work / "repo"),
              "host.min_free_gb": 1, "monitoring.textfile_dir": str(work / "metrics"),
              "drill.history_dir": str(work / "drills"), "drill.work_dir": str(work / "drill"),
              "history.dir": str(work / "history"), "status.page_dir": str(work / "status")}
    values.update(overrides)
    cfg = config.load(overrides=values)
    try:
        yield cfg
    finally:
        collector.stop(cfg)
        stack.down(cfg)
        client = docker.from_env()
        for v in [] if keep_data else client.volumes.list(filters={"name": stack.pg_volume_name(cfg)}):
            v.remove(force=True)
        for net in client.networks.list(names=[stack.network_name(cfg)]):
            net.remove()


def timed(fn, *args, **kwargs):
    start = time.monotonic()
    out = fn(*args, **kwargs)
    return out, round(time.monotonic() - start, 1)


def ok(code_result, what):
    code, result = code_result
    if code != 0:
        raise SystemExit(f"{what} failed (exit {code})")
    return result


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


REPO = "/repo"  # where plain_restic mounts the sets' repository (repo=True)
PG_PASSWORD = "/run/secrets/db-backup-password"
# A pgpass file for the backup role made inside the container from its password file: the password never
# in argv or the environment (printf is a shell builtin).
PGPASS = (f"umask 077; pw=$(head -n1 {PG_PASSWORD}); pw=${{pw//\\\\/\\\\\\\\}}; pw=${{pw//:/\\\\:}}; "
          "printf '%s:*:*:backup:%s\\n' \"$PGHOST\" \"$pw\" > /tmp/pgpass; unset pw; export PGPASSFILE=/tmp/pgpass; ")
# `name seconds` on stdout, around a command
# The plain pipe a set's copy is compared with (the "plain pg_basebackup piped into restic --stdin").
PIPE = ("pg_basebackup -h $PGHOST -p 5432 -U backup -w -D - -Ft -X fetch -c fast | "
        "restic backup --json --stdin --stdin-filename " + pgcopy.COPY_NAME + " > /work/plain-pg-{run}.json")
TIME = 's=$EPOCHREALTIME; {cmd}; e=$EPOCHREALTIME; echo {name} $(python3 -c "print($e - $s)")'


def plain_restic(cfg, work: Path, script: str, label: str, extra_volumes: dict | None = None,
                 repo: bool = False, pg: bool = False) -> str:
    """Run a shell script with plain restic in the backup image (primary repository password) on the
    instance's network; repo: the sets' repository at /repo; pg: the backup role's password file and
    PGHOST (PostgreSQL of cfg's instance)."""
    pw = secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD)
    volumes = {str(cfg.data_root_path): {"bind": "/data", "mode": "ro"}, str(work): {"bind": "/work", "mode": "rw"},
               str(pw): {"bind": "/run/secrets/restic-password", "mode": "ro"}, **(extra_volumes or {})}
    env = {"RESTIC_PASSWORD_FILE": "/run/secrets/restic-password", "RESTIC_CACHE_DIR": "/work/plain-cache"}
    if repo:
        volumes[str(cfg.backup.repository)] = {"bind": REPO, "mode": "rw"}
    if pg:
        volumes[str(secrets.path(cfg.secrets_dir, db.password_name("backup")))] = {"bind": PG_PASSWORD, "mode": "ro"}
        env["PGHOST"] = stack.container_name(cfg, "postgres")
        script = PGPASS + script
    code, out = containers.run_tool(cfg, "backup", ["bash", "-o", "pipefail", "-c", script], volumes,
                                    [stack.network_name(cfg)], label, environment=env)
    if code != 0:
        raise SystemExit(f"{label} failed (exit {code}):\n{out[-2000:]}")
    return out


def seconds_lines(out: str) -> dict[str, float]:
    """The `name seconds` lines of a plain script's stdout."""
    return {m.group(1): round(float(m.group(2)), 1)
            for m in re.finditer(r"^(\w+) ([0-9.]+)$", out, re.MULTILINE)}


def summary_of(path: Path) -> dict:
    """The summary message of a `restic backup --json` output file."""
    for line in reversed(path.read_text().splitlines()):
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("message_type") == "summary":
            return msg
    return {}


def _when(stamp: str) -> dt.datetime:
    """restic's RFC 3339 time with nanoseconds, as a datetime (microseconds)."""
    m = re.match(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", stamp)
    frac = ((m.group(2) or "") + "000000")[:6]
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{'+00:00' if m.group(3) == 'Z' else m.group(3)}")


def part_times(cfg, work: Path) -> dict[str, dict[str, dict]]:
    """{set id: {kind: {start, end, seconds}}} from the sets' restic snapshots (restic records each
    backup's start and end in its snapshot's summary)."""
    out = plain_restic(cfg, work, f"RESTIC_REPOSITORY={REPO} restic snapshots --no-lock --json", "set-times",
                       repo=True)
    times: dict[str, dict[str, dict]] = {}
    for snap in json.loads(out):
        tags = dict(t.split(":", 1) for t in snap.get("tags") or [] if ":" in t)
        summary = snap.get("summary") or {}
        if "set" in tags and "kind" in tags and "backup_start" in summary:
            start, end = _when(summary["backup_start"]), _when(summary["backup_end"])
            times.setdefault(tags["set"], {})[tags["kind"]] = {
                "start": start, "end": end, "seconds": round((end - start).total_seconds(), 1)}
    return times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--set", choices=("samples", "generated"), default="samples")
    p.add_argument("--mb", type=float, default=2048, help="generated: size of the raw reports")
    p.add_argument("--report-mb", type=float, default=32)
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--reuse", type=Path, default=None,
                   help="the scratch folder of an earlier run that was stopped after its pipeline: reuse its "
                        "data root and database (kept afterwards), start again from a new repository")
    p.add_argument("--only-snapshots", action="store_true",
                   help="stop after the snapshot sets and the plain backups")
    p.add_argument("--only-restores", action="store_true",
                   help="with --reuse: keep the repository of that earlier run and measure only the restores "
                        "(drill, database restore, plain restores, the portable dump's, rebuild with restore) "
                        "of its sets")
    p.add_argument("--no-dump", action="store_true",
                   help="no portable dump in any set (portable_dump never; nor its restore): when only the "
                        "physical copy's figures are wanted again")
    p.add_argument("--no-change-series", type=int, default=0, metavar="N",
                   help="with --reuse: only N no-change sets (no portable dump), each followed by the plain pipe "
                        "once, alternating; reports both series and the ratio of their medians")
    p.add_argument("--keep", action="store_true",
                   help="keep the scratch folder (data root, database volume, repository) for a later --reuse")
    p.add_argument("--pause", type=float, default=0, metavar="MB",
                   help="issue 23: the pipeline's pause of a first set (after --mb of reports) and of a set after MB "
                        "more (an hourly set), backed up under the lock and from a cut, side by side, beside a "
                        "walk of the data root alone")
    p.add_argument("--bare-host", action="store_true",
                   help="after the pipeline: one set, the bare-host drill of it, and a rebuild on this host from it")
    p.add_argument("--drill-series", type=int, default=0, metavar="N",
                   help="with --reuse: only N drills of the latest set, each beside the plain restore (medians)")
    args = p.parse_args()
    if (args.only_restores or args.drill_series) and not args.reuse:
        p.error("--only-restores and --drill-series need --reuse")
    log.setup()
    work = args.reuse or Path(tempfile.mkdtemp(prefix="aggr-drbench-", dir=args.work))
    if args.reuse and not (args.only_restores or args.drill_series):
        shutil.rmtree(work / "a" / "repo", ignore_errors=True)
        shutil.rmtree(work / "plain-repo", ignore_errors=True)
    r: dict = {"set": args.set}
    try:
        with instance(work / "a", "aggr-bench", keep_data=bool(args.reuse or args.keep)) as cfg:
            _, r["rebuild_seconds"] = timed(rebuild.rebuild, cfg, sample=args.set == "samples")
            if args.set == "generated" and args.reuse:
                r["data_reused_from"] = str(args.reuse)
            elif args.set == "generated":
                r["raw_mb"], r["pipeline_seconds"] = through_pipeline(cfg, work, args.mb, args.report_mb)
                note(pipeline_seconds=r["pipeline_seconds"], raw_mb=r["raw_mb"])
            if args.pause:
                pause(cfg, work, r, args.pause, args.report_mb)
                print(json.dumps(r, indent=2))
                return
            if args.bare_host:
                bare_host_drill(cfg, r)
                rto(work, r)
                print(json.dumps(r, indent=2))
                return
            if args.drill_series:
                drill_series(cfg, work, r, args.drill_series)
                print(json.dumps(r, indent=2))
                return
            if args.no_change_series:
                no_change_series(cfg, work, r, args.no_change_series)
                print(json.dumps(r, indent=2))
                return
            if not args.only_restores:
                snapshots(cfg, work, r, first_dump="never" if args.no_dump else "every")
                if args.only_snapshots:
                    r["ratios"], r["targets"] = ratios(r), TARGETS
                    print(json.dumps(r, indent=2))
                    return
            restores(cfg, work, r)
        rto(work, r)
        r["ratios"], r["targets"] = ratios(r), TARGETS
    finally:
        if not (args.reuse or args.keep):
            shutil.rmtree(work, ignore_errors=True)
        else:
            note(kept=str(work))
    print(json.dumps(r, indent=2))


def snapshots(cfg, work: Path, r: dict, first_dump: str = "every") -> None:
    """Three sets (first with the portable dump; no change; no change again, both without), then plain restic
    and the plain pg_basebackup pipe on the same data root and cluster. The second copy can add most of the
    cluster again although no document changed: PostgreSQL rewrites pages after a bulk import (hint bits set
    by the first reads, such as the dump's; autovacuum's visibility map and freezing). The third set shows a
    no-change set once the cluster has settled, which is what the plain pipes, run after the sets, see."""
    ok(backup.run(cfg, "init"), "repo-init")
    taken = []
    later = "never" if first_dump == "never" else "daily"  # daily would take the dump the first set did not
    for label, dump in (("first", first_dump), ("no_change", later), ("no_change_again", later)):
        time.sleep(1.1)
        m, seconds = timed(lambda: ok(backup.run(config.derive(cfg, {"backup.portable_dump": dump}), "take"),
                                      "snapshot"))
        taken.append((label, m, seconds))
        note(**{f"snapshot_{label}": {"seconds": seconds, "paused_seconds": m.paused_seconds, "parts": m.parts}})
    times = part_times(cfg, work)
    for label, m, seconds in taken:
        t = times.get(m.set_id, {})
        row = {"set": m.set_id, "seconds": seconds, "paused_seconds": m.paused_seconds, "parts": m.parts,
               "part_seconds": {k: v["seconds"] for k, v in t.items() if k != "manifest"},
               "added_mb": {k: round(v / 1e6, 1) for k, v in m.added_bytes.items()}}
        row["database_beside_files"] = m.database_beside_files
        if "files" in t and "pg" in t:
            # to the end of the copy from where it began: the end of the files snapshot, or, beside it, the
            # start of the files snapshot (the counts before and after the copy, FerretDB's version,
            # restic's start and the copy itself)
            began = t["files"]["start"] if m.database_beside_files else t["files"]["end"]
            row["database_part_seconds"] = round((t["pg"]["end"] - began).total_seconds(), 1)
        if "pg" in t and "db" in t:
            row["dump_part_seconds"] = round((t["db"]["end"] - t["pg"]["end"]).total_seconds(), 1)
        r[f"snapshot_{label}"] = row
    m = taken[-1][1]
    r["data_root_mb"] = round(sum(d.bytes for d in m.directories.values()) / 1e6, 1)
    r["documents"] = m.database.collections
    r["postgres_copy_mb"] = round(m.physical.bytes / 1e6, 1)
    r["repository_mb"] = round(sum(f.stat().st_size for f in Path(cfg.backup.repository).rglob("*")
                                   if f.is_file()) / 1e6, 1)
    note(**{f"snapshot_{label}": r[f"snapshot_{label}"] for label, _, _ in taken})

    # Plain, as a set takes them: the data root (restic backup, same excludes), then the cluster
    # (pg_basebackup piped into restic backup --stdin), into a repository of their own, first and no change;
    # then the pipe once more into the sets' repository, where everything is already.
    excludes = shlex.join(manifest.restic_excludes("/data"))
    pipe = PIPE
    script = ("export RESTIC_REPOSITORY=/work/plain-repo; restic init -q >&2; for run in first no_change; do "
              + TIME.format(cmd=f"restic backup -q {excludes} /data >&2", name="files_$run") + "; "
              + TIME.format(cmd=pipe.format(run="$run"), name="pg_pipe_$run") + "; sleep 1; done; "
              + f"export RESTIC_REPOSITORY={REPO}; "
              + TIME.format(cmd=pipe.format(run="set_repository"), name="pg_pipe_set_repository"))
    out = plain_restic(cfg, work, script, "plain-backup", repo=True, pg=True)
    got = seconds_lines(out)
    plain = {"files_first": got["files_first"], "files_no_change": got["files_no_change"]}
    for run in ("first", "no_change", "set_repository"):
        s = summary_of(work / f"plain-pg-{run}.json")
        plain[f"pg_pipe_{run}"] = {"seconds": got[f"pg_pipe_{run}"],
                                   "restic_seconds": round(s.get("total_duration", 0), 1),
                                   "added_mb": round(s.get("data_added", 0) / 1e6, 1),
                                   "mb": round(s.get("total_bytes_processed", 0) / 1e6, 1)}
    r["plain_backup"] = plain
    note(plain_backup=plain)


def through_pipeline(cfg, work: Path, mb: float, report_mb: float, tag: str = "") -> tuple[float, float]:
    """Generated reports (bench/pipeline_bench.make_set; tag: ids of their own) into raw/bench<-tag>/, then the
    pipeline: (raw MB, the pipeline's seconds)."""
    from pipeline_bench import make_set

    with redirect_stdout(sys.stderr):  # it says what it made: stdout is the JSON's
        files = make_set("generated", work, mb, report_mb, tag=tag)
    dest = cfg.data_root_path / "raw" / ("bench" + (f"-{tag}" if tag else ""))
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.move(str(f), dest / f.name)
    ran, seconds = timed(pipeline.run, cfg)
    assert all(s.exit_code == 0 for s in ran.stages), ran.render()
    return round(sum(f.stat().st_size for f in dest.iterdir()) / 1e6, 1), seconds


def walk_seconds(root: Path) -> dict:
    """The walk of the data root alone (an lstat per entry), in Python and with find(1): what any cut, which
    costs time per file, cannot go below."""
    import os
    import subprocess

    start = time.monotonic()
    n = sum(len([os.lstat(os.path.join(here, f)) for f in files]) for here, _, files in os.walk(root))
    python = round(time.monotonic() - start, 3)
    start = time.monotonic()
    subprocess.run(["find", str(root), "-printf", ""], check=True)
    return {"files": n, "python_seconds": python, "find_seconds": round(time.monotonic() - start, 3)}


def _pause_set(cfg, work: Path, mode: str) -> dict:
    """One set of the data root with backup.cut on (cut) or off (lock), each mode into a repository and a cache
    folder of its own (its own parent snapshot and digests): its pause, its whole time, its cut."""
    mcfg = config.derive(cfg, {"backup.cut": mode == "cut", "backup.repository": str(work / f"repo-{mode}"),
                               "cache_dir": str(work / f"cache-{mode}"), "backup.portable_dump": "never"})
    if not (work / f"repo-{mode}").exists():
        ok(backup.run(mcfg, "init"), "repo-init")
    time.sleep(1.1)
    m, seconds = timed(lambda: ok(backup.run(mcfg, "take"), "snapshot"))
    row = {"mode": mode, "set": m.set_id, "paused_seconds": m.paused_seconds, "seconds": seconds,
           "files_added_mb": round(m.added_bytes.get("files", 0) / 1e6, 1),
           "cut": None if m.cut is None else m.cut.to_dict()}
    note(**{f"pause_{mode}": row})
    return row


def pause(cfg, work: Path, r: dict, hourly_mb: float, report_mb: float) -> None:
    """Issue 23: after the generated reports went through the pipeline, a first set under the lock and one from
    a cut (each into a repository of its own, so each reads everything new), the walk alone; then hourly_mb
    more reports through the pipeline and one more set of each mode (the order swapped, so that neither always
    finds the other's reads in the page cache)."""
    r["walk_first"] = walk_seconds(cfg.data_root_path)
    r["pause_first"] = [_pause_set(cfg, work, mode) for mode in ("lock", "cut")]
    r["hourly_raw_mb"], r["hourly_pipeline_seconds"] = through_pipeline(cfg, work, hourly_mb, report_mb, "hourly")
    r["walk_hourly"] = walk_seconds(cfg.data_root_path)
    r["pause_hourly"] = [_pause_set(cfg, work, mode) for mode in ("cut", "lock")]


def no_change_series(cfg, work: Path, r: dict, n: int) -> None:
    """The no-change ratio as medians: a first set (not measured), then n times a no-change set and the plain
    pipe once into a repository of its own (seeded first), alternating so that any drift of the machine
    touches both."""
    import statistics

    never = config.derive(cfg, {"backup.portable_dump": "never"})
    shutil.rmtree(work / "plain-repo", ignore_errors=True)
    ok(backup.run(cfg, "init"), "repo-init")
    ok(backup.run(never, "take"), "snapshot")
    plain_restic(cfg, work, "export RESTIC_REPOSITORY=/work/plain-repo; restic init -q >&2; "
                 + PIPE.format(run="seed"), "plain-seed", pg=True)
    ours, plain, plain_host, paused = [], [], [], []
    for i in range(n):
        time.sleep(1.1)
        m, seconds = timed(lambda: ok(backup.run(never, "take"), "snapshot"))
        ours.append(seconds)
        paused.append(m.paused_seconds)
        # The pipe timed inside its container, and on the host as ours is (its container's start included).
        out, host_seconds = timed(plain_restic, cfg, work, "export RESTIC_REPOSITORY=/work/plain-repo; "
                                  + TIME.format(cmd=PIPE.format(run=f"n{i}"), name="pipe"), "plain-pipe", pg=True)
        plain.append(round(seconds_lines(out)["pipe"], 1))
        plain_host.append(host_seconds)
        note(no_change=i, ours=seconds, paused=m.paused_seconds, plain_pipe=plain[-1], plain_pipe_host=host_seconds)
    r["no_change_series"] = {"ours_seconds": ours, "paused_seconds": paused, "plain_pipe_seconds": plain,
                             "plain_pipe_host_seconds": plain_host,
                             "ours_median": statistics.median(ours), "plain_median": statistics.median(plain),
                             "plain_host_median": statistics.median(plain_host),
                             "median_ratio": ratio(statistics.median(ours), statistics.median(plain)),
                             "median_ratio_host": ratio(statistics.median(ours), statistics.median(plain_host)),
                             "paused_max": max(paused)}


def plain_restore(cfg, work: Path, row) -> dict:
    """restic restore of the set's files, then restic dump | tar x of its copy, into empty folders (seconds)."""
    script = (f"export RESTIC_REPOSITORY={REPO}; "
              + TIME.format(cmd=f"restic restore -q {row.snapshots['files']} --target /work/plain-restore >&2",
                            name="files") + "; mkdir /work/plain-pg; "
              + TIME.format(cmd=f"restic dump -q {row.snapshots['pg']} /{pgcopy.COPY_NAME} | tar x -C /work/plain-pg",
                            name="pg"))
    try:
        got = seconds_lines(plain_restic(cfg, work, script, "plain-restore", repo=True))
    finally:
        shutil.rmtree(work / "plain-restore", ignore_errors=True)
        shutil.rmtree(work / "plain-pg", ignore_errors=True)
    return {**got, "total": round(got["files"] + got["pg"], 1)}


def drill_series(cfg, work: Path, r: dict, n: int) -> None:
    """The drill's ratio as medians: n times a drill of the latest set and the plain restore of the same set,
    alternating so that any drift of the machine touches both."""
    import statistics

    latest = ok(backup.run(cfg, "list"), "snapshots").complete[0]
    ours, plain, phases = [], [], []
    for i in range(n):
        report = drill.run(cfg)
        if report.verdict != "pass":
            raise SystemExit(f"drill failed: {report.problems}")
        ours.append(report.restore_seconds)
        phases.append(report.phases)
        plain.append(plain_restore(cfg, work, latest)["total"])
        note(drill=i, ours=ours[-1], phases=phases[-1], plain_restore=plain[-1])
    r["drill_series"] = {"set": latest.set_id, "restore_seconds": ours, "phases": phases,
                         "plain_restore_seconds": plain, "ours_median": statistics.median(ours),
                         "plain_median": statistics.median(plain),
                         "median_ratio": round(statistics.median(ours) / statistics.median(plain), 2)}


def restores(cfg, work: Path, r: dict) -> None:
    """The drill of the latest set; the database restore of its copy on the live instance; the plain
    restore of the same set (restic restore of the files, restic dump | tar x of the copy); the portable dump
    of the newest set that has one, restored into an empty database ours and plain."""
    rows = ok(backup.run(cfg, "list"), "snapshots").complete
    latest = rows[0]
    with_dump = next((row for row in rows if "db" in row.parts), None)
    r["restored_set"] = latest.set_id

    report = drill.run(cfg)
    r["drill"] = {k: getattr(report, k) for k in ("phases", "restore_seconds", "total_seconds", "bytes_restored",
                                                   "documents_restored", "database_from")}
    note(drill=r["drill"])

    # The database restore (restore_copy: stop, pg-restore, start, verify), into the live instance.
    m = ok(backup.run(cfg, "restore", extra=("--snapshot-set", latest.set_id), files=False, db=False),
           "manifest").manifest
    rep, seconds = timed(dr_restore.restore_copy, cfg, latest.set_id, m, force=True)
    r["db_restore"] = {"seconds": seconds, "pg_restore_seconds": rep.copy_seconds, "phases": rep.phases,
                       "copy_mb": round(rep.bytes / 1e6, 1), "documents": rep.documents}
    note(db_restore=r["db_restore"])
    # What it kept aside (the database it replaced) goes, so that a --reuse'd volume does not grow.
    plain_restic(cfg, work, "rm -rf /pgvolume/replaced-*", "pg-aside",
                 {stack.pg_volume_name(cfg): {"bind": "/pgvolume", "mode": "rw"}})

    r["plain_restore"] = plain_restore(cfg, work, latest)
    note(plain_restore=r["plain_restore"])

    if with_dump is None:
        r["portable_dump"] = "no set with a portable dump"
        return
    dump = {"set": with_dump.set_id}
    first = r.get("snapshot_first", {})
    if first.get("set") == with_dump.set_id:
        dump.update(restic_seconds=first["part_seconds"].get("db"), part_seconds=first.get("dump_part_seconds"),
                    copy_restic_seconds=first["part_seconds"].get("pg"), added_mb=first["added_mb"].get("db"))
    with sandbox.throwaway(cfg, "dump") as sb:
        res, dump["restore_seconds"] = timed(lambda: ok(backup.run(
            sb.cfg, "restore", extra=("--snapshot-set", with_dump.set_id), files=False), "restore --from-dump"))
        dump["restore_inner_seconds"] = res.db.seconds
        dump["documents"] = res.db.documents
    with sandbox.throwaway(cfg, "plain") as sb:
        db_pw = secrets.path(sb.cfg.secrets_dir, db.password_name("owner"))
        script = (f"export RESTIC_REPOSITORY={REPO}; "
                  + TIME.format(cmd=f"restic dump -q {with_dump.snapshots['db']} /{sets.DUMP_NAME} | python3 -m "
                                f"snapshots.dbdump restore --host {stack.container_name(sb.cfg, 'db')} --user "
                                "owner --password-file /run/secrets/db-owner-password >&2", name="db"))
        got = seconds_lines(plain_restic(sb.cfg, work, script, "plain-dump-restore", {
            cfg.backup.repository: {"bind": REPO, "mode": "rw"},
            str(db_pw): {"bind": "/run/secrets/db-owner-password", "mode": "ro"}}))
        dump["plain_restore_seconds"] = got["db"]
    r["portable_dump"] = dump
    note(portable_dump=dump)


def bare_host_drill(cfg, r: dict) -> None:
    """One set of the instance (no portable dump), then the bare-host drill of it: every runbook block's time
    and the phases of the runbook's rebuild on the simulated server (its first `rebuild summary:`)."""
    from dr.drills import bare_host

    cfg = config.derive(cfg, {"backup.portable_dump": "never"})
    ok(backup.run(cfg, "init"), "repo-init")
    m, seconds = timed(lambda: ok(backup.run(cfg, "take"), "snapshot"))
    r["snapshot"] = {"set": m.set_id, "seconds": seconds, "paused_seconds": m.paused_seconds,
                     "files_mb": round(sum(d.bytes for d in m.directories.values()) / 1e6, 1),
                     "copy_mb": round(m.physical.bytes / 1e6, 1) if m.physical else None}
    note(snapshot=r["snapshot"])
    report = bare_host.run(cfg)
    blocks = [b for b in report.steps if b.skipped is None]
    r["bare_host"] = {"verdict": report.verdict, "set": report.set_id, "total_seconds": report.total_seconds,
                      "prepare_seconds": report.prepare_seconds, "fed_reports": report.fed_reports,
                      "blocks": [{"line": b.line, "section": b.section, "seconds": b.seconds,
                                  "commands": b.commands.splitlines()[0]} for b in blocks],
                      "rebuild_phases": rebuild_phases(blocks)}
    note(bare_host=r["bare_host"])


def rebuild_phases(blocks: list) -> dict[str, float]:
    """The phases of the first `rebuild summary:` among the blocks' output tails (StepRow,
    dr/drills/drill_reports.py)."""
    for b in blocks:
        tail = b.output_tail or []
        if "rebuild summary:" in tail:
            lines = tail[tail.index("rebuild summary:") + 1:]
            return {m.group(1): float(m.group(2)) for m in
                    (re.match(r"^\s+(\S+)\s+([0-9.]+)s", line) for line in lines) if m}
    return {}


def rto(work: Path, r: dict) -> None:
    """RTO: a second instance with nothing but the repository and its password."""
    shutil.rmtree(work / "b", ignore_errors=True)  # an earlier --reuse run's second host
    secrets.put(work / "b" / "secrets", secrets.RESTIC_PASSWORD,
                secrets.read(work / "a" / "secrets", secrets.RESTIC_PASSWORD))
    with instance(work / "b", "aggr-bench-rto", **{"backup.repository": str(work / "a" / "repo")}) as cfg2:
        rep = rebuild.rebuild(cfg2)
        r["rebuild_with_restore"] = {"phases": {p.name: round(p.seconds, 1) for p in rep.phases},
                                     "total_seconds": round(rep.total, 1),
                                     "restore_note": rep.notes()["restore"]}
    note(rebuild_with_restore=r["rebuild_with_restore"])


# The targets (issue 11, "Speed"), for the ratios of the same names.
TARGETS = {"first_set_database_part_vs_plain_pipe": "<= 1.5", "no_change_set_vs_plain_pipe": "<= 1.3",
           "no_change_set_paused_seconds": "<= 2 (aim 1)", "db_restore_vs_plain_dump_untar": "<= 1.5",
           "rebuild_with_restore_seconds": "<= 120", "drill_restore_vs_plain_restore": "<= 1.2"}


def ratios(r: dict) -> dict:
    """Each measurement against its plain counterpart (TARGETS names the issue's)."""
    plain = r.get("plain_backup", {})
    pipe_first = plain.get("pg_pipe_first", {}).get("seconds")
    pipe_again = plain.get("pg_pipe_no_change", {}).get("seconds")
    first, again = r.get("snapshot_first", {}), r.get("snapshot_no_change", {})
    plain_restore = r.get("plain_restore", {})
    out = {
        # the set's database part (counts, restic's start, the copy) against the plain pipe's wall time
        "first_set_database_part_vs_plain_pipe": ratio(first.get("database_part_seconds"), pipe_first),
        # restic's own time for each (backup_start .. backup_end against the plain pipe's total_duration)
        "first_set_copy_restic_vs_plain_pipe_restic": ratio(first.get("part_seconds", {}).get("pg"),
                                                            plain.get("pg_pipe_first", {}).get("restic_seconds")),
        # the whole no-change set, host wall time (container start included), against the plain pipe run again
        "no_change_set_vs_plain_pipe": ratio(again.get("seconds"), pipe_again),
        "no_change_set_vs_plain_files_and_pipe": ratio(again.get("seconds"),
                                                       (plain.get("files_no_change") or 0) + (pipe_again or 0)),
        "no_change_set_paused_seconds": again.get("paused_seconds"),
        # the same once the cluster has settled (snapshots())
        "no_change_again_set_vs_plain_pipe": ratio(r.get("snapshot_no_change_again", {}).get("seconds"), pipe_again),
        "no_change_again_set_paused_seconds": r.get("snapshot_no_change_again", {}).get("paused_seconds"),
        "db_restore_vs_plain_dump_untar": ratio(r.get("db_restore", {}).get("seconds"), plain_restore.get("pg")),
        "rebuild_with_restore_seconds": r.get("rebuild_with_restore", {}).get("total_seconds"),
        "drill_restore_vs_plain_restore": ratio(r.get("drill", {}).get("restore_seconds"), plain_restore.get("total")),
    }
    dump = r.get("portable_dump")
    if isinstance(dump, dict):
        out["dump_restore_vs_db_restore"] = ratio(dump.get("restore_seconds"), r.get("db_restore", {}).get("seconds"))
        out["dump_vs_copy_restic"] = ratio(dump.get("restic_seconds"), dump.get("copy_restic_seconds"))
    return out

if __name__ == "__main__":
    main()
