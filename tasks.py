"""Invoke tasks: each parses its arguments, calls its job in dr/ directly and prints the result; @job turns a
job's DrError into one message and its exit code.

`invoke --list` shows them; `invoke --help TASK` shows a task's options.
"""

from __future__ import annotations

import functools
import inspect
import sys

from invoke import Exit, task

from common import config as dr_config
from common import log
from common.errors import DrError, UsageError
from common.records import Record
from dr.drills.drill_reports import DrillHistory, HostLossReport, RestoreDrillReport, RunbookDrillReport
from dr.drills.fuzz import FuzzResult
from dr.jobs.pipeline import PipelineRun
from dr.jobs.rebuild import RebuildReport
from dr.jobs.restore import Restored
from dr.jobs.rotate import Rotation
from dr.jobs.schedule import ScheduleInstalled
from dr.jobs.subscriber import SubscriberService
from dr.machine.configfile import ConfigShown
from dr.machine.host import BootstrapReport
from dr.machine.images import BuildResult
from dr.services.broker import BrokerService
from dr.services.certs import CertsMade
from dr.services.dbhost import KitWritten
from dr.services.offsite import OffsiteServer
from dr.services.stack import Stopped
from dr.watch.screenshot import Screenshot
from dr.watch.status import Status
from snapshots import results
from stages.where import Whereabouts

CONFIG_HELP = "configuration file (TOML); default: $AGGREGATOR_DR_CONFIG or /etc/aggregator-dr/config.toml"


def _load(config_path):
    log.setup()
    return dr_config.load(config_path)


def job(*result_types: type[Record]):
    """A task's body, which returns its job's result (one of result_types), with what every task shares: the
    result printed (`render()`, or `to_json()` with --json) and its exit status (`exit_status()`, with
    `failure()` on stderr); a DrError becomes a one-paragraph message and its exit code, an interrupt exit 130,
    never a traceback. Under @task, so that invoke reads the body's own arguments (functools.wraps keeps its
    signature)."""
    def decorate(body):
        signature = inspect.signature(body)

        @functools.wraps(body)
        def run(*args, **kwargs):
            try:
                result = body(*args, **kwargs)
            except DrError as exc:
                print(f"error: {exc}", file=sys.stderr)
                raise Exit(code=exc.exit_code) from None
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                raise Exit(code=130) from None
            if not isinstance(result, result_types):
                raise TypeError(f"task {body.__name__} returned {type(result).__name__}, "
                                f"not {' or '.join(t.__name__ for t in result_types)}")
            as_json = signature.bind(*args, **kwargs).arguments.get("json_", False)
            print((result.to_json() if as_json else result.render()).rstrip("\n"))
            if result.exit_status():
                if result.failure():
                    print(f"error: {result.failure()}", file=sys.stderr)
                raise Exit(code=result.exit_status())
        run.result_types = result_types
        return run
    return decorate


JSON_HELP = "print the result as JSON"


@task(help={"config": CONFIG_HELP, "json": JSON_HELP})
@job(BootstrapReport)
def bootstrap(c, config=None, json_=False):
    """Install the host's Debian packages (docker.io, debootstrap, ...) and start dockerd; idempotent."""
    from dr.machine import host

    return host.bootstrap(_load(config))


@task(help={"config": CONFIG_HELP, "refresh_base": "debootstrap the base image again even if present",
            "only": "comma-separated components (or tools: aptcache, promtool) to build (default: every "
                    "component)", "json": JSON_HELP})
@job(BuildResult)
def build(c, config=None, refresh_base=False, only=None, json_=False):
    """Build the base image (debootstrap) and every component image from dockerfiles/ (cached)."""
    from dr.machine import images

    cfg = _load(config)
    components = tuple(only.split(",")) if only else images.COMPONENTS
    known = images.COMPONENTS + images.TOOLS
    unknown = [x for x in components if x not in known]
    if unknown:
        raise UsageError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return images.build_all(cfg, components, refresh_base)


@task(help={"config": CONFIG_HELP, "refresh_base": "debootstrap the base image again even if present",
            "sample": "also start the built-in sample collector and run the pipeline on its reports",
            "role": "what this host is: all, aggregator or database; must agree with host.role in the "
                    "configuration (every other task reads it there)",
            "offsite": "the local repository is lost: the build artifacts and the latest set from the off-site "
                       "repository (offsite.repository), and a new local repository for the next sets",
            "json": JSON_HELP})
