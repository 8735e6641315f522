"""The host reads what a container printed back into its type: a stage's summary (dr/jobs/pipeline.py stage_result)
and a snapshots action's result (dr/jobs/backup.py read_result), both pure, given (exit code, stdout) as a
container leaves them. Stages and actions run in their real containers in tests/integration
(test_stage_containers.py, test_snapshots.py)."""

from __future__ import annotations

import json

import pytest

from common import config
from common.errors import DrError
from dr.jobs import backup, pipeline
from snapshots import results
from stages.cli import StageResult, Summary

from .test_contract import COLLECTOR


def test_a_stage_summary_is_read_back_with_the_exit_code():
    s = Summary("sanitize")
    s.count("sanitized", 4)
    s.fail("raw/a.yaml", "worker_died", "killed")
    result = pipeline.stage_result("sanitize", 1, s.to_json())
    assert result == StageResult(s, 1) and result.summary.outcomes["sanitized"] == 4
    assert pipeline.exit_code([result]) == 1 and not result.stopped  # a report's own failure stops nothing


def test_a_stage_with_errors_stops_the_pipeline_and_fails_it_even_with_exit_0():
    s = Summary("sanitize")
    s.errors.append("disk full")
    result = pipeline.stage_result("sanitize", 0, s.to_json())  # errors, yet exit 0: still a failed run
    assert result.stopped and pipeline.exit_code([result]) == 1 and pipeline.exit_code([]) == 0


def test_the_stages_a_run_runs():
    cfg = config.load()
    assert pipeline.stage_names(cfg) == ["sanitize", "importer"]  # sync only with collectors
    with_one = config.load(overrides={"collectors": [COLLECTOR]})
    assert pipeline.stage_names(with_one) == ["sync", "sanitize", "importer"]
    assert pipeline.stage_names(cfg, "importer") == ["importer"]


def test_a_stage_without_a_summary_is_a_clear_error():
    with pytest.raises(DrError, match="stage sanitize exited 2 without a summary"):
        pipeline.stage_result("sanitize", 2, "sanitize: error: data_root: no such folder")


def test_a_snapshots_result_is_read_back_into_its_type():
    out = json.dumps({"keep": ["b"], "forget": ["a"], "snapshots_removed": 3, "dry_run": False})
    code, result = backup.read_result("forget", 0, out)
    assert code == 0 and result == results.ForgetResult(keep=["b"], forget=["a"], snapshots_removed=3,
                                                        dry_run=False)
    assert backup.read_result("list", 0, "[]") == (0, [])


def test_snapshots_output_that_is_not_a_result():
    assert backup.read_result("list", 1, "error: the repository is locked") == (1, None)  # the reason was logged
    with pytest.raises(DrError, match="snapshots list printed no result"):
        backup.read_result("list", 0, "")
    with pytest.raises(DrError, match="snapshots list printed a result that does not fit its type"):
        backup.read_result("list", 0, json.dumps({"set": "x"}))
