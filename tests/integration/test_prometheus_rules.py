"""The Prometheus alerting rules an operator drops in (monitoring/aggregator-dr.rules.yml) checked by the real
promtool, Debian's, in the tool image dockerfiles/promtool: `promtool check rules` finds every rule sound, and
`promtool test rules` runs their unit tests (monitoring/aggregator-dr.rules.test.yml: each alert fires, with its
labels and annotations, and stays quiet where it should). The monitoring folder is mounted read-only, on no
network. A copy with a broken expression fails the check; a copy whose threshold moved passes the check and
fails the unit tests, so they test the rules that are there."""

import logging
import shutil
from pathlib import Path

import pytest
import yaml

from dr.engine import containers
from dr.machine import images

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
RULES = "aggregator-dr.rules.yml"
UNIT_TESTS = "aggregator-dr.rules.test.yml"


@pytest.fixture(scope="module")
def promtool(built):
    """The configuration, with the promtool tool image built (a tool: `invoke build` leaves it out)."""
    images.build_one(built, "promtool", images.git_revision())
    return built


def run_promtool(cfg, folder: Path, *args: str) -> tuple[int, str]:
    """(exit code, stdout) of `promtool args...` with folder at /monitoring, read-only; its stderr is logged."""
    return containers.run_tool(cfg, "promtool", list(args), {str(folder): {"bind": "/monitoring", "mode": "ro"}},
                               containers.NO_NETWORK, "promtool")


def logged(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


def rule_count(path: Path) -> int:
    return sum(len(group["rules"]) for group in yaml.safe_load(path.read_text())["groups"])


def copy_of_monitoring(tmp_path: Path) -> Path:
    """A copy of the monitoring folder that the tool's user (nobody) can read."""
    folder = tmp_path / "monitoring"
    shutil.copytree(MONITORING, folder)
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_promtool_checks_every_rule(promtool):
    code, out = run_promtool(promtool, MONITORING, "check", "rules", f"/monitoring/{RULES}")
    assert code == 0, out
    assert f"Checking {MONITORING / RULES}" in out  # the host's path
    assert f"SUCCESS: {rule_count(MONITORING / RULES)} rules found" in out, out


def test_promtool_runs_the_rules_unit_tests(promtool):
    code, out = run_promtool(promtool, MONITORING, "test", "rules", f"/monitoring/{UNIT_TESTS}")
    assert code == 0, out
    assert "Unit Testing:" in out and str(MONITORING / UNIT_TESTS) in out and "SUCCESS" in out, out
    assert "FAILED" not in out


def test_a_broken_rule_fails_the_check(promtool, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="aggregator-dr")
    folder = copy_of_monitoring(tmp_path)
    rules = folder / RULES
    text = rules.read_text()
    assert 'aggregator_dr_rule_firing{rule="stalled"} == 1' in text
    rules.write_text(text.replace('aggregator_dr_rule_firing{rule="stalled"} == 1',
                                  'aggregator_dr_rule_firing{rule="stalled"} ==', 1))
    code, out = run_promtool(promtool, folder, "check", "rules", f"/monitoring/{RULES}")
    said = logged(caplog)
    assert code != 0, out
    assert "SUCCESS" not in out
    assert "AggregatorDRStalled" in said and "could not parse expression" in said, said[-2000:]


def test_a_moved_threshold_fails_the_unit_tests(promtool, tmp_path, caplog):
    """The pipeline's alert an hour late instead of after an hour: still a sound rule file, but its unit
    tests expect the alert at 16 minutes and say it did not come."""
    caplog.set_level(logging.INFO, logger="aggregator-dr")
    folder = copy_of_monitoring(tmp_path)
    rules = folder / RULES
    text = rules.read_text()
    late = 'aggregator_dr_last_success_timestamp_seconds{dr_job="pipeline"} > 3600'
    assert late in text
    rules.write_text(text.replace(late, late.replace("3600", "7200"), 1))
    code, out = run_promtool(promtool, folder, "check", "rules", f"/monitoring/{RULES}")
    assert code == 0 and f"SUCCESS: {rule_count(rules)} rules found" in out, out
    code, out = run_promtool(promtool, folder, "test", "rules", f"/monitoring/{UNIT_TESTS}")
    said = logged(caplog)
    assert code != 0, out
    assert "FAILED" in said and "alertname: AggregatorDRPipelineLate" in said, said[-2000:]
