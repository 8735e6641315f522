"""monitoring/aggregator-dr.rules.yml against the product, without promtool (which checks the file itself:
tests/integration/test_prometheus_rules.py): every metric it names is one the product writes
(dr/jobs/monitoring.py), every stall and risk rule of the status model has its alert, every scheduled job has an
alert when it has not succeeded for longer than its default period, every alert is a page or a ticket and says
what to do, and the promtool unit tests make every alert fire and stay quiet."""

import re
from pathlib import Path

import pytest
import yaml

from common import config
from common.config import every_minutes
from dr.jobs import monitoring, schedule

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
RULES_FILE = MONITORING / "aggregator-dr.rules.yml"
TESTS_FILE = MONITORING / "aggregator-dr.rules.test.yml"
# The status model's stall and risk rules (the label rule of aggregator_dr_rule_firing).
RULE_NAMES = ["stalled", "collector_unreached", "poison", "database_unreachable", "recovery_point_old",
              "no_passing_check", "no_passing_drill", "disk_filling", "collector_unreleased", "certificate_expiring",
              "broker_down", "queue_backlog", "dead_letters"]
PERIOD_SECONDS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}
METRIC = re.compile(r"\baggregator_dr_\w+")
# time() - aggregator_dr_last_success_timestamp_seconds{dr_job="x"} > N (or {dr_job=~"a|b"}, N a product: 3 * 3600)
LATE = re.compile(r'time\(\)\s*-\s*aggregator_dr_last_success_timestamp_seconds\{dr_job(=~?)"([^"]+)"\}\s*>\s*'
                  r"([\d\s*]+)$")


def rules() -> list[dict]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    assert [g["name"] for g in groups] == ["aggregator-dr"]
    return groups[0]["rules"]


def alerts_named(name: str) -> list[dict]:
    return [r for r in rules() if r["alert"] == name]


def declared_metrics() -> set[str]:
    names = set(monitoring.COMMON) | set(monitoring.STATUS_METRICS)
    for job_metrics in monitoring.JOB_METRICS.values():
        names |= set(job_metrics)
    return {f"{monitoring.PREFIX}_{name}" for name in names}


def late_alerts() -> list[tuple[str, list[str], int]]:
    """(alert, the jobs its expression selects, its threshold in seconds) of every alert on a job's last success."""
    found = []
    for rule in rules():
        m = LATE.search(" ".join(rule["expr"].split()))
        if m:
            op, jobs, threshold = m.groups()
            seconds = 1
            for factor in threshold.split("*"):
                seconds *= int(factor)
            found.append((rule["alert"], jobs.split("|") if op == "=~" else [jobs], seconds))
    return found


def scheduled_jobs() -> dict[str, int]:
    """{the job name its metrics carry: its period in seconds} of every job the default schedule runs (with an
    off-site repository, so that the off-site copy is scheduled too)."""
    cfg = config.load(overrides={"offsite.repository": "rest:http://offsite:8000/aggregator"})
    found = {}
    for job in schedule.jobs(cfg):
        period = every_minutes(job.period) * 60 if every_minutes(job.period) else PERIOD_SECONDS[job.period]
        for command in job.commands:
            found["check-offsite" if command[:2] == ["check", "--offsite"] else command[0]] = period
    return found


def test_every_metric_the_rules_name_is_one_the_product_writes():
    used = {name for rule in rules() for name in METRIC.findall(rule["expr"])}
    assert used, "the rules name no aggregator_dr_ metric"
    assert used - declared_metrics() == set(), "metrics no table of dr/jobs/monitoring.py declares"


def test_the_status_metrics_are_apart_from_the_jobs():
    job_metrics = set(monitoring.COMMON).union(*monitoring.JOB_METRICS.values())
    assert set(monitoring.STATUS_METRICS) & job_metrics == set()
    assert all(help_text for help_text in monitoring.STATUS_METRICS.values())


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_every_status_rule_has_its_alert(rule):
    expr = f'aggregator_dr_rule_firing{{rule="{rule}"}} == 1'
    assert [r["alert"] for r in rules() if r["expr"].strip() == expr], f"no alert on {expr}"


def test_no_alert_names_a_rule_the_status_model_lacks():
    named = {m for r in rules() for m in re.findall(r'rule_firing\{rule="(\w+)"\}', r["expr"])}
    assert named == set(RULE_NAMES)


