"""The host's side of a stage run (dr/jobs/pipeline.py), without Docker: the summary a stage's container printed
read back (launch.read_result, as run_job does) with the container's exit code put in it, the stages a run runs,
and a pipeline run as one record (its JSON, its text, its exit status). The stages run in their real containers
in tests/integration/test_stage_containers.py."""

from __future__ import annotations

import json

import pytest

from common import config
from common.errors import DrError
from dr.jobs import launch, pipeline
from dr.jobs.pipeline import PipelineRun
from stages.cli import Summary

from .test_contract import COLLECTOR


def read_back(stage: str, code: int, out: str) -> Summary:
    """What run_stage does with what a container left: read_result, then exited."""
    return pipeline.exited(stage, code, launch.read_result(stage, Summary, code, out))


def sanitized(n: int) -> Summary:
    s = Summary("sanitize")
    s.count("sanitized", n)
    return s.finish()


def test_a_stage_summary_is_read_back_with_the_containers_exit_code():
    s = Summary("sanitize")
    s.count("sanitized", 4)
    s.fail("raw/a.yaml", "worker_died", "killed")
    s.finish()
    back = read_back("sanitize", 1, s.to_json())
    assert back == s and back.outcomes["sanitized"] == 4 and back.failed[0].error == "killed"
    assert PipelineRun([back]).exit_status() == 1 and not back.stopped  # a report's own failure stops nothing
    killed = read_back("sync", 137, Summary("sync").finish().to_json())  # printed 0, the container says 137
    assert killed.exit_code == 137 and killed.stopped


def test_a_stage_with_errors_stops_the_pipeline_and_fails_it_even_with_exit_0():
    s = Summary("sanitize")
    s.errors.append("disk full")
    back = read_back("sanitize", 0, s.finish().to_json())  # errors, yet exit 0: still a failed run
    assert back.exit_code == 0 and back.stopped
    assert PipelineRun([back]).exit_status() == 1 and PipelineRun().exit_status() == 0


def test_a_stage_without_a_summary_is_a_clear_error():
    with pytest.raises(DrError, match="stage sanitize exited 2 without a summary"):
        read_back("sanitize", 2, "")
    with pytest.raises(DrError, match="sanitize printed a result that does not fit its type Summary"):
        read_back("sanitize", 0, json.dumps({"stage": "sanitize", "outcomes": {"sanitized": "4"}}))
    with pytest.raises(DrError, match="sanitize exited 0 without printing its result"):
        read_back("sanitize", 0, "sanitize: nothing to do")


def test_the_stages_a_run_runs():
    cfg = config.load()
    assert pipeline.stage_names(cfg) == ["sanitize", "importer"]  # sync only with collectors
    with_one = config.load(overrides={"collectors": [COLLECTOR]})
    assert pipeline.stage_names(with_one) == ["sync", "sanitize", "importer"]
    assert pipeline.stage_names(cfg, "importer") == ["importer"]


def test_a_pipeline_run_round_trips_and_prints_one_line_per_stage():
    imported = Summary("importer", bytes_in=3_000_000)
    imported.count("imported", 2)
    imported.quarantine("staging/b.yaml", "poison", "twice", "quarantine/poison/b.yaml")
    imported.finish()
    run = PipelineRun([sanitized(2), imported])
    data = json.loads(run.to_json())
    assert list(data) == ["stages"] and [s["stage"] for s in data["stages"]] == ["sanitize", "importer"]
    assert data["stages"][1]["bytes"] == 3_000_000 and data["stages"][1]["exit_code"] == 0
    assert PipelineRun.from_json(run.to_json()) == run
    lines = run.render().splitlines()
    assert lines[0].startswith("sanitize: 2 sanitized; 0.0 MB in ")
    assert lines[1].startswith("importer: 2 imported, 1 quarantined:poison; 3.0 MB in ")
    assert run.exit_status() == 0


def test_the_worst_stage_makes_the_pipelines_exit_status():
    usage = Summary("importer").finish()
    usage.exit_code = 2
    assert PipelineRun([sanitized(1), usage]).exit_status() == 2
    assert PipelineRun([sanitized(1), sanitized(2)]).exit_status() == 0


def test_each_kind_of_run_has_its_job_name_in_the_history():
    from common.errors import UsageError

    assert pipeline.job_name() == "pipeline"
    assert [pipeline.job_name(s) for s in pipeline.STAGES] == ["stage-sync", "stage-sanitize", "stage-importer"]
    assert pipeline.job_name(catch_up=True) == "catch-up"
    with pytest.raises(UsageError, match="give no --stage with it"):
        pipeline.job_name("importer", catch_up=True)
    with pytest.raises(UsageError, match="--stage import: no such stage; stages: sync, sanitize, importer"):
        pipeline.job_name("import")
