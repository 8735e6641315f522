"""The status model's figures (dr/watch/model.py computes them): one record per section (pipeline, backups,
restores, database, disk) and the records in them, every figure typed; times are UTC history stamps
(`%Y-%m-%dT%H:%M:%SZ`), ages whole seconds at the section's `computed`, None where there is nothing to tell.
Each section says itself in a few lines of text (`lines()`); a page can render the same records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from common.records import Record, key, optional
from dr.jobs import history
from dr.jobs.history import stamp
from dr.services import certs
from dr.services.certs import CertRow


def when_and_age(now: dt.datetime, then: dt.datetime | None) -> tuple[str | None, int | None]:
    """then as a history stamp (whole seconds) and its age at now, as the stamp says it."""
    if then is None:
        return None, None
    text = stamp(then)
    return text, seconds_between(now, text)


def seconds_between(now: dt.datetime, then: dt.datetime | str | None) -> int | None:
    """now - then in whole seconds (then: a datetime or a history stamp); None when then is None."""
    if then is None:
        return None
    then = history.parse_time(then) if isinstance(then, str) else then
    return round((now - then).total_seconds())


def span(seconds: float | None) -> str:
    """A length of time as people read it: 45 s, 12 min, 3 h 5 min, 2 d 4 h; "?" for None."""
    if seconds is None:
        return "?"
    s = round(abs(seconds))
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{s} s"
    if s < 3600:
        return f"{sign}{s // 60} min"
    if s < 86400:
        return f"{sign}{s // 3600} h" + (f" {s % 3600 // 60} min" if s % 3600 >= 60 else "")
    return f"{sign}{s // 86400} d" + (f" {s % 86400 // 3600} h" if s % 86400 >= 3600 else "")


def size(n: float | None) -> str:
    """Bytes as people read them: 12.3 MB, 45.6 GB; "?" for None."""
    if n is None:
        return "?"
    return f"{n / 1e9:.1f} GB" if abs(n) >= 1e9 else f"{n / 1e6:.1f} MB"


def ago(seconds: int | None) -> str:
    """ "5 min ago", or "never" when there is no time."""
    return "never" if seconds is None else f"{span(seconds)} ago"


@dataclass
class Backlog(Record):
    """The inputs waiting in one state directory: how many, the oldest one's time (its modification time)
    and age."""
    state: str
    count: int
    oldest: str | None = optional()
    oldest_age_seconds: int | None = optional()

    def text(self) -> str:
        return f"{self.state}/ {self.count}" + (f" (oldest {span(self.oldest_age_seconds)})" if self.count else "")


@dataclass
class StageSuccess(Record):
    """A stage's last run that exited 0 (in a run of the pipeline, of that stage alone, of catch-up or of a
    rebuild: `job`); none in the history read: only the stage's name."""
    stage: str
    ended: str | None = optional()
    age_seconds: int | None = optional()
    job: str | None = optional()

    def text(self) -> str:
        return f"{self.stage} {ago(self.age_seconds)}"


@dataclass
class CollectorState(Record):
    """One configured collector as sync found it. last_success: the last run that reached it without an error;
    left: the closed reports it still held after the last run that reached it; held, held_bytes, oldest_held
    (and its age): after that run, the pulled reports it keeps in .pulled/ until a release deletes them ([sync]
    release), their bytes and the oldest one's modification time; last_error: the newest try's error, when that
    try failed; first_tried: while it has no success in the history read, the first run that tried it (before
    that run, nothing could have reached it yet)."""
    collector: str
    last_success: str | None = optional()
    age_seconds: int | None = optional()
    left: int | None = optional()
    last_error: str | None = optional()
    first_tried: str | None = optional()
    held: int | None = optional()
    held_bytes: int | None = optional()
    oldest_held: str | None = optional()
    oldest_held_age_seconds: int | None = optional()

    def held_text(self) -> str:
        """ "3 (1.2 MB, oldest 2 h)", "0", or "?" when no run reached it."""
        if self.held is None:
            return "?"
        if not self.held:
            return "0"
        return f"{self.held} ({size(self.held_bytes)}, oldest {span(self.oldest_held_age_seconds)})"

    def text(self) -> str:
        reached = (f"last reached {ago(self.age_seconds)}" if self.last_success else
                   f"never reached (tried since {self.first_tried})" if self.first_tried else "not tried yet")
        left = "" if self.left is None else f", {self.left} report(s) left there"
        held = "" if not self.held else f", {self.held_text()} held until released"
        return (f"collector {self.collector}: {reached}{left}{held}"
                + (f"; now: {self.last_error}" if self.last_error else ""))


