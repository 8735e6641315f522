"""`invoke rebuild`: a freshly installed Debian host becomes a working Aggregator (or, with host.role
database, the Aggregator's database on its own host; with host.role aggregator, an Aggregator whose database
is on that host).

Phases: preflight, host bootstrap, base image, component images, start services, wait for health, restore
(the latest complete snapshot set, when the repository has one and this host's data root and database are
empty; verified against its manifest by the restore itself), verify (the services answer, the database
holds what the set's manifest says), then the pipeline once (so that reports restored in raw/, staging/ and
reports/ move on; with `sample`, after starting the built-in sample collector). Every phase is timed; the
total is the measured recovery time (RTO) of this host.

With `offsite` (`rebuild --offsite`: the host was lost together with its local repository), the artifacts and
the set come from the off-site repository instead, by the same code with the same flag, and a new, empty local
repository is made when the primary one is a missing local folder, so that the next `invoke snapshot` works;
the summary names the repository used.

By host.role: `all` does all of the above. `database` builds and starts PostgreSQL and FerretDB only,
restores the set's database part (when its database is empty) and stops there. `aggregator` starts the rest,
reaches the database on its own host (db.host, over TLS), restores the set's files only (the database host
restores the database: rebuild that one first) and runs the pipeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from common import broker as broker_names
from common import config, log, poll, secrets
from common.config import Config
from common.errors import ConfigError, DrError, SecretError
from common.records import Record, optional
from dr.jobs import backup, pipeline, subscriber
from dr.jobs import restore as dr_restore
from dr.jobs.restore import Restored
from dr.machine import host, images, roles
from dr.services import broker, certs, collector, stack
from stages import journal
from stages.cli import Summary
from stages.layout import DataRoot

_log = log.get("rebuild")


@dataclass
class Phase(Record):
    """One phase of a rebuild: its name, how long it took, what it did."""
    name: str
    seconds: float
    note: str


@dataclass
class RebuildReport(Record):
    """A rebuild's phases, in order; the set it restored, if any; the pipeline's stages when it ran; the
    repository it read the artifacts and the set from (reports written before it was named have none), and
    whether that was the off-site one."""
    phases: list[Phase] = field(default_factory=list)
    restored: Restored | None = optional()
    pipeline: list[Summary] = field(default_factory=list)
    repository: str | None = optional()
    offsite: bool = False

    @property
    def total(self) -> float:
        """The seconds of every phase: the measured recovery time (RTO) of this host."""
        return sum(p.seconds for p in self.phases)

    def notes(self) -> dict[str, str]:
        """Each phase's note by its name."""
        return {p.name: p.note for p in self.phases}

    def render(self) -> str:
        lines = ["rebuild summary:"]
        lines += [f"  {p.name:<12} {p.seconds:7.1f}s  {p.note}" for p in self.phases]
        lines.append(f"  {'total':<12} {self.total:7.1f}s")
        if self.repository:
            lines.append(f"  from the {'off-site' if self.offsite else 'primary'} repository {self.repository}")
        return "\n".join(lines)


def _phase(report: RebuildReport, name: str, fn):
    _log.info("== %s", name)
    start = time.monotonic()
    note = fn()
    report.phases.append(Phase(name, time.monotonic() - start, note or ""))


def with_sample_collector(cfg: Config) -> Config:
    """Start the built-in sample collector; the configuration gains it as one more collector."""
    entry = collector.start(cfg)
    others = [c.as_dict() for c in cfg.collectors if c.name != entry["name"]]
    return config.derive(cfg, {"collectors": others + [entry]})


def _pipeline_note(stages: list[Summary]) -> str:
    return "; ".join(f"{s.stage} " + (", ".join(f"{v} {k}" for k, v in sorted(s.outcomes.items()))
                                      or "nothing to do") for s in stages)


def check_role(cfg: Config, role: str | None) -> None:
    """`--role` names what the operator means this host to be; the configuration must say the same, since
    every other task (status, snapshot, restore) reads host.role there."""
    if role is None or role == cfg.host.role:
        return
    if role not in config.HOST_ROLES:
        raise DrError(f"--role {role!r}: must be one of {', '.join(config.HOST_ROLES)}")
    raise DrError(f"--role {role} but the configuration ({cfg.source}) says host.role = \"{cfg.host.role}\": set "
                  f"host.role = \"{role}\" there (docs/runbook.md, section 12)")


