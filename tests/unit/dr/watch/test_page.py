"""The status page (dr/watch/page.py) on status models built here: the red banner with each finding or the green
line, one mark per point in each chart with the model's values, the model's figures, a self-contained
document (no script, no external link or asset) and a private one: a configuration and a model full of secrets,
private paths and probe addresses, none of which appears on the page. The HTML is read back with the standard
library's parser."""

import copy
import json
from html.parser import HTMLParser

from common import config
from common.config import DB_ROLES
from dr.services import certs
from dr.watch import page, rules
from dr.watch.figures import (
    BacklogPoint,
    BackupSet,
    CheckFigures,
    CollectorState,
    DeadLetter,
    DrillPoint,
    FlowPoint,
    OffsiteFigures,
    PipelineRunRow,
    RetentionFigures,
    RoleReach,
    RunbookFigures,
)
from dr.watch.status import ALL_CLEAR, Status

from .test_rules import CFG, DAY, HOUR, MIN, healthy


class Page(HTMLParser):
    """What the tests read in a page: every start tag with its attributes, each chart's marks, the text of
    the element with id="findings", all the text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.charts: dict[str, list[dict]] = {}
        self.chart: str | None = None
        self.findings: list[str] = []
        self.findings_tag: str | None = None
        self.depth = 0  # inside the findings element
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "svg" and "data-chart" in a:
            self.chart = a["data-chart"]
            self.charts[self.chart] = []
        elif tag == "circle" and self.chart is not None:
            self.charts[self.chart].append(a)
        if a.get("id") == "findings":
            self.findings_tag, self.depth = tag, 0
        if self.findings_tag == tag:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "svg":
            self.chart = None
        if self.findings_tag == tag:
            self.depth -= 1
            if self.depth == 0:
                self.findings_tag = None

    def handle_data(self, data):
        self.text.append(data)
        if self.findings_tag is not None:
            self.findings.append(data)

    def attrs(self, tag: str) -> list[dict]:
        return [a for t, a in self.tags if t == tag]

    def all_text(self) -> str:
        return "".join(self.text)


def rendered(m=None, findings=None, cfg=CFG) -> tuple[str, Page]:
    m = m or healthy()
    findings = rules.evaluate(m, cfg) if findings is None else findings
    text = page.render(m, findings, cfg)
    return text, Page(text)


def with_trends():
    """The healthy model with 3 drills (one without a restore time), 4 runs of stages and 5 job ends over the
    last day."""
    m = copy.deepcopy(healthy())
    m.restores.trend = [DrillPoint("2026-12-04T04:40:00Z", "pass", "20261204T030500Z", 95.5, 5700),
                        DrillPoint("2026-12-05T04:40:00Z", "fail", "20261205T030500Z", None, 5800),
                        DrillPoint("2026-12-06T04:40:00Z", "pass", "20261206T030500Z", 101.0, 5900)]
    m.restores.runbook = RunbookFigures("bare-host", "2026-12-01T10:00:00Z", "pass", 1800.0, "20261201T090500Z", 640.0)
    m.pipeline.flow = [FlowPoint("2026-12-06T13:00:00Z", "pipeline", "ok", 5, 5, 4, 1, 0),
                       FlowPoint("2026-12-07T02:00:00Z", "catch-up", "ok", 0, 2, 9),
                       FlowPoint("2026-12-07T11:00:00Z", "pipeline", "failed", 3, 3, 1, 0, 2),
                       FlowPoint("2026-12-07T11:55:00Z", "pipeline", "ok", 1, 1, 3)]
    m.pipeline.backlog_series = [
        BacklogPoint("2026-12-06T13:00:00Z", "pipeline", 0, {"raw": 0, "staging": 0, "reports": 0}),
        BacklogPoint("2026-12-07T02:00:00Z", "catch-up", 12, {"raw": 5, "staging": 4, "reports": 3}),
        BacklogPoint("2026-12-07T03:20:00Z", "check", 7, {"raw": 7, "staging": 0, "reports": 0}),
        BacklogPoint("2026-12-07T11:00:00Z", "pipeline", 2, {"raw": 0, "staging": 0, "reports": 2}),
        BacklogPoint("2026-12-07T11:55:00Z", "pipeline", 2, {"raw": 2, "staging": 0, "reports": 0})]
    return m


def test_a_green_line_and_no_banner_when_no_rule_holds():
    text, p = rendered()
    assert "".join(p.findings) == ALL_CLEAR
    assert {"id": "findings", "class": "banner good"} in p.attrs("p")
    assert "banner bad" not in text and "risk:" not in text


def test_a_red_banner_with_each_findings_rule_what_and_what_to_do():
    m = copy.deepcopy(healthy())
    m.pipeline.backlog[0].oldest_age_seconds = 2 * HOUR
    m.pipeline.last_move_age_seconds = 2 * HOUR
    m.backups.newest_set.age_seconds = 4 * HOUR
    findings = rules.evaluate(m, CFG)
    assert [f.rule for f in findings] == ["stalled", "recovery_point_old"]
    text, p = rendered(m, findings)
    assert {"id": "findings", "class": "banner bad"} in p.attrs("section")
    assert ".banner.bad{background:#b00020" in text  # red
    inside = "".join(p.findings)
    assert "1 stall(s), 1 risk(s)" in inside
    for f in findings:
        assert f"{f.severity}: {f.rule}" in inside and f.what in inside and f"What to do: {f.todo}" in inside
    assert ALL_CLEAR not in p.all_text()


def test_each_chart_has_one_mark_per_point_with_its_value():
    m = with_trends()
    _, p = rendered(m)
    assert set(p.charts) == {"restore-seconds", "recovery-point-seconds", "flow-imported", "flow-failed", "backlog"}
    assert [c["data-value"] for c in p.charts["restore-seconds"]] == ["95.5", "null", "101.0"]  # the values' JSON
    assert [c["data-field"] for c in p.charts["restore-seconds"]] == [
        f"model.restores.trend.{i}.restore_seconds" for i in range(3)]
    assert [c["data-value"] for c in p.charts["recovery-point-seconds"]] == ["5700", "5800", "5900"]
    assert [c["data-value"] for c in p.charts["flow-imported"]] == ["4", "9", "1", "3"]
    assert [c["data-value"] for c in p.charts["flow-failed"]] == ["0", "0", "2", "0"]
    assert [c["class"] for c in p.charts["restore-seconds"]] == ["mark ok", "mark missing", "mark ok"]
    assert [c["class"] for c in p.charts["flow-failed"]] == ["mark ok", "mark ok", "mark bad", "mark ok"]
    # the runs of stages are placed by their time in the last day: the newest, 5 min ago, near the right end
    xs = [float(c["cx"]) for c in p.charts["flow-imported"]]
    assert xs == sorted(xs) and xs[-1] > 590 and xs[0] < 80


def test_the_backlog_chart_has_one_mark_per_job_end_of_the_last_day_placed_by_its_time():
    m = with_trends()
    _, p = rendered(m)
    marks = p.charts["backlog"]
    assert len(marks) == len(m.pipeline.backlog_series) == 5
    assert [c["data-value"] for c in marks] == ["0", "12", "7", "2", "2"]
    assert [c["data-field"] for c in marks] == [f"model.pipeline.backlog_series.{i}.waiting" for i in range(5)]
    xs = [float(c["cx"]) for c in marks]
    assert xs == sorted(xs) and xs[-1] > 590 and xs[0] < 80  # 5 min and 23 h ago
    # the same places as the flow's runs that ended at the same times
    assert [xs[0], xs[1], xs[3], xs[4]] == [float(c["cx"]) for c in p.charts["flow-imported"]]
    m.pipeline.backlog_series = m.pipeline.backlog_series[:2]
    assert len(rendered(m)[1].charts["backlog"]) == 2


def test_charts_without_points_have_no_mark():
    _, p = rendered()
    assert p.charts == {"restore-seconds": [], "recovery-point-seconds": [], "flow-imported": [], "flow-failed": [],
                        "backlog": []}


def test_the_figures_shown_are_the_models():
    m = with_trends()
    m.pipeline.collectors[0].last_error = "rsync: <some files> vanished"
    m.database.certificates = [certs.CertRow("db", "/s/tls/db.crt", "CN=x", "x", "0A", "2027-01-05 08:31 UTC", 29)]
    text, p = rendered(m)
    words = p.all_text()
    assert "20261207T110500Z" in words and "55 min" in words  # the newest set, its age
    assert "2026-12-07T11:55:00Z" in words and "5 min" in words  # the oldest input waiting in raw/
    assert "inputs waiting2" in words  # the count waiting (a <dt> then its <dd>)
    assert "c1" in words and "rsync: <some files> vanished" in words
    assert "rsync: &lt;some files&gt; vanished" in text  # escaped
    assert "pulled 9, sanitized 11, imported 17, quarantined 1, failed 2" in words
    assert "RTO (its rebuild)640 s" in words and "29" in words
    assert words.count(f"computed {m.computed}") == 7  # the page, and each section (the broker's too)


def test_no_script_no_external_link_or_asset():
    m = with_trends()
    m.pipeline.collectors[0].last_error = "<script>alert(1)</script> see https://example.org/x"
    text, p = rendered(m)
    assert "script" not in [t for t, _ in p.tags] and "<script" not in text.lower()
    assert "http://" not in text and "https://" not in text
    for _, a in p.tags:
        assert "src" not in a
        assert a.get("href", "#").startswith("#")
        assert not any(v and ("url(" in v or "javascript:" in v) for v in a.values())
    assert "@import" not in text and "url(" not in text and "<img" not in text and "<link" not in text


def test_the_same_model_gives_the_same_page():
    assert rendered(with_trends())[0] == rendered(with_trends())[0]


def test_no_secret_no_private_path_no_probe_address(tmp_path):
    secrets = tmp_path / "very-private-secrets"
    (secrets / "tls").mkdir(parents=True)
    (secrets / "db-owner-password").write_text("Owner-Pa55word-xyz\n")
    (secrets / "restic-password").write_text("restic-Secret-4242")
    (secrets / "tls" / "client.key").write_text("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                                                 "-----END PRIVATE KEY-----\n")
    data_root = str(tmp_path / "private-data-root")
    cfg = config.load(overrides={
        "data_root": data_root, "secrets_dir": str(secrets), "history.dir": "/srv/hidden/history",
        "drill.history_dir": "/srv/hidden/drills", "monitoring.textfile_dir": "/srv/hidden/metrics",
        "status.page_dir": "/srv/hidden/page", "backup.repository": "sftp:restic@vault.internal.example:/srv/restic",
        "offsite.repository": "rest:https://aggregator:offsitepw@offsite.internal.example:8443/repo",
        "db.host": "db.internal.example", "db.port": 27117, "db.postgres_host": "pg.internal.example",
        "db.postgres_port": 54329, "db.tls": True, "host.role": "aggregator",
        "collectors": [{"name": "c1", "host": "collector1.internal.example", "port": 2222, "user": "aggrsync",
                        "key_file": "/srv/hidden/keys/c1", "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
                        "archive_path": "/var/collector/archive"}]})
    private = ["Owner-Pa55word-xyz", "restic-Secret-4242", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", data_root, str(secrets),
               "/srv/hidden", "vault.internal.example", "/srv/restic", "offsitepw", "offsite.internal.example",
               "db.internal.example", "pg.internal.example", "27117", "54329", "2222", "collector1.internal.example",
               "aggrsync@", "/var/collector/archive", "10.20.30.40", "private-data-root"]
    m = with_trends()
    m.host = "aggr"
    m.database.address = "db.internal.example:27117"
    m.database.roles = [RoleReach(r, False, 3.0, "db.internal.example:27117: timed out; auth Owner-Pa55word-xyz")
                        for r in DB_ROLES]
    m.database.certificate_warnings = [certs.Finding("client", "error", f"{secrets}/tls/client.crt is missing")]
    m.pipeline.collectors[0].last_error = ("ssh: connect to host collector1.internal.example port 2222: refused; "
                                           "aggrsync@collector1.internal.example:/var/collector/archive; key "
                                           "/srv/hidden/keys/c1; via 10.20.30.40")
    m.pipeline.collectors[0].age_seconds = DAY
    m.disk.path = data_root
    m.disk.days_until_full = 1.0
    m.restores.last = m.restores.last_pass = None  # no_passing_drill names drill.history_dir
    m.pipeline.backlog[0].oldest_age_seconds = m.pipeline.last_move_age_seconds = 3 * HOUR
    m.backups.newest_set.age_seconds = 10 * MIN
    findings = rules.evaluate(m, cfg)
    assert {"database_unreachable", "collector_unreached", "disk_filling", "certificate_expiring",
            "no_passing_drill", "stalled"} <= {f.rule for f in findings}
    assert any("db.internal.example:27117" in f.what for f in findings)  # the findings do name them
    text = page.render(m, findings, cfg)
    for value in private:
        assert value not in text, value
    assert "[database host]" in text and "[collector host]" in text  # said, not shown
    shown = fields_of(Page(text))
    for a in shown:  # the attributes read back (unescaped) hold none either
        assert not any(value in a.get("data-value", "") for value in private), a
    # the free texts are shown scrubbed and carry no value: the JSON's would hold what the page must not show
    free = {a["data-field"] for a in shown if "data-scrubbed" in a}
    assert free == {"model.host", "model.pipeline.collectors.0.last_error",
                    "model.database.certificate_warnings.0.message",
                    *(f"model.database.roles.{i}.error" for i in range(len(DB_ROLES))),
                    *(f"findings.{i}.what" for i in range(len(findings)))}
    assert not [a for a in shown if "data-scrubbed" in a and "data-value" in a]


def test_free_text_is_scrubbed_of_paths_urls_and_addresses_the_configuration_does_not_name():
    private = page.Private(CFG)
    assert private.scrub("cannot open /home/op/.ssh/id_ed25519 for 192.168.1.7") == \
        "cannot open [path] for [address]"
    assert private.scrub("GET https://user:pw@host.example/x failed") == "GET [URL] failed"
    assert private.scrub("raw/ 2, 1.0 MB/s, quarantine/poison/ and set 20261207T110500Z") == \
        "raw/ 2, 1.0 MB/s, quarantine/poison/ and set 20261207T110500Z"
    # a configured path is not found inside a longer name
    cfg = config.load(overrides={"data_root": "/data"})
    assert page.Private(cfg).scrub("/data/raw and /database") == "[data root]/raw and [path]"


# --- every figure: its path and its value in `invoke status --json` -------------------------------------------

# What the page does not show of the model (list items as *): private (the database's address, the disk's path,
# a certificate's file and names), or a chart mark's tooltip (its time and job), or a figure that only counts
# into a total shown (flow's pulled, sanitized, quarantined: flow_total).
NOT_SHOWN = {"model.database.address", "model.disk.path", "model.database.certificates.*.file",
             "model.database.certificates.*.subject", "model.database.certificates.*.names",
             "model.database.certificates.*.serial",
             "model.pipeline.flow.*.ended", "model.pipeline.flow.*.job", "model.pipeline.flow.*.outcome",
             "model.pipeline.flow.*.pulled", "model.pipeline.flow.*.sanitized", "model.pipeline.flow.*.quarantined",
             "model.pipeline.backlog_series.*.ended", "model.pipeline.backlog_series.*.job",
             "model.pipeline.backlog_series.*.per_state.raw", "model.pipeline.backlog_series.*.per_state.staging",
             "model.pipeline.backlog_series.*.per_state.reports",
             "model.restores.trend.*.started", "model.restores.trend.*.verdict", "model.restores.trend.*.set"}


def rich():
    """with_trends, and every figure that can be None given a value: quarantine and poison, a collector that
    holds pulled reports, one that fails, the pipeline's runs, an off-site copy with its check and retention, a
    drill, a runbook drill, certificates with a finding, a role that cannot log in, the newest set's counts."""
    m = with_trends()
    p, b, r, d = m.pipeline, m.backups, m.restores, m.database
    p.quarantine, p.poison = {"poison": 1, "unsafe_tag": 2}, 1
    p.collectors.append(CollectorState("c2", left=None, last_error="connection refused",
                                       first_tried="2026-12-07T08:00:00Z"))
    m.broker.dead, m.broker.dead_lettered = 1, 1
    m.broker.newest_dead = [DeadLetter("2026-12-07T11:30:00Z", "missing: not on the collector", "c1", "a/r1.yaml")]
    c1 = p.collectors[0]  # it holds pulled reports until a release
    c1.held, c1.held_bytes, c1.oldest_held, c1.oldest_held_age_seconds = 3, 3_000_000, "2026-12-07T09:00:00Z", 3 * HOUR
    p.runs = [PipelineRunRow("2026-12-07T11:00:00Z", "failed", 12.5, 3_000_000, 240000.0),
              PipelineRunRow("2026-12-07T11:55:00Z", "error", 0.0, 0)]
    b.offsite_configured = True
    b.newest_set = BackupSet("20261207T110500Z", "snapshot", "2026-12-07T11:05:00Z", 55 * MIN, 9000, 4_000_000,
                             1500, 1.5)
    b.check_offsite = CheckFigures("check-offsite", "2026-12-07T04:00:00Z", 8 * HOUR, "FAILED",
                                   ["20261205T030500Z", "20261206T030500Z"], "2026-12-06T04:00:00Z", DAY + 8 * HOUR)
    b.offsite = OffsiteFigures("2026-12-07T11:30:00Z", 30 * MIN, "ok", "20261207T030500Z", 14, 1, 8 * HOUR)
    b.retention = RetentionFigures("2026-12-07T05:00:00Z", 7 * HOUR, "ok", 2, 14)
    r.last = DrillPoint("2026-12-06T04:40:00Z", "pass", "20261206T030500Z", 101.0, 5900)
    d.tls = True
    d.roles[1] = RoleReach("importer", False, 3.0, "authentication failed")
    d.counts_set, d.counts_time, d.documents, d.copy_bytes = "20261207T110500Z", "2026-12-07T11:05:00Z", 12, 4_000_000
    d.collections = {"measurements": 9, "reports": 3}
    d.certificates = [certs.CertRow("ca", "/s/tls/ca.crt", "CN=ca", "", "01", "2036-01-01 00:00 UTC", 3312),
                      certs.CertRow("db", "/s/tls/db.crt", "CN=x", "x", "0A", "2027-01-05 08:31 UTC", 29)]
    d.certificate_warnings = [certs.Finding("db", "warning", "/s/tls/db.crt expires in 29 days")]
    return m


