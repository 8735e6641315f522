"""Invoke tasks: each parses its arguments, calls its job in dr/ directly and prints the result; @job turns a
job's DrError into one message and its exit code.

`invoke --list` shows them; `invoke --help TASK` shows a task's options.
"""

from __future__ import annotations

import functools
import json
import sys

from invoke import Exit, task

from common import config as dr_config
from common import log
from common.errors import DrError

CONFIG_HELP = "configuration file (TOML); default: $AGGREGATOR_DR_CONFIG or /etc/aggregator-dr/config.toml"


def _load(config_path):
    log.setup()
    return dr_config.load(config_path)


def job(body):
    """A task's body with the shared error handling: a DrError becomes a one-paragraph message and its exit
    code, an interrupt exit 130, never a traceback. Under @task, so that invoke reads the body's own
    arguments (functools.wraps keeps its signature)."""
    @functools.wraps(body)
    def run(*args, **kwargs):
        try:
            return body(*args, **kwargs)
        except DrError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise Exit(code=130) from None
    return run


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


@task(help={"config": CONFIG_HELP})
@job
def bootstrap(c, config=None):
    """Install the host's Debian packages (docker.io, debootstrap, ...) and start dockerd; idempotent."""
    from dr.machine import host

    cfg = _load(config)
    print(host.bootstrap(cfg).summary())


@task(help={"config": CONFIG_HELP, "refresh_base": "debootstrap the base image again even if present",
            "only": "comma-separated components to build (default: all)"})
@job
def build(c, config=None, refresh_base=False, only=None):
    """Build the base image (debootstrap) and every component image from dockerfiles/ (cached)."""
    from dr.machine import images

    cfg = _load(config)
    components = tuple(only.split(",")) if only else images.COMPONENTS
    unknown = [x for x in components if x not in images.COMPONENTS]
    if unknown:
        print(f"error: unknown component(s) {', '.join(unknown)}; known: {', '.join(images.COMPONENTS)}",
              file=sys.stderr)
        raise Exit(code=2)
    built = images.build_all(cfg, components, refresh_base)
    print(_table([{"image": b.image, "seconds": f"{b.seconds:.0f}", "cached": f"{b.cached_steps}/{b.total_steps}",
                   "size_mb": f"{b.size_mb:.0f}"} for b in built], ["image", "seconds", "cached", "size_mb"]))


@task(help={"config": CONFIG_HELP, "refresh_base": "debootstrap the base image again even if present",
            "sample": "also start the built-in sample collector and run the pipeline on its reports",
            "role": "what this host is: all, aggregator or database; must agree with host.role in the "
                    "configuration (every other task reads it there)"})
@job
def rebuild(c, config=None, refresh_base=False, sample=False, role=None):
    """Turn this Debian host into a running Aggregator (or its database's own host): preflight, bootstrap,
    images, start, restore, verify."""
    from dr.jobs import rebuild as dr_rebuild

    cfg = _load(config)
    dr_rebuild.check_role(cfg, role)
    report = dr_rebuild.rebuild(cfg, refresh_base, sample)
    print(report.summary())


CERT_COLUMNS = ["certificate", "days_left", "not_after", "names"]


@task(help={"config": CONFIG_HELP, "json": "print JSON instead of tables"})
@job
def status(c, config=None, json_=False):
    """Show images (age, version, commit), service containers and their health, and the TLS certificates
    (a warning for each that expires within certs.warn_days)."""
    from dr.machine import images
    from dr.services import certs, stack

    cfg = _load(config)
    certificates = certs.describe(cfg)
    findings = certs.warnings(cfg)
    imgs = images.describe(cfg)
    svcs = stack.status(cfg)
    if json_:
        print(json.dumps({"images": imgs, "services": svcs, "certificates": certificates,
                          "certificate_warnings": [f.as_dict() for f in findings]}, indent=2))
        return
    print(_table(imgs, ["image", "present", "created", "version", "revision", "size_mb"]))
    print()
    print(_table(svcs, ["service", "container", "state", "health", "image", "ports", "started"]))
    print()
    if certificates:
        print(_table(certificates, CERT_COLUMNS))
    elif not cfg.db.tls:
        print("no TLS certificates (db.tls is off)")
    for f in findings:
        print(f.line())


