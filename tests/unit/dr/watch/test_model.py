"""The status model (dr/watch/model.py, dr/watch/folders.py), piece by piece on real folders: a data root with
inputs waiting and quarantined ones, a real journal, a real job history, saved drill reports; then all of it
computed at once (the database not probed), read back from its JSON and rendered."""

import datetime as dt
import json
import os

import pytest

from common import config
from dr.drills import drill_reports
from dr.drills.drill_reports import RestoreDrillReport, RunbookDrillReport, StepRow
from dr.jobs import history
from dr.jobs.pipeline import PipelineRun
from dr.jobs.rebuild import Phase, RebuildReport
from dr.jobs.restore import Restored
from dr.watch import figures, folders, model
from dr.watch.model import Runs
from snapshots.results import CheckResult, CopyResult, ForgetResult, Manifest, TakeResult
from stages import journal, quarantine, sync
from stages.cli import CollectorPull, Summary
from stages.layout import WAITING, DataRoot

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
MIN, HOUR, DAY = 60, 3600, 86400


def at(seconds_ago: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds_ago)


def stamp(seconds_ago: float) -> str:
    return history.stamp(at(seconds_ago))


def set_id(seconds_ago: float) -> str:
    return at(seconds_ago).strftime(model.SET_ID)


def make_cfg(tmp_path, **overrides):
    values = {"data_root": str(tmp_path / "data"), "history.dir": str(tmp_path / "history"),
              "drill.history_dir": str(tmp_path / "drills"), "secrets_dir": str(tmp_path / "secrets")}
    return config.load(overrides=values | {k.replace("__", "."): v for k, v in overrides.items()})


def put(path, seconds_ago: float, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (at(seconds_ago).timestamp(),) * 2)


def append(cfg, job: str, seconds_ago: float, result=None, seconds: float = 10.0, error=None, free=None):
    ended = at(seconds_ago)
    history.append(cfg, history.run_of(job, ended - dt.timedelta(seconds=seconds), ended, result, error, free))


def manifest(sid: str, started: str, files_bytes: int = 9000, copy_bytes: int | None = 4_000_000,
             kind=TakeResult):
    data = {"format": 1, "set": sid, "host": "aggr", "version": "0.1.0", "started": started, "locked": started,
            "ended": started, "paused_seconds": 1.5, "lock_waited_seconds": 0.0, "recovered": [],
            "journal_position": 0,
            "directories": {"archive": {"files": 4, "reports": 2, "bytes": files_bytes, "digest": "cd" * 32}},
            "database": {"database": "aggregator", "collections": {"reports": 2, "measurements": 7}},
            "snapshots": {"files": "f" * 64}, "added_bytes": {"files": 1000, "pg": 500}}
    if copy_bytes is not None:
        data["physical"] = {"bytes": copy_bytes, "postgres_version_num": 170012, "postgres_major": 17,
                            "ferretdb_version": "v1.24.2", "database": "aggregator",
                            "collections": {"reports": 3, "measurements": 9},
                            "collections_at_start": {"reports": 2, "measurements": 7}}
    return kind.from_dict(data)


def check(ok: bool, failed=()) -> CheckResult:
    return CheckResult.from_dict({"ok": ok, "restic_check": {"ok": ok, "error": None if ok else "damaged"},
                                  "read_data_subset": None, "sets": [], "failed_sets": list(failed),
                                  "artifacts": {"verdict": "none", "snapshot": None, "artifacts": [],
                                                "problems": []}, "verified": 0})


def sync_summary(*pulls: CollectorPull, code: int = 0) -> Summary:
    return Summary("sync", {"pulled": sum(p.pulled for p in pulls)}, bytes_in=sum(p.bytes for p in pulls),
                   seconds=1.0, collectors=list(pulls), exit_code=code)


def pipeline(*stages: Summary) -> PipelineRun:
    return PipelineRun(list(stages))


def read(cfg) -> Runs:
    return Runs(history.read(cfg))


# --- the state directories, the quarantine, the journal ------------------------------------------------------

