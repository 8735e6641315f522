"""The job history (dr/jobs/history.py): month files of JobRun lines in a real folder, read back whole or from a
time on, skipping what a crash or a stranger left, and bounded by age and size."""

import datetime as dt
import json

from common import config
from dr.jobs import history
from dr.jobs.pipeline import PipelineRun
from stages.cli import Summary

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    return history.parse_time(text)


def settings(tmp_path, **more):
    return config.load(overrides={"history.dir": str(tmp_path / "history"), **more})


def pipeline_run(exit_code: int = 0) -> PipelineRun:
    return PipelineRun([Summary(stage="sanitize", outcomes={"sanitized": 2}, exit_code=exit_code)])


def a_run(ended: str, job: str = "pipeline", seconds: int = 30) -> history.JobRun:
    end = at(ended)
    return history.run_of(job, end - dt.timedelta(seconds=seconds), end, pipeline_run(), data_free_bytes=10 ** 9)


def test_a_run_appended_reads_back_as_the_same_job_run(tmp_path):
    cfg = settings(tmp_path)
    run = a_run("2026-01-15T10:00:30Z")
    path = history.append(cfg, run)
    assert path == tmp_path / "history" / "jobs-2026-01.jsonl"
    assert (tmp_path / "history").stat().st_mode & 0o777 == 0o700
    assert history.read(cfg) == [run]
    back = history.read(cfg)[0]
    assert (back.job, back.started, back.ended, back.seconds) == ("pipeline", "2026-01-15T10:00:00Z",
                                                                  "2026-01-15T10:00:30Z", 30.0)
    assert back.result_type == "PipelineRun" and PipelineRun.from_dict(back.result) == pipeline_run()
    assert back.data_free_bytes == 10 ** 9 and back.ok
    line = path.read_text().splitlines()[0]
    assert json.loads(line)["outcome"] == "ok" and "error" not in json.loads(line)  # None is left out


def test_a_torn_last_line_is_skipped(tmp_path):
    cfg = settings(tmp_path)
    first, second = a_run("2026-01-15T10:00:30Z"), a_run("2026-01-15T10:05:30Z")
    history.append(cfg, first)
    path = history.append(cfg, second)
    with open(path, "ab") as fh:  # a crash in the middle of the third append
        fh.write(b'{"job":"pipeline","started":"2026-01-15T10:1')
    assert history.read(cfg) == [first, second]


def test_a_line_that_is_not_a_job_run_is_skipped_and_the_rest_kept(tmp_path, caplog):
    cfg = settings(tmp_path)
    first, last = a_run("2026-01-15T10:00:30Z"), a_run("2026-01-15T10:10:30Z", job="snapshot")
    path = history.append(cfg, first)
    with open(path, "ab") as fh:
        fh.write(b'{"job":"pipeline","when":"yesterday"}\n')
        fh.write(b"not json at all\n")
    history.append(cfg, last)
    assert history.read(cfg) == [first, last]
    assert f"{path}:2 is not a job run" in caplog.text and f"{path}:3 is not a job run" in caplog.text


def test_read_since_spans_two_month_files(tmp_path):
    cfg = settings(tmp_path)
    early, late = a_run("2026-01-10T00:00:00Z"), a_run("2026-01-31T23:59:00Z", job="snapshot")
    february = a_run("2026-02-01T00:01:00Z", job="check")
    for run in (february, early, late):  # written out of order: read sorts by end
        history.append(cfg, run)
    assert [p.name for p in history.files(cfg)] == ["jobs-2026-01.jsonl", "jobs-2026-02.jsonl"]
    assert history.read(cfg, since=at("2026-01-31T12:00:00Z")) == [late, february]
    assert history.read(cfg, since=at("2026-02-01T00:00:00Z")) == [february]
    assert history.read(cfg) == [early, late, february]
    assert history.read(settings(tmp_path / "elsewhere")) == []  # no folder yet: no runs


