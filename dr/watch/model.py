"""The status model: whether data flows, is backed up and would restore, in figures, each with the time it was
computed. `compute(cfg)` builds it from
- the job history (dr/jobs/history.py), the last HISTORY_DAYS days (longer when a threshold of [status] needs
  it): the stages' and the collectors' last successes, the pipeline's last runs, the sets taken and restored,
  the checks, the off-site copies, retention, the data root's free space and the inputs waiting over time;
- the state directories, the quarantine and the journal (dr/watch/folders.py): what waits, and when a report
  last moved;
- the drills' saved reports (dr/drills/drill_reports.py; the runbook drills' folders);
- the database, when probe: each role logs in (FerretDB's ping and one listing, never a count: counting goes
  through FerretDB at its speed); its counts and size are the newest set's, as its manifest says;
- the certificates (dr/services/certs.py: each present, and its findings);
- the broker, when probe and broker.enabled or its container exists: its container's health, its queues'
  depths (rabbitmqctl in it), and the subscriber's notes in the journal (its batches, what it dead-lettered).

A page can render the same model: it is one record (JSON with `--json`), its sections the records of
dr/watch/figures.py; times are UTC (`%Y-%m-%dT%H:%M:%SZ`), ages whole seconds at `computed`, None where there
is nothing to tell (a job never ran in the history read). The rules (dr/watch/rules.py) are pure functions of
it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pymongo

from common import broker as broker_names
from common.config import DB_ROLES, Config
from common.errors import DrError
from common.records import Record, optional
from database import db
from dr.drills import drill_reports
from dr.drills.drill_reports import RunbookDrillReport
from dr.jobs import history
from dr.jobs.history import JobRun, stamp
from dr.jobs.pipeline import STAGES, PipelineRun
from dr.jobs.rebuild import RebuildReport
from dr.services import broker, certs, stack
from dr.watch import folders, results
from dr.watch.figures import (
    Backlog,
    BacklogPoint,
    BackupSet,
    BackupsSection,
    BrokerSection,
    CheckFigures,
    CollectorState,
    DatabaseSection,
    DeadLetter,
    DiskSection,
    DrillPoint,
    FlowPoint,
    OffsiteFigures,
    PipelineRunRow,
    PipelineSection,
    RestoresSection,
    RetentionFigures,
    RoleReach,
    RunbookFigures,
    StageSuccess,
    seconds_between,
    when_and_age,
)
from snapshots.results import CheckResult, CopyResult, ForgetResult, Manifest, TakeResult
from stages.cli import CollectorPull, Summary
from stages.layout import WAITING, DataRoot

HISTORY_DAYS = 35  # the job history read, at least
PIPELINE_RUNS = 12  # the pipeline's last runs shown (an hour at the default schedule)
FLOW_HOURS = 24  # the flow series (what the runs of stages moved) and the backlog series over this long
GROWTH_HOURS = 24  # the data root's free space over this long gives its rate of change
GROWTH_MIN_HOURS = 1  # ... when its measurements span this long at least
PROBE_SECONDS = 3.0  # each role's login, tried at once
# The jobs whose results hold stage summaries: the pipeline's runs, and the rebuild's run of it.
PIPELINE_JOBS = ("pipeline", "stage-sync", "stage-sanitize", "stage-importer", "catch-up", "rebuild")
RUNBOOK_DRILLS = ("bare-host", "two-hosts")  # their folders in drill.history_dir
SET_ID = "%Y%m%dT%H%M%SZ"  # a set's id is the UTC time it started
BROKER_HOURS = 24  # the subscriber's notes over this long (its dead-lettered messages counted, its last batch)
BROKER_JOURNAL_BYTES = 16 << 20  # ... read from the journal's end, this much at most
NEWEST_DEAD = 5  # the newest dead-lettered messages shown


@dataclass
class StatusModel(Record):
    """Everything `invoke status` (and the status page) shows, computed at `computed` on `host` (its
    host.role), from the job history since `history_since`."""
    computed: str
    host: str
    role: str
    history_since: str
    pipeline: PipelineSection
    backups: BackupsSection
    restores: RestoresSection
    database: DatabaseSection
    disk: DiskSection
    broker: BrokerSection | None = optional()

    def render(self) -> str:
        """Each section in short text."""
        sections = (self.pipeline, self.backups, self.restores, self.database, self.disk,
                    *((self.broker,) if self.broker is not None else ()))
        return "\n".join([f"status of {self.host} ({self.role}) at {self.computed}:"]
                         + [line for s in sections for line in s.lines()])


# --- the history, typed once --------------------------------------------------------------------------------

class Runs:
    """The job history read once, newest first; each run's result read back into its type when first asked
    for (most sections need only the newest few)."""

    def __init__(self, runs: list[JobRun]):
        self.runs = sorted(runs, key=lambda r: (r.ended, r.started), reverse=True)
        self._typed: dict[int, Record | None] = {}

    def newest_first(self, *jobs: str) -> Iterator[tuple[JobRun, Record | None]]:
        """(run, its typed result or None) of the given jobs (every job when none is given), newest first."""
        for i, run in enumerate(self.runs):
            if jobs and run.job not in jobs:
                continue
            if i not in self._typed:
                self._typed[i] = results.typed(run)
            yield run, self._typed[i]

    def newest(self, *jobs: str) -> tuple[JobRun, Record | None] | None:
        return next(self.newest_first(*jobs), None)


def summaries(result: Record | None) -> list[Summary]:
    """The stage summaries in a result: a pipeline run's, or the pipeline a rebuild ran."""
    if isinstance(result, PipelineRun):
        return result.stages
    if isinstance(result, RebuildReport):
        return result.pipeline
    return []


