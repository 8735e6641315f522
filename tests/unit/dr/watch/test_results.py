"""The job history's results read back into their types (dr/watch/results.py): one type per job of the
history, every one read back equal to what the job returned, through a real history file too; a run without
a result, or with one this version cannot read, reads back as None."""

import datetime as dt

import pytest

from common import config
from dr.drills.drill_reports import RestoreDrillReport, RunbookDrillReport, StepRow
from dr.jobs import history
from dr.jobs.pipeline import PipelineRun
from dr.jobs.rebuild import Phase, RebuildReport
from dr.jobs.rotate import Rotation
from dr.watch import results
from snapshots.results import CheckResult, CopyResult, ForgetResult, TakeResult
from stages.cli import CollectorPull, Summary

T0 = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
MANIFEST = {
    "format": 1, "set": "20261207T110000Z", "host": "aggr", "version": "0.1.0", "started": "2026-12-07T11:00:00Z",
    "locked": "2026-12-07T11:00:01Z", "ended": "2026-12-07T11:00:09Z", "paused_seconds": 1.25,
    "lock_waited_seconds": 0.0, "recovered": [], "journal_position": 4096,
    "directories": {"archive": {"files": 4, "reports": 2, "bytes": 9000, "digest": "cd" * 32}},
    "database": {"database": "aggregator", "collections": {"reports": 2, "measurements": 7}},
    "snapshots": {"files": "f" * 64}, "added_bytes": {"files": 1000}}
CHECK = {"ok": True, "restic_check": {"ok": True, "error": None}, "read_data_subset": "5%",
         "sets": [{"set": "20261207T110000Z", "verdict": "ok", "problems": []}], "failed_sets": [],
         "artifacts": {"verdict": "none", "snapshot": None, "artifacts": [], "problems": []}, "verified": 1}
PIPELINE = PipelineRun([Summary("sync", {"pulled": 2}, bytes_in=2000, seconds=1.5,
                                collectors=[CollectorPull("c1", True, 2, 2, 0, 2000)]),
                        Summary("sanitize", {"sanitized": 2}, bytes_in=2000, seconds=0.5)])
# Each job of the history (the names the jobs append under) and an example of its result.
EXAMPLES = {
    "pipeline": PIPELINE,
    "stage-sync": PipelineRun([PIPELINE.stages[0]]),
    "stage-sanitize": PipelineRun([PIPELINE.stages[1]]),
    "stage-importer": PipelineRun([Summary("importer", {"imported": 2}, exit_code=1, errors=["database down"])]),
    "catch-up": PipelineRun([Summary("importer", {"imported": 0})]),
    "snapshot": TakeResult.from_dict(MANIFEST),
    "check": CheckResult.from_dict(CHECK),
    "check-offsite": CheckResult.from_dict(CHECK | {"ok": False, "failed_sets": ["20261207T110000Z"]}),
    "forget": ForgetResult(["20261207T110000Z"], ["20261206T110000Z"], 3, False),
    "offsite": CopyResult(["20261207T110000Z"], [], 4, "rest:https://offsite.example/aggregator"),
    "drill": RestoreDrillReport(started="2026-12-07T11:30:00Z", set_id="20261207T110000Z", rpo_seconds=1800,
                                restore_seconds=7.5, total_seconds=9.0, verdict="pass", problems=[]),
    "drill-bare-host": RunbookDrillReport(drill="bare-host", started="2026-12-06T04:00:00Z", repository="/repo",
                                          steps=[StepRow(73, "3. Rebuild", "./run invoke rebuild", seconds=300.0,
                                                         exit_code=0)], total_seconds=900.0, verdict="pass"),
    "drill-two-hosts": RunbookDrillReport(drill="two-hosts", started="2026-12-05T04:00:00Z", repository="/repo",
                                          total_seconds=1800.0, verdict="FAIL", problems=["block 12 failed"]),
    "rebuild": RebuildReport([Phase("restore", 12.5, "restored set 20261207T110000Z")],
                             pipeline=[Summary("importer", {"imported": 2})]),
    "rotate-secrets": Rotation(["owner", "importer", "reader", "backup"], [], 2.5, 30.0),
}


def test_the_table_names_the_result_type_of_every_job_of_the_history():
    assert set(results.TYPES) == {type(r).__name__ for r in EXAMPLES.values()}
    assert all(results.TYPES[name].__name__ == name for name in results.TYPES)


@pytest.mark.parametrize("job", EXAMPLES)
def test_each_jobs_result_reads_back_into_its_type(job):
    result = EXAMPLES[job]
    run = history.run_of(job, T0, T0 + dt.timedelta(seconds=5), result)
    assert run.result_type == type(result).__name__
    back = results.typed(history.JobRun.from_json(run.to_json()))
    assert type(back) is type(result) and back == result


def test_results_read_back_through_a_history_file(tmp_path):
    cfg = config.load(overrides={"history.dir": str(tmp_path / "history")})
    for n, (job, result) in enumerate(EXAMPLES.items()):
        ended = T0 + dt.timedelta(minutes=n)
        history.append(cfg, history.run_of(job, ended - dt.timedelta(seconds=3), ended, result))
    runs = history.read(cfg)
    assert [r.job for r in runs] == list(EXAMPLES)
    assert [results.typed(r) for r in runs] == list(EXAMPLES.values())
    assert [(r.job, r.outcome) for r in runs if not r.ok] == [
        ("stage-importer", "failed"), ("check-offsite", "failed"), ("drill-two-hosts", "failed")]


def test_a_run_without_a_result_or_with_one_this_version_cannot_read_is_none():
    stopped = history.run_of("snapshot", T0, T0, error="restic: repository is locked")
    assert stopped.outcome == "error" and results.typed(stopped) is None
    run = history.run_of("pipeline", T0, T0, PIPELINE)
    newer_type = history.JobRun.from_dict(run.to_dict() | {"result_type": "PipelineRunV2"})
    assert results.typed(newer_type) is None
    newer_shape = history.JobRun.from_dict(run.to_dict() | {"result": run.result | {"lanes": 2}})
    assert results.typed(newer_shape) is None
    older_shape = history.JobRun.from_dict(run.to_dict() | {"result": {"stages": [{"outcomes": {}}]}})
    assert results.typed(older_shape) is None  # a summary without its stage