def rebuild(cfg: Config, refresh_base: bool = False, sample: bool = False, offsite: bool = False) -> RebuildReport:
    """offsite: the artifacts and the set from the off-site repository (DrError at once when it is not
    configured or its password files are missing), and a new local repository when it is missing."""
    if offsite:
        offsite_usable(cfg)
    report = RebuildReport(repository=cfg.offsite.repository if offsite else cfg.backup.repository, offsite=offsite)
    _phase(report, "preflight", lambda: "; ".join(host.preflight(cfg)))
    _phase(report, "bootstrap", lambda: host.bootstrap(cfg).summary())

    _phase(report, "artifacts", lambda: restore_artifacts(cfg, refresh_base, offsite))

    def build():
        built = images.build_all(cfg, images.components_of(cfg), refresh_base=refresh_base).images
        unchanged = sum(1 for b in built if b.unchanged)
        return f"{len(built)} images ({unchanged} unchanged)"

    _phase(report, "images", build)
    _phase(report, "start", lambda: start(cfg))
    _phase(report, "health", lambda: ", ".join(f"{k} healthy after {v}s"
                                                for k, v in stack.wait_healthy(cfg).items()))
    _phase(report, "indexes", lambda: f"{len(backup.db_indexes(cfg))} indexes serve the users' queries")
    _phase(report, "restore", lambda: restore_latest(cfg, report, offsite))
    if report.restored is not None:
        _phase(report, "verify", lambda: verify(cfg, report.restored))
    if offsite and _local_missing(cfg) and roles.of(cfg).runs_pipeline:  # the host that takes the sets
        _phase(report, "repository", lambda: new_local_repository(cfg))
    if roles.of(cfg).database_elsewhere:
        _phase(report, "catch-up", lambda: catch_up(cfg))
    if not roles.of(cfg).runs_pipeline:
        return report  # the pipeline runs on the Aggregator's host
    holder = {"cfg": cfg}
    if cfg.broker.enabled:
        _phase(report, "broker", lambda: start_broker(cfg, sample))
    if sample:
        position = journal.position(DataRoot(cfg.data_root))

        def start_sample():
            holder["cfg"] = with_sample_collector(cfg)
            return f"sample collector {collector.container_name(cfg)} with the built-in reports" + (
                ", announcing each to the broker" if cfg.broker.enabled else "")

        _phase(report, "collector", start_sample)
    if cfg.broker.enabled:
        _phase(report, "subscribe", lambda: start_arrivals(holder["cfg"]))
    if sample and cfg.broker.enabled:
        _phase(report, "arrivals", lambda: sample_arrived(holder["cfg"], position))
    if sample or report.restored is not None:

        def run_pipeline():
            stages = pipeline.run(holder["cfg"]).stages
            report.pipeline = stages
            failed = [s for s in stages if s.exit_code]
            if failed:
                raise PipelineFailed(f"stage {failed[0].stage} failed: {_why(failed[0])}")
            return _pipeline_note(stages)

        _phase(report, "pipeline", run_pipeline)
    return report


class PipelineFailed(DrError):
    pass


ARRIVAL_TIMEOUT = 180.0  # seconds the built-in reports may take through the broker (a fresh broker, cold images)


def start_broker(cfg: Config, sample: bool) -> str:
    """The broker (broker.enabled), its certificate made first when missing; its users: the configured
    collectors', and the sample collector's with `sample`."""
    certs.make(cfg)
    names = [c.name for c in cfg.collectors if c.name != collector.NAME] + ([collector.NAME] if sample else [])
    state = broker.start(cfg, names)
    return f"broker {state}: {broker_names.QUEUE} and {broker_names.DEAD_QUEUE}, users for " + (
        ", ".join(names) or "no collector yet")


def start_arrivals(cfg: Config) -> str:
    """The subscriber and the stages in follow mode (dr/jobs/subscriber.py), once a collector is configured."""
    if not cfg.collectors:
        return "no collector configured ([[collectors]]): the subscriber is not started"
    state = subscriber.start(cfg)
    return f"subscriber {state}, sanitize and importer following their inputs"