@task(help={"config": CONFIG_HELP, "json": "print JSON",
            "renew": "re-issue every certificate the CA signs (the CA is kept)",
            "renew-ca": "make a new CA too (then every copy of ca.crt on other hosts must be replaced)"})
@job
def certs(c, config=None, renew=False, renew_ca=False, json_=False):
    """Make the private CA and the TLS certificates of the database, PostgreSQL, the off-site server and
    clients in <secrets_dir>/tls (docs/tls.md); keeps those that are valid and match the configuration."""
    from dr.services import certs as dr_certs

    cfg = _load(config)
    rows = dr_certs.make(cfg, renew, renew_ca)
    if json_:
        print(json.dumps(rows, indent=2))
        return
    print(_table(rows, ["certificate", "action", *CERT_COLUMNS[1:]]))
    print(f"in {dr_certs.tls_dir(cfg)}; the CA's key stays on this host (docs/tls.md says where its copy belongs)")


@task(help={"config": CONFIG_HELP, "to": "the new folder to write the kit into"})
@job
def db_host_kit(c, to, config=None):
    """Copy what the database's own host needs (role passwords, the restic password, the CA's certificate,
    the database's and PostgreSQL's certificates and keys; never the CA's key) into a new folder, to carry
    over as that host's secrets directory (docs/runbook.md, section 12)."""
    from dr.services import dbhost

    cfg = _load(config)
    names = dbhost.write_kit(cfg, to)
    print(f"{len(names)} files in {to}: {', '.join(names)}")


@task(help={"config": CONFIG_HELP, "json": "print JSON",
            "kit": "host.role aggregator: then write the database's host kit into this new folder"})
@job
def rotate_secrets(c, config=None, json_=False, kit=None):
    """New passwords for every database role and, with db.tls, new certificates from the same CA; the
    pipeline waits while it runs (seconds), and an interrupted rotation is finished by running it again
    (docs/tls.md). With the database on its own host: on the Aggregator's host (with --kit), then on the
    database's host with the kit in its secrets folder (docs/runbook.md 12.5)."""
    from dr.jobs import rotate

    cfg = _load(config)
    result = rotate.rotate(cfg, kit)
    if json_:
        print(json.dumps(result, indent=2))
        return
    if result.get("taken_up"):
        print(f"passwords of {', '.join(result['roles'])} are PostgreSQL's; PostgreSQL and FerretDB restarted "
              "on them and on the certificates; every role logged in")
        return
    print(f"new passwords: {', '.join(result['roles'])}; every role logged in with its new one")
    if result["certificates"]:
        print("new certificates: " + "; ".join(result["certificates"]))
    print(f"the pipeline waited {result['paused_seconds']} s")
    if "kit" in result:
        print(f"database host kit: {result['kit']}" if result["kit"] else
              "make the database's host kit (`invoke db-host-kit --to DIR`)")
        print("now on the database's host: the kit into its secrets folder, then `invoke rotate-secrets` there "
              "(docs/runbook.md 12.5)")


@task(help={"config": CONFIG_HELP})
@job
def down(c, config=None):
    """Stop and remove the service containers and the sample collector; data (database volume, data root,
    secrets) is kept. Says which containers of the instance still run, and why."""
    from dr.services import stack

    cfg = _load(config)
    removed = stack.down(cfg)
    print("stopped: " + (", ".join(removed) if removed else "nothing was running"))
    for name, why in stack.still_running(cfg):
        print(f"still running: {name} ({why})")


@task(name="config", help={"config": CONFIG_HELP, "defaults": "print the default configuration as TOML"})
@job
def show_config(c, config=None, defaults=False):
    """Validate and print the effective configuration (or the defaults as a commented TOML file)."""
    if defaults:
        from dr.machine import configfile

        print(configfile.defaults_as_toml(), end="")
        return
    cfg = _load(config)
    print(f"# from {cfg.source}")
    print(json.dumps(cfg.as_dict(), indent=2))


@task(help={"config": CONFIG_HELP, "stage": "run only this stage (sync, sanitize, importer)",
            "json": "print the stage summaries as JSON",
            "catch_up": "only import again the archived reports the database lacks (after the database's own "
                        "host was restored from an older set: docs/runbook.md 12.2)"})
