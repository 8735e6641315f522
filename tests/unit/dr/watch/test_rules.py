"""The stall and risk rules (dr/watch/rules.py), each on status models built here: a healthy host's, where
nothing holds, and that model changed so that one rule holds, or just does not."""

import copy
import re
from pathlib import Path

import pytest

from common import config
from common.config import DB_ROLES
from dr.jobs import history
from dr.services import certs
from dr.watch import model, rules
from dr.watch.figures import (
    Backlog,
    BackupSet,
    BackupsSection,
    BrokerSection,
    CheckFigures,
    CollectorState,
    DatabaseSection,
    DeadLetter,
    DiskSection,
    DrillPoint,
    PipelineSection,
    RestoresSection,
    RoleReach,
    StageSuccess,
)
from dr.watch.model import StatusModel
from stages.cli import CollectorPull

NOW = "2026-12-07T12:00:00Z"
SINCE = "2026-11-01T12:00:00Z"
MIN, HOUR, DAY = 60, 3600, 86400
CFG = config.load()  # the thresholds' defaults: stall 60 min, collector 120 min, objective 180 min, check 3 d,
#                      drill 8 d, disk 14 d, a collector's held reports 2048 MB and 30 h
MB = 1 << 20
NAMES = ["stalled", "collector_unreached", "poison", "database_unreachable", "recovery_point_old",
         "no_passing_check", "no_passing_drill", "disk_filling", "collector_unreleased", "certificate_expiring",
         "broker_down", "queue_backlog", "dead_letters"]
STATUS_DOC = Path(__file__).resolve().parents[4] / "docs" / "status.md"


def healthy() -> StatusModel:
    """A host where data flows, is backed up and would restore."""
    pipeline = PipelineSection(
        NOW, [Backlog("raw", 2, "2026-12-07T11:55:00Z", 5 * MIN), Backlog("staging", 0), Backlog("reports", 0)], {},
        0, [StageSuccess(s, "2026-12-07T11:57:00Z", 3 * MIN, "pipeline") for s in ("sync", "sanitize", "importer")],
        [CollectorState("c1", "2026-12-07T11:57:00Z", 3 * MIN, left=2)], [], "2026-12-07T11:57:00Z", 3 * MIN)
    backups = BackupsSection(
        NOW, 180 * MIN, False, BackupSet("20261207T110500Z", "snapshot", "2026-12-07T11:05:00Z", 55 * MIN, 9000),
        CheckFigures("check", "2026-12-07T03:20:00Z", 9 * HOUR, "ok", [], "2026-12-07T03:20:00Z", 9 * HOUR))
    restores = RestoresSection(NOW, [], DrillPoint("2026-12-06T04:40:00Z", "pass"), 31 * HOUR,
                               "2026-12-06T04:40:00Z", 31 * HOUR)
    database = DatabaseSection(NOW, "127.0.0.1:27017", False, True, [RoleReach(r, True, 0.05) for r in DB_ROLES],
                               {}, [], [])
    disk = DiskSection(NOW, "/data", 100 * 10**9, 200 * 10**9, 1 << 30, 30, -10**9, 98.9)
    broker = BrokerSection(NOW, True, "healthy", 24, 0, [], ready=3, unacknowledged=2, dead=0,
                           last_batch="2026-12-07T11:59:58Z", last_batch_age_seconds=2,
                           last_batch_outcomes={"acked:pulled": 2})
    return StatusModel(NOW, "aggr", "all", SINCE, pipeline, backups, restores, database, disk, broker)


def changed(change) -> StatusModel:
    m = copy.deepcopy(healthy())
    change(m)
    return m


def set_(obj, **values):
    for k, v in values.items():
        setattr(obj, k, v)