def sample_arrived(cfg: Config, position: int) -> str:
    """Until the subscriber has handled as many claim checks as the sample collector holds reports (its batches,
    journalled after position: pulled, already pulled, or dead-lettered); PipelineFailed when they do not come
    through the broker in time."""
    expected = collector.reports_in(cfg)
    dr = DataRoot(cfg.data_root)
    started = time.monotonic()

    def handled() -> dict[str, int]:
        seen: dict[str, int] = {}
        for _, entry in journal.read(dr, position, stage="subscribe"):
            if entry.get("event") == "batch":
                for k, v in ((entry.get("summary") or {}).get("outcomes") or {}).items():
                    if k.startswith("acked:") or k == "dead_lettered":
                        seen[k] = seen.get(k, 0) + int(v)
        return seen

    def all_handled() -> dict[str, int] | None:
        seen = handled()
        return seen if sum(seen.values()) >= expected else None

    seen = poll.until(all_handled, f"the {expected} built-in reports to come through the broker", ARRIVAL_TIMEOUT,
                      interval=0.5, error=lambda message: PipelineFailed(
                          f"{message}: {sum(handled().values())} handled (the subscriber's log: docker logs "
                          f"{stack.container_name(cfg, subscriber.SERVICE)})"))
    return (f"{expected} built-in reports announced by the sample collector and handled by the subscriber within "
            f"{time.monotonic() - started:.1f}s (" + ", ".join(f"{v} {k.removeprefix('acked:')}"
                                                          for k, v in sorted(seen.items())) + ")")


def _why(s: Summary) -> str:
    """Why a stage's run failed: its errors, else the inputs that failed (the first three)."""
    why = s.errors or [f"{f.input}: {f.error}" for f in s.failed]
    return "; ".join(why[:3])


def catch_up(cfg: Config) -> str:
    """The database on its own host may have been restored from a set older than this host's archive: the
    archived reports it lacks, imported again (pipeline.catch_up)."""
    (s,) = pipeline.catch_up(cfg).stages
    if s.exit_code or s.errors or s.failed:
        raise PipelineFailed(f"catching the database up with the archive failed: {_why(s)}")
    n = s.outcomes.get("reimported", 0)
    return (f"{n} archived reports the database lacked, imported again" if n else
            "the database holds every archived report")


def start(cfg: Config) -> str:
    """The services started; with db.tls, the certificates made first where they are missing or no longer
    valid (`invoke certs` keeps what is valid). The database's own host makes none: its CA's key stays on
    the Aggregator's host, which made them (docs/runbook.md, section 12)."""
    made = ""
    if cfg.db.tls and roles.of(cfg).from_kit:
        made = "certificates: " + certs.check_present(cfg) + "; "
    elif cfg.db.tls:
        rows = certs.make(cfg).rows
        changed = [f"{r.certificate} {r.action}" for r in rows if r.action != "kept"]
        made = "certificates: " + (", ".join(changed) if changed else "all kept") + "; "
    return made + ", ".join(f"{k} {v}" for k, v in stack.start(cfg).items())


def offsite_usable(cfg: Config) -> None:
    """`rebuild --offsite` needs the off-site repository configured and both its password files: DrError
    naming what is missing."""
    if not cfg.offsite.repository:
        raise ConfigError("--offsite: no off-site repository is configured: set offsite.repository (and offsite.user) "
                      f"in {cfg.source} to the off-site server's rest: URL (docs/runbook.md, section 8)")
    missing = [str(secrets.path(cfg.secrets_dir, name))
               for name in (secrets.OFFSITE_RESTIC_PASSWORD, secrets.OFFSITE_HTTP_PASSWORD)
               if not secrets.path(cfg.secrets_dir, name).exists()]
    if missing:
        raise SecretError(f"--offsite: the off-site repository's password file(s) are missing: {', '.join(missing)}; "
                      "copy them from your off-host copy of the secrets (docs/runbook.md, section 1)")


def _local_missing(cfg: Config) -> bool:
    """Whether the primary repository is a local folder that holds no repository."""
    repo = cfg.backup.repository
    return config.is_local_repository(repo) and not (Path(repo) / "config").is_file()


def _repository_usable(cfg: Config, offsite: bool = False) -> str | None:
    """Why the repository (offsite: the off-site one, offsite_usable) cannot be used for a restore, or None."""
    if offsite:
        offsite_usable(cfg)
        return None
    repo = cfg.backup.repository
    if _local_missing(cfg):
        return f"no repository at {repo}"
    if not secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD).exists():
        raise DrError(f"the repository {repo} exists but its password file "
                      f"{secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD)} does not: copy it from your "
                      "off-host copy of the secrets (docs/runbook.md)")
    return None