@job
def pipeline(c, config=None, stage=None, json_=False, catch_up=False):
    """Run the pipeline's stages in order, each in its own image (exit 1 if a stage failed). A full run is
    the scheduled job "pipeline": it writes its metrics and pings (a --stage or --catch-up run does
    neither)."""
    import contextlib

    from dr.jobs import monitoring
    from dr.jobs import pipeline as dr_pipeline

    cfg = _load(config)
    if catch_up and stage:
        print("error: --catch-up is the importer's own job: give no --stage with it", file=sys.stderr)
        raise Exit(code=2)
    alone = stage or catch_up
    with contextlib.nullcontext(monitoring.Run("pipeline")) if alone else monitoring.job(cfg, "pipeline") as run:
        results = [dr_pipeline.catch_up(cfg)] if catch_up else dr_pipeline.run(cfg, stage)
        run.record(results)
        print(json.dumps([r.as_dict() for r in results], indent=2) if json_
              else "\n".join(r.summary.line() for r in results))
        code = dr_pipeline.exit_code(results)
        if code:
            raise Exit(code=code)


@task(help={"config": CONFIG_HELP, "json": "print JSON"})
@job
def where(c, name, config=None, json_=False):
    """Where a report is now (by file name, raw path or report id), and its history from the journal."""
    from stages import where as stages_where
    from stages.layout import DataRoot

    cfg = _load(config)
    found = stages_where.locate(DataRoot(cfg.data_root), name)
    if json_:
        print(json.dumps(found, indent=2))
    elif not found["found"]:
        print(f"no report matches {name!r} in the journal of {cfg.data_root}")
    else:
        print("now: " + (", ".join(found["now"]) or "nowhere (duplicate of another report)"))
        for h in found["history"]:
            print(f"  {h['time']}  {h['stage']:<9} {h['outcome']:<13} {h['report']} -> {', '.join(h['to'])}")
    if not found["found"]:
        raise Exit(code=1)


def _backup(cfg, action, dry_run=False, extra=(), offsite=False, **parts):
    """The result of one snapshots action in the backup image (its type in snapshots/results.py); exits when
    it failed without one (a result that reports its own failure, like check's, is returned for the task to
    show)."""
    from dr.jobs import backup

    code, result = backup.run(cfg, action, dry_run, tuple(extra), offsite, **parts)
    if code != 0 and result is None:
        print(f"error: snapshots {action} failed (exit {code}); the reason is in the lines above", file=sys.stderr)
        raise Exit(code=code)
    return result


OFFSITE_HELP = "work on the off-site repository (offsite.repository) instead of the primary one"


@task(name="repo-init", help={"config": CONFIG_HELP, "offsite": OFFSITE_HELP})
@job
def repo_init(c, config=None, offsite=False):
    """Create the encrypted restic repository (backup.repository, or offsite.repository); its password
    file is made in the secrets directory when missing. Says so when the repository already exists."""
    cfg = _load(config)
    result = _backup(cfg, "init", offsite=offsite)
    where = cfg.offsite.repository if offsite else cfg.backup.repository
    print(("created" if result.created else "already exists:") + f" restic repository {where}")


@task(help={"config": CONFIG_HELP, "json": "print the manifest as JSON",
            "with-dump": "carry the portable dump in this set whatever backup.portable_dump says (before moving "
                         "to another PostgreSQL major version)"})
@job
def snapshot(c, config=None, json_=False, with_dump=False):
    """Take a snapshot set: state directories (under the exclusive lock), PostgreSQL's physical copy, the
    portable dump when due, and the manifest."""
    from dr.jobs import monitoring

    cfg = _load(config)
    if with_dump:
        cfg = dr_config.derive(cfg, {"backup.portable_dump": "every"})
    with monitoring.job(cfg, "snapshot") as run:
        m = _backup(cfg, "take")
        run.record(m)
    if json_:
        print(m.to_json())
        return
    print(f"set {m.set_id} complete ({', '.join(m.parts or [])}): {m.reports} reports, {m.documents} database "
          f"documents; pipeline paused {m.paused_seconds:.1f}s; added {m.bytes_added / 1e6:.1f} MB")