def test_every_scheduled_job_has_a_late_alert_beyond_its_period():
    late = late_alerts()
    assert len(late) == 4  # pipeline, snapshot, the daily maintenance, the drill
    jobs = scheduled_jobs()
    assert set(jobs) == {"pipeline", "snapshot", "forget", "check", "offsite", "drill"}
    for job, period in jobs.items():
        covering = [(alert, seconds) for alert, selected, seconds in late if job in selected]
        assert len(covering) == 1, f"{job}: alerts on its last success: {covering}"
        alert, seconds = covering[0]
        assert period < seconds <= 12 * period, f"{alert}: {job} runs every {period} s, alerts after {seconds} s"


def test_only_scheduled_jobs_can_be_late():
    """A job that writes metrics but that no schedule runs (check-offsite, by hand) has no late alert: its last
    success would age for ever."""
    selected = {job for _, jobs, _ in late_alerts() for job in jobs}
    assert selected == set(scheduled_jobs())
    assert selected <= set(monitoring.JOB_METRICS)


def test_the_rules_name_a_job_by_the_label_the_product_writes():
    """The jobs' gauges name their job in dr_job: `job` is the scrape's own label (its job_name), so a rule that
    selects on it, or an annotation that reads it for our job, would be wrong with the default scrape settings."""
    assert monitoring.LABEL == "dr_job"
    for rule in rules():
        assert not re.search(r"\bjob\s*(=|!=|=~|!~)", rule["expr"]), rule["alert"]
        assert not re.search(r"\$labels\.job\b", " ".join(rule["annotations"].values())), rule["alert"]
    assert {job for _, jobs, _ in late_alerts() for job in jobs}, "no alert selects on dr_job"
    for name in (RULES_FILE, TESTS_FILE):
        assert "honor_labels" not in name.read_text() and "exported_job" not in name.read_text(), name


def test_the_unit_tests_feed_the_jobs_series_as_a_scrape_labels_them():
    """Every series of a job's metrics carries dr_job and the scrape's own job="node", as a real scrape adds it."""
    series = [s["series"] for group in unit_tests()["tests"] for s in group["input_series"]]
    ours = [s for s in series if "dr_job=" in s]
    assert len(ours) > 10
    assert all('job="node"' in s for s in series), [s for s in series if 'job="node"' not in s]


def test_every_alert_is_a_page_or_a_ticket_and_says_what_to_do():
    for rule in rules():
        name = rule["alert"]
        assert re.fullmatch(r"AggregatorDR[A-Z]\w+", name), name
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        assert rule["annotations"]["summary"].strip(), name
        assert "docs/status.md" in rule["annotations"]["description"], name
        assert "for" in rule, f"{name}: no `for`: one evaluation would page"


def test_the_alerts_that_hold_without_the_status_writer():
    assert alerts_named("AggregatorDRStatusStale")[0]["expr"].strip() == \
        "time() - aggregator_dr_status_computed_timestamp_seconds > 3600"
    beyond = " ".join(alerts_named("AggregatorDRRecoveryPointBeyondObjective")[0]["expr"].split())
    assert beyond.startswith("aggregator_dr_recovery_point_age_seconds + (time() - "
                             "aggregator_dr_status_computed_timestamp_seconds) > "
                             "aggregator_dr_recovery_point_objective_seconds")


def unit_tests() -> dict:
    return yaml.safe_load(TESTS_FILE.read_text())


def test_the_unit_tests_load_the_rules_file():
    assert unit_tests()["rule_files"] == [RULES_FILE.name]


def test_the_unit_tests_make_every_alert_fire_and_stay_quiet():
    """Each alert is expected firing at some time of some test (with its severity) and expected quiet at
    another: promtool fails a test whose alerts differ from those expected."""
    fires, quiet = set(), set()
    for group in unit_tests()["tests"]:
        for case in group["alert_rule_test"]:
            expected = case.get("exp_alerts") or []
            (fires if expected else quiet).add(case["alertname"])
            severities = {rule["labels"]["severity"] for rule in alerts_named(case["alertname"])}
            for alert in expected:
                assert alert["exp_labels"]["severity"] in severities, case
                assert set(alert["exp_annotations"]) == {"summary", "description"}, case
    names = {rule["alert"] for rule in rules()}
    assert names - fires == set(), "alerts no unit test makes fire"
    assert names - quiet == set(), "alerts no unit test expects quiet"
    assert (fires | quiet) - names == set(), "unit tests of alerts the rules lack"