@job(RebuildReport)
def rebuild(c, config=None, refresh_base=False, sample=False, role=None, offsite=False, json_=False):
    """Turn this Debian host into a running Aggregator (or its database's own host): preflight, bootstrap,
    images, start, restore, verify."""
    from dr.jobs import rebuild as dr_rebuild
    from dr.watch import publish

    cfg = _load(config)
    dr_rebuild.check_role(cfg, role)
    if offsite:
        dr_rebuild.offsite_usable(cfg)
    return publish.as_job(cfg, "rebuild", lambda: dr_rebuild.rebuild(cfg, refresh_base, sample, offsite))


@task(help={"config": CONFIG_HELP, "json": JSON_HELP})
@job(Status)
def status(c, config=None, json_=False):
    """Show the stalls and risks first (exit 1 while any holds), then whether data flows, is backed up and
    would restore, the database and the disk, then images, service containers and the TLS certificates."""
    from dr.watch import status as dr_status

    return dr_status.status(_load(config))


@task(help={"config": CONFIG_HELP, "json": JSON_HELP, "out": "the PNG to write (default: docs/status.png)",
            "url": "the page to picture (default: the configured web mirror's /status/ on 127.0.0.1)"})
@job(Screenshot)
def screenshot(c, config=None, out="docs/status.png", url=None, json_=False):
    """Take a PNG of the status page as the web mirror serves it, with Debian's chromium headless (installed
    when missing); written atomically."""
    from pathlib import Path

    from dr.watch import screenshot as dr_screenshot

    return dr_screenshot.take(_load(config), Path(out), url)


@task(help={"config": CONFIG_HELP, "json": JSON_HELP,
            "renew": "re-issue every certificate the CA signs (the CA is kept)",
            "renew-ca": "make a new CA too (then every copy of ca.crt on other hosts must be replaced)"})
@job(CertsMade)
def certs(c, config=None, renew=False, renew_ca=False, json_=False):
    """Make the private CA and the TLS certificates of the database, PostgreSQL, the off-site server and
    clients in <secrets_dir>/tls (docs/tls.md); keeps those that are valid and match the configuration."""
    from dr.services import certs as dr_certs

    return dr_certs.make(_load(config), renew, renew_ca)


@task(help={"config": CONFIG_HELP, "to": "the new folder to write the kit into", "json": JSON_HELP})
@job(KitWritten)
def db_host_kit(c, to, config=None, json_=False):
    """Copy what the database's own host needs (role passwords, the restic password, the CA's certificate,
    the database's and PostgreSQL's certificates and keys; never the CA's key) into a new folder, to carry
    over as that host's secrets directory (docs/runbook.md, section 12)."""
    from dr.services import dbhost

    return dbhost.write_kit(_load(config), to)


@task(help={"config": CONFIG_HELP, "json": JSON_HELP,
            "kit": "host.role aggregator: then write the database's host kit into this new folder"})
@job(Rotation)
def rotate_secrets(c, config=None, json_=False, kit=None):
    """New passwords for every database role and, with db.tls, new certificates from the same CA; the
    pipeline waits while it runs (seconds), and an interrupted rotation is finished by running it again
    (docs/tls.md). With the database on its own host: on the Aggregator's host (with --kit), then on the
    database's host with the kit in its secrets folder (docs/runbook.md 12.5)."""
    from dr.jobs import rotate
    from dr.watch import publish

    cfg = _load(config)
    return publish.as_job(cfg, "rotate-secrets", lambda: rotate.rotate(cfg, kit))


@task(help={"config": CONFIG_HELP, "json": JSON_HELP})
@job(Stopped)
def down(c, config=None, json_=False):
    """Stop and remove the service containers and the sample collector; data (database volume, data root,
    secrets) is kept. Says which containers of the instance still run, and why."""
    from dr.services import stack

    return stack.down(_load(config))


@task(name="config", help={"config": CONFIG_HELP, "defaults": "print the default configuration as TOML"})
@job(ConfigShown)
def show_config(c, config=None, defaults=False):
    """Validate and print the effective configuration (or the defaults as a commented TOML file)."""
    from dr.machine import configfile

    return configfile.show_defaults() if defaults else configfile.show(_load(config))


@task(help={"config": CONFIG_HELP, "stage": "run only this stage (sync, sanitize, importer)",
            "json": "print the stage summaries as JSON",
            "catch_up": "only import again the archived reports the database lacks (after the database's own "
                        "host was restored from an older set: docs/runbook.md 12.2)"})
