"""A stage's summary is a type: the stage prints it with --json (shape unchanged: operators read it), the host
reads that back into an equal Summary with the process's exit code beside it (StageResult)."""

import json
from collections import Counter

import pytest

from stages import cli
from stages.cli import StageResult, Summary


def busy_summary() -> Summary:
    s = Summary("importer", bytes_in=12_000_000)
    s.count("imported", 3)
    s.quarantine("staging/a.yaml", "yaml_error", "bad indentation", to="quarantine/yaml_error/a.yaml")
    s.fail("staging/b.yaml", "db_write", "short write")
    s.flagged.append({"input": "staging/c.yaml", "to": "archive/c.yaml", "entries_altered": 2})
    s.recovered.append("importer: rolled forward tx-7")
    s.notes.append("bridge database not configured")
    return s.finish()


def test_the_json_has_the_shape_operators_read():
    data = json.loads(busy_summary().to_json())
    assert list(data) == ["stage", "outcomes", "bytes", "seconds", "errors", "failed", "quarantined", "flagged",
                          "recovered", "notes", "exit_code"]
    assert data["outcomes"] == {"imported": 3, "quarantined:yaml_error": 1, "failed": 1}
    assert data["bytes"] == 12_000_000 and data["exit_code"] == cli.EXIT_INFRA
    assert data["failed"] == [{"input": "staging/b.yaml", "reason": "db_write", "error": "short write"}]


@pytest.mark.parametrize("summary", [Summary("sanitize").finish(), busy_summary()], ids=["empty", "busy"])
def test_a_summary_round_trips_through_its_json(summary):
    back = Summary.from_json(summary.to_json())
    assert back == summary
    assert isinstance(back.outcomes, Counter) and back.exit_code == summary.exit_code
    assert back.to_json() == summary.to_json()


def test_the_host_reads_a_stage_result_with_the_process_exit_code():
    summary = busy_summary()
    result = StageResult.from_output(summary.to_json(), 1)
    assert result.summary == summary and result.exit_code == 1 and result.stage == "importer"
    assert result.as_dict() == summary.as_dict()
    assert StageResult.from_dict(result.as_dict()) == result
    assert not result.stopped  # inputs that failed on their own do not stop the pipeline
    killed = StageResult.from_output(Summary("sync").to_json(), 137)
    assert killed.stopped and killed.as_dict()["exit_code"] == 137
    broken = Summary("sanitize")
    broken.errors.append("disk full")
    assert StageResult.from_output(broken.to_json(), 1).stopped


@pytest.mark.parametrize("text", [
    "sanitize: error: no such configuration file",  # not JSON at all
    "[]",
    json.dumps({"stage": "sync"}),  # no outcomes
    json.dumps({"stage": "sync", "outcomes": {"pulled": "3"}}),
    json.dumps({"stage": "sync", "outcomes": {}, "errors": "disk full"}),
    json.dumps({"stage": "sync", "outcomes": {}, "bytes": 1.5}),
    json.dumps({"stage": "sync", "outcomes": {}, "surprise": 1}),
])
def test_output_that_is_no_summary_is_refused(text):
    with pytest.raises(ValueError):
        StageResult.from_output(text, 0)


def test_main_prints_the_summary_json_and_exits_with_its_code(tmp_path, capsys):
    def run(cfg, dr):
        return busy_summary()

    code = cli.main("importer", "test", run, ["--json", "--data-root", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == cli.EXIT_INFRA
    assert Summary.from_json(out).outcomes["imported"] == 3


def test_a_mode_flag_runs_the_stages_other_job_instead(tmp_path, capsys):
    def run(cfg, dr):
        return Summary("importer")

    def other(cfg, dr):
        s = Summary("importer")
        s.count("reimported", 2)
        return s

    modes = {"--catch-up": ("the other job", other)}
    assert cli.main("importer", "test", run, ["--json", "--data-root", str(tmp_path)], modes=modes) == 0
    assert Summary.from_json(capsys.readouterr().out).outcomes == {}
    assert cli.main("importer", "test", run, ["--json", "--catch-up", "--data-root", str(tmp_path)], modes=modes) == 0
    assert Summary.from_json(capsys.readouterr().out).outcomes == {"reimported": 2}
    with pytest.raises(SystemExit) as exc:  # an unknown flag is a usage error (argparse: exit 2)
        cli.main("importer", "test", run, ["--catch-up", "--data-root", str(tmp_path)])
    assert exc.value.code == cli.EXIT_USAGE