@dataclass
class PipelineRunRow(Record):
    """One run of the whole pipeline: when it ended, its outcome, how long it took, the bytes of its busiest
    stage (each report passes every stage, so the stages' sum would count it thrice) and their rate."""
    ended: str
    outcome: str
    seconds: float
    bytes: int
    bytes_per_second: float | None = optional()


@dataclass
class FlowPoint(Record):
    """One run of stages in the last FLOW_HOURS (a run of the pipeline, of a stage alone, catch-up, a rebuild's):
    when it ended, its job and outcome, the inputs it moved (sync's pulled, sanitize's sanitized, the importer's
    imported), those it set aside in quarantine and those that failed in it and wait for the next run. What
    flowed, run by run: the history does not record what waited between runs (`backlog` is what waits now)."""
    ended: str
    job: str
    outcome: str
    pulled: int = 0
    sanitized: int = 0
    imported: int = 0
    quarantined: int = 0
    failed: int = 0


@dataclass
class BacklogPoint(Record):
    """The inputs waiting when a job ended (its history line's backlog) in the last FLOW_HOURS: in all and per
    state directory; with `backlog` (what waits now) the backlog over the last day."""
    ended: str
    job: str
    waiting: int
    per_state: dict[str, int]


FLOW_TOTALS = ("pulled", "sanitized", "imported", "quarantined", "failed")


@dataclass
class PipelineSection(Record):
    """Whether data flows: what waits where (`waiting`: in all), when a report last moved (the journal's
    newest entry), the quarantine per reason (poison among them), each stage's and each collector's last
    success, the last runs (oldest first), what each run of stages moved over the last day (`flow`, oldest
    first; `flow_total`: their number and sums), the inputs waiting at each job's end over the last day
    (`backlog_series`, oldest first)."""
    DERIVED = ("waiting", "flow_total")
    computed: str
    backlog: list[Backlog]
    quarantine: dict[str, int]
    poison: int
    stages: list[StageSuccess]
    collectors: list[CollectorState]
    runs: list[PipelineRunRow]
    last_move: str | None = optional()
    last_move_age_seconds: int | None = optional()
    flow: list[FlowPoint] = field(default_factory=list)
    backlog_series: list[BacklogPoint] = field(default_factory=list)

    @property
    def waiting(self) -> int:
        return sum(b.count for b in self.backlog)

    @property
    def flow_total(self) -> dict[str, int]:
        """The runs of stages in `flow`, and what they pulled, sanitized, imported, set aside and left failed."""
        return {"runs": len(self.flow)} | {k: sum(getattr(f, k) for f in self.flow) for k in FLOW_TOTALS}

    def oldest_age_seconds(self) -> int | None:
        """The age of the oldest input waiting anywhere."""
        ages = [b.oldest_age_seconds for b in self.backlog if b.oldest_age_seconds is not None]
        return max(ages) if ages else None

    def lines(self) -> list[str]:
        moved = "no journal yet" if self.last_move is None else f"last move {ago(self.last_move_age_seconds)}"
        out = ["pipeline:", f"  waiting: {', '.join(b.text() for b in self.backlog)}; {moved}",
               "  quarantine: " + (", ".join(f"{k} {v}" for k, v in sorted(self.quarantine.items())) or "empty"),
               f"  last success: {', '.join(s.text() for s in self.stages)}"]
        out += [f"  {c.text()}" for c in self.collectors]
        if self.runs:
            last = self.runs[-1]
            rate = "" if last.bytes_per_second is None else f" ({size(last.bytes_per_second)}/s)"
            failed = sum(1 for r in self.runs if r.outcome != "ok")
            out.append(f"  last {len(self.runs)} run(s): {sum(r.seconds for r in self.runs) / len(self.runs):.1f} s "
                       f"on average, {failed} not ok; the last {last.seconds:.1f} s, {size(last.bytes)}{rate}")
        return out


@dataclass
class BackupSet(Record):
    """The newest complete set this host knows: taken here (`snapshot`) or restored here by a rebuild
    (`rebuild`); its start, its age (the current recovery point), the state directories' bytes, the physical
    copy's, what it added to the repository and how long the pipeline paused for it (the last two: a set
    taken here only)."""
    set_id: str = key("set")
    source: str
    started: str
    age_seconds: int
    files_bytes: int
    db_bytes: int | None = optional()
    added_bytes: int | None = optional()
    paused_seconds: float | None = optional()


@dataclass
class CheckFigures(Record):
    """A repository check's last run (`check` or `check-offsite`): its verdict (ok, FAILED, or error when it
    stopped without a result), the sets that failed; the last run that passed."""
    job: str
    ended: str
    age_seconds: int
    verdict: str
    failed_sets: list[str] = field(default_factory=list)
    last_pass: str | None = optional()
    last_pass_age_seconds: int | None = optional()