# --- pipeline -----------------------------------------------------------------------------------------------

def backlog(dr: DataRoot, now: dt.datetime) -> list[Backlog]:
    out = []
    for state in WAITING:
        count, oldest = folders.waiting(dr, state)
        out.append(Backlog(state, count, *when_and_age(now, oldest)))
    return out


def stage_successes(runs: Runs, now: dt.datetime) -> list[StageSuccess]:
    """Each stage's last run that exited 0, in pipeline order."""
    found: dict[str, StageSuccess] = {}
    for run, result in runs.newest_first(*PIPELINE_JOBS):
        for s in summaries(result):
            if s.exit_code == 0 and s.stage not in found:
                found[s.stage] = StageSuccess(s.stage, run.ended, seconds_between(now, run.ended), run.job)
        if len(found) == len(STAGES):
            break
    return [found.get(name) or StageSuccess(name) for name in STAGES]


def synced(pull: CollectorPull) -> bool:
    """A successful sync of a collector: reached, and no error."""
    return pull.reached and pull.error is None


def collector_state(name: str, tries: list[tuple[str, CollectorPull]], now: dt.datetime) -> CollectorState:
    """A collector's state from its tries (run's end, what sync did), newest first, back to its newest
    success if any."""
    state = CollectorState(name)
    success = next((ended for ended, p in tries if synced(p)), None)
    if success is not None:
        state.last_success, state.age_seconds = success, seconds_between(now, success)
    elif tries:
        state.first_tried = tries[-1][0]
    reached = next((p for _, p in tries if p.reached), None)
    if reached is not None:
        state.left, state.held, state.held_bytes = reached.left, reached.held, reached.held_bytes
        state.oldest_held = reached.oldest_held
        state.oldest_held_age_seconds = seconds_between(now, reached.oldest_held)
    if tries and not synced(tries[0][1]):
        state.last_error = tries[0][1].error or "not reached"
    return state


def collector_states(cfg: Config, runs: Runs, now: dt.datetime) -> list[CollectorState]:
    """Each configured collector, in the configuration's order."""
    tries: dict[str, list[tuple[str, CollectorPull]]] = {c.name: [] for c in cfg.collectors}

    def settled(t: list) -> bool:
        return bool(t) and synced(t[-1][1])

    for run, result in runs.newest_first(*PIPELINE_JOBS):
        if all(settled(t) for t in tries.values()):
            break
        for s in summaries(result):
            for pull in s.collectors if s.stage == "sync" else []:
                t = tries.get(pull.collector)
                if t is not None and not settled(t):
                    t.append((run.ended, pull))
    return [collector_state(name, t, now) for name, t in tries.items()]


