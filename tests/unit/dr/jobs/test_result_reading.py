"""The host reads what a job's container printed back into its result's type (dr/jobs/launch.py read_result,
pure), given (exit code, stdout) as a container leaves them; here with the snapshot actions' types
(snapshots/results.py). The actions run in their real containers in tests/integration/test_snapshots.py."""

from __future__ import annotations

import json

import pytest

from common.errors import DrError
from dr.jobs import launch
from snapshots import results

FORGOT = results.ForgetResult(keep=["b"], forget=["a"], snapshots_removed=3, dry_run=False)
ROW = {"set": "20260101T000000Z", "time": "2026-01-01T00:00:00", "complete": True, "parts": ["files", "manifest"],
       "snapshots": {"files": "ffffffff", "manifest": "mmmmmmmm"}, "reports": 3}


def test_a_result_is_read_back_into_its_type():
    assert launch.read_result("snapshot-forget", results.ForgetResult, 0, FORGOT.to_json()) == FORGOT
    listed = launch.read_result("snapshot-list", results.SetList, 0, json.dumps({"sets": [ROW]}))
    assert isinstance(listed, results.SetList) and listed.sets[0].set_id == ROW["set"]
    assert listed.sets[0].reports == 3 and listed.sets[0].bytes is None
    assert launch.read_result("snapshot-list", results.SetList, 0, '{"sets": []}') == results.SetList(sets=[])


def test_a_result_that_reports_a_failure_is_read_back_with_its_exit_code():
    failed = {"ok": False, "restic_check": {"ok": False, "error": "restic check failed"}, "read_data_subset": None,
              "sets": [], "failed_sets": [], "verified": 0,
              "artifacts": {"verdict": "none", "snapshot": None, "artifacts": [], "problems": []}}
    checked = launch.read_result("snapshot-check", results.CheckResult, 1, json.dumps(failed))
    assert checked.ok is False and checked.exit_status() == 1


def test_a_failed_job_without_a_result_is_none():
    assert launch.read_result("snapshot-list", results.SetList, 1, "error: the repository is locked") is None
    assert launch.read_result("snapshot-list", results.SetList, 2, "") is None  # its reason went to stderr, logged


def test_a_job_that_exits_0_without_a_result_is_an_error_naming_it():
    with pytest.raises(DrError, match="snapshot-list exited 0 without printing its result:\nhello"):
        launch.read_result("snapshot-list", results.SetList, 0, "hello")


@pytest.mark.parametrize("out, type_, message", [
    ("[]", results.SetList, "SetList: expected an object, got list"),  # the list as images before SetList printed it
    (json.dumps({"sets": [ROW | {"reports": "3"}]}), results.SetList, "SetList.sets[0].reports: expected int"),
    (json.dumps(FORGOT.to_dict() | {"keep": "all"}), results.ForgetResult, "ForgetResult.keep: expected a list"),
    (json.dumps({"created": True}), results.InitResult, "InitResult: missing key repository"),
])
def test_a_result_that_does_not_fit_is_an_error_naming_the_type_and_the_field(out, type_, message):
    with pytest.raises(DrError, match="does not fit its type") as err:
        launch.read_result("snapshot-x", type_, 0, out)
    assert str(err.value).startswith(f"snapshot-x printed a result that does not fit its type {type_.__name__}: ")
    assert message in str(err.value)