def restore_artifacts(cfg: Config, refresh_base: bool, offsite: bool = False) -> str:
    """The Go binaries from the repository (offsite: the off-site one) when they are not in the cache (no Go
    module proxy needed)."""
    from dr.machine import gobuild

    missing = [a.name for a in gobuild.ARTIFACTS if not gobuild.cached(a, cfg.cache_path)]
    if not missing:
        return "Go binaries cached: " + ", ".join(f"{a.name} {a.version}" for a in gobuild.ARTIFACTS)
    why_not = _repository_usable(cfg, offsite)
    if why_not:
        return f"{why_not}: {', '.join(missing)} will be built from the Go module proxy"
    from dr.machine import baseimage

    baseimage.ensure(cfg, refresh=refresh_base)
    images.build_one(cfg, "backup", images.git_revision())  # needs no Go binary
    code, result = backup.run(cfg, "artifacts-restore", offsite=offsite)
    where = "the off-site repository" if offsite else "the repository"
    if code != 0:
        return f"could not read the build artifacts from {where} (exit {code}); building them instead"
    return (f"restored {', '.join(result.restored)} from artifacts snapshot {result.snapshot} "
            f"({result.taken}){' of the off-site repository' if offsite else ''}, sha256 verified"
            if result.restored else (result.reason or "nothing"))


def parts_of(cfg: Config) -> tuple[bool, bool]:
    """(files, database): the parts of a set this host restores (its role's, dr/machine/roles.py)."""
    role = roles.of(cfg)
    return role.restores_files, role.restores_database


def restore_latest(cfg: Config, report: RebuildReport, offsite: bool = False) -> str:
    """Restore the newest complete set of the repository (offsite: the off-site one) when there is one and this
    host holds none of its parts yet (parts_of); says why not otherwise. The restore's result goes into the
    report (its `restored`)."""
    from snapshots.restore import occupied

    repo = cfg.offsite.repository if offsite else cfg.backup.repository
    why_not = _repository_usable(cfg, offsite)
    if why_not:
        return f"{why_not}: nothing to restore (a new Aggregator)"
    files, database = parts_of(cfg)
    there = occupied(cfg.data_root_path) if files else []
    if there or (database and not dr_restore.database_empty(cfg)):
        return (f"this host already holds data ({', '.join(there) or 'the database'}): kept; "
                "restore explicitly with `invoke restore --force` if that is what you want")
    code, listed = backup.run(cfg, "list", offsite=offsite)
    if code != 0:
        raise DrError(f"cannot list the snapshot sets in {repo} (exit {code}); the reason is in the log above")
    complete = listed.complete
    if not complete:
        return f"the repository {repo} has no complete snapshot set: nothing to restore"
    try:
        result = dr_restore.restore(cfg, row=complete[0], files=files, db=database, offsite=offsite)
    except DrError as exc:
        raise DrError(f"the restore of the latest set failed: {exc}; docs/runbook.md says what to do") from None
    report.restored = result
    said = []
    if result.files is not None:
        said.append(f"{result.files.files} files, {result.files.bytes / 1e6:.1f} MB")
    if database:
        how = (f"physical copy {result.copy.bytes / 1e6:.1f} MB" if result.copy else "portable dump")
        said.append(f"{result.documents} documents ({how})")
    return f"set {result.set_id} (taken {result.set_started}): {', '.join(said)}, verified against its manifest"


def new_local_repository(cfg: Config) -> str:
    """After a rebuild from the off-site copy: a new, empty repository where the lost local one was (its
    password restic-password, made when missing), so that the next `invoke snapshot` takes a set into it."""
    made = not secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD).exists()
    code, result = backup.run(cfg, "init")
    if code != 0 or result is None:
        raise DrError(f"cannot make a new repository at {cfg.backup.repository} (exit {code}); the reason is in "
                      "the log above; then `invoke repo-init` makes it")
    return (f"a new, empty repository at {cfg.backup.repository} for the next sets (the older ones stay off-site)"
            + (f"; its password {secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD)} is new: keep a copy "
               "off-host" if made else ""))


def verify(cfg: Config, restored: Restored) -> str:
    """The services answer as users reach them, and the live database holds what the set's manifest says:
    the physical copy's counts range, or the dump's exact counts. An Aggregator whose database is on its
    own host restored the files only (verified by the restore): the database answers, its counts are that
    host's to check."""
    stack.check_db(cfg)
    if "webmirror" in stack.services_of(cfg):
        stack.check_webmirror(cfg)
    if not parts_of(cfg)[1]:
        return "db (on its own host) and webmirror answer; the files verified against the set's manifest"
    m = restored.manifest
    if restored.copy is not None:  # counted by the restore itself, just now, after PostgreSQL started on it
        live = restored.copy.collections
        problems = m.physical.problems(live)
    else:
        live = backup.db_counts(cfg)
        counts = {c: live.get(c, 0) for c in m.database.collections}
        problems = [] if counts == m.database.collections else [
            f"after the restore the database holds {counts}, the set's manifest says {m.database.collections}"]
    if problems:
        raise DrError("; ".join(problems))
    return "db and webmirror answer; " + ", ".join(f"{k} {v}" for k, v in sorted(live.items()))
