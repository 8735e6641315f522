"""The status page in a real browser: Debian's chromium, headless, driven by selenium through Debian's chromedriver,
reading the page the web mirror container serves at /status/ over loopback, on an instance of its own
(`aggr-page`: `rebuild --sample`, then real jobs: a pipeline run, a snapshot set, a check, a drill, each inside
`publish.as_job` as tasks.py runs them, so each ends with the page published again).

The tests run in this file's order and share the instance and one browser: the page loads alone (no request to
anything else), its charts hold a point per run the history holds, a collector gone turns the red banner on
within one pipeline run and its return turns it off, the page agrees with `invoke status --json` field by
field, a set older than the objective is a risk on the page, and `invoke screenshot` pictures it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import invoke_status, running_instance
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from common import config
from dr.drills import drill
from dr.jobs import backup, history, pipeline
from dr.machine import configfile, host
from dr.services import collector
from dr.watch import model, publish, screenshot

ROOT = Path(__file__).resolve().parents[2]
WINDOW = "1280,2400"
# Figures the page must carry (data-field with data-value), so that the agreement cannot pass on an empty page.
REQUIRED = ("model.computed", "model.pipeline.computed", "model.pipeline.backlog.0.count",
            "model.pipeline.poison", "model.pipeline.last_move", "model.pipeline.last_move_age_seconds",
            "model.pipeline.stages.0.stage", "model.pipeline.collectors.0.collector",
            "model.pipeline.collectors.0.age_seconds", "model.pipeline.runs.0.seconds",
            "model.backups.newest_set.set", "model.backups.newest_set.age_seconds", "model.backups.check.verdict",
            "model.restores.last.verdict", "model.restores.last.restore_seconds", "model.database.roles.0.role",
            "model.database.roles.0.reachable", "model.disk.free_bytes", "model.disk.total_bytes")
MISSING = object()


def published(cfg, name: str, body):
    """body() run as the job `name` as tasks.py runs every job (publish.as_job): its run in the history, then
    the status page written again. Returns body's result."""
    return publish.as_job(cfg, name, body)


def taken(cfg, action: str):
    code, result = backup.run(cfg, action)
    assert code == 0 and result is not None, action
    return result


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium and chromedriver, installed when missing (as `invoke screenshot` does)."""
    host.ensure_packages(host.BROWSER_PACKAGES, optional={})


@pytest.fixture(scope="module")
def browser(chromium):
    """One headless chromium for the module, its performance log on (every request the page makes)."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WINDOW}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shown(built, tmp_path_factory):
    """The instance after real jobs: (configuration with the sample collector, the set taken, the drill's report).
    Nothing runs between the last job and the first test: the page shows the state the tests find."""
    root = tmp_path_factory.mktemp("page")
    with running_instance(root, "aggr-page", sample=True) as cfg:
        cfg = config.derive(cfg, {"collectors": [collector.start(cfg)]})  # rebuild's own collector, fresh
        published(cfg, "pipeline", lambda: pipeline.run(cfg))
        taken(cfg, "init")
        the_set = published(cfg, "snapshot", lambda: taken(cfg, "take"))
        published(cfg, "check", lambda: taken(cfg, "check"))
        report = published(cfg, "drill", lambda: drill.run(cfg))
        yield cfg, the_set, report


def load(driver, cfg) -> list[str]:
    """The page loaded from the web mirror; returns the URL of every request it made (the performance log)."""
    driver.get_log("performance")  # what earlier loads logged
    driver.get(screenshot.page_url(cfg))
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def banner(driver) -> tuple[str, list[str]]:
    """The banner's kind (good or bad) and the rules it names."""
    found = driver.find_element(By.ID, "findings")
    kind = "bad" if "bad" in found.get_attribute("class").split() else "good"
    return kind, [e.text.split(": ", 1)[1] for e in found.find_elements(By.CSS_SELECTOR, ".finding .rule")]


def fields(driver) -> dict[str, str | None]:
    """Every data-field on the page: its data-value (None for a scrubbed free text, which carries none)."""
    pairs = driver.execute_script(
        "return Array.from(document.querySelectorAll('[data-field]'), "
        "e => [e.dataset.field, e.hasAttribute('data-value') ? e.dataset.value : null])")
    return dict(pairs)


def points(driver, name: str) -> list[str]:
    return [c.get_attribute("data-value")
            for c in driver.find_elements(By.CSS_SELECTOR, f'svg[data-chart="{name}"] circle[data-value]')]