def pipeline_runs(runs: Runs, count: int = PIPELINE_RUNS) -> list[PipelineRunRow]:
    """The whole pipeline's last runs, oldest first."""
    rows = []
    for run, result in runs.newest_first("pipeline"):
        if len(rows) == count:
            break
        moved = max((s.bytes_in for s in summaries(result)), default=0)
        rate = round(moved / run.seconds, 1) if run.seconds > 0 else None
        rows.append(PipelineRunRow(run.ended, run.outcome, run.seconds, moved, rate))
    return rows[::-1]


def flow_point(run: JobRun, result: Record | None) -> FlowPoint:
    """What one run of stages moved, set aside and left failed, from its stage summaries."""
    out = FlowPoint(run.ended, run.job, run.outcome)
    for s in summaries(result):
        out.pulled += s.outcomes.get("pulled", 0) if s.stage == "sync" else 0
        out.sanitized += s.outcomes.get("sanitized", 0) if s.stage == "sanitize" else 0
        out.imported += s.outcomes.get("imported", 0) if s.stage == "importer" else 0
        out.quarantined += len(s.quarantined)
        out.failed += len(s.failed)
    return out


def flow(runs: Runs, now: dt.datetime, hours: int = FLOW_HOURS) -> list[FlowPoint]:
    """Every run of stages that ended in the last hours, oldest first."""
    start = now - dt.timedelta(hours=hours)
    out = []
    for run, result in runs.newest_first(*PIPELINE_JOBS):
        if run.ended_at < start:
            break
        if run.ended_at <= now:
            out.append(flow_point(run, result))
    return out[::-1]


def backlog_series(runs: Runs, now: dt.datetime, hours: int = FLOW_HOURS) -> list[BacklogPoint]:
    """The inputs waiting at the end of every job of the last hours that recorded them, oldest first (a line
    written before jobs recorded it has none: left out)."""
    start = now - dt.timedelta(hours=hours)
    out = []
    for run in runs.runs:  # newest first
        if run.ended_at < start:
            break
        if run.backlog is not None and run.ended_at <= now:
            out.append(BacklogPoint(run.ended, run.job, sum(run.backlog.values()), dict(run.backlog)))
    return out[::-1]


def pipeline_section(cfg: Config, runs: Runs, now: dt.datetime) -> PipelineSection:
    dr = DataRoot(cfg.data_root)
    quarantine = folders.quarantined(dr)
    return PipelineSection(stamp(now), backlog(dr, now), quarantine, folders.poison(quarantine),
                           stage_successes(runs, now), collector_states(cfg, runs, now), pipeline_runs(runs),
                           *when_and_age(now, folders.last_journal_time(dr.journal)), flow(runs, now),
                           backlog_series(runs, now))


# --- backups ------------------------------------------------------------------------------------------------

def set_time(set_id: str) -> dt.datetime:
    return dt.datetime.strptime(set_id, SET_ID).replace(tzinfo=dt.timezone.utc)


def taken(runs: Runs) -> Iterator[TakeResult]:
    """The sets taken here, newest first."""
    for _, result in runs.newest_first("snapshot"):
        if isinstance(result, TakeResult):
            yield result


def _set_of(m: Manifest, source: str, now: dt.datetime) -> BackupSet:
    added = m.bytes_added if isinstance(m, TakeResult) else None
    paused = m.paused_seconds if isinstance(m, TakeResult) else None
    return BackupSet(m.set_id, source, m.started, seconds_between(now, m.started), m.bytes,
                     None if m.physical is None else m.physical.bytes, added, paused)


def newest_set(runs: Runs, now: dt.datetime) -> BackupSet | None:
    """The newest complete set: the newest taken here, or the one the newest rebuild restored if newer."""
    found = []
    take = next(taken(runs), None)
    if take is not None:
        found.append(_set_of(take, "snapshot", now))
    for _, result in runs.newest_first("rebuild"):
        if isinstance(result, RebuildReport) and result.restored is not None:
            found.append(_set_of(result.restored.manifest, "rebuild", now))
            break
    return max(found, key=lambda s: s.started, default=None)