@dataclass
class OffsiteFigures(Record):
    """The off-site copy's last run and how far the off-site repository lags: the newest set there (from the
    last run that copied), the complete sets there, and the sets taken here since with their span."""
    ended: str
    age_seconds: int
    outcome: str
    newest_set: str | None = optional()
    complete_sets: int | None = optional()
    lag_sets: int | None = optional()
    lag_seconds: int | None = optional()


@dataclass
class RetentionFigures(Record):
    """Retention's (`forget`) last run: the sets it forgot and kept."""
    ended: str
    age_seconds: int
    outcome: str
    forgotten: int | None = optional()
    kept: int | None = optional()


@dataclass
class BackupsSection(Record):
    """Whether data is backed up: the newest complete set against the objective (status.recovery_point_minutes),
    the checks, the off-site copy (when one is configured), retention."""
    computed: str
    objective_seconds: int
    offsite_configured: bool
    newest_set: BackupSet | None = optional()
    check: CheckFigures | None = optional()
    check_offsite: CheckFigures | None = optional()
    offsite: OffsiteFigures | None = optional()
    retention: RetentionFigures | None = optional()

    def lines(self) -> list[str]:
        s = self.newest_set
        out = ["backups:", "  newest complete set: none" if s is None else
               f"  newest complete set {s.set_id} ({s.source}): {span(s.age_seconds)} old, objective "
               f"{span(self.objective_seconds)}; files {size(s.files_bytes)}, database copy {size(s.db_bytes)}"
               + ("" if s.paused_seconds is None else f", pipeline paused {s.paused_seconds:.1f} s")]
        for name, c in (("check", self.check), ("check-offsite", self.check_offsite)):
            if c is not None or name == "check":
                out.append(f"  {name}: " + ("never" if c is None else
                           f"{c.verdict} {ago(c.age_seconds)}; last pass {ago(c.last_pass_age_seconds)}"))
        o = self.offsite
        if not self.offsite_configured:
            out.append("  off-site: not configured")
        elif o is None:
            out.append("  off-site: never copied")
        else:
            lag = "" if o.lag_sets is None else f", {o.lag_sets} set(s) and {span(o.lag_seconds)} behind"
            out.append(f"  off-site: last copy {ago(o.age_seconds)} ({o.outcome}); newest set there "
                       f"{o.newest_set or 'none'}{lag}")
        r = self.retention
        out.append("  retention: never" if r is None else f"  retention: {ago(r.age_seconds)} ({r.outcome})"
                   + ("" if r.forgotten is None else f", forgot {r.forgotten}, kept {r.kept}"))
        return out


@dataclass
class DrillPoint(Record):
    """One restore drill: when, its verdict, the set it restored, how long the restore took and the set's age
    when it began (the recovery point)."""
    started: str
    verdict: str
    set_id: str | None = optional("set")
    restore_seconds: float | None = optional()
    rpo_seconds: int | None = optional()


@dataclass
class RunbookFigures(Record):
    """The newest runbook drill (bare-host or two-hosts): its verdict and its RTO, the seconds of its first
    block that ran `invoke rebuild` (the Aggregator brought back from the set)."""
    drill: str
    started: str
    verdict: str
    total_seconds: float
    set_id: str | None = optional("set")
    rto_seconds: float | None = optional()


@dataclass
class RestoresSection(Record):
    """Whether it would restore: the last restore drill, the trend over the last status.drills_shown (oldest
    first), the last that passed, the newest runbook drill."""
    computed: str
    trend: list[DrillPoint]
    last: DrillPoint | None = optional()
    last_age_seconds: int | None = optional()
    last_pass: str | None = optional()
    last_pass_age_seconds: int | None = optional()
    runbook: RunbookFigures | None = optional()

    def lines(self) -> list[str]:
        d = self.last
        out = ["restores:", "  last drill: none" if d is None else
               f"  last drill {ago(self.last_age_seconds)}: {d.verdict}, set {d.set_id or '?'}, restore "
               f"{'?' if d.restore_seconds is None else f'{d.restore_seconds:g}'} s, recovery point "
               f"{span(d.rpo_seconds)}; last pass {ago(self.last_pass_age_seconds)}"]
        if self.trend:
            out.append(f"  restore seconds, last {len(self.trend)} drills: "
                       + " ".join("?" if p.restore_seconds is None else f"{p.restore_seconds:g}" for p in self.trend))
        r = self.runbook
        out.append("  runbook drill: none" if r is None else
                   f"  runbook drill {r.drill} {r.started}: {r.verdict}, RTO (its rebuild) "
                   f"{'?' if r.rto_seconds is None else f'{r.rto_seconds:g}'} s, total {r.total_seconds:g} s")
        return out