def test_the_inputs_waiting_in_each_state_and_the_oldest_ones_age(tmp_path):
    dr = DataRoot(tmp_path / "data").ensure()
    put(dr.state("raw") / "c1" / "old.yaml", 3 * HOUR)
    put(dr.state("raw") / "c1" / "new.yaml.gz", 5 * MIN)
    put(dr.state("raw") / ".incoming" / "c1" / "pulling.yaml", 9 * HOUR)  # sync's, not an input yet
    put(dr.state("staging") / "20140807T141050Z-IT-AS3269-http_requests-r1-0.2.0-probe.yaml", 20 * MIN)
    put(dr.state("reports") / "r1.yaml", 2 * MIN)
    put(dr.state("reports") / "r1.jsonl", 2 * MIN)  # the same report's documents
    put(dr.state("reports") / ".r2.yaml.tmp", 5 * HOUR)  # a temporary: not an input
    put(dr.state("archive") / "2014-08-07" / "IT" / "a.yaml", 30 * DAY)  # done: not waiting
    rows = {b.state: b for b in model.backlog(dr, NOW)}
    assert list(rows) == ["raw", "staging", "reports"]
    assert rows["raw"] == figures.Backlog("raw", 2, stamp(3 * HOUR), 3 * HOUR)
    assert rows["staging"] == figures.Backlog("staging", 1, stamp(20 * MIN), 20 * MIN)
    assert rows["reports"] == figures.Backlog("reports", 1, stamp(2 * MIN), 2 * MIN)
    assert model.backlog(DataRoot(tmp_path / "none"), NOW) == [figures.Backlog(s, 0) for s in WAITING]


def test_the_quarantine_per_reason_counts_inputs_poison_among_them(tmp_path):
    dr = DataRoot(tmp_path / "data").ensure()
    for name, reason in (("a.yaml", "unsafe_tag"), ("b.yaml", "unsafe_tag"), ("c.yaml", "poison"),
                         ("d.yaml", "poison"), ("d.jsonl", "poison")):
        src = dr.state("raw") / "c1" / name
        put(src, HOUR, f"{name}\n")
        tx = journal.Transaction("sanitize", "quarantined", name)
        target, _ = quarantine.add(tx, dr, src, name, "0" * 64, src.stat().st_size, reason, {"error": "bad"})
        tx.remove(src)
        journal.run(dr, tx)
        assert target.exists() and target.with_name(target.name + ".reason.json").exists()
    # sync's poison: a file left on its collector, only its reason file here
    note = sync.poison_note(dr, "c1", "2026-12/unreadable.yaml")
    note.parent.mkdir(parents=True)
    note.write_text(json.dumps({"reason": "poison", "left_on_collector": True}))
    (dr.state("quarantine") / "too_large").mkdir()
    counts = folders.quarantined(dr)
    assert counts == {"poison": 3, "too_large": 0, "unsafe_tag": 2}  # d.yaml and d.jsonl: one report
    assert folders.poison(counts) == 3 and folders.poison({"unsafe_tag": 1}) == 0
    assert folders.quarantined(DataRoot(tmp_path / "none")) == {}


def test_the_last_move_is_the_journals_newest_commit_read_from_its_end(tmp_path):
    dr = DataRoot(tmp_path / "data").ensure()
    assert folders.last_journal_time(dr.journal) is None
    for n in range(40):
        journal.run(dr, journal.Transaction("sanitize", "moved", f"report-{n:02d}.yaml"))
    newest = json.loads(dr.journal.read_bytes().splitlines()[-1])["time"]
    expected = dt.datetime.fromisoformat(newest)
    for tail in (7, 100, 333, folders.TAIL):  # chunks that cut lines anywhere, and the default
        assert folders.last_journal_time(dr.journal, tail) == expected
    with open(dr.journal, "ab") as fh:
        fh.write(b'{"time": "2027-01-01T00:00:00.000000Z", "op": "beg')  # torn by a crash: skipped
    assert folders.last_journal_time(dr.journal, 50) == expected
    with open(dr.journal, "ab") as fh:
        fh.write(b'\nnot json\n{"op": "commit"}\n')  # lines without a time: the one before counts
    assert folders.last_journal_time(dr.journal, 50) == expected
    journal.append(dr, {"time": journal.now(), "op": "note", "stage": "sync", "event": "released",
                        "collector": "c1", "files": ["a.yaml"]})  # moves no report: not a move
    assert folders.last_journal_time(dr.journal, 50) == expected