# (rule, the change to the healthy model, whether the rule then holds, what its finding says)
CASES = [
    ("stalled", lambda m: set_(m.pipeline.backlog[0], oldest_age_seconds=2 * HOUR), False, None),
    ("stalled", lambda m: (set_(m.pipeline.backlog[0], oldest_age_seconds=2 * HOUR),
                           set_(m.pipeline, last_move_age_seconds=60 * MIN)), True,
     "2 input(s) waiting (raw/ 2), the oldest for 2 h; no report moved for 1 h (last move 2026-12-07T11:57:00Z)"),
    ("stalled", lambda m: (set_(m.pipeline.backlog[0], oldest_age_seconds=59 * MIN),
                           set_(m.pipeline, last_move_age_seconds=5 * HOUR)), False, None),  # new input: a chance
    ("stalled", lambda m: (set_(m.pipeline.backlog[0], count=0, oldest_age_seconds=None),
                           set_(m.pipeline, last_move_age_seconds=5 * HOUR)), False, None),  # nothing waits
    ("stalled", lambda m: (set_(m.pipeline.backlog[2], count=1, oldest_age_seconds=DAY),
                           set_(m.pipeline, last_move=None, last_move_age_seconds=None)), True,
     "3 input(s) waiting (raw/ 2, reports/ 1), the oldest for 1 d; no report has moved yet (no journal)"),
    ("collector_unreached", lambda m: set_(m.pipeline.collectors[0], age_seconds=119 * MIN), False, None),
    ("collector_unreached", lambda m: set_(m.pipeline.collectors[0], age_seconds=2 * HOUR, last_error="timed out"),
     True, "collector c1: last reached 2 h ago (2026-12-07T11:57:00Z) (timed out)"),
    ("collector_unreached", lambda m: set_(m.pipeline.collectors[0], last_success=None, age_seconds=None),
     False, None),  # a fresh host: not tried yet
    ("collector_unreached", lambda m: set_(m.pipeline.collectors[0], last_success=None, age_seconds=None,
                                           first_tried="2026-12-07T10:30:00Z", last_error="refused"), False, None),
    ("collector_unreached", lambda m: set_(m.pipeline.collectors[0], last_success=None, age_seconds=None,
                                           first_tried="2026-12-07T10:00:00Z", last_error="refused"), True,
     "collector c1: never reached since sync first tried it 2 h ago (2026-12-07T10:00:00Z) (refused)"),
    ("poison", lambda m: set_(m.pipeline, quarantine={"unsafe_tag": 4}), False, None),
    ("poison", lambda m: set_(m.pipeline, quarantine={"poison": 2}, poison=2), True,
     "2 input(s) in quarantine/poison/ (each failed twice in a row for the same reason)"),
    ("database_unreachable", lambda m: set_(m.database, probed=False, roles=[]), False, None),
    ("database_unreachable", lambda m: (set_(m.database.roles[0], reachable=False, error="refused"),
                                        set_(m.database.roles[1], reachable=False, error="refused")), True,
     "role(s) owner, importer cannot log in to the database at 127.0.0.1:27017: refused"),
    ("recovery_point_old", lambda m: set_(m.backups.newest_set, age_seconds=180 * MIN), False, None),
    ("recovery_point_old", lambda m: set_(m.backups.newest_set, age_seconds=181 * MIN), True,
     "the newest complete set 20261207T110500Z is 3 h 1 min old (objective 3 h)"),
    ("recovery_point_old", lambda m: set_(m.backups, newest_set=None), True,
     "no complete snapshot set taken or restored here since 2026-11-01T12:00:00Z (objective 3 h)"),
    ("no_passing_check", lambda m: set_(m.backups.check, last_pass_age_seconds=3 * DAY), False, None),
    ("no_passing_check", lambda m: set_(m.backups.check, verdict="FAILED", last_pass_age_seconds=3 * DAY + 1), True,
     "the last passing check was 3 d ago (2026-12-07T03:20:00Z); the last, 9 h ago, says FAILED"),
    ("no_passing_check", lambda m: set_(m.backups.check, verdict="error", last_pass=None, last_pass_age_seconds=None),
     True, "no check passed here since 2026-11-01T12:00:00Z; the last, 9 h ago, says error"),
    ("no_passing_check", lambda m: set_(m.backups, check=None), True,
     "no `invoke check` ran here since 2026-11-01T12:00:00Z (a check must pass every 3 day(s))"),
    ("no_passing_drill", lambda m: set_(m.restores, last_pass_age_seconds=8 * DAY), False, None),
    ("no_passing_drill", lambda m: set_(m.restores, last_pass_age_seconds=8 * DAY + 1), True,
     "the last passing drill was 8 d ago (2026-12-06T04:40:00Z); the last, 1 d 7 h ago, says pass"),
    ("no_passing_drill", lambda m: set_(m.restores, last=None, last_age_seconds=None, last_pass=None,
                                        last_pass_age_seconds=None), True,
     "no restore drill has passed here (drill.history_dir: /var/lib/aggregator-dr/drills)"),
    ("disk_filling", lambda m: set_(m.disk, days_until_full=14.0), False, None),
    ("disk_filling", lambda m: set_(m.disk, change_per_day=None, days_until_full=None), False, None),
    ("disk_filling", lambda m: set_(m.disk, free_bytes=13 * 10**9, days_until_full=12.9), True,
     "13.0 GB free on /data (sync stops at 1.1 GB), free space -1.0 GB a day: full in 12.9 day(s)"),
    ("disk_filling", lambda m: set_(m.disk, free_bytes=900 * 10**6, change_per_day=None, days_until_full=0.0), True,
     "900.0 MB free on /data (sync stops at 1.1 GB): full in 0 day(s)"),
    ("collector_unreleased", lambda m: set_(m.pipeline.collectors[0], held=900, held_bytes=2048 * MB,
                                            oldest_held="2026-12-06T06:00:00Z", oldest_held_age_seconds=30 * HOUR),
     False, None),  # at both limits, not beyond
    ("collector_unreleased", lambda m: set_(m.pipeline.collectors[0], held=901, held_bytes=2048 * MB + 1,
                                            oldest_held="2026-12-07T10:00:00Z", oldest_held_age_seconds=2 * HOUR),
     True, "collector c1: 901 pulled report(s) not yet released hold 2048 MB there (limit 2048 MB)"),
    ("collector_unreleased", lambda m: set_(m.pipeline.collectors[0], held=3, held_bytes=5 * MB,
                                            oldest_held="2026-12-06T05:00:00Z", oldest_held_age_seconds=31 * HOUR),
     True, "collector c1: the oldest pulled report not yet released is 1 d 7 h old (2026-12-06T05:00:00Z; "
           "limit 30 h)"),
    ("collector_unreleased", lambda m: set_(m.pipeline.collectors[0], held=4000, held_bytes=3 * 1024 * MB,
                                            oldest_held="2026-12-05T12:00:00Z", oldest_held_age_seconds=2 * DAY),
     True, "collector c1: 4000 pulled report(s) not yet released hold 3072 MB there (limit 2048 MB); the oldest "
           "pulled report not yet released is 2 d old (2026-12-05T12:00:00Z; limit 30 h)"),
    ("collector_unreleased", lambda m: set_(m.pipeline.collectors[0], held=0, held_bytes=0, oldest_held=None,
                                            oldest_held_age_seconds=None), False, None),  # released: none held
    ("collector_unreleased", lambda m: set_(m.pipeline.collectors[0], held=None, held_bytes=None,
                                            last_success=None, age_seconds=None), False, None),  # never reached
    ("certificate_expiring", lambda m: set_(m.database, certificate_warnings=[
        certs.Finding("db", "warning", "/s/tls/db.crt expires in 12 days (2027-01-05): `invoke certs --renew`")]),
     True, "warning: db: /s/tls/db.crt expires in 12 days (2027-01-05): `invoke certs --renew`"),
    ("broker_down", lambda m: set_(m, broker=None), False, None),  # broker.enabled off, no container
    ("broker_down", lambda m: set_(m.broker, enabled=False, state="exited", ready=None, unacknowledged=None,
                                   dead=None, error="the broker is exited"), False, None),  # not enabled: not ours
    ("broker_down", lambda m: set_(m.broker, state="exited", ready=None, unacknowledged=None, dead=None,
                                   error="the broker is exited"), True,
     "the broker is exited: no claim check is published or consumed; the scheduled pipeline still pulls every "
     "report"),
    ("broker_down", lambda m: set_(m.broker, state="absent"), True,
     "the broker is absent: no claim check is published or consumed; the scheduled pipeline still pulls every "
     "report"),
    ("queue_backlog", lambda m: set_(m.broker, ready=1000), False, None),  # at the limit, not beyond
    ("queue_backlog", lambda m: set_(m.broker, ready=1001, last_batch_age_seconds=2 * HOUR), True,
     "1001 claim check(s) ready in the queue (limit 1000); the subscriber's last batch: 2 h ago"),
    ("queue_backlog", lambda m: set_(m.broker, ready=5000, last_batch=None, last_batch_age_seconds=None), True,
     "5000 claim check(s) ready in the queue (limit 1000); the subscriber's last batch: never"),
    ("dead_letters", lambda m: set_(m.broker, dead_lettered=2), False, None),  # purged: looked at
    ("dead_letters", lambda m: set_(m.broker, dead=2, dead_lettered=2, newest_dead=[
        DeadLetter("2026-12-07T11:00:00Z", "missing: not on the collector", "c1", "r1.yaml"),
        DeadLetter("2026-12-07T10:00:00Z", "the message is not a claim check: not JSON")]), True,
     "2 message(s) dead-lettered in reports.dead (limit 0), 2 in the last 24 h; the newest "
     "(2026-12-07T11:00:00Z): c1 r1.yaml: missing: not on the collector"),
    ("dead_letters", lambda m: set_(m.broker, dead=1, dead_lettered=0, newest_dead=[]), True,
     "1 message(s) dead-lettered in reports.dead (limit 0), 0 in the last 24 h"),
]