@dataclass
class RoleReach(Record):
    """Whether a database role logged in (and why not), and how long it took."""
    role: str
    reachable: bool
    seconds: float
    error: str | None = optional()


@dataclass
class DatabaseSection(Record):
    """The database: where this host reaches it, each role's login (probed: False when not asked), its
    documents per collection and its physical copy's size as the newest set taken here recorded them (the
    set and its time), the certificates present and their findings."""
    computed: str
    address: str
    tls: bool
    probed: bool
    roles: list[RoleReach]
    collections: dict[str, int]
    certificates: list[CertRow]
    certificate_warnings: list[certs.Finding]
    counts_set: str | None = optional()
    counts_time: str | None = optional()
    documents: int | None = optional()
    copy_bytes: int | None = optional()

    @property
    def unreachable(self) -> list[RoleReach]:
        return [r for r in self.roles if not r.reachable]

    def lines(self) -> list[str]:
        roles = ", ".join(f"{r.role} {'ok' if r.reachable else 'UNREACHABLE'}" for r in self.roles)
        out = [f"database at {self.address} (TLS {'on' if self.tls else 'off'}):",
               f"  roles: {roles if self.probed else 'not probed'}"]
        if self.counts_set is not None:
            out.append(f"  in set {self.counts_set}: {self.documents} documents ("
                       + ", ".join(f"{k} {v}" for k, v in sorted(self.collections.items()))
                       + f"), physical copy {size(self.copy_bytes)}")
        if self.certificates:
            out.append("  certificates: "
                       + ", ".join(f"{c.certificate} {c.days_left} d left" for c in self.certificates))
        return out


@dataclass
class DiskSection(Record):
    """The data root's disk: free bytes now, the free space's change per day over the last day (from the
    history's measurements and now's; negative while it fills) and the days until it is full, that is
    until the free space is down to sync's reserve (sync.reserve_mb: sync stops there): None while it does
    not shrink, 0 when it is there already."""
    computed: str
    path: str
    free_bytes: int
    total_bytes: int
    reserve_bytes: int
    samples: int
    change_per_day: float | None = optional()
    days_until_full: float | None = optional()

    def lines(self) -> list[str]:
        change = ("not enough measurements for a rate" if self.change_per_day is None else
                  f"free space {'+' if self.change_per_day >= 0 else ''}{size(self.change_per_day)} a day")
        full = "" if self.days_until_full is None else f", down to sync's reserve in {self.days_until_full:g} day(s)"
        return [f"disk: {size(self.free_bytes)} free of {size(self.total_bytes)} on {self.path}; {change}{full}"]


@dataclass
class DeadLetter(Record):
    """A message the subscriber rejected (its journal note, event dead_lettered): when, why, and the claim
    check's collector and path when it was one."""
    time: str
    reason: str
    collector: str | None = optional()
    path: str | None = optional()


@dataclass
class BrokerSection(Record):
    """The broker (docs/broker.md), shown when broker.enabled or its container exists: its container's state
    (Docker's health verdict: healthy, unhealthy, starting, exited, absent), the messages of the queue
    `reports` ready and delivered but not yet acknowledged, and of `reports.dead` (rabbitmqctl list_queues:
    RabbitMQ refreshes a quorum queue's figures there every few seconds), or why they could not be read; from
    the journal's last `window_hours` (at most its last `window_bytes`): the messages the subscriber
    dead-lettered, the newest few of them, and its last batch (when, its counts)."""
    computed: str
    enabled: bool
    state: str
    window_hours: int
    dead_lettered: int
    newest_dead: list[DeadLetter]
    ready: int | None = optional()
    unacknowledged: int | None = optional()
    dead: int | None = optional()
    error: str | None = optional()
    last_batch: str | None = optional()
    last_batch_age_seconds: int | None = optional()
    last_batch_outcomes: dict[str, int] | None = optional()

    @property
    def healthy(self) -> bool:
        return self.state == "healthy"

    def lines(self) -> list[str]:
        queues = (f"reports {self.ready} ready, {self.unacknowledged} unacknowledged; reports.dead {self.dead}"
                  if self.error is None and self.ready is not None else f"queues unknown ({self.error or 'not read'})")
        batch = ("no batch" if self.last_batch is None else
                 f"last batch {ago(self.last_batch_age_seconds)} ("
                 + ", ".join(f"{k} {v}" for k, v in sorted((self.last_batch_outcomes or {}).items())) + ")")
        out = [f"broker: {self.state}{'' if self.enabled else ' (broker.enabled is off)'}; {queues}",
               f"  subscriber: {batch}; {self.dead_lettered} message(s) dead-lettered in {self.window_hours} h"]
        out += [f"  dead-lettered {d.time}: {d.collector or '?'} {d.path or '?'}: {d.reason}" for d in self.newest_dead]
        return out