def test_the_pipeline_section_from_the_folders_and_the_journal(tmp_path):
    cfg = make_cfg(tmp_path)
    dr = DataRoot(cfg.data_root).ensure()
    journal.run(dr, journal.Transaction("sync", "pulled", "a.yaml"))
    moved = folders.last_journal_time(dr.journal)
    later = moved.replace(microsecond=0) + dt.timedelta(minutes=90)
    put(dr.state("raw") / "c1" / "a.yaml", (NOW - later).total_seconds() + 2 * HOUR)  # 2 h before `later`
    section = model.pipeline_section(cfg, Runs([]), later)
    assert section.waiting == 1 and section.oldest_age_seconds() == 2 * HOUR
    assert section.last_move == history.stamp(moved) and section.last_move_age_seconds == 90 * MIN
    assert section.quarantine == {} and section.poison == 0
    assert [s.stage for s in section.stages] == ["sync", "sanitize", "importer"]


# --- the pipeline's runs in the history ----------------------------------------------------------------------

def test_each_stages_last_success_from_any_run_of_it(tmp_path):
    cfg = make_cfg(tmp_path)
    ok = {name: Summary(name, {"done": 1}) for name in ("sync", "sanitize", "importer")}
    append(cfg, "rebuild", 3 * DAY, RebuildReport([Phase("start", 1.0, "")], pipeline=list(ok.values())))
    append(cfg, "pipeline", 2 * HOUR, pipeline(ok["sync"], ok["sanitize"], ok["importer"]))
    append(cfg, "stage-sanitize", HOUR, pipeline(ok["sanitize"]))
    append(cfg, "pipeline", 30 * MIN, pipeline(ok["sync"], ok["sanitize"],
                                               Summary("importer", exit_code=1, errors=["database down"])))
    append(cfg, "catch-up", 40 * MIN, error="the database is not running")  # no result: no summary
    rows = {s.stage: s for s in model.stage_successes(read(cfg), NOW)}
    assert rows["sync"] == figures.StageSuccess("sync", stamp(30 * MIN), 30 * MIN, "pipeline")
    assert rows["sanitize"] == figures.StageSuccess("sanitize", stamp(30 * MIN), 30 * MIN, "pipeline")
    assert rows["importer"] == figures.StageSuccess("importer", stamp(2 * HOUR), 2 * HOUR, "pipeline")
    assert model.stage_successes(Runs([]), NOW)[0] == figures.StageSuccess("sync")