@task(help={"config": CONFIG_HELP, "json": "print JSON", "offsite": OFFSITE_HELP})
@job
def snapshots(c, config=None, json_=False, offsite=False):
    """List snapshot sets (id, time, complete or not, sizes, paused seconds), newest first."""
    cfg = _load(config)
    rows = _backup(cfg, "list", offsite=offsite)
    if json_:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    table = [{"set": r.set_id, "time": r.time,
              "state": "complete" if r.complete else "INCOMPLETE",
              "parts": "+".join(p for p in r.parts if p != "manifest") + ("" if "manifest" in r.parts else
                                                                         " (no manifest)"),
              "reports": "" if r.reports is None else r.reports,
              "documents": "" if r.documents is None else r.documents,
              "MB": f"{(r.bytes or 0) / 1e6:.1f}" if r.complete else "",
              "paused_s": "" if r.paused_seconds is None else r.paused_seconds} for r in rows]
    print(_table(table, ["set", "time", "state", "reports", "documents", "MB", "paused_s"]) if rows
          else "no snapshot sets in the repository")


@task(help={"config": CONFIG_HELP, "dry_run": "only print which sets would be forgotten",
            "json": "print JSON"})
@job
def forget(c, config=None, dry_run=False, json_=False):
    """Apply the retention policy ([retention] keep_last/hourly/daily/weekly/monthly) to whole snapshot
    sets, then prune the repository."""
    from dr.jobs import monitoring

    cfg = _load(config)
    if dry_run:
        result = _backup(cfg, "forget", dry_run)
    else:
        with monitoring.job(cfg, "forget") as run:
            result = _backup(cfg, "forget", dry_run)
            run.record(result)
    if json_:
        print(result.to_json())
        return
    verb = "would forget" if dry_run else "forgot"
    print(f"{verb} {len(result.forget)} set(s): {', '.join(result.forget) or 'none'}; "
          f"keeping {len(result.keep)}: {', '.join(result.keep) or 'none'}")


@task(help={"config": CONFIG_HELP, "json": "print JSON", "offsite": OFFSITE_HELP,
            "read_data_subset": "also read back and decrypt this share of the repository's packs "
                                "(restic syntax: 10%, 1/5, 500M)"})
@job
def check(c, config=None, read_data_subset=None, json_=False, offsite=False):
    """Verify the repository (restic check), read every complete set back against its manifest (digests per
    state directory, counts per collection) and the build artifacts against their sha256; exit 1 naming
    what fails."""
    from dr.jobs import monitoring

    cfg = _load(config)
    with monitoring.job(cfg, "check-offsite" if offsite else "check") as run:
        result = _backup(cfg, "check", extra=("--read-data-subset", read_data_subset) if read_data_subset else (),
                         offsite=offsite)
        run.record(result)
        _print_check(result, read_data_subset, json_)
        if not result.ok:
            print(f"error: {result.failure()}", file=sys.stderr)
            raise Exit(code=1)


def _print_check(result, read_data_subset, json_):
    if json_:
        print(result.to_json())
        return
    rc = result.restic_check
    print("restic check: " + ("ok" if rc.ok else f"FAILED: {rc.error}")
          + (f" (read back {read_data_subset} of the data)" if read_data_subset else "")
          + "".join(f"\n    {line}" for line in rc.findings or []))
    for r in result.sets:
        print(f"set {r.set_id}: {r.verdict}" + "".join(f"\n    {p}" for p in r.problems))
    if not result.sets:
        print("no snapshot sets in the repository")
    a = result.artifacts
    if a.verdict == "none":
        print("artifacts: none in the repository")
    elif a.verdict == "ok":
        print(f"artifacts: ok (snapshot {a.snapshot}: {', '.join(a.artifacts)} read back, sha256 as recorded)")
    else:
        print("artifacts: FAILED" + "".join(f"\n    {p}" for p in a.problems))


@task(help={"config": CONFIG_HELP, "json": "print JSON"})
@job
def offsite(c, config=None, json_=False):
    """Copy every complete snapshot set the off-site repository lacks (restic copy; manifests last)."""
    from dr.jobs import monitoring

    cfg = _load(config)
    with monitoring.job(cfg, "offsite") as run:
        result = _backup(cfg, "copy")
        run.record(result)
    if json_:
        print(result.to_json())
        return
    print(f"copied {len(result.copied)} set(s) to {result.repository}: {', '.join(result.copied) or 'none'}"
          f"; {len(result.already_offsite)} already there; {result.offsite_complete_sets} complete off-site")