def test_nothing_holds_on_a_healthy_host():
    assert rules.evaluate(healthy(), CFG) == []


@pytest.mark.parametrize("name,change,holds,what", CASES)
def test_each_rule_holds_exactly_when_its_figures_say(name, change, holds, what):
    m = changed(change)
    found = rules.evaluate(m, CFG)
    assert [f.rule for f in found] == ([name] if holds else [])
    if holds:
        rule = next(r for r in rules.RULES if r.name == name)
        assert found[0] == rules.Finding(name, rule.severity, what, rule.todo)


def test_every_rule_holds_in_some_case_and_not_in_another():
    assert {c[0] for c in CASES if c[2]} == set(NAMES)
    assert {c[0] for c in CASES if not c[2]} == set(NAMES) - {"certificate_expiring"}  # nothing but its warnings


def test_the_table_has_each_rule_once_with_its_threshold_and_what_to_do():
    assert [r.name for r in rules.RULES] == NAMES
    assert {r.name: r.severity for r in rules.RULES if r.severity == rules.STALL} == {
        n: "stall" for n in ("stalled", "collector_unreached", "poison", "database_unreachable", "broker_down",
                             "queue_backlog")}
    for rule in rules.RULES:
        if rule.key is not None:
            assert isinstance(rules.threshold(CFG, rule.key), int), rule.key
        assert rule.todo.endswith(".") and len(rule.todo) > 40
    assert {r.name for r in rules.RULES if r.key is None} == {"poison", "database_unreachable", "broker_down"}


