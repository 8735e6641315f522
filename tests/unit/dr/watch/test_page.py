"""The status page (dr/watch/page.py) on status models built here: the red banner with each finding or the green
line, one mark per point in each chart with the model's values, the model's figures, a self-contained
document (no script, no external link or asset) and a private one: a configuration and a model full of secrets,
private paths and probe addresses, none of which appears on the page. The HTML is read back with the standard
library's parser."""

import copy
from html.parser import HTMLParser

from common import config
from common.config import DB_ROLES
from dr.services import certs
from dr.watch import page, rules
from dr.watch.figures import DrillPoint, FlowPoint, RoleReach, RunbookFigures
from dr.watch.status import ALL_CLEAR

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
    """The healthy model with 3 drills (one without a restore time) and 4 runs of stages over the last day."""
    m = copy.deepcopy(healthy())
    m.restores.trend = [DrillPoint("2026-12-04T04:40:00Z", "pass", "20261204T030500Z", 95.5, 5700),
                        DrillPoint("2026-12-05T04:40:00Z", "fail", "20261205T030500Z", None, 5800),
                        DrillPoint("2026-12-06T04:40:00Z", "pass", "20261206T030500Z", 101.0, 5900)]
    m.restores.runbook = RunbookFigures("bare-host", "2026-12-01T10:00:00Z", "pass", 1800.0, "20261201T090500Z", 640.0)
    m.pipeline.flow = [FlowPoint("2026-12-06T13:00:00Z", "pipeline", "ok", 5, 5, 4, 1, 0),
                       FlowPoint("2026-12-07T02:00:00Z", "catch-up", "ok", 0, 2, 9),
                       FlowPoint("2026-12-07T11:00:00Z", "pipeline", "failed", 3, 3, 1, 0, 2),
                       FlowPoint("2026-12-07T11:55:00Z", "pipeline", "ok", 1, 1, 3)]
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
    assert set(p.charts) == {"restore-seconds", "recovery-point-seconds", "flow-imported", "flow-failed"}
    assert [c["data-value"] for c in p.charts["restore-seconds"]] == ["95.5", "", "101"]
    assert [c["data-value"] for c in p.charts["recovery-point-seconds"]] == ["5700", "5800", "5900"]
    assert [c["data-value"] for c in p.charts["flow-imported"]] == ["4", "9", "1", "3"]
    assert [c["data-value"] for c in p.charts["flow-failed"]] == ["0", "0", "2", "0"]
    assert [c["class"] for c in p.charts["restore-seconds"]] == ["mark ok", "mark missing", "mark ok"]
    assert [c["class"] for c in p.charts["flow-failed"]] == ["mark ok", "mark ok", "mark bad", "mark ok"]
    # the runs of stages are placed by their time in the last day: the newest, 5 min ago, near the right end
    xs = [float(c["cx"]) for c in p.charts["flow-imported"]]
    assert xs == sorted(xs) and xs[-1] > 590 and xs[0] < 80


def test_charts_without_points_have_no_mark():
    _, p = rendered()
    assert p.charts == {"restore-seconds": [], "recovery-point-seconds": [], "flow-imported": [], "flow-failed": []}


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
    assert words.count(f"computed {m.computed}") == 6  # the page, and each section


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