def check_figures(runs: Runs, job: str, now: dt.datetime) -> CheckFigures | None:
    """A check's last run and its last pass."""
    last = runs.newest(job)
    if last is None:
        return None
    run, result = last
    ok = isinstance(result, CheckResult)
    out = CheckFigures(job, run.ended, seconds_between(now, run.ended),
                       ("ok" if result.ok else "FAILED") if ok else "error", list(result.failed_sets) if ok else [])
    passed = next((r for r, res in runs.newest_first(job) if isinstance(res, CheckResult) and res.ok), None)
    if passed is not None:
        out.last_pass, out.last_pass_age_seconds = passed.ended, seconds_between(now, passed.ended)
    return out


def offsite_figures(runs: Runs, newest: BackupSet | None, now: dt.datetime) -> OffsiteFigures | None:
    """The off-site copy's last run, and the lag behind the newest set from the last run that copied."""
    last = runs.newest("offsite")
    if last is None:
        return None
    run, _ = last
    out = OffsiteFigures(run.ended, seconds_between(now, run.ended), run.outcome)
    copy = next((res for _, res in runs.newest_first("offsite") if isinstance(res, CopyResult)), None)
    there = [] if copy is None else copy.copied + copy.already_offsite
    if copy is None or not there:
        return out
    out.newest_set, out.complete_sets = max(there), copy.offsite_complete_sets
    later = set()
    for take in taken(runs):
        if take.set_id <= out.newest_set:
            break
        later.add(take.set_id)
    if newest is not None and newest.set_id > out.newest_set:
        later.add(newest.set_id)
    out.lag_sets = len(later)
    behind = 0 if newest is None else (set_time(newest.set_id) - set_time(out.newest_set)).total_seconds()
    out.lag_seconds = max(0, round(behind))
    return out


def retention_figures(runs: Runs, now: dt.datetime) -> RetentionFigures | None:
    last = runs.newest("forget")
    if last is None:
        return None
    run, result = last
    out = RetentionFigures(run.ended, seconds_between(now, run.ended), run.outcome)
    if isinstance(result, ForgetResult):
        out.forgotten, out.kept = len(result.forget), len(result.keep)
    return out


def backups_section(cfg: Config, runs: Runs, now: dt.datetime) -> BackupsSection:
    newest = newest_set(runs, now)
    return BackupsSection(stamp(now), cfg.status.recovery_point_minutes * 60, bool(cfg.offsite.repository), newest,
                          check_figures(runs, "check", now), check_figures(runs, "check-offsite", now),
                          offsite_figures(runs, newest, now), retention_figures(runs, now))


# --- restores -----------------------------------------------------------------------------------------------

def drill_point(report: drill_reports.RestoreDrillReport) -> DrillPoint:
    return DrillPoint(report.started, report.verdict, report.set_id, report.restore_seconds, report.rpo_seconds)


def rto_seconds(report: RunbookDrillReport) -> float | None:
    """The seconds of the runbook drill's first block that ran `invoke rebuild`."""
    return next((s.seconds for s in report.steps
                 if s.skipped is None and s.seconds is not None and "invoke rebuild" in s.commands), None)


def runbook_figures(cfg: Config) -> RunbookFigures | None:
    """The newest runbook drill, of either kind."""
    found = [r for r in (folders.newest_runbook_report(Path(cfg.drill.history_dir) / d) for d in RUNBOOK_DRILLS)
             if r is not None and dated(r.started)]
    if not found:
        return None
    r = max(found, key=lambda r: r.started)
    return RunbookFigures(r.drill, r.started, r.verdict, r.total_seconds, r.set_id, rto_seconds(r))


def dated(started: str) -> bool:
    """Whether a drill's start reads as a time (a file that does not fit is left out, never a crash)."""
    try:
        history.parse_time(started)
    except ValueError:
        return False
    return True


