"""`invoke status` (dr/services/status.py) and the other results of the services' tasks (`down`,
`offsite-server`): records that round-trip through JSON, and the text each says."""

from dr.machine.images import ImageRow
from dr.services import certs, offsite, stack
from dr.services.status import Status

IMAGES = [ImageRow("aggregator-dr/base:bookworm", True, created="2026-01-01T10:00:00", version="",
                   revision="0123456789ab", size_mb=120),
          ImageRow("aggregator-dr/db:latest", False)]
SERVICES = [stack.ServiceRow("postgres", "inst-postgres", "running", health="healthy",
                             image="aggregator-dr/postgres:latest", ports="", started="2026-01-01T10:01:00"),
            stack.ServiceRow("db", "inst-db", "absent")]
CERT = certs.CertRow("db", "/s/tls/db.crt", "CN=inst-db,O=inst", "inst-db, localhost", "0A1B",
                     "2027-01-05 08:31 UTC", 12)
FINDING = certs.Finding("db", "warning", "/s/tls/db.crt expires in 12 days (2027-01-05): `invoke certs --renew`")


def test_status_keeps_the_json_keys_it_had_and_round_trips():
    status = Status(IMAGES, SERVICES, [CERT], [FINDING], True)
    data = status.to_dict()
    assert list(data) == ["images", "services", "certificates", "certificate_warnings", "db_tls"]
    assert data["images"][1] == {"image": "aggregator-dr/db:latest", "present": False}
    assert data["services"][1] == {"service": "db", "container": "inst-db", "state": "absent"}
    assert data["certificates"][0]["days_left"] == 12 and data["certificates"][0]["file"] == "/s/tls/db.crt"
    assert data["certificate_warnings"] == [{"certificate": "db", "level": "warning", "message": FINDING.message}]
    assert Status.from_json(status.to_json()) == status


def test_status_renders_its_three_tables_and_the_findings():
    lines = Status(IMAGES, SERVICES, [CERT], [FINDING], True).render().splitlines()
    assert lines == [
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


def test_status_without_certificates_says_whether_tls_is_off():
    tables = Status(IMAGES, SERVICES, [], [], True).render()
    assert tables.endswith("inst-db        absent\n") and "db.tls" not in tables  # as before: a blank line
    assert Status(IMAGES, SERVICES, [], [], False).render() == tables + "\nno TLS certificates (db.tls is off)"
    assert Status(IMAGES, SERVICES, [], [FINDING], True).render() == tables + "\n" + FINDING.line()


def test_down_says_what_it_stopped_and_what_still_runs():
    stopped = stack.Stopped(["inst-db", "inst-postgres"], [stack.StillRunning("inst-offsite", stack.KEPT["offsite"])])
    assert stack.Stopped.from_json(stopped.to_json()) == stopped
    assert stopped.to_dict()["still_running"] == [{"container": "inst-offsite", "why": stack.KEPT["offsite"]}]
    assert stopped.render().splitlines() == [
        "stopped: inst-db, inst-postgres",
        "still running: inst-offsite (the off-site copy's server stands for another host: "
        "`invoke offsite-server --stop`)"]
    assert stack.Stopped([], []).render() == "stopped: nothing was running"


def test_the_offsite_server_says_how_to_configure_it_or_that_it_stopped():
    server = offsite.OffsiteServer("started", "inst-offsite", "inst-offsite", "127.0.0.1:8000",
                                   "rest:http://inst-offsite:8000/aggregator", "aggregator")
    assert offsite.OffsiteServer.from_json(server.to_json()) == server
    assert set(server.to_dict()) == {"state", "container", "network", "published", "repository", "user"}
    assert server.render().splitlines() == [
        "offsite server started: inst-offsite on network inst-offsite, published on 127.0.0.1:8000",
        "to use it from this host, set in the configuration:",
        "  [offsite]",
        '  repository = "rest:http://inst-offsite:8000/aggregator"',
        '  network = "inst-offsite"',
        '  user = "aggregator"   # password: the secret file offsite-http-password']
    server.state = "stopped"
    assert server.render() == "offsite server stopped; its data volume is kept"