@task(name="offsite-server", help={"config": CONFIG_HELP, "stop": "stop and remove it (its data volume is kept)"})
@job
def offsite_server(c, config=None, stop=False):
    """Run the append-only rest-server for the off-site copy on this Docker host (its own image, network,
    volume and user; meant for the host that keeps the copy, or for drills)."""
    from dr.services import offsite as dr_offsite

    cfg = _load(config)
    if stop:
        dr_offsite.stop(cfg)
        print("offsite server stopped; its data volume is kept")
        return
    info = dr_offsite.serve(cfg)
    print(f"offsite server {info['state']}: {info['container']} on network {info['network']}, "
          f"published on {info['published']}\n"
          f"to use it from this host, set in the configuration:\n"
          f"  [offsite]\n  repository = \"{info['repository']}\"\n  network = \"{info['network']}\"\n"
          f"  user = \"{info['user']}\"   # password: the secret file offsite-http-password")


@task(name="schedule-install", help={"config": CONFIG_HELP,
                                     "dest": "write the units into this folder instead (nothing is enabled)"})
@job
def schedule_install(c, config=None, dest=None):
    """Install systemd timers for pipeline ([schedule] pipeline, every 5 minutes), snapshot (hourly),
    maintenance (forget, check, offsite; daily) and drill (weekly); without systemd, print the equivalent
    crontab lines."""
    from pathlib import Path

    from dr.jobs import schedule
    from dr.machine import images

    cfg = _load(config)
    config_file = Path(cfg.source) if cfg.source != "built-in defaults" else None
    result = schedule.install(cfg, images.ROOT, config_file, Path(dest) if dest else None)
    for path in result["written"]:
        print(f"wrote {path}")
    if result["written"] and result.get("enabled"):
        print("timers enabled: " + ", ".join(f"{schedule.PREFIX}-{j.name}.timer" for j in schedule.jobs(cfg)))
    if not result["systemd"]:
        print("this host does not run systemd; add these lines to root's crontab (crontab -e):")
        print("\n".join(result["crontab"]))


@task(help={"config": CONFIG_HELP, "set": "the set to restore: an id from `invoke snapshots`, or latest (default)",
            "target": "restore the state directories into this folder instead of the data root",
            "db": "restore the database too (default; --no-db: only the files)",
            "files": "restore the state directories (default; --no-files: only the database)",
            "force": "replace a non-empty data root or database (the old files and database are kept aside)",
            "from-dump": "restore the database from the set's portable dump instead of its physical copy "
                         "(another PostgreSQL major version; sets without a physical copy always do)",
            "offsite": "restore from the off-site repository", "json": "print JSON"})
@job
def restore(c, config=None, set_="latest", target=None, db=True, files=True, force=False, from_dump=False,
            offsite=False, json_=False):
    """Restore a snapshot set into the data root (or --target) and the database, and verify both against
    the set's manifest (digests per directory, counts per collection); refuses to overwrite unless --force."""
    from dr.jobs import restore as dr_restore

    cfg = _load(config)
    if target:
        cfg = dr_config.derive(cfg, {"data_root": str(target)})
    done = dr_restore.restore(cfg, set_, files=files, db=db, force=force, offsite=offsite,
                 from_dump=from_dump)
    if json_:
        print(json.dumps(dr_restore.as_dict(done), indent=2))
        return
    print(f"restored set {done.set_id} (taken {done.set_started}), verified against its manifest:")
    if done.files is not None:
        f = done.files
        print(f"  files: {f.files} files, {f.bytes / 1e6:.1f} MB into {cfg.data_root} in {f.seconds:.1f}s"
              + (f"; the previous content is in {f.moved_aside}" if f.moved_aside else ""))
    if done.dump is not None:
        d = done.dump
        print(f"  database {d.database} from the portable dump: "
              + ", ".join(f"{k} {v}" for k, v in sorted(d.collections.items())) + f" in {d.seconds:.1f}s")
    if done.copy is not None:
        p = done.copy
        print(f"  database {cfg.db.database} from the physical copy ({p.copy.bytes / 1e6:.1f} MB, PostgreSQL "
              f"{p.copy.postgres_major}): " + ", ".join(f"{k} {v}" for k, v in sorted(p.collections.items()))
              + f" in {p.seconds:.1f}s" + (f"; the previous database is in PostgreSQL's volume as "
                                           f"{p.copy.replaced}" if p.copy.replaced else ""))