@job(PipelineRun)
def pipeline(c, config=None, stage=None, json_=False, catch_up=False):
    """Run the pipeline's stages in order, each in its own image (exit 1 if a stage failed). A full run is
    the scheduled job "pipeline": it writes its metrics and pings (a --stage or --catch-up run does
    neither; every run is in the job history)."""
    from dr.jobs import pipeline as dr_pipeline
    from dr.watch import publish

    cfg = _load(config)
    body = (lambda: dr_pipeline.catch_up(cfg)) if catch_up else (lambda: dr_pipeline.run(cfg, stage))
    return publish.as_job(cfg, dr_pipeline.job_name(stage, catch_up), body)


@task(help={"config": CONFIG_HELP, "json": JSON_HELP})
@job(Whereabouts)
def where(c, name, config=None, json_=False):
    """Where a report is now (by file name, raw path or report id), and its history from the journal."""
    from stages import where as stages_where
    from stages.layout import DataRoot

    return stages_where.locate(DataRoot(_load(config).data_root), name)


def _backup(cfg, action, dry_run=False, extra=(), offsite=False, **parts) -> Record:
    """The result of one snapshots action in the backup image (its type in snapshots/results.py); a DrError
    when it failed without one (a result that reports its own failure, like check's, is returned)."""
    from dr.jobs import backup

    code, result = backup.run(cfg, action, dry_run, tuple(extra), offsite, **parts)
    if result is None:
        raise DrError(f"snapshots {action} failed (exit {code}); the reason is in the lines above")
    return result


OFFSITE_HELP = "work on the off-site repository (offsite.repository) instead of the primary one"


@task(name="repo-init", help={"config": CONFIG_HELP, "offsite": OFFSITE_HELP, "json": JSON_HELP})
@job(results.InitResult)
def repo_init(c, config=None, offsite=False, json_=False):
    """Create the encrypted restic repository (backup.repository, or offsite.repository); its password
    file is made in the secrets directory when missing. Says so when the repository already exists."""
    return _backup(_load(config), "init", offsite=offsite)


@task(help={"config": CONFIG_HELP, "json": "print the manifest as JSON",
            "with-dump": "carry the portable dump in this set whatever backup.portable_dump says (before moving "
                         "to another PostgreSQL major version)"})
@job(results.TakeResult)
def snapshot(c, config=None, json_=False, with_dump=False):
    """Take a snapshot set: state directories (under the exclusive lock), PostgreSQL's physical copy, the
    portable dump when due, and the manifest; then release from the collectors the reports it holds
    (sync.release "set")."""
    from dr.jobs import release as dr_release
    from dr.watch import publish

    cfg = _load(config)
    if with_dump:
        cfg = dr_config.derive(cfg, {"backup.portable_dump": "every"})
    return publish.as_job(cfg, "snapshot", lambda: dr_release.snapshot(cfg))


@task(help={"config": CONFIG_HELP, "json": JSON_HELP, "offsite": OFFSITE_HELP})
@job(results.SetList)
def snapshots(c, config=None, json_=False, offsite=False):
    """List snapshot sets (id, time, complete or not, sizes, paused seconds), newest first."""
    return _backup(_load(config), "list", offsite=offsite)


@task(help={"config": CONFIG_HELP, "dry_run": "only print which sets would be forgotten",
            "json": JSON_HELP})
@job(results.ForgetResult)
def forget(c, config=None, dry_run=False, json_=False):
    """Apply the retention policy ([retention] keep_last/hourly/daily/weekly/monthly) to whole snapshot
    sets, then prune the repository."""
    from dr.watch import publish

    cfg = _load(config)
    if dry_run:
        return _backup(cfg, "forget", dry_run)
    return publish.as_job(cfg, "forget", lambda: _backup(cfg, "forget", dry_run))


@task(help={"config": CONFIG_HELP, "json": JSON_HELP, "offsite": OFFSITE_HELP,
            "read_data_subset": "also read back and decrypt this share of the repository's packs "
                                "(restic syntax: 10%, 1/5, 500M)"})
@job(results.CheckResult)
def check(c, config=None, read_data_subset=None, json_=False, offsite=False):
    """Verify the repository (restic check), read every complete set back against its manifest (digests per
    state directory, counts per collection) and the build artifacts against their sha256; exit 1 naming
    what fails."""
    from dr.watch import publish

    cfg = _load(config)
    extra = ("--read-data-subset", read_data_subset) if read_data_subset else ()
    return publish.as_job(cfg, "check-offsite" if offsite else "check",
                          lambda: _backup(cfg, "check", extra=extra, offsite=offsite))