def restores_section(cfg: Config, now: dt.datetime) -> RestoresSection:
    """From the restore drills' saved reports (newest first; those that cannot be read left out)."""
    reports = [r for r in drill_reports.history(cfg).reports
               if r.verdict != drill_reports.UNREADABLE and dated(r.started)]
    out = RestoresSection(stamp(now), [drill_point(r) for r in reports[:cfg.status.drills_shown][::-1]],
                          runbook=runbook_figures(cfg))
    if reports:
        out.last, out.last_age_seconds = drill_point(reports[0]), seconds_between(now, reports[0].started)
    passed = next((r for r in reports if r.verdict == drill_reports.PASS), None)
    if passed is not None:
        out.last_pass, out.last_pass_age_seconds = passed.started, seconds_between(now, passed.started)
    return out


# --- database -----------------------------------------------------------------------------------------------

def _one_line(exc: BaseException, role: str) -> str:
    """Why role could not log in, in one line: PostgreSQL's refusal, or the first line of the error without
    pymongo's timeouts and topology (they differ from one client to the next)."""
    text = str(db.refusal(exc, role) or exc).strip().splitlines()
    first = re.split(r" \(configured timeouts|, Timeout: ", text[0])[0] if text else type(exc).__name__
    return first[:300]


def reach(cfg: Config, role: str) -> RoleReach:
    """Whether role logs in to this host's database (FerretDB's ping and one listing, PROBE_SECONDS at most)."""
    t0 = time.monotonic()
    try:
        client = stack.db_client(cfg, role, timeout_s=PROBE_SECONDS)
        try:
            db.ping(client, cfg.db.database)
        finally:
            client.close()
    except (DrError, pymongo.errors.PyMongoError, OSError) as exc:
        return RoleReach(role, False, round(time.monotonic() - t0, 2), _one_line(exc, role))
    return RoleReach(role, True, round(time.monotonic() - t0, 2))


def probe_roles(cfg: Config) -> list[RoleReach]:
    """Every role's login, tried at once (a database that is down costs PROBE_SECONDS, not four times that)."""
    with ThreadPoolExecutor(max_workers=len(DB_ROLES)) as pool:
        return list(pool.map(lambda role: reach(cfg, role), DB_ROLES))


def database_section(cfg: Config, runs: Runs, now: dt.datetime, probe: bool) -> DatabaseSection:
    host, port = stack.db_address(cfg)
    roles = probe_roles(cfg) if probe else []
    computed = dt.datetime.now(dt.timezone.utc) if probe else now
    out = DatabaseSection(stamp(computed), f"{host}:{port}", cfg.db.tls, probe, roles, {},
                          certs.describe(cfg, now), certs.warnings(cfg, now))
    take = next(taken(runs), None)
    if take is not None:
        out.counts_set, out.counts_time = take.set_id, take.started
        out.collections = dict(take.physical.collections if take.physical else take.database.collections)
        out.documents = sum(out.collections.values())
        out.copy_bytes = None if take.physical is None else take.physical.bytes
    return out


# --- disk ---------------------------------------------------------------------------------------------------

def change_per_second(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of (time, value) points; None for fewer than two distinct times."""
    if len({t for t, _ in points}) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    return sum((t - mt) * (v - mv) for t, v in points) / sum((t - mt) ** 2 for t, _ in points)


def days_until_full(free: int, reserve: int, per_day: float | None) -> float | None:
    """Days until free is down to reserve at per_day (bytes, negative while filling); 0 there already;
    None while it does not shrink."""
    if free <= reserve:
        return 0.0
    if per_day is None or per_day >= 0:
        return None
    return round((free - reserve) / -per_day, 1)


def disk_section(cfg: Config, runs: Runs, now: dt.datetime) -> DiskSection:
    path, free, total = folders.free_space(Path(cfg.data_root))
    start = now - dt.timedelta(hours=GROWTH_HOURS)
    points = [(r.ended_at.timestamp(), float(r.data_free_bytes)) for r in runs.runs
              if r.data_free_bytes is not None and r.ended_at >= start] + [(now.timestamp(), float(free))]
    slope = None
    if max(t for t, _ in points) - min(t for t, _ in points) >= GROWTH_MIN_HOURS * 3600:
        slope = change_per_second(points)
    per_day = None if slope is None else round(slope * 86400, 1)
    reserve = cfg.sync.reserve_mb << 20
    return DiskSection(stamp(now), str(path), free, total, reserve, len(points), per_day,
                       days_until_full(free, reserve, per_day))


# --- broker -------------------------------------------------------------------------------------------------

def _journal_time(text: str) -> dt.datetime:
    """A journal entry's time (stages/journal.now: microseconds, Z) in UTC."""
    return dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)


