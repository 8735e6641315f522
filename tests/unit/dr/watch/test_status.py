"""`invoke status` (dr/watch/status.py): one record with the images, the services, the certificates, the status
model and the rules' findings; the findings come first in its text, then the model, then the tables it showed
before; it exits 1 while a finding holds."""

import datetime as dt

import pytest

from common import config
from dr.machine.images import ImageRow
from dr.services import certs, stack
from dr.watch import model, rules
from dr.watch.status import ALL_CLEAR, Status

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
IMAGES = [ImageRow("aggregator-dr/base:bookworm", True, created="2026-01-01T10:00:00", version="",
                   revision="0123456789ab", size_mb=120),
          ImageRow("aggregator-dr/db:latest", False)]
SERVICES = [stack.ServiceRow("postgres", "inst-postgres", "running", health="healthy",
                             image="aggregator-dr/postgres:latest", ports="", started="2026-01-01T10:01:00"),
            stack.ServiceRow("db", "inst-db", "absent")]
CERT = certs.CertRow("db", "/s/tls/db.crt", "CN=inst-db,O=inst", "inst-db, localhost", "0A1B",
                     "2027-01-05 08:31 UTC", 12)
FINDING = certs.Finding("db", "warning", "/s/tls/db.crt expires in 12 days (2027-01-05): `invoke certs --renew`")
TABLES = [
    "image                        present  created              version  revision      size_mb",
    "aggregator-dr/base:bookworm  True     2026-01-01T10:00:00           0123456789ab  120",
    "aggregator-dr/db:latest      False",
    "",
    "service   container      state    health   image                          ports  started",
    "postgres  inst-postgres  running  healthy  aggregator-dr/postgres:latest         2026-01-01T10:01:00",
    "db        inst-db        absent",
    "",
    "certificate  days_left  not_after             names",
    "db           12         2027-01-05 08:31 UTC  inst-db, localhost",
    "warning: db: /s/tls/db.crt expires in 12 days (2027-01-05): `invoke certs --renew`"]


@pytest.fixture
def fresh(tmp_path):
    """A host just rebuilt: nothing in its history, no drill (the database not probed)."""
    cfg = config.load(overrides={"data_root": str(tmp_path / "data"), "history.dir": str(tmp_path / "history"),
                                 "drill.history_dir": str(tmp_path / "drills"),
                                 "secrets_dir": str(tmp_path / "secrets")})
    m = model.compute(cfg, NOW, probe=False)
    return m, rules.evaluate(m, cfg)


def status(m, findings, certificates=(CERT,), warnings=(FINDING,), tls=True) -> Status:
    return Status(IMAGES, SERVICES, list(certificates), list(warnings), tls, m, findings)


def test_status_keeps_the_json_keys_it_had_adds_the_model_and_findings_and_round_trips(fresh):
    m, findings = fresh
    s = status(m, findings)
    data = s.to_dict()
    assert list(data) == ["images", "services", "certificates", "certificate_warnings", "db_tls", "model", "findings"]
    assert data["images"][1] == {"image": "aggregator-dr/db:latest", "present": False}
    assert data["services"][1] == {"service": "db", "container": "inst-db", "state": "absent"}
    assert data["certificates"][0]["days_left"] == 12 and data["certificates"][0]["file"] == "/s/tls/db.crt"
    assert data["certificate_warnings"] == [{"certificate": "db", "level": "warning", "message": FINDING.message}]
    assert data["model"]["computed"] == "2026-12-07T12:00:00Z" and data["model"]["pipeline"]["poison"] == 0
    assert [f["rule"] for f in data["findings"]] == ["recovery_point_old", "no_passing_check", "no_passing_drill"]
    assert set(data["findings"][0]) == {"rule", "severity", "what", "todo"}
    assert Status.from_json(s.to_json()) == s


def test_the_findings_come_first_then_the_model_then_the_tables(fresh):
    m, findings = fresh
    s = status(m, findings)
    lines = s.render().splitlines()
    assert lines[0] == ("RISK recovery_point_old: no complete snapshot set taken or restored here since "
                        f"{m.history_since} (objective 3 h)")
    assert lines[1] == f"    what to do: {rules.RULES[4].todo}"
    assert [line.split(":")[0] for line in lines[:6:2]] == [
        "RISK recovery_point_old", "RISK no_passing_check", "RISK no_passing_drill"]
    assert lines[6] == "" and lines[7] == f"status of {m.host} (all) at 2026-12-07T12:00:00Z:"
    assert "\n".join(lines[7:-len(TABLES) - 1]) == m.render()
    assert lines[-len(TABLES) - 1:] == [""] + TABLES
    assert s.exit_status() == 1
    assert s.failure() == "stall or risk: recovery_point_old, no_passing_check, no_passing_drill"


def test_no_finding_says_so_in_one_line_and_exits_0(fresh):
    m, _ = fresh
    s = status(m, [])
    assert s.render().splitlines()[:2] == [ALL_CLEAR, ""] and s.exit_status() == 0 and s.failure() == ""
    twice = [rules.Finding("poison", "stall", "1", "t"), rules.Finding("poison", "stall", "2", "t")]
    assert status(m, twice).failure() == "stall or risk: poison"


def test_the_tables_without_certificates_say_whether_tls_is_off(fresh):
    m, findings = fresh
    tables = status(m, findings, (), (), True).tables()
    assert tables.endswith("inst-db        absent\n") and "db.tls" not in tables  # as before: a blank line
    assert status(m, findings, (), (), False).tables() == tables + "\nno TLS certificates (db.tls is off)"
    assert status(m, findings, (), (FINDING,), True).tables() == tables + "\n" + FINDING.line()