@task(help={"config": CONFIG_HELP, "json": JSON_HELP})
@job(results.CopyResult)
def offsite(c, config=None, json_=False):
    """Copy every complete snapshot set the off-site repository lacks (restic copy; manifests last); then
    release from the collectors the reports the newest one holds (sync.release "set" or "offsite")."""
    from dr.jobs import release as dr_release
    from dr.watch import publish

    cfg = _load(config)
    return publish.as_job(cfg, "offsite", lambda: dr_release.offsite(cfg))


@task(name="offsite-server", help={"config": CONFIG_HELP, "stop": "stop and remove it (its data volume is kept)",
                                   "json": JSON_HELP})
@job(OffsiteServer)
def offsite_server(c, config=None, stop=False, json_=False):
    """Run the append-only rest-server for the off-site copy on this Docker host (its own image, network,
    volume and user; meant for the host that keeps the copy, or for drills)."""
    from dr.services import offsite as dr_offsite

    cfg = _load(config)
    return dr_offsite.stop(cfg) if stop else dr_offsite.serve(cfg)


@task(help={"config": CONFIG_HELP, "stop": "stop and remove its container (its volume, the queues, stays)",
            "purge_dead": "empty the dead-letter queue once their reasons are read (`invoke status`)",
            "json": JSON_HELP})
@job(BrokerService)
def broker(c, config=None, stop=False, purge_dead=False, json_=False):
    """Run the broker (RabbitMQ, docs/broker.md) for the configured collectors: its certificate made when
    missing, its users from the password files; `rebuild` starts it too with broker.enabled."""
    from dr.services import broker as dr_broker

    return dr_broker.service(_load(config), stop_it=stop, purge=purge_dead)


@task(help={"config": CONFIG_HELP, "stop": "stop and remove them (unacknowledged messages go back to the queue)",
            "json": JSON_HELP})
@job(SubscriberService)
def subscribe(c, config=None, stop=False, json_=False):
    """Run the subscriber: a service container (the sync image) that consumes the broker's claim checks and
    pulls each announced report into raw/ with sync's verified path, acknowledging it once durable, and sanitize
    and the importer following their inputs beside it (docs/broker.md)."""
    from dr.jobs import subscriber

    return subscriber.service(_load(config), stop_it=stop)


@task(name="schedule-install", help={"config": CONFIG_HELP, "json": JSON_HELP,
                                     "dest": "write the units into this folder instead (nothing is enabled)"})
@job(ScheduleInstalled)
def schedule_install(c, config=None, dest=None, json_=False):
    """Install systemd timers for pipeline ([schedule] pipeline, every 5 minutes), snapshot (hourly),
    maintenance (forget, check, offsite; daily) and drill (weekly); without systemd, print the equivalent
    crontab lines."""
    from pathlib import Path

    from dr.jobs import schedule
    from dr.machine import images

    cfg = _load(config)
    config_file = Path(cfg.source) if cfg.source != "built-in defaults" else None
    return schedule.install(cfg, images.ROOT, config_file, Path(dest) if dest else None)


@task(help={"config": CONFIG_HELP, "set": "the set to restore: an id from `invoke snapshots`, or latest (default)",
            "target": "restore the state directories into this folder instead of the data root",
            "db": "restore the database too (default; --no-db: only the files)",
            "files": "restore the state directories (default; --no-files: only the database)",
            "force": "replace a non-empty data root or database (the old files and database are kept aside)",
            "from-dump": "restore the database from the set's portable dump instead of its physical copy "
                         "(another PostgreSQL major version; sets without a physical copy always do)",
            "offsite": "restore from the off-site repository", "json": JSON_HELP})
@job(Restored)
def restore(c, config=None, set_="latest", target=None, db=True, files=True, force=False, from_dump=False,
            offsite=False, json_=False):
    """Restore a snapshot set into the data root (or --target) and the database, and verify both against
    the set's manifest (digests per directory, counts per collection); refuses to overwrite unless --force."""
    from dr.jobs import restore as dr_restore

    cfg = _load(config)
    if target:
        cfg = dr_config.derive(cfg, {"data_root": str(target)})
    return dr_restore.restore(cfg, set_, files=files, db=db, force=force, offsite=offsite, from_dump=from_dump)