def at(document, path: str):
    """The value at a dotted path (list items by index); MISSING when there is none (an optional figure that is
    None is left out of the JSON)."""
    for part in path.split("."):
        try:
            document = document[int(part)] if isinstance(document, list) else document[part]
        except (KeyError, IndexError, ValueError, TypeError):
            return MISSING
    return document


def wait_until_older(stamp: str, seconds: int) -> None:
    """Sleep until a history stamp is more than `seconds` old (what a rule's threshold needs to hold). Not a
    timed assertion: the state is made first, then asserted on."""
    left = (history.parse_time(stamp) + dt.timedelta(seconds=seconds + 1) - dt.datetime.now(dt.timezone.utc))
    time.sleep(max(0.0, left.total_seconds()))


def test_the_page_loads_from_the_web_mirror_and_nothing_else(shown, browser):
    cfg, _, _ = shown
    url = screenshot.page_url(cfg)
    requests = load(browser, cfg)
    assert url in requests
    assert [u for u in requests if u != url and not u.startswith("data:")] == []
    assert browser.title.startswith("aggregator-dr status: ")
    for anchor in ("findings", "pipeline", "backups", "restores", "database", "disk"):
        assert browser.find_element(By.ID, anchor).is_displayed(), anchor
    assert banner(browser) == ("good", [])


def test_each_chart_has_a_point_per_run_the_history_holds(shown, browser):
    cfg, _, _ = shown
    load(browser, cfg)
    day = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=model.FLOW_HOURS)
    lines = [json.loads(line) for path in history.files(cfg) for line in path.read_text().splitlines()]
    recent = [line for line in lines if history.parse_time(line["ended"]) >= day]
    runs_of_stages = [line for line in recent if line["job"] in model.PIPELINE_JOBS]
    assert len(runs_of_stages) == 1  # the fixture's pipeline run (rebuild ran outside any job here)
    assert len(points(browser, "flow-imported")) == len(points(browser, "flow-failed")) == len(runs_of_stages)
    drills = sorted(Path(cfg.drill.history_dir).glob("*.json"))
    assert len(drills) == 1
    assert len(points(browser, "restore-seconds")) == len(points(browser, "recovery-point-seconds")) == len(drills)
    assert float(points(browser, "restore-seconds")[0]) > 0
    # The backlog over the last day: one point per job that recorded it (every job of this module).
    with_backlog = [line for line in recent if line.get("backlog") is not None]
    assert len(with_backlog) == len(recent) == 4
    assert len(points(browser, "backlog")) == len(with_backlog)


def test_a_collector_gone_turns_the_banner_on_within_one_run_and_its_return_off(shown, browser):
    cfg, _, _ = shown
    load(browser, cfg)
    assert banner(browser) == ("good", [])
    # A one-minute threshold: the collector's last success (the fixture's pipeline run) must be over a minute
    # old for the rule to hold, so wait for that; the jobs before have taken most of it.
    cfg = config.derive(cfg, {"status.collector_minutes": 1})
    last = model.compute(cfg, probe=False).pipeline.collectors[0]
    assert last.collector == "sample" and last.last_error is None
    collector.stop(cfg)
    wait_until_older(last.last_success, 60)
    run = published(cfg, "pipeline", lambda: pipeline.run(cfg))
    assert run.exit_status() != 0  # sync did not reach it
    load(browser, cfg)
    kind, rules = banner(browser)
    assert kind == "bad" and rules == ["collector_unreached"]
    assert "sample" in browser.find_element(By.CSS_SELECTOR, "#findings .finding .what").text

    back = collector.start(cfg)
    assert (back["host"], back["port"]) == (cfg.collectors[0].host, cfg.collectors[0].port)  # where it was
    run = published(cfg, "pipeline", lambda: pipeline.run(cfg))
    assert run.exit_status() == 0
    load(browser, cfg)
    assert banner(browser) == ("good", [])


