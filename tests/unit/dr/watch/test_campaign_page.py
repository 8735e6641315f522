"""The status page as the campaign sees it (dr/watch/campaign_page.py) for a data root and stage runs made here:
it reflects the runs (their counts, the quarantine per reason), a crashed stage's run is read as an error, and
the campaign's check (campaign.invariants.page_leaks) finds the probe IP in any textual form on a page."""

from campaign import invariants
from common import config
from dr.watch import campaign_page
from stages.cli import Summary
from stages.layout import DataRoot


def stage_run(stage: str, stdout: str, stderr: str = "") -> invariants.StageRun:
    return invariants.StageRun(stage, 0 if stdout else 1, stdout, stderr, 0.5, 40.0)


def test_the_page_shows_the_runs_and_the_data_root(tmp_path):
    cfg = config.load(overrides={"data_root": str(tmp_path / "data"), "secrets_dir": str(tmp_path / "secrets")})
    dr = DataRoot(tmp_path / "data").ensure()
    (dr.state("quarantine") / "yaml_error").mkdir(parents=True)
    (dr.state("quarantine") / "yaml_error" / "r.yaml").write_text("x")
    sanitized = Summary("sanitize", {"sanitized": 3, "quarantined": 1})
    runs = [stage_run("sanitize", sanitized.to_json()), stage_run("importer", "", "Traceback: boom")]
    pages = campaign_page.status_page(cfg)(dr, runs)
    html = pages[campaign_page.PAGE]
    assert html.startswith("<!DOCTYPE html>")
    assert "yaml_error" in html  # the quarantine per reason, from the data root
    assert 'data-field="model.pipeline.flow_total.sanitized" data-value="3"' in html  # from these runs
    assert campaign_page.stage_result(runs[1]) is None  # the crashed run: an error in the history
    assert not list((tmp_path / "data").parent.glob("campaign-history-*"))  # its history is thrown away


def test_the_probe_ip_is_found_on_a_page_in_any_form():
    ip = "203.0.113.77"
    assert invariants.page_leaks({"status/index.html": "<p>all fine</p>"}, ip) == []
    for form in (ip, "::ffff:cb00:714d", "77.113.0.203.in-addr.arpa", "203-0-113-77"):
        found = invariants.page_leaks({"status/index.html": f"<p>from {form} at noon</p>"}, ip)
        assert len(found) == 1 and found[0].startswith("status/index.html: "), form