@task(help={"config": CONFIG_HELP, "set": "the set to drill: an id, or latest (default)",
            "offsite": "drill the off-site copy", "json": "print the drill report as JSON",
            "bare-host": "execute docs/runbook.md on a simulated fresh Debian server with a copy of the "
                         "repository and secrets (restores the latest set; takes minutes)",
            "two-hosts": "execute docs/runbook.md on two simulated fresh Debian servers, the Aggregator's and "
                         "the database's (section 12: the database moved, both lost and rebuilt; takes minutes)",
            "host-loss": "an Aggregator of the drill's own with two collectors fed all through it, its host "
                         "destroyed at moments over the whole flow and rebuilt by the runbook from the off-site "
                         "copy alone; checks no report is lost or doubled (minutes per round)",
            "rounds": "--host-loss: how many losses (default: every moment once, 7)",
            "seed": "--host-loss: the seed that orders the moments and picks the times (default: a fresh one)",
            "keep": "--bare-host, --two-hosts, --host-loss: leave the containers and their folder for inspection"})
@job(RestoreDrillReport, RunbookDrillReport, HostLossReport)
def drill(c, config=None, set_="latest", offsite=False, json_=False, bare_host=False, two_hosts=False, host_loss=False,
          rounds=None, seed=None, keep=False):
    """Restore drill: restore the set into a throwaway database and folder, verify it, query it, run the
    importer over what was in flight, time every phase; writes a report to the drill history.
    --bare-host: the runbook, command by command, on a fresh Debian server in a container.
    --two-hosts: the same on two servers, with the database moved to its own (runbook section 12).
    --host-loss: no report lost when the Aggregator's host is lost (runbook section 8), round after round."""
    from dr.drills import bare_host as dr_bare_host
    from dr.drills import drill as dr_drill
    from dr.drills import host_loss as dr_host_loss
    from dr.drills import two_hosts as dr_two_hosts
    from dr.watch import publish

    rounds, seed = _whole_number("rounds", rounds), _whole_number("seed", seed)
    if (rounds is not None or seed is not None) and not host_loss:
        raise UsageError("--rounds and --seed go with --host-loss")
    cfg = _load(config)
    name = ("drill-host-loss" if host_loss else "drill-two-hosts" if two_hosts else "drill-bare-host" if bare_host
            else "drill")
    if host_loss:
        return publish.as_job(cfg, name, lambda: dr_host_loss.run(cfg, rounds or len(dr_host_loss.MOMENTS), seed,
                                                                   keep=keep))
    if two_hosts:
        return publish.as_job(cfg, name, lambda: dr_two_hosts.run(cfg, keep))
    if bare_host:
        return publish.as_job(cfg, name, lambda: dr_bare_host.run(cfg, keep))
    return publish.as_job(cfg, name, lambda: dr_drill.run(cfg, set_, offsite))


@task(help={"config": CONFIG_HELP, "json": JSON_HELP})
@job(DrillHistory)
def drills(c, config=None, json_=False):
    """List the drill history (newest first): time, set, verdict, restore seconds, recovery point."""
    from dr.drills import drill_reports

    return drill_reports.history(_load(config))


def _whole_number(name: str, value) -> int | None:
    if value is not None and not str(value).isdigit():
        raise UsageError(f"--{name}: must be a whole number, got {value!r}")
    return None if value is None else int(value)


@task(help={"config": CONFIG_HELP, "json": JSON_HELP,
            "minutes": "how long to fuzz, in minutes (default 10; 0.5 is fine); the round running then is finished",
            "out": "folder for failing rounds' logs and batches (default: a new temporary folder)",
            "seed": "run one round with this seed (a failing round's rerun) instead",
            "examples": "examples per round (default: the fuzz profile's, 40)"})
@job(FuzzResult)
def fuzz(c, config=None, minutes="10", out=None, seed=None, examples=None, json_=False):
    """Run the hostile-input campaign (campaign/: generated hostile reports through sanitize and the importer
    in a throwaway database, every invariant checked) with fresh random seeds until MINUTES have passed;
    print examples run, time, and every failure with its falsifying example."""
    from dr.drills import fuzz as dr_fuzz
    from dr.watch import campaign_page

    seed, examples = _whole_number("seed", seed), _whole_number("examples", examples)
    try:
        minutes = float(minutes)
    except ValueError:
        raise UsageError(f"--minutes: must be a number, got {minutes!r}") from None
    return dr_fuzz.run(_load(config), minutes, out, seed, examples, pages=campaign_page.status_page)
