"""A stage's summary is a record: the stage prints it with --json (shape unchanged: operators read it), the host
reads that back into an equal Summary and puts the container's exit code in it (tests/unit/dr/jobs/test_pipeline.py)."""

import json

import pytest

from common.records import RecordError
from stages import cli
from stages.cli import CollectorPull, Failed, Flagged, Quarantined, Summary


def busy_summary() -> Summary:
    s = Summary("importer", bytes_in=12_000_000)
    s.count("imported", 3)
    s.quarantine("staging/a.yaml", "yaml_error", "bad indentation", to="quarantine/yaml_error/a.yaml")
    s.fail("staging/b.yaml", "db_write", "short write")
    s.flagged.append(Flagged("staging/c.yaml", "archive/c.yaml", omitted_entries=2, refused_entries=0,
                             report_refused=False))
    s.flagged.append(Flagged("raw/d.yaml", "staging/d.yaml", dropped_entries=1))
    s.recovered.append("importer: rolled forward tx-7")
    s.notes.append("bridge database not configured")
    return s.finish()


def test_the_json_has_the_shape_operators_read():
    data = json.loads(busy_summary().to_json())
    assert list(data) == ["stage", "outcomes", "bytes", "seconds", "errors", "failed", "quarantined", "flagged",
                          "recovered", "notes", "collectors", "exit_code"]
    assert data["outcomes"] == {"imported": 3, "quarantined:yaml_error": 1, "failed": 1}
    assert data["bytes"] == 12_000_000 and data["exit_code"] == cli.EXIT_INFRA
    assert data["failed"] == [{"input": "staging/b.yaml", "reason": "db_write", "error": "short write"}]
    assert data["quarantined"] == [{"input": "staging/a.yaml", "reason": "yaml_error", "error": "bad indentation",
                                    "to": "quarantine/yaml_error/a.yaml"}]
    assert data["flagged"] == [  # each stage's own counts only
        {"input": "staging/c.yaml", "to": "archive/c.yaml", "omitted_entries": 2, "refused_entries": 0,
         "report_refused": False},
        {"input": "raw/d.yaml", "to": "staging/d.yaml", "dropped_entries": 1}]
    assert "started" not in data  # the start time stays in the stage's process


@pytest.mark.parametrize("summary", [Summary("sanitize").finish(), busy_summary()], ids=["empty", "busy"])
def test_a_summary_round_trips_through_its_json(summary):
    back = Summary.from_json(summary.to_json())
    assert back == summary and back.exit_code == summary.exit_code
    assert back.to_json() == summary.to_json()
    assert Summary.from_dict(summary.to_dict()) == summary


def test_the_small_records_round_trip():
    for record in (Failed("raw/a.yaml", "RuntimeError", "boom"), Quarantined("raw/b.yaml", "poison", "twice"),
                   Flagged("staging/c.yaml", "archive/c.yaml", refused_entries=2),
                   CollectorPull("eu-1", True, listed=5, pulled=3, left=2, bytes=900),
                   CollectorPull("us-1", error="ssh failed (exit 255): Connection refused")):
        assert type(record).from_json(record.to_json()) == record
    assert Quarantined("raw/b.yaml", "poison", "twice").to_dict()["to"] == ""  # always there, as before
    assert "error" not in CollectorPull("eu-1", True).to_dict()


def test_finish_sets_the_exit_code_the_stage_exits_with():
    assert Summary("sync").finish().exit_code == cli.EXIT_OK
    assert busy_summary().exit_code == cli.EXIT_INFRA  # an input failed
    broken = Summary("sanitize")
    broken.errors.append("disk full")
    assert broken.finish().exit_code == cli.EXIT_INFRA


def test_a_stage_stops_the_pipeline_on_errors_or_a_usage_exit_only():
    assert not busy_summary().stopped  # inputs that failed on their own do not stop the pipeline
    killed = Summary("sync").finish()
    killed.exit_code = 137  # as the host puts the container's code in
    assert killed.stopped and killed.to_dict()["exit_code"] == 137
    broken = Summary("sanitize")
    broken.errors.append("disk full")
    assert broken.finish().stopped


def test_render_is_the_one_line_summary():
    s = busy_summary()
    s.seconds = 2.0
    assert s.render() == ("importer: 1 failed, 3 imported, 1 quarantined:yaml_error; 12.0 MB in 2.0s, 6.0 MB/s; "
                          "1 input(s) failed, tried again next run: staging/b.yaml: short write")
    broken = Summary("sanitize")
    broken.errors += ["disk full", "lock timeout"]
    assert broken.render() == "sanitize: nothing to do; 0.0 MB in 0.0s; 2 error(s): disk full; lock timeout"


@pytest.mark.parametrize("text", [
    "[]",
    json.dumps({"outcomes": {}}),  # no stage
    json.dumps({"stage": "sync", "outcomes": {"pulled": "3"}}),
    json.dumps({"stage": "sync", "outcomes": {}, "errors": "disk full"}),
    json.dumps({"stage": "sync", "outcomes": {}, "bytes": 1.5}),
    json.dumps({"stage": "sync", "outcomes": {}, "surprise": 1}),
    json.dumps({"stage": "sync", "failed": [{"input": "a", "reason": "b"}]}),  # a failed input without its error
])
def test_output_that_is_no_summary_is_refused(text):
    with pytest.raises(RecordError):
        Summary.from_json(text)


def test_main_prints_the_summary_json_and_exits_with_its_code(tmp_path, capsys):
    def run(cfg, dr):
        return busy_summary()

    code = cli.main("importer", "test", run, ["--json", "--data-root", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == cli.EXIT_INFRA
    assert Summary.from_json(out).outcomes["imported"] == 3
    assert cli.main("importer", "test", run, ["--data-root", str(tmp_path)]) == cli.EXIT_INFRA
    assert capsys.readouterr().out.startswith("importer: 1 failed, 3 imported")


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