def status_json(m, findings) -> dict:
    """What `invoke status --json` prints for this model and its findings (no image, no service)."""
    s = Status([], [], m.database.certificates, m.database.certificate_warnings, m.database.tls, m, findings)
    return json.loads(s.to_json())


def wild(path: str) -> str:
    return ".".join("*" if part.isdigit() else part for part in path.split("."))


def json_paths(data, prefix: str = "") -> dict[str, bool]:
    """Every path in a JSON value (list items as *): whether it is a leaf (a value, an empty list or object)."""
    out = {prefix: not data} if isinstance(data, (dict, list)) else {prefix: True}
    items = data.items() if isinstance(data, dict) else (("*", v) for v in data) if isinstance(data, list) else ()
    for k, v in items:
        out |= json_paths(v, f"{prefix}.{k}" if prefix else k)
    return out


def value_at(data, path: str, known: set[str]):
    """The value at a dotted path (list items by index); a key left out (an optional figure that is None) is
    None, when a model with every figure has that path (known)."""
    *parents, last = path.split(".")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data[part]
    if isinstance(data, list):
        return data[int(last)]
    assert last in data or wild(path) in known, f"{path} is no figure of `invoke status --json`"
    return data.get(last)


def fields_of(p: Page) -> list[dict]:
    return [a for _, a in p.tags if "data-field" in a]