@task(help={"config": CONFIG_HELP, "set": "the set to drill: an id, or latest (default)",
            "offsite": "drill the off-site copy", "json": "print the drill report as JSON",
            "bare-host": "execute docs/runbook.md on a simulated fresh Debian server with a copy of the "
                         "repository and secrets (restores the latest set; takes minutes)",
            "two-hosts": "execute docs/runbook.md on two simulated fresh Debian servers, the Aggregator's and "
                         "the database's (section 12: the database moved, both lost and rebuilt; takes minutes)",
            "keep": "--bare-host, --two-hosts: leave the server containers and their folder for inspection"})
@job
def drill(c, config=None, set_="latest", offsite=False, json_=False, bare_host=False, two_hosts=False, keep=False):
    """Restore drill: restore the set into a throwaway database and folder, verify it, query it, run the
    importer over what was in flight, time every phase; writes a report to the drill history.
    --bare-host: the runbook, command by command, on a fresh Debian server in a container.
    --two-hosts: the same on two servers, with the database moved to its own (runbook section 12)."""
    from dr.drills import drill as dr_drill
    from dr.drills import drill_reports
    from dr.jobs import monitoring

    cfg = _load(config)
    if two_hosts:
        from dr.drills import two_hosts as dr_two_hosts

        report = dr_two_hosts.run(cfg, keep)
        print(json.dumps(report, indent=2) if json_ else drill_reports.two_hosts_markdown(report), end="")
        return
    if bare_host:
        from dr.drills import bare_host as dr_bare_host

        report = dr_bare_host.run(cfg, keep)
        print(json.dumps(report, indent=2) if json_ else drill_reports.bare_host_markdown(report), end="")
        return
    with monitoring.job(cfg, "drill") as run:
        report = dr_drill.run(cfg, set_, offsite)
        run.record(report)
    print(json.dumps(report, indent=2) if json_ else drill_reports.restore_markdown(report), end="")


@task(help={"config": CONFIG_HELP, "json": "print JSON"})
@job
def drills(c, config=None, json_=False):
    """List the drill history (newest first): time, set, verdict, restore seconds, recovery point."""
    from dr.drills import drill_reports

    cfg = _load(config)
    rows = drill_reports.history(cfg)
    if json_:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        r["restore_s"] = r.get("restore_seconds", "")
        r["rpo_s"] = r.get("rpo_seconds", "")
        r["MB"] = f"{r.get('bytes_restored', 0) / 1e6:.1f}"
    print(_table(rows, ["started", "set", "verdict", "restore_s", "rpo_s", "MB"]) if rows
          else f"no drills yet in {cfg.drill.history_dir}")


@task(help={"config": CONFIG_HELP,
            "minutes": "how long to fuzz, in minutes (default 10; 0.5 is fine); the round running then is finished",
            "out": "folder for failing rounds' logs and batches (default: a new temporary folder)",
            "seed": "run one round with this seed (a failing round's rerun) instead",
            "examples": "examples per round (default: the fuzz profile's, 40)"})
@job
def fuzz(c, config=None, minutes="10", out=None, seed=None, examples=None):
    """Run the hostile-input campaign (campaign/: generated hostile reports through sanitize and the importer
    in a throwaway database, every invariant checked) with fresh random seeds until MINUTES have passed;
    print examples run, time, and every failure with its falsifying example."""
    from dr.drills import fuzz as dr_fuzz

    for name, value in (("seed", seed), ("examples", examples)):
        if value is not None and not str(value).isdigit():
            print(f"error: --{name}: must be a whole number, got {value!r}", file=sys.stderr)
            raise Exit(code=2)
    cfg = _load(config)
    result = dr_fuzz.run(cfg, float(minutes), out, None if seed is None else int(seed),
                   None if examples is None else int(examples))
    print(dr_fuzz.report(result))
    if result["failures"]:
        raise Exit(code=1)