def test_the_page_agrees_with_invoke_status_field_by_field(shown, browser, tmp_path):
    cfg, the_set, report = shown
    published(cfg, "pipeline", lambda: pipeline.run(cfg))
    load(browser, cfg)
    page = fields(browser)
    code, status = invoke_status(cfg, tmp_path)

    # Known figures of this state, read on the page.
    shown_value = {path: json.loads(value) for path, value in page.items() if value is not None}
    assert shown_value["model.backups.newest_set.set"] == the_set.set_id
    assert shown_value["model.backups.check.verdict"] == "ok"
    assert shown_value["model.restores.last.verdict"] == report.verdict == "pass"
    assert shown_value["model.pipeline.collectors.0.collector"] == "sample"
    assert shown_value["model.pipeline.poison"] == 0
    roles = [p for p in shown_value if p.startswith("model.database.roles.") and p.endswith(".reachable")]
    assert roles and all(shown_value[p] is True for p in roles)
    assert code == 0 and status["findings"] == [] and banner(browser) == ("good", [])

    # The same state, computed twice: the page at the end of the last job, `invoke status` seconds later, with no
    # job in between. What moves with the clock alone is allowed to move by exactly the time between the two:
    # - `computed` stamps (and history_since, a fixed span before computed) by the difference of the models'
    #   `computed`; the database section's own `computed` is when its logins ended (after the probe, up to
    #   model.PROBE_SECONDS later), so by that difference give or take the probe's time;
    # - ages (`*age_seconds`: computed minus a fixed time) by the same difference, give or take 2 s: each age is
    #   rounded to whole seconds from the exact clock while `computed` is truncated, so each of the two can be
    #   off by one;
    # - what is measured again, not read: the disk's free space (any process on this host writes to it; its
    #   rate and days follow from it) and each role's login seconds: only its type is compared.
    # Everything else (counts, ids, times of runs and sets, verdicts, findings) must be equal.
    shift = (history.parse_time(status["model"]["computed"])
             - history.parse_time(json.loads(page["model.computed"]))).total_seconds()
    assert 0 <= shift < 300
    measured = ("model.disk.free_bytes", "model.disk.change_per_day", "model.disk.days_until_full")
    missing = [p for p in REQUIRED if page.get(p) is None]
    assert missing == []
    compared = 0
    for path, value in sorted(page.items()):
        if value is None:  # a scrubbed free text: the field is named, its value is not on the page
            assert isinstance(at(status, path.rsplit(".", 1)[0]), dict), path  # it names a figure's place
            continue
        mine, theirs = json.loads(value), at(status, path)
        if theirs is MISSING:
            assert mine is None, path  # an optional figure that is None is left out of the JSON
            continue
        last = path.rsplit(".", 1)[-1]
        if path == "model.database.computed":
            moved = history.parse_time(theirs) - history.parse_time(mine)
            assert abs(moved.total_seconds() - shift) <= model.PROBE_SECONDS + 1, (path, mine, theirs, shift)
        elif last == "computed" or path == "model.history_since":
            moved = history.parse_time(theirs) - history.parse_time(mine)
            assert moved.total_seconds() == shift, path
        elif last.endswith("age_seconds") and mine is not None:
            assert abs(theirs - mine - shift) <= 2, (path, mine, theirs, shift)
        elif path in measured or (path.startswith("model.database.roles.") and last == "seconds"):
            assert type(mine) is type(theirs) or None in (mine, theirs), path
        else:
            assert mine == theirs, (path, mine, theirs)
        compared += 1
    assert compared >= 40


def test_a_set_older_than_the_objective_is_a_risk_on_the_page(shown, browser, tmp_path):
    cfg, the_set, _ = shown
    # A real set, really older than the objective: the objective is one minute, and the set was taken before
    # the tests above ran (over a minute ago by now; waited for if not).
    cfg = config.derive(cfg, {"status.recovery_point_minutes": 1})
    newest = model.compute(cfg, probe=False).backups.newest_set
    assert newest.set_id == the_set.set_id
    wait_until_older(newest.started, 60)
    published(cfg, "pipeline", lambda: pipeline.run(cfg))
    load(browser, cfg)
    assert banner(browser) == ("bad", ["recovery_point_old"])
    assert "older than the objective" in browser.find_element(By.ID, "backups").text
    code, status = invoke_status(cfg, tmp_path)
    assert code == 1 and [f["rule"] for f in status["findings"]] == ["recovery_point_old"]


def test_invoke_screenshot_pictures_the_page(shown, tmp_path, capsys):
    cfg, _, _ = shown
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(configfile.to_toml(cfg.as_dict()))
    out = tmp_path / "status.png"
    done = subprocess.run([sys.executable, "-m", "invoke", "screenshot", "--config", str(cfg_file), "--out", str(out),
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    result = screenshot.Screenshot.from_json(done.stdout)
    assert result.out == str(out) and result.url == screenshot.page_url(cfg) and result.bytes == out.stat().st_size
    assert out.read_bytes().startswith(screenshot.PNG_MAGIC) and result.bytes > 20_000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    with capsys.disabled():
        print(f"\nstatus page screenshot: {out}")