def check_fields(m, findings, known: set[str]) -> list[dict]:
    data = status_json(m, findings)
    _, p = rendered(m, findings)
    shown = fields_of(p)
    for a in shown:
        value = value_at(data, a["data-field"], known)
        if "data-scrubbed" in a:
            assert "data-value" not in a and isinstance(value, str), a
        else:
            assert "data-value" in a, a
            assert json.loads(a["data-value"]) == value and a["data-value"] == json.dumps(value, sort_keys=True), a
    return shown


def test_every_figure_shown_carries_its_path_and_its_value_in_invoke_status_json():
    m = rich()
    findings = rules.evaluate(m, CFG)
    assert {"poison", "collector_unreached", "database_unreachable"} <= {f.rule for f in findings}
    known = set(json_paths(status_json(m, findings)))
    shown = check_fields(m, findings, known)
    values = {a["data-field"]: a.get("data-value") for a in shown}
    assert values["model.pipeline.backlog.0.count"] == "2" and values["model.pipeline.waiting"] == "2"
    assert values["model.backups.newest_set.age_seconds"] == str(55 * MIN)
    assert values["model.backups.newest_set.set"] == '"20261207T110500Z"'  # the JSON's key, not the attribute
    assert values["model.restores.last.verdict"] == '"pass"' and values["findings.0.rule"] == '"collector_unreached"'
    assert values["model.backups.check_offsite.failed_sets"] == '["20261205T030500Z", "20261206T030500Z"]'
    assert values["model.pipeline.flow_total.imported"] == "17" and values["model.database.tls"] == "true"
    assert values["model.pipeline.collectors.1.last_success"] == "null"  # shown as "never"
    assert values["model.pipeline.collectors.1.last_error"] is None  # a free text: scrubbed, its value left out
    assert values["model.computed"] == '"2026-12-07T12:00:00Z"'
    for name in ("pipeline", "backups", "restores", "database", "disk"):
        assert values[f"model.{name}.computed"] == '"2026-12-07T12:00:00Z"'