def broker_figures(enabled: bool, state: str, depths: dict[str, tuple[int, int]] | str | None, notes: list[dict],
                   now: dt.datetime, hours: int = BROKER_HOURS) -> BrokerSection:
    """The broker's section from its container's state, its queues' depths ({queue: (ready, unacknowledged)},
    or why they could not be read, or None: not asked) and the subscriber's journal notes, newest first. Pure."""
    dead = [n for n in notes if n.get("event") == "dead_lettered"]
    out = BrokerSection(stamp(now), enabled, state, hours, len(dead), [
        DeadLetter(stamp(_journal_time(n["time"])), str(n.get("reason", "")), n.get("collector"), n.get("path"))
        for n in dead[:NEWEST_DEAD]])
    if isinstance(depths, str):
        out.error = depths
    elif depths is not None:
        out.ready, out.unacknowledged = depths.get(broker_names.QUEUE, (0, 0))
        out.dead = sum(depths.get(broker_names.DEAD_QUEUE, (0, 0)))
    batch = next((n for n in notes if n.get("event") == "batch"), None)
    if batch is not None:
        out.last_batch, out.last_batch_age_seconds = when_and_age(now, _journal_time(batch["time"]))
        out.last_batch_outcomes = dict((batch.get("summary") or {}).get("outcomes") or {})
    return out


def broker_section(cfg: Config, now: dt.datetime) -> BrokerSection | None:
    """The broker as Docker and rabbitmqctl say now, and the subscriber's notes; None when broker.enabled is off
    and it has no container."""
    try:
        state = stack.health(cfg, broker.SERVICE)
    except Exception as exc:  # noqa: BLE001 - Docker not answering: the broker's state is unknown, not a crash
        state = f"unknown ({type(exc).__name__})"
    if not cfg.broker.enabled and (state == "absent" or state.startswith("unknown")):
        return None
    depths: dict | str | None = None
    if state == "healthy":
        try:
            depths = broker.queue_depths(cfg)
        except Exception as exc:  # noqa: BLE001 - rabbitmqctl failing or Docker not answering: shown, not raised
            depths = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
    else:
        depths = f"the broker is {state}"
    since = now - dt.timedelta(hours=BROKER_HOURS)
    notes = folders.subscriber_notes(DataRoot(cfg.data_root).journal, since, BROKER_JOURNAL_BYTES)
    return broker_figures(cfg.broker.enabled, state, depths, notes, now)


# --- the model ----------------------------------------------------------------------------------------------

def history_days(cfg: Config) -> int:
    """How far back the history is read: HISTORY_DAYS, or longer when a threshold needs it (the drills' trend
    comes from their saved reports, which drill.keep bounds, so it needs none of the history)."""
    s = cfg.status
    return max(HISTORY_DAYS, s.check_days, math.ceil(s.collector_minutes / 1440),
               math.ceil(s.recovery_point_minutes / 1440)) + 1


def compute(cfg: Config, now: dt.datetime | None = None, probe: bool = True) -> StatusModel:
    """The status model now (see the module's docstring); probe: log in to the database as each role."""
    now = now or dt.datetime.now(dt.timezone.utc)
    since = now - dt.timedelta(days=history_days(cfg))
    runs = Runs(history.read(cfg, since))
    return StatusModel(stamp(now), socket.gethostname(), cfg.host.role, stamp(since),
                       pipeline_section(cfg, runs, now), backups_section(cfg, runs, now), restores_section(cfg, now),
                       database_section(cfg, runs, now, probe), disk_section(cfg, runs, now),
                       broker_section(cfg, now) if probe else None)