def test_a_threshold_from_the_configuration_decides():
    old = changed(lambda m: set_(m.backups.newest_set, age_seconds=5 * HOUR))
    assert [f.rule for f in rules.evaluate(old, CFG)] == ["recovery_point_old"]
    assert rules.evaluate(old, config.load(overrides={"status.recovery_point_minutes": 360})) == []


def test_sets_checks_and_drills_are_not_the_business_of_a_databases_own_host():
    m = changed(lambda m: (set_(m.backups, newest_set=None, check=None),
                           set_(m.restores, last_pass=None, last_pass_age_seconds=None)))
    assert [f.rule for f in rules.evaluate(m, CFG)] == ["recovery_point_old", "no_passing_check", "no_passing_drill"]
    assert rules.evaluate(m, config.load(overrides={"host.role": "database"})) == []


def test_several_findings_of_one_rule_and_of_several():
    m = changed(lambda m: (set_(m.database, certificate_warnings=[certs.Finding("ca", "warning", "soon"),
                                                                 certs.Finding("db", "error", "expired")]),
                           set_(m.pipeline, poison=1),
                           [set_(r, reachable=False, error="refused" if r.role != "backup" else "wrong password")
                            for r in m.database.roles]))
    found = rules.evaluate(m, CFG)
    assert [(f.rule, f.severity, f.what) for f in found] == [
        ("poison", "stall", "1 input(s) in quarantine/poison/ (each failed twice in a row for the same reason)"),
        ("database_unreachable", "stall",
         "role(s) owner, importer, reader cannot log in to the database at 127.0.0.1:27017: refused"),
        ("database_unreachable", "stall",
         "role(s) backup cannot log in to the database at 127.0.0.1:27017: wrong password"),
        ("certificate_expiring", "risk", "warning: ca: soon"), ("certificate_expiring", "risk", "error: db: expired")]
    assert found[0].lines() == [f"STALL poison: {found[0].what}", f"    what to do: {found[0].todo}"]
    assert rules.Finding.from_json(found[3].to_json()) == found[3]


