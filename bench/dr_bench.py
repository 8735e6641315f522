"""Snapshot, restore, drill and rebuild (RTO) measurements on the samples or on a generated data set, with
plain restic runs on the same data in the same run for comparison.

    ./run python bench/dr_bench.py --set samples
    ./run python bench/dr_bench.py --set generated --mb 2048 [--work /var/tmp]

Steps: an instance of its own (rebuild; with the samples pulled through the pipeline, or the generated
reports run through sanitize and importer), repo-init, a first and a no-change snapshot set, the same data
root backed up by plain `restic backup` (first and no-change), a drill of the latest set, a plain
`restic restore` of its files and `restic dump | dbdump restore` of its database, and a rebuild of a second
instance (empty data root and database, same repository) that restores the set: its phases are the RTO.
Prints one JSON document; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import socket
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import config, db, log, secrets  # noqa: E402
from dr import backup, containers, drill, pipeline, rebuild, sandbox, services  # noqa: E402
from snapshots import manifest  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def note(**kv):
    print(json.dumps(kv), file=sys.stderr, flush=True)


@contextmanager
def instance(work: Path, name: str, keep_data: bool = False, **overrides):
    import docker

    from dr import collector

    values = {"instance": name, "data_root": str(work / "data"), "secrets_dir": str(work / "secrets"),
              "db.port": free_port(), "webmirror.port": free_port(), "backup.repository": str(work / "repo"),
              "host.min_free_gb": 1, "monitoring.textfile_dir": str(work / "metrics"),
              "drill.history_dir": str(work / "drills"), "drill.work_dir": str(work / "drill")}
    values.update(overrides)
    cfg = config.load(overrides=values)
    try:
        yield cfg
    finally:
        collector.stop(cfg)
        services.down(cfg)
        client = docker.from_env()
        for v in [] if keep_data else client.volumes.list(filters={"name": services.pg_volume_name(cfg)}):
            v.remove(force=True)
        for net in client.networks.list(names=[services.network_name(cfg)]):
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


def plain_restic(cfg, work: Path, script: str, label: str, extra_volumes: dict | None = None) -> str:
    """Run a shell script with plain restic in the backup image (primary repository password)."""
    pw = secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD)
    volumes = {str(cfg.data_root_path): {"bind": "/data", "mode": "ro"}, str(work): {"bind": "/work", "mode": "rw"},
               str(pw): {"bind": "/run/secrets/restic-password", "mode": "ro"}, **(extra_volumes or {})}
    code, out = containers.run_tool(cfg, "backup", ["bash", "-o", "pipefail", "-c", script], volumes,
                                    [services.network_name(cfg)], label,
                                    environment={"RESTIC_PASSWORD_FILE": "/run/secrets/restic-password",
                                                 "RESTIC_CACHE_DIR": "/work/plain-cache"})
    if code != 0:
        raise SystemExit(f"{label} failed (exit {code}):\n{out[-2000:]}")
    return out


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
                   help="stop after the snapshot sets and the plain restic backup")
    p.add_argument("--only-restores", action="store_true",
                   help="with --reuse: keep the repository of that earlier run and measure only the restores "
                        "(drill, plain restic restore, rebuild with restore) of its latest set")
    args = p.parse_args()
    if args.only_restores and not args.reuse:
        p.error("--only-restores needs --reuse")
    log.setup()
    work = args.reuse or Path(tempfile.mkdtemp(prefix="aggr-drbench-", dir=args.work))
    if args.reuse and not args.only_restores:
        shutil.rmtree(work / "a" / "repo", ignore_errors=True)
        shutil.rmtree(work / "plain-repo", ignore_errors=True)
    r: dict = {"set": args.set}
    try:
        with instance(work / "a", "aggr-bench", keep_data=bool(args.reuse)) as cfg:
            _, r["rebuild_seconds"] = timed(rebuild.rebuild, cfg, sample=args.set == "samples")
            if args.set == "generated" and args.reuse:
                r["data_reused_from"] = str(args.reuse)
            elif args.set == "generated":
                from pipeline_bench import make_set

                files = make_set("generated", work, args.mb, args.report_mb)
                dest = cfg.data_root_path / "raw" / "bench"
                dest.mkdir(parents=True, exist_ok=True)
                for f in files:
                    shutil.move(str(f), dest / f.name)
                r["raw_mb"] = round(sum(f.stat().st_size for f in dest.iterdir()) / 1e6, 1)
                results, r["pipeline_seconds"] = timed(pipeline.run, cfg)
                assert all(x.exit_code == 0 for x in results), results
                note(pipeline_seconds=r["pipeline_seconds"], raw_mb=r["raw_mb"])
            if args.only_restores:
                latest = next(row for row in ok(backup.run(cfg, "list"), "snapshots") if row.complete)
                r["set"] = latest.set_id
                restores(cfg, work, latest.snapshots, r)
            else:
                snapshots(cfg, work, args, r)
                if args.only_snapshots:
                    print(json.dumps(r, indent=2))
                    return
                restores(cfg, work, r.pop("_latest_parts"), r)
        rto(work, r)
    finally:
        if not args.reuse:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(r, indent=2))


def snapshots(cfg, work: Path, args, r: dict) -> None:
    """Two sets (first, no change) and plain restic backups of the same data root."""
    ok(backup.run(cfg, "init"), "repo-init")
    sets = []
    for label in ("first", "no_change"):
        time.sleep(1.1)
        m, seconds = timed(lambda: ok(backup.run(cfg, "take"), "snapshot"))
        sets.append(m)
        r[f"snapshot_{label}"] = {"seconds": seconds, "paused_seconds": m.paused_seconds,
                                  "added_mb": round(m.bytes_added / 1e6, 1)}
        note(**{f"snapshot_{label}": r[f"snapshot_{label}"]})
    m = sets[-1]
    r["data_root_mb"] = round(m.bytes / 1e6, 1)
    r["documents"] = m.database.collections
    r["repository_mb"] = round(sum(f.stat().st_size for f in Path(cfg.backup.repository).rglob("*")
                                   if f.is_file()) / 1e6, 1)

    # The same data root, plain restic (a repository of its own), first and no-change.
    excludes = shlex.join(manifest.restic_excludes("/data"))
    script = ("export RESTIC_REPOSITORY=/work/plain-repo; restic init -q >&2; "
              "for run in first no_change; do s=$EPOCHREALTIME; restic backup -q " + excludes +
              " /data >&2; e=$EPOCHREALTIME; echo $run $(python3 -c \"print($e - $s)\"); sleep 1; done")
    out = plain_restic(cfg, work, script, "plain-backup")
    r["plain_restic_backup_files"] = {k: round(float(v), 1) for k, v in (line.split() for line in
                                                                          out.strip().splitlines())}
    note(plain_restic_backup_files=r["plain_restic_backup_files"])
    r["_latest_parts"] = m.snapshots


def restores(cfg, work: Path, parts: dict, r: dict) -> None:
    """The drill of the latest set, then a plain restore of the same set: restic restore of the files,
    restic dump | dbdump restore."""
    report = drill.run(cfg)
    r["drill"] = {k: report[k] for k in ("phases", "restore_seconds", "total_seconds", "bytes_restored",
                                          "documents_restored")}
    note(drill=r["drill"])
    with sandbox.throwaway(cfg, "plain") as sb:
        db_pw = secrets.path(sb.cfg.secrets_dir, db.password_name("owner"))
        script = (f"export RESTIC_REPOSITORY=/repo; s=$EPOCHREALTIME; "
                  f"restic restore -q {parts['files']} --target /work/plain-restore >&2; "
                  f"e=$EPOCHREALTIME; echo files $(python3 -c \"print($e - $s)\"); s=$EPOCHREALTIME; "
                  f"restic dump -q {parts['db']} /database.dbdump | python3 -m snapshots.dbdump "
                  f"restore --host {services.container_name(sb.cfg, 'db')} --user owner --password-file /run/secrets/db-owner-password >&2; "
                  f"e=$EPOCHREALTIME; echo db $(python3 -c \"print($e - $s)\")")
        out = plain_restic(sb.cfg, work, script, "plain-restore", {
            cfg.backup.repository: {"bind": "/repo", "mode": "rw"},
            str(db_pw): {"bind": "/run/secrets/db-owner-password", "mode": "ro"}})
        r["plain_restore"] = {k: round(float(v), 1) for k, v in (line.split() for line in
                                                                  out.strip().splitlines())}
        shutil.rmtree(work / "plain-restore", ignore_errors=True)
    note(plain_restore=r["plain_restore"])


def rto(work: Path, r: dict) -> None:
    """RTO: a second instance with nothing but the repository and its password."""
    shutil.rmtree(work / "b", ignore_errors=True)  # an earlier --reuse run's second host
    secrets.put(work / "b" / "secrets", secrets.RESTIC_PASSWORD,
                secrets.read(work / "a" / "secrets", secrets.RESTIC_PASSWORD))
    with instance(work / "b", "aggr-bench-rto", **{"backup.repository": str(work / "a" / "repo")}) as cfg2:
        rep = rebuild.rebuild(cfg2)
        r["rebuild_with_restore"] = {"phases": {n: round(s, 1) for n, s, _ in rep.phases},
                                     "total_seconds": round(rep.total, 1),
                                     "restore_note": dict((n, t) for n, _, t in rep.phases)["restore"]}
    note(rebuild_with_restore=r["rebuild_with_restore"])


if __name__ == "__main__":
    main()