def test_every_figure_of_the_model_and_the_findings_is_on_the_page():
    m = rich()
    findings = rules.evaluate(m, CFG)
    data = status_json(m, findings)
    leaves = {p for p, leaf in json_paths({"model": data["model"], "findings": data["findings"]}).items() if leaf}
    covered = {wild(a["data-field"]) for a in fields_of(rendered(m, findings)[1])}
    missing = {p for p in leaves - NOT_SHOWN if not any(p == c or p.startswith(c + ".") for c in covered)}
    assert not missing, sorted(missing)
    assert not NOT_SHOWN - leaves  # each still names a figure


def test_the_figures_that_are_none_are_null_and_a_page_without_them_keeps_the_contract():
    """The healthy model leaves most optional figures out of its JSON; the page shows them as "—" or "never"
    and says null."""
    known = set(json_paths(status_json(rich(), [])))
    m = copy.deepcopy(healthy())
    m.backups.newest_set = m.backups.check = m.restores.last = None
    m.pipeline.last_move = m.pipeline.last_move_age_seconds = None
    m.database.probed, m.database.roles = False, []
    m.backups.check_offsite = CheckFigures("check-offsite", "2026-12-07T04:00:00Z", 8 * HOUR, "error")  # no pass
    shown = check_fields(m, [], known)
    values = {a["data-field"]: a.get("data-value") for a in shown}
    assert values["findings"] == "[]"
    for path in ("model.backups.newest_set", "model.backups.check", "model.backups.offsite_configured",
                 "model.backups.retention", "model.restores.last", "model.restores.runbook",
                 "model.pipeline.last_move", "model.pipeline.last_move_age_seconds", "model.database.counts_set",
                 "model.pipeline.backlog.1.oldest", "model.backups.check_offsite.last_pass"):
        assert values[path] in ("null", "false"), path
    assert values["model.database.roles"] == "[]" and values["model.database.probed"] == "false"
