"""The stall and risk rules: one row each in RULES, with the configuration key of its threshold, its check and
the sentence that says what to do (docs/status.md explains each for operators).

A check is a pure function of the status model (dr/watch/model.py) and the configuration: it returns what
makes the rule hold, one sentence per finding (the figures), and nothing when it does not hold. A stall: data
does not flow (stalled, collector_unreached, poison, database_unreachable, broker_down, queue_backlog); a risk: a
loss or an outage would cost more than it should (recovery_point_old, no_passing_check, no_passing_drill,
disk_filling, collector_unreleased, certificate_expiring, dead_letters). `evaluate` gives every finding, in the table's order.

The sets, the checks and the drills are the Aggregator's host's business: on a database's own host
(host.role database) their rules do not apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from common.config import Config
from common.records import Record
from dr.jobs import history
from dr.machine import roles
from dr.watch.figures import seconds_between, size, span
from dr.watch.model import StatusModel

STALL, RISK = "stall", "risk"


@dataclass
class Finding(Record):
    """One rule holding: its name, stall or risk, what makes it hold (the figures), what to do."""
    rule: str
    severity: str
    what: str
    todo: str

    def lines(self) -> list[str]:
        return [f"{self.severity.upper()} {self.rule}: {self.what}", f"    what to do: {self.todo}"]


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    key: str | None  # its threshold's configuration key (None: none; of two, the first)
    check: Callable[[StatusModel, Config], list[str]]  # what makes it hold, one sentence per finding
    todo: str

    def findings(self, model: StatusModel, cfg: Config) -> list[Finding]:
        return [Finding(self.name, self.severity, what, self.todo) for what in self.check(model, cfg)]


def threshold(cfg: Config, key: str):
    """The value of a dotted configuration key (status.stall_minutes)."""
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def _takes_sets(cfg: Config) -> bool:
    """Sets, checks and drills run on this host (not on a database's own host)."""
    return roles.of(cfg).runs_pipeline


def stalled(m: StatusModel, cfg: Config) -> list[str]:
    """Inputs wait in raw/, staging/ or reports/, the oldest for stall_minutes at least, and no report moved
    (the journal's newest entry) for as long."""
    p, limit = m.pipeline, cfg.status.stall_minutes * 60
    oldest = p.oldest_age_seconds()
    if not p.waiting or oldest is None or oldest < limit:
        return []
    if p.last_move_age_seconds is not None and p.last_move_age_seconds < limit:
        return []
    where = ", ".join(f"{b.state}/ {b.count}" for b in p.backlog if b.count)
    moved = ("no report has moved yet (no journal)" if p.last_move is None else
             f"no report moved for {span(p.last_move_age_seconds)} (last move {p.last_move})")
    return [f"{p.waiting} input(s) waiting ({where}), the oldest for {span(oldest)}; {moved}"]


def collector_unreached(m: StatusModel, cfg: Config) -> list[str]:
    """A configured collector whose last successful sync is collector_minutes old or more; one never reached
    once sync has tried it for as long (a new host, or a collector just added, gets that long first)."""
    limit = cfg.status.collector_minutes * 60
    now = history.parse_time(m.computed)
    out = []
    for c in m.pipeline.collectors:
        why = f" ({c.last_error})" if c.last_error else ""
        if c.last_success is not None and c.age_seconds >= limit:
            out.append(f"collector {c.collector}: last reached {span(c.age_seconds)} ago ({c.last_success}){why}")
        elif c.last_success is None and c.first_tried is not None:
            tried = seconds_between(now, c.first_tried)
            if tried >= limit:
                out.append(f"collector {c.collector}: never reached since sync first tried it {span(tried)} ago "
                           f"({c.first_tried}){why}")
    return out


def poison(m: StatusModel, cfg: Config) -> list[str]:
    n = m.pipeline.poison
    return [f"{n} input(s) in quarantine/poison/ (each failed twice in a row for the same reason)"] if n else []


def database_unreachable(m: StatusModel, cfg: Config) -> list[str]:
    """Roles that cannot log in, one finding per reason."""
    by_error: dict[str, list[str]] = {}
    for r in m.database.unreachable:
        by_error.setdefault(r.error or "no reason given", []).append(r.role)
    return [f"role(s) {', '.join(names)} cannot log in to the database at {m.database.address}: {error}"
            for error, names in by_error.items()]


def recovery_point_old(m: StatusModel, cfg: Config) -> list[str]:
    if not _takes_sets(cfg):
        return []
    s, limit = m.backups.newest_set, cfg.status.recovery_point_minutes * 60
    if s is None:
        return [f"no complete snapshot set taken or restored here since {m.history_since} (objective "
                f"{span(limit)})"]
    if s.age_seconds <= limit:
        return []
    return [f"the newest complete set {s.set_id} is {span(s.age_seconds)} old (objective {span(limit)})"]


def no_passing_check(m: StatusModel, cfg: Config) -> list[str]:
    if not _takes_sets(cfg):
        return []
    c, days = m.backups.check, cfg.status.check_days
    if c is None:
        return [f"no `invoke check` ran here since {m.history_since} (a check must pass every {days} day(s))"]
    last = f"the last, {span(c.age_seconds)} ago, says {c.verdict}"
    if c.last_pass is None:
        return [f"no check passed here since {m.history_since}; {last}"]
    if c.last_pass_age_seconds <= days * 86400:
        return []
    return [f"the last passing check was {span(c.last_pass_age_seconds)} ago ({c.last_pass}); {last}"]


def no_passing_drill(m: StatusModel, cfg: Config) -> list[str]:
    if not _takes_sets(cfg):
        return []
    r, days = m.restores, cfg.status.drill_days
    last = "" if r.last is None else f"; the last, {span(r.last_age_seconds)} ago, says {r.last.verdict}"
    if r.last_pass is None:
        return [f"no restore drill has passed here (drill.history_dir: {cfg.drill.history_dir}){last}"]
    if r.last_pass_age_seconds <= days * 86400:
        return []
    return [f"the last passing drill was {span(r.last_pass_age_seconds)} ago ({r.last_pass}){last}"]


def disk_filling(m: StatusModel, cfg: Config) -> list[str]:
    d = m.disk
    if d.days_until_full is None or d.days_until_full >= cfg.status.disk_days:
        return []
    rate = "" if d.change_per_day is None else f", free space {size(d.change_per_day)} a day"
    return [f"{size(d.free_bytes)} free on {d.path} (sync stops at {size(d.reserve_bytes)}){rate}: "
            f"full in {d.days_until_full:g} day(s)"]


def collector_unreleased(m: StatusModel, cfg: Config) -> list[str]:
    """A collector whose pulled reports not yet released (its .pulled/, [sync] release), as the last run that
    reached it counted them, hold more than collector_held_mb, or the oldest of them is older than
    collector_held_hours now; one finding per collector."""
    limit_mb, limit_hours = cfg.status.collector_held_mb, cfg.status.collector_held_hours
    out = []
    for c in m.pipeline.collectors:
        if not c.held:
            continue
        why = []
        if c.held_bytes is not None and c.held_bytes > limit_mb << 20:
            why.append(f"{c.held} pulled report(s) not yet released hold {c.held_bytes / (1 << 20):.0f} MB there "
                       f"(limit {limit_mb} MB)")
        age = c.oldest_held_age_seconds
        if age is not None and age > limit_hours * 3600:
            why.append(f"the oldest pulled report not yet released is {span(age)} old ({c.oldest_held}; limit "
                       f"{limit_hours} h)")
        if why:
            out.append(f"collector {c.collector}: " + "; ".join(why))
    return out


def certificate_expiring(m: StatusModel, cfg: Config) -> list[str]:
    """Every finding of certs.warnings: expiring within certs.warn_days, expired, not signed by the CA, a key
    that does not match, a file that db.tls needs and is missing."""
    return [w.line() for w in m.database.certificate_warnings]


def broker_down(m: StatusModel, cfg: Config) -> list[str]:
    """broker.enabled and the broker's container not running and healthy."""
    b = m.broker
    if b is None or not b.enabled or b.healthy:
        return []
    return [f"the broker is {b.state}: no claim check is published or consumed; the scheduled pipeline still "
            "pulls every report"]


def queue_backlog(m: StatusModel, cfg: Config) -> list[str]:
    """More claim checks ready in the queue than status.broker_backlog_max: the subscriber does not keep up."""
    b, limit = m.broker, cfg.status.broker_backlog_max
    if b is None or b.ready is None or b.ready <= limit:
        return []
    last = "never" if b.last_batch is None else f"{span(b.last_batch_age_seconds)} ago"
    return [f"{b.ready} claim check(s) ready in the queue (limit {limit}); the subscriber's last batch: {last}"]


def dead_letters(m: StatusModel, cfg: Config) -> list[str]:
    """More messages in the dead-letter queue than status.dead_letters_max (the queue purged: looked at)."""
    b, limit = m.broker, cfg.status.dead_letters_max
    if b is None or b.dead is None or b.dead <= limit:
        return []
    newest = b.newest_dead[0] if b.newest_dead else None
    why = "" if newest is None else (f"; the newest ({newest.time}): {newest.collector or '?'} "
                                     f"{newest.path or '?'}: {newest.reason}")
    return [f"{b.dead} message(s) dead-lettered in reports.dead (limit {limit}), {b.dead_lettered} in the last "
            f"{b.window_hours} h{why}"]


RULES: tuple[Rule, ...] = (
    Rule("stalled", STALL, "status.stall_minutes", stalled,
         "Find why nothing moves: run `invoke pipeline` and read its summary (a stage that stopped names its "
         "error), check that the scheduled pipeline runs (`systemctl status aggregator-dr-pipeline.timer`, or "
         "root's crontab), and follow a stuck input with `invoke where NAME`."),
    Rule("collector_unreached", STALL, "status.collector_minutes", collector_unreached,
         "Check the collector and the way to it: `invoke pipeline --stage sync` names the error (connection "
         "refused or timed out, host key, key file); then the collector's host, and its [[collectors]] entry."),
    Rule("poison", STALL, None, poison,
         "Read each input's reason file in <data root>/quarantine/poison/ (both errors are in it) and fix the "
         "cause; then move the input back into raw/<collector>/ to be tried again, or delete it with its reason "
         "file. For a collector's file (quarantine/poison/sync/), remove its reason file to pull it again."),
    Rule("database_unreachable", STALL, None, database_unreachable,
         "Look at the postgres and db containers below (running, healthy); `invoke rebuild` starts them again "
         "and keeps data and secrets; a password refused: docs/runbook.md, section 11 (12.5 across two hosts)."),
    Rule("recovery_point_old", RISK, "status.recovery_point_minutes", recovery_point_old,
         "Take a set now (`invoke snapshot`) and find why the scheduled one did not complete "
         "(`systemctl status aggregator-dr-snapshot.timer`, its log); until then a restore brings back the "
         "older set."),
    Rule("no_passing_check", RISK, "status.check_days", no_passing_check,
         "Run `invoke check` and read it: a damaged set is named (take a new set, docs/snapshots.md); "
         "`invoke schedule-install` schedules it daily."),
    Rule("no_passing_drill", RISK, "status.drill_days", no_passing_drill,
         "Run `invoke drill`: it restores the newest set in a throwaway database and checks it; a failure says "
         "why in its report (`invoke drills`, docs/restore.md)."),
    Rule("disk_filling", RISK, "status.disk_days", disk_filling,
         "Make room on the data root's disk or grow it: retention (`invoke forget`) when the repository is on "
         "it, Docker's images and build cache (`docker system df`), or a larger disk, before sync stops at its "
         "reserve (sync.reserve_mb)."),
    Rule("collector_unreleased", RISK, "status.collector_held_mb", collector_unreleased,
         "Find why the collector's pulled reports are not released: they go after a complete set (sync.release "
         "set) or its off-site copy (offsite). `invoke status` shows the newest set and the off-site copy's lag; "
         "check that the snapshot and maintenance timers run (`systemctl status aggregator-dr-snapshot.timer "
         "aggregator-dr-maintenance.timer`) and that `invoke offsite` succeeds. A collector whose rate outgrew "
         "the limits needs a more frequent off-site copy or a larger disk and limits (docs/pipeline.md, "
         "\"Sizing a collector's disk\")."),
    Rule("certificate_expiring", RISK, "certs.warn_days", certificate_expiring,
         "`invoke rotate-secrets` issues new certificates from the same CA and restarts the services on them "
         "(docs/runbook.md, section 11); a CA near its end: `invoke certs --renew-ca`, the new ca.crt on every "
         "host that reaches the database, then `invoke rotate-secrets` (docs/tls.md)."),
    Rule("broker_down", STALL, None, broker_down,
         "Look at the broker's container in the services table below and its log (`docker logs "
         "<instance>-broker`); `invoke rebuild` starts it again. Nothing is lost meanwhile: the collectors keep "
         "every report and the scheduled pipeline pulls them (docs/runbook.md, \"When the broker is lost\")."),
    Rule("queue_backlog", STALL, "status.broker_backlog_max", queue_backlog,
         "Find why the subscriber does not keep up: check that its container runs (`invoke subscribe` starts "
         "it) and read its log (`docker logs <instance>-subscriber`): it may wait on sync's lock (a long "
         "scheduled sync, a snapshot's pause) or requeue the messages of a collector it cannot reach."),
    Rule("dead_letters", RISK, "status.dead_letters_max", dead_letters,
         "Read each dead-lettered message's reason below (the subscriber journalled them) and fix its cause on "
         "the collector (a report announced that is not there, or has other bytes); the scheduled sync pulls "
         "every report that is there. Then purge the dead-letter queue: `invoke broker --purge-dead`."),
)


def evaluate(model: StatusModel, cfg: Config) -> list[Finding]:
    """Every finding of every rule, in RULES' order."""
    return [f for rule in RULES for f in rule.findings(model, cfg)]