def test_prune_drops_months_older_than_keep_days_but_never_the_current_one(tmp_path):
    cfg = settings(tmp_path, **{"history.keep_days": 30})
    for ended in ("2025-10-15T00:00:00Z", "2025-12-20T00:00:00Z"):
        history.append(cfg, a_run(ended))
    history.append(cfg, a_run("2026-01-15T00:00:00Z"))  # cut-off 2025-12-16: October's file ended before it
    assert [p.name for p in history.files(cfg)] == ["jobs-2025-12.jsonl", "jobs-2026-01.jsonl"]
    assert history.prune(cfg, at("2026-06-01T00:00:00Z")) == [tmp_path / "history" / "jobs-2025-12.jsonl",
                                                               tmp_path / "history" / "jobs-2026-01.jsonl"]
    now = at("2026-09-01T00:00:00Z")
    for month in ("2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z", "2026-09-01T00:00:00Z"):
        history.month_file(cfg, at(month)).write_text("")
    assert history.prune(cfg, now) == [tmp_path / "history" / "jobs-2026-07.jsonl"]  # ended 2026-08-01
    assert [p.name for p in history.files(cfg)] == ["jobs-2026-08.jsonl", "jobs-2026-09.jsonl"]


def test_prune_drops_the_oldest_months_beyond_max_mb_but_never_the_current_one(tmp_path):
    cfg = settings(tmp_path, **{"history.max_mb": 1})
    folder = tmp_path / "history"
    folder.mkdir()
    for month in ("2025-11", "2025-12"):
        (folder / f"jobs-{month}.jsonl").write_bytes(b"x" * 600_000 + b"\n")
    history.append(cfg, a_run("2026-01-15T00:00:00Z"))  # 1.2 MB and a line: November goes, then it fits
    assert [p.name for p in history.files(cfg)] == ["jobs-2025-12.jsonl", "jobs-2026-01.jsonl"]
    current = folder / "jobs-2026-01.jsonl"
    with open(current, "ab") as fh:
        fh.write(b"y" * 2_000_000 + b"\n")  # the current month alone beyond the bound: only it stays
    assert history.prune(cfg, at("2026-01-20T00:00:00Z")) == [folder / "jobs-2025-12.jsonl"]
    assert history.files(cfg) == [current]
    (folder / "notes.txt").write_text("not a month file")  # left alone
    assert history.prune(cfg, at("2026-01-20T00:00:00Z")) == [] and (folder / "notes.txt").exists()


def test_run_of_says_ok_failed_or_error():
    start, end = at("2026-01-15T10:00:00Z"), at("2026-01-15T10:01:30Z")
    ok = history.run_of("stage-sanitize", start, end, pipeline_run(0))
    assert (ok.outcome, ok.exit_code, ok.seconds, ok.error, ok.ok) == ("ok", 0, 90.0, None, True)
    failed = history.run_of("stage-sanitize", start, end, pipeline_run(1), data_free_bytes=5)
    assert (failed.outcome, failed.exit_code, failed.result_type, failed.ok) == ("failed", 1, "PipelineRun", False)
    assert failed.result["stages"][0]["exit_code"] == 1 and failed.data_free_bytes == 5
    error = history.run_of("rebuild", start, end, error="the Docker daemon does not answer")
    assert (error.outcome, error.exit_code, error.result_type, error.result) == ("error", 1, None, None)
    assert error.error == "the Docker daemon does not answer" and error.ended_at == end
    assert history.JobRun.from_json(error.to_json()) == error


def test_the_inputs_waiting_at_the_end_read_back_and_a_line_written_before_has_none(tmp_path):
    cfg = settings(tmp_path)
    end = at("2026-01-15T10:00:30Z")
    run = history.run_of("pipeline", end, end, pipeline_run(), backlog={"raw": 3, "staging": 0, "reports": 1})
    path = history.append(cfg, run)
    older = {"job": "check", "started": "2026-01-15T10:01:00Z", "ended": "2026-01-15T10:02:00Z", "host": "h",
             "outcome": "ok", "exit_code": 0, "seconds": 60.0}  # as a version before backlog wrote it
    with open(path, "a") as fh:
        fh.write(json.dumps(older) + "\n")
    back, old = history.read(cfg)
    assert back == run and back.backlog == {"raw": 3, "staging": 0, "reports": 1}
    assert old.job == "check" and old.backlog is None and "backlog" not in old.to_dict()