def test_each_collectors_last_success_what_it_still_holds_and_its_last_error(tmp_path):
    cfg = make_cfg(tmp_path, collectors=[
        {"name": n, "host": f"{n}.example", "user": "aggregator", "key_file": f"/k/{n}",
         "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "archive_path": "/archive"} for n in ("c1", "c2", "c3")])
    append(cfg, "pipeline", 5 * HOUR, pipeline(sync_summary(CollectorPull("c1", True, 9, 4, 5, 400),
                                                            CollectorPull("c2", False, error="timed out"))))
    append(cfg, "stage-sync", 3 * HOUR, pipeline(sync_summary(CollectorPull("c1", True, 5, 5, 0, 500),
                                                              CollectorPull("c2", False, error="timed out"))))
    append(cfg, "pipeline", HOUR, pipeline(sync_summary(
        CollectorPull("c1", True, 3, 1, 2, 100, error="rsync: some files vanished", held=4, held_bytes=4000,
                      oldest_held=stamp(2 * HOUR)),
        CollectorPull("c2", False, error="connection refused"), code=1)))
    c1, c2, c3 = model.collector_states(cfg, read(cfg), NOW)
    # c1: reached an hour ago with an error, so its last success is the stage-sync run's; it holds 2 still, and
    # 4 pulled ones in .pulled/ until a release
    assert c1 == figures.CollectorState("c1", stamp(3 * HOUR), 3 * HOUR, left=2,
                                      last_error="rsync: some files vanished", held=4, held_bytes=4000,
                                      oldest_held=stamp(2 * HOUR), oldest_held_age_seconds=2 * HOUR)
    assert "4 (0.0 MB, oldest 2 h) held until released" in c1.text()
    # c2: never reached since the first run that tried it
    assert c2 == figures.CollectorState("c2", last_error="connection refused", first_tried=stamp(5 * HOUR))
    # c3: configured, never tried (no run since it was added)
    assert c3 == figures.CollectorState("c3")
    assert "never reached (tried since" in c2.text() and c3.text() == "collector c3: not tried yet"


def test_the_pipelines_last_runs_duration_and_throughput(tmp_path):
    cfg = make_cfg(tmp_path)
    for n in range(model.PIPELINE_RUNS + 3):
        append(cfg, "pipeline", (20 - n) * 5 * MIN, pipeline(
            Summary("sync", bytes_in=1000 * n), Summary("sanitize", bytes_in=2000 * n)), seconds=4.0)
    append(cfg, "stage-sync", MIN, pipeline(Summary("sync", bytes_in=10**9)))  # not a run of the whole pipeline
    append(cfg, "pipeline", 30, error="docker: daemon not running", seconds=0.0)
    rows = model.pipeline_runs(read(cfg))
    assert len(rows) == model.PIPELINE_RUNS
    assert rows[-1] == figures.PipelineRunRow(stamp(30), "error", 0.0, 0, None)
    n = model.PIPELINE_RUNS + 2  # the newest whole run with a result
    assert rows[-2] == figures.PipelineRunRow(stamp((20 - n) * 5 * MIN), "ok", 4.0, 2000 * n, 500.0 * n)


def test_the_flow_is_what_each_run_of_stages_moved_over_the_last_day(tmp_path):
    cfg = make_cfg(tmp_path)
    sanitize = Summary("sanitize", {"sanitized": 4, "quarantined:unsafe_tag": 1})
    sanitize.quarantine("raw/c1/a.yaml", "unsafe_tag", "bad tag")
    importer = Summary("importer", {"imported": 3, "failed": 1})
    importer.fail("reports/b.yaml", "DocumentTooLarge", "too large")
    append(cfg, "pipeline", 25 * HOUR, pipeline(sync_summary(CollectorPull("c1", True, 9, 9, 0, 9))))  # too old
    append(cfg, "pipeline", 20 * HOUR, pipeline(sync_summary(CollectorPull("c1", True, 5, 5, 0, 500)),
                                                 sanitize, importer))
    append(cfg, "snapshot", 10 * HOUR, manifest(set_id(10 * HOUR), stamp(10 * HOUR)))  # moves no input
    append(cfg, "catch-up", 5 * HOUR, pipeline(Summary("importer", {"imported": 7})))
    append(cfg, "stage-sync", HOUR, error="docker: daemon not running")
    assert model.flow(read(cfg), NOW) == [
        figures.FlowPoint(stamp(20 * HOUR), "pipeline", "ok", pulled=5, sanitized=4, imported=3, quarantined=1,
                          failed=1),
        figures.FlowPoint(stamp(5 * HOUR), "catch-up", "ok", imported=7),
        figures.FlowPoint(stamp(HOUR), "stage-sync", "error")]


def test_the_backlog_series_is_what_waited_at_each_job_end_of_the_last_day(tmp_path):
    cfg = make_cfg(tmp_path)

    def ended(job: str, seconds_ago: float, backlog: dict | None) -> None:
        end = at(seconds_ago)
        history.append(cfg, history.run_of(job, end - dt.timedelta(seconds=10), end, pipeline(), backlog=backlog))

    ended("pipeline", 25 * HOUR, {"raw": 9, "staging": 0, "reports": 0})  # older than the last day
    ended("pipeline", 20 * HOUR, {"raw": 3, "staging": 1, "reports": 0})
    # a line an older version wrote: no backlog, skipped (and read back all the same)
    old = {"job": "snapshot", "started": stamp(10 * HOUR + 5), "ended": stamp(10 * HOUR), "host": "aggr",
           "outcome": "ok", "exit_code": 0, "seconds": 5.0, "data_free_bytes": 10**9}
    with open(history.month_file(cfg, at(10 * HOUR)), "a") as fh:
        fh.write(json.dumps(old) + "\n")
    ended("check", 5 * HOUR, {"raw": 0, "staging": 0, "reports": 2})
    ended("pipeline", -60, {"raw": 1, "staging": 0, "reports": 0})  # after now: not yet
    runs = read(cfg)
    assert [r.job for r in runs.runs if r.backlog is None] == ["snapshot"]
    assert model.backlog_series(runs, NOW) == [
        figures.BacklogPoint(stamp(20 * HOUR), "pipeline", 4, {"raw": 3, "staging": 1, "reports": 0}),
        figures.BacklogPoint(stamp(5 * HOUR), "check", 2, {"raw": 0, "staging": 0, "reports": 2})]
    assert model.pipeline_section(cfg, runs, NOW).backlog_series == model.backlog_series(runs, NOW)


# --- backups ---------------------------------------------------------------------------------------------------

def test_the_newest_set_is_the_newest_taken_or_restored_here(tmp_path):
    cfg = make_cfg(tmp_path)
    assert model.newest_set(read(cfg), NOW) is None
    append(cfg, "snapshot", 2 * HOUR, manifest(set_id(2 * HOUR + 60), stamp(2 * HOUR + 60)))
    append(cfg, "snapshot", HOUR, error="the exclusive lock timed out")
    s = model.newest_set(read(cfg), NOW)
    assert s == figures.BackupSet(set_id(2 * HOUR + 60), "snapshot", stamp(2 * HOUR + 60), 2 * HOUR + 60, 9000,
                                4_000_000, 1500, 1.5)
    restored = manifest(set_id(30 * MIN), stamp(30 * MIN), copy_bytes=None, kind=Manifest)
    append(cfg, "rebuild", 10 * MIN, RebuildReport([], Restored(restored.set_id, restored.started, restored)))
    s = model.newest_set(read(cfg), NOW)
    assert (s.set_id, s.source, s.age_seconds, s.db_bytes, s.added_bytes) == (set_id(30 * MIN), "rebuild",
                                                                               30 * MIN, None, None)


def test_the_last_check_its_verdict_and_its_last_pass(tmp_path):
    cfg = make_cfg(tmp_path)
    assert model.check_figures(read(cfg), "check", NOW) is None
    append(cfg, "check", 4 * DAY, check(True))
    append(cfg, "check", 2 * DAY, check(False, ["S1"]))
    append(cfg, "check-offsite", DAY, check(True))
    append(cfg, "check", HOUR, error="restic: repository is locked")
    runs = read(cfg)
    assert model.check_figures(runs, "check", NOW) == figures.CheckFigures(
        "check", stamp(HOUR), HOUR, "error", [], stamp(4 * DAY), 4 * DAY)
    assert model.check_figures(runs, "check-offsite", NOW) == figures.CheckFigures(
        "check-offsite", stamp(DAY), DAY, "ok", [], stamp(DAY), DAY)
    append(cfg, "check", 30 * MIN, check(False, ["S1", "S2"]))
    failed = model.check_figures(read(cfg), "check", NOW)
    assert (failed.verdict, failed.failed_sets, failed.last_pass_age_seconds) == ("FAILED", ["S1", "S2"], 4 * DAY)


def test_the_offsite_lag_in_sets_and_time_and_retentions_last_run(tmp_path):
    cfg = make_cfg(tmp_path, offsite__repository="rest:https://offsite.example/aggregator")
    for hours in (5, 4, 3, 2, 1):
        sid = set_id(hours * HOUR)
        append(cfg, "snapshot", hours * HOUR - 60, manifest(sid, stamp(hours * HOUR)))
    append(cfg, "offsite", 3 * HOUR - 120, CopyResult([set_id(5 * HOUR), set_id(3 * HOUR)], [set_id(4 * HOUR)], 3,
                                                      cfg.offsite.repository))
    append(cfg, "offsite", 30 * MIN, error="the off-site server does not answer")
    append(cfg, "forget", 2 * HOUR, ForgetResult(["a", "b"], ["c"], 2, False))
    section = model.backups_section(cfg, read(cfg), NOW)
    assert section.offsite_configured and section.objective_seconds == cfg.status.recovery_point_minutes * 60
    assert section.newest_set.set_id == set_id(HOUR)
    assert section.offsite == figures.OffsiteFigures(stamp(30 * MIN), 30 * MIN, "error", set_id(3 * HOUR), 3,
                                                   lag_sets=2, lag_seconds=2 * HOUR)
    assert section.retention == figures.RetentionFigures(stamp(2 * HOUR), 2 * HOUR, "ok", 1, 2)
    assert figures.BackupsSection.from_json(section.to_json()) == section
    text = "\n".join(section.lines())
    assert f"newest complete set {set_id(HOUR)} (snapshot): 1 h old, objective 3 h" in text
    assert f"off-site: last copy 30 min ago (error); newest set there {set_id(3 * HOUR)}, 2 set(s) and 2 h behind" \
        in text
    assert "retention: 2 h ago (ok), forgot 1, kept 2" in text and "check: never" in text


# --- restores --------------------------------------------------------------------------------------------------

def restore_drill(seconds_ago: float, verdict: str = "pass", restore: float = 7.5) -> RestoreDrillReport:
    return RestoreDrillReport(started=stamp(seconds_ago), set_id=set_id(seconds_ago + HOUR), rpo_seconds=HOUR,
                              restore_seconds=restore, total_seconds=restore + 2, verdict=verdict,
                              problems=[] if verdict == "pass" else ["the database lacks 2 reports"])


def test_the_restores_from_the_drills_saved_reports(tmp_path):
    cfg = make_cfg(tmp_path, status__drills_shown=3)
    assert model.restores_section(cfg, NOW) == figures.RestoresSection(history.stamp(NOW), [])
    for n, days in enumerate((9, 7, 5, 3)):
        drill_reports.save(cfg, restore_drill(days * DAY, restore=10.0 + n))
    drill_reports.save(cfg, restore_drill(DAY, "FAIL", 3.0))
    (tmp_path / "drills" / "20261207T000000Z.json").write_text("{not json")  # the newest file: unreadable
    odd = RestoreDrillReport(started="yesterday", verdict="pass", problems=[])  # a start that is no time
    (tmp_path / "drills" / "20261206T235959Z.json").write_text(odd.to_json())
    steps = [StepRow(40, "1. Copies", "ls /root/recovery", seconds=1.0, exit_code=0),
             StepRow(73, "3. Rebuild", "cd /opt/aggregator-dr\n./run invoke rebuild", seconds=420.5, exit_code=0),
             StepRow(200, "6. Stop or restart", "./run invoke down\n./run invoke rebuild", seconds=30.0, exit_code=0)]
    drill_reports.save(cfg, RunbookDrillReport(drill="bare-host", started=stamp(2 * DAY), repository="/r",
                                               set_id="S", steps=steps, total_seconds=900.0, verdict="pass"),
                       tmp_path / "drills" / "bare-host")
    drill_reports.save(cfg, RunbookDrillReport(drill="two-hosts", started=stamp(4 * DAY), repository="/r",
                                               total_seconds=50.0, verdict="FAIL"), tmp_path / "drills" / "two-hosts")
    section = model.restores_section(cfg, NOW)
    assert section.last == figures.DrillPoint(stamp(DAY), "FAIL", set_id(DAY + HOUR), 3.0, HOUR)
    assert section.last_age_seconds == DAY
    assert (section.last_pass, section.last_pass_age_seconds) == (stamp(3 * DAY), 3 * DAY)
    assert [(p.started, p.restore_seconds) for p in section.trend] == [
        (stamp(5 * DAY), 12.0), (stamp(3 * DAY), 13.0), (stamp(DAY), 3.0)]  # oldest first
    assert section.runbook == figures.RunbookFigures("bare-host", stamp(2 * DAY), "pass", 900.0, "S", 420.5)
    text = "\n".join(section.lines())
    assert "last drill 1 d ago: FAIL" in text and "last pass 3 d ago" in text
    assert "restore seconds, last 3 drills: 12 13 3" in text and "RTO (its rebuild) 420.5 s, total 900 s" in text


def test_a_runbook_drill_that_never_reached_its_rebuild_has_no_rto():
    report = RunbookDrillReport(drill="bare-host", started="2026-12-01T00:00:00Z", repository="/r", verdict="FAIL",
                                steps=[StepRow(73, "3. Rebuild", "./run invoke rebuild", skipped="not here")])
    assert model.rto_seconds(report) is None


# --- database and disk -----------------------------------------------------------------------------------------

def test_the_database_counts_and_size_are_the_newest_sets_and_the_probe_can_be_left_out(tmp_path):
    cfg = make_cfg(tmp_path)
    section = model.database_section(cfg, read(cfg), NOW, probe=False)
    assert (section.probed, section.roles, section.counts_set, section.collections) == (False, [], None, {})
    assert section.address == "127.0.0.1:27017" and section.certificates == [] == section.certificate_warnings
    append(cfg, "snapshot", 2 * HOUR, manifest("S1", stamp(2 * HOUR), copy_bytes=None))
    append(cfg, "snapshot", HOUR, manifest("S2", stamp(HOUR)))
    section = model.database_section(cfg, read(cfg), NOW, probe=False)
    assert (section.counts_set, section.counts_time, section.documents, section.copy_bytes) == (
        "S2", stamp(HOUR), 12, 4_000_000)
    assert section.collections == {"reports": 3, "measurements": 9}  # the physical copy's exact counts
    assert "in set S2: 12 documents (measurements 9, reports 3), physical copy 4.0 MB" in section.lines()[2]


def test_a_role_that_cannot_log_in_says_why(tmp_path):
    cfg = make_cfg(tmp_path)
    row = model.reach(cfg, "reader")  # no password file: nothing is even tried
    assert not row.reachable and "db-reader-password does not exist" in row.error


@pytest.mark.parametrize("points,slope", [
    ([(0.0, 100.0), (10.0, 80.0), (20.0, 60.0)], -2.0),
    ([(0.0, 100.0), (10.0, 100.0)], 0.0),
    ([(5.0, 1.0)], None),
    ([(5.0, 1.0), (5.0, 2.0)], None),
])
def test_the_rate_of_change_is_a_least_squares_slope(points, slope):
    assert model.change_per_second(points) == slope


@pytest.mark.parametrize("free,reserve,per_day,days", [
    (11, 1, -2.0, 5.0), (11, 1, 0.0, None), (11, 1, 3.0, None), (11, 1, None, None), (1, 1, None, 0.0),
    (0, 1, 5.0, 0.0)])
def test_days_until_the_disk_is_down_to_syncs_reserve(free, reserve, per_day, days):
    assert model.days_until_full(free, reserve, per_day) == days


def test_the_disk_section_from_the_historys_free_space_and_now(tmp_path):
    cfg = make_cfg(tmp_path, sync__reserve_mb=0)
    _, free, _ = folders.free_space(tmp_path / "data")  # the data root does not exist: its parent's disk
    append(cfg, "pipeline", 30 * HOUR, free=free + 10**12)  # older than GROWTH_HOURS: left out
    append(cfg, "pipeline", 20 * HOUR, free=free + 2 * 10**9)
    append(cfg, "pipeline", 10 * HOUR, free=free + 10**9)
    disk = model.disk_section(cfg, read(cfg), NOW)
    assert disk.path == str(tmp_path) and disk.samples == 3 and disk.reserve_bytes == 0
    assert disk.change_per_day == pytest.approx(-2.4e9, rel=0.01)  # 1 GB each 10 h (and now's measurement)
    assert disk.days_until_full == pytest.approx(disk.free_bytes / 2.4e9, rel=0.02)
    fresh = model.disk_section(make_cfg(tmp_path / "other"), Runs([]), NOW)
    assert (fresh.samples, fresh.change_per_day, fresh.days_until_full) == (1, None, None)


# --- all of it -------------------------------------------------------------------------------------------------

def test_the_whole_model_computed_round_trips_and_renders(tmp_path):
    cfg = make_cfg(tmp_path)
    dr = DataRoot(cfg.data_root).ensure()
    put(dr.state("staging") / "s.yaml", 10 * MIN)
    append(cfg, "pipeline", 5 * MIN, pipeline(Summary("sanitize", {"sanitized": 3}, bytes_in=3_000_000, seconds=2.0)),
           seconds=3.0, free=10**9)
    append(cfg, "snapshot", HOUR, manifest(set_id(HOUR), stamp(HOUR)))
    append(cfg, "check", DAY, check(True))
    drill_reports.save(cfg, restore_drill(2 * DAY))
    append(cfg, "pipeline", 40 * DAY, pipeline(Summary("importer")))  # before the history read
    m = model.compute(cfg, NOW, probe=False)
    assert m.computed == history.stamp(NOW) and m.role == "all"
    assert m.history_since == history.stamp(NOW - dt.timedelta(days=model.history_days(cfg)))
    assert model.StatusModel.from_json(m.to_json()) == m
    data = json.loads(m.to_json())["pipeline"]  # the totals the page shows are in the JSON too
    assert data["waiting"] == 1 and data["flow_total"] == {"runs": 1, "pulled": 0, "sanitized": 3, "imported": 0,
                                                           "quarantined": 0, "failed": 0}
    assert [s.stage for s in m.pipeline.stages if s.ended] == ["sanitize"]  # the importer's run is too old
    assert m.pipeline.backlog[1].count == 1 and m.backups.newest_set.age_seconds == HOUR
    assert m.backups.check.last_pass_age_seconds == DAY and m.restores.last_pass_age_seconds == 2 * DAY
    assert m.database.probed is False and m.disk.samples == 2
    text = m.render().splitlines()
    assert text[0] == f"status of {m.host} (all) at {m.computed}:"
    assert "  waiting: raw/ 0, staging/ 1 (oldest 10 min), reports/ 0; no journal yet" in text
    assert "  last success: sync never, sanitize 5 min ago, importer never" in text
    assert "  last 1 run(s): 3.0 s on average, 0 not ok; the last 3.0 s, 3.0 MB (1.0 MB/s)" in text
    assert "  check: ok 1 d ago; last pass 1 d ago" in text and "  off-site: not configured" in text
    assert "  roles: not probed" in text and text[-1].startswith("disk: ")


def test_the_history_read_covers_every_threshold():
    cfg = config.load(overrides={"status.check_days": 60, "status.collector_minutes": 10})
    assert model.history_days(cfg) == 61
    assert model.history_days(config.load()) == model.HISTORY_DAYS + 1


@pytest.mark.parametrize("seconds,text", [(None, "?"), (0, "0 s"), (59.6, "1 min"), (61, "1 min"), (3600, "1 h"),
                                          (3 * HOUR + 5 * MIN, "3 h 5 min"), (2 * DAY + 4 * HOUR + 1, "2 d 4 h"),
                                          (-90, "-1 min")])
def test_spans_read_as_people_say_them(seconds, text):
    assert figures.span(seconds) == text
