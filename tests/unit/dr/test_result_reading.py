"""The host reads what a container printed back into its type: a stage's summary (dr/pipeline.py) and a
snapshots action's result (dr/backup.py). The container is replaced by canned output (exit code, stdout)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from common import config
from common.errors import DrError
from dr import backup, contract, launch, pipeline
from snapshots import results
from stages.cli import StageResult, Summary


@pytest.fixture
def cfg(tmp_path):
    return config.load(overrides={"instance": "inst", "data_root": str(tmp_path / "data"),
                                  "secrets_dir": str(tmp_path / "secrets"), "cache_dir": str(tmp_path / "cache"),
                                  "backup.repository": str(tmp_path / "repo")})


@pytest.fixture
def container(monkeypatch):
    """Set `container.output = (exit code, stdout)`; every spec runs "in" it."""
    box = SimpleNamespace(output=(0, ""))
    monkeypatch.setattr(contract, "stage_spec", lambda cfg, stage: SimpleNamespace(component="sanitizer",
                                                                                   user="990:990"))
    monkeypatch.setattr(contract, "backup_spec", lambda *a, **k: SimpleNamespace(component="backup"))
    monkeypatch.setattr(launch, "run_spec", lambda cfg, spec: box.output)
    return box


def test_a_stage_summary_is_read_back_with_the_exit_code(cfg, container):
    s = Summary("sanitize")
    s.count("sanitized", 4)
    s.fail("raw/a.yaml", "worker_died", "killed")
    container.output = (1, s.to_json())
    [result] = pipeline.run(cfg, "sanitize")
    assert result == StageResult(s, 1) and result.summary.outcomes["sanitized"] == 4
    assert pipeline.exit_code([result]) == 1


def test_the_pipeline_stops_at_a_stage_with_errors_and_exits_non_zero(cfg, container):
    s = Summary("sanitize")
    s.errors.append("disk full")
    container.output = (0, s.to_json())  # errors, yet exit 0: still a failed run
    results_ = pipeline.run(cfg)
    assert [r.stage for r in results_] == ["sanitize"]  # the importer did not run
    assert pipeline.exit_code(results_) == 1 and pipeline.exit_code([]) == 0


def test_a_stage_without_a_summary_is_a_clear_error(cfg, container):
    container.output = (2, "sanitize: error: data_root: no such folder")
    with pytest.raises(DrError, match="stage sanitize exited 2 without a summary"):
        pipeline.run_stage(cfg, "sanitize")


def test_a_snapshots_result_is_read_back_into_its_type(cfg, container):
    container.output = (0, json.dumps({"keep": ["b"], "forget": ["a"], "snapshots_removed": 3, "dry_run": False}))
    code, result = backup.run(cfg, "forget")
    assert code == 0 and result == results.ForgetResult(keep=["b"], forget=["a"], snapshots_removed=3,
                                                        dry_run=False)
    container.output = (0, "[]")
    assert backup.run(cfg, "list") == (0, [])


def test_snapshots_output_that_is_not_a_result(cfg, container):
    container.output = (1, "error: the repository is locked")
    assert backup.run(cfg, "list") == (1, None)  # the reason was on stderr, logged
    container.output = (0, "")
    with pytest.raises(DrError, match="snapshots list printed no result"):
        backup.run(cfg, "list")
    container.output = (0, json.dumps({"set": "x"}))
    with pytest.raises(DrError, match="snapshots list printed a result that does not fit its type"):
        backup.run(cfg, "list")