def test_the_model_of_the_rules_tests_is_the_real_one():
    assert model.StatusModel.from_json(healthy().to_json()) == healthy()


def test_a_collector_that_holds_too_much_as_sync_counted_it():
    """From sync's own account of two collectors (the model's collector_state): one holds a day and a half of
    pulled reports (a release that does not run), the other little and recent; only the first is named, and a
    larger limit from the configuration silences it."""
    now = history.parse_time(NOW)
    late = CollectorPull("late", reached=True, listed=2, pulled=2, held=1200, held_bytes=2500 * MB,
                         oldest_held="2026-12-06T00:00:00Z")
    fine = CollectorPull("fine", reached=True, listed=1, pulled=1, held=12, held_bytes=40 * MB,
                         oldest_held="2026-12-07T11:00:00Z")
    states = [model.collector_state(p.collector, [("2026-12-07T11:57:00Z", p)], now) for p in (late, fine)]
    m = changed(lambda m: set_(m.pipeline, collectors=states))
    found = rules.evaluate(m, CFG)
    assert [(f.rule, f.severity) for f in found] == [("collector_unreleased", "risk")]
    assert found[0].what == ("collector late: 1200 pulled report(s) not yet released hold 2500 MB there (limit "
                             "2048 MB); the oldest pulled report not yet released is 1 d 12 h old "
                             "(2026-12-06T00:00:00Z; limit 30 h)")
    assert "docs/pipeline.md" in found[0].todo and "invoke status" in found[0].todo
    roomy = config.load(overrides={"status.collector_held_mb": 4096, "status.collector_held_hours": 48})
    assert rules.evaluate(m, roomy) == []


def doc_rules() -> dict[str, tuple[str, str]]:
    """{rule: (kind, threshold cell)} of docs/status.md's table of the rules."""
    rows = re.findall(r"^\| `(\w+)` \| (stall|risk) \|[^|]*\| (.*) \|$", STATUS_DOC.read_text(), re.M)
    return {name: (kind, cell) for name, kind, cell in rows}


def test_the_doc_lists_every_rule_with_its_kind_and_thresholds():
    """docs/status.md's table names the rules of RULES, in order, each with its kind, its threshold's key and
    default, and only keys that are in the configuration."""
    doc = doc_rules()
    assert list(doc) == NAMES
    for rule in rules.RULES:
        kind, cell = doc[rule.name]
        assert kind == rule.severity, rule.name
        if rule.key is None:
            assert cell.startswith("none"), rule.name
        else:
            assert f"`{rule.key}` ({rules.threshold(CFG, rule.key)})" in cell, (rule.name, cell)
        for key, default in re.findall(r"`(\w+\.\w+)` \((\d+)\)", cell):
            assert str(rules.threshold(CFG, key)) == default, (rule.name, key)
