"""The private CA and the TLS certificates (dr/services/certs.py), made and read by the real openssl."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common import config
from common.errors import ConfigError, DrError, SecretError
from dr.jobs import contract
from dr.services import broker, certs, offsite, stack

LEAVES = [c.name for c in certs.CERTS]


def make_cfg(tmp_path, **overrides):
    return config.load(overrides={
        "instance": "inst", "data_root": str(tmp_path / "data"), "secrets_dir": str(tmp_path / "secrets"),
        "cache_dir": str(tmp_path / "cache"), "backup.repository": str(tmp_path / "repo"), **overrides})


@pytest.fixture
def cfg(tmp_path):
    return make_cfg(tmp_path, **{"certs.db_names": ["db.example.org", "192.0.2.7"]})


def openssl(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, text=True)


def digests(folder: Path) -> dict[str, tuple[str, float]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def serial(cfg, name):
    return certs.read(certs.cert_path(cfg, name)).serial


# --- pure parts ------------------------------------------------------------------------------------------------

def test_argv_carry_paths_never_keys(tmp_path):
    key, crt, conf, ca, ca_key = (tmp_path / n for n in ("k", "c", "cnf", "ca.crt", "ca.key"))
    assert certs.genkey_argv(key) == ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                                      "-out", str(key)]
    argv = certs.leaf_argv(key, crt, conf, "/O=inst/CN=inst-db", 397, ca, ca_key, 255)
    assert argv[:3] == ["openssl", "req", "-new"]
    for flag, value in (("-key", str(key)), ("-CA", str(ca)), ("-CAkey", str(ca_key)), ("-set_serial", "0xff"),
                        ("-days", "397"), ("-subj", "/O=inst/CN=inst-db"), ("-config", str(conf)),
                        ("-extensions", "ext"), ("-out", str(crt))):
        assert argv[argv.index(flag) + 1] == value, flag
    ca_argv = certs.ca_argv(key, crt, conf, "/O=inst/CN=inst private CA", 3650)
    assert "-x509" in ca_argv and ca_argv[ca_argv.index("-days") + 1] == "3650" and "-CA" not in ca_argv
    assert certs.verify_argv(ca, crt) == ["openssl", "verify", "-no_check_time", "-CAfile", str(ca), str(crt)]
    assert certs.pubkey_argv(key, True) == ["openssl", "pkey", "-pubout", "-in", str(key)]


def test_extensions_of_the_ca_and_of_a_server():
    ca = certs.extensions(None)
    assert "basicConstraints = critical,CA:TRUE,pathlen:0" in ca and "keyCertSign" in ca and "subjectAltName" not in ca
    server = certs.extensions("serverAuth", ("inst-db", "127.0.0.1", "0:0:0:0:0:0:0:1"))
    assert "CA:FALSE" in server and "extendedKeyUsage = serverAuth" in server
    assert "subjectAltName = DNS:inst-db,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1" in server
    assert "subjectAltName" not in certs.extensions("clientAuth", ())


def test_names_come_from_the_configuration(tmp_path):
    cfg = make_cfg(tmp_path, **{"host.role": "aggregator", "db.tls": True, "db.host": "db.example.org",
                                "db.postgres_host": "10.0.0.5",
                                "certs.db_names": ["db2.example.org", "2001:db8::1"],
                                "offsite.repository": "rest:https://backup.example.org:8000/aggr",
                                "certs.offsite_names": ["198.51.100.4"]})
    assert certs.names(cfg, "db") == ("inst-db", "localhost", "127.0.0.1", "db.example.org", "db2.example.org",
                                      "2001:DB8:0:0:0:0:0:1")
    assert certs.names(cfg, "postgres") == ("inst-postgres", "localhost", "127.0.0.1", "10.0.0.5", "db.example.org",
                                            "db2.example.org", "2001:DB8:0:0:0:0:0:1")
    assert certs.names(cfg, "offsite") == ("inst-offsite", "localhost", "127.0.0.1", "backup.example.org",
                                           "198.51.100.4")
    assert certs.names(cfg, "client") == ()
    one_machine = make_cfg(tmp_path)  # db.host is loopback already: named once
    assert certs.names(one_machine, "db") == ("inst-db", "localhost", "127.0.0.1")


def test_parse_reads_openssls_description():
    info = certs.parse("subject=CN=inst-db,O=inst\nnotAfter=Jan  5 08:31:20 2027 GMT\nserial=0A1B\n"
                       "X509v3 Subject Alternative Name: \n    DNS:inst-db, IP Address:127.0.0.1\n")
    assert info == certs.Info("CN=inst-db,O=inst", "0A1B", datetime(2027, 1, 5, 8, 31, 20, tzinfo=UTC),
                              ("inst-db", "127.0.0.1"))
    assert info.days_left(datetime(2027, 1, 1, tzinfo=UTC)) == 4
    with pytest.raises(DrError, match="cannot read"):
        certs.parse("unable to load certificate\n")


def test_db_files_default_to_ours_or_name_the_configured_ones(cfg, tmp_path):
    tls = Path(cfg.secrets_dir) / "tls"
    assert certs.db_files(cfg) == (tls / "ca.crt", tls / "db.crt", tls / "db.key")
    other = make_cfg(tmp_path, **{"db.ca_file": "/etc/ssl/org-ca.crt", "db.cert_file": "/etc/ssl/db.crt",
                                  "db.key_file": "/etc/ssl/db.key"})
    assert certs.db_files(other) == (Path("/etc/ssl/org-ca.crt"), Path("/etc/ssl/db.crt"), Path("/etc/ssl/db.key"))


# --- making them ------------------------------------------------------------------------------------------------

def test_make_builds_a_chain_that_verifies_with_the_configured_names(cfg):
    made = certs.make(cfg)
    rows = made.rows
    assert made.folder == str(certs.tls_dir(cfg))
    assert [(r.certificate, r.action) for r in rows] == [("ca", "made")] + [(n, "made") for n in LEAVES]
    tls = certs.tls_dir(cfg)
    for name in LEAVES:
        out = openssl("verify", "-CAfile", str(tls / "ca.crt"), str(tls / f"{name}.crt"))
        assert out.returncode == 0 and out.stdout.strip().endswith(": OK"), out.stderr
    text = openssl("x509", "-noout", "-text", "-in", str(tls / "db.crt")).stdout
    for entry in ("DNS:inst-db", "DNS:localhost", "IP Address:127.0.0.1", "DNS:db.example.org",
                  "IP Address:192.0.2.7", "TLS Web Server Authentication", "NIST CURVE: P-256"):
        assert entry in text
    assert "TLS Web Client Authentication" in openssl("x509", "-noout", "-text", "-in", str(tls / "client.crt")).stdout
    ca_text = openssl("x509", "-noout", "-text", "-in", str(tls / "ca.crt")).stdout
    assert "CA:TRUE" in ca_text and "Certificate Sign" in ca_text
    db = next(r for r in rows if r.certificate == "db")
    assert db.subject == "CN=inst-db,O=inst" and "db.example.org" in db.names
    assert db.days_left in (cfg.certs.leaf_days - 1, cfg.certs.leaf_days)


def test_keys_are_private_and_the_ca_key_has_its_own_folder(cfg):
    certs.make(cfg)
    tls = certs.tls_dir(cfg)
    assert certs.key_path(cfg, "ca") == tls / "ca" / "ca.key"
    for folder in (Path(cfg.secrets_dir), tls, tls / "ca"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    for key in [tls / "ca" / "ca.key"] + [tls / f"{n}.key" for n in LEAVES]:
        assert key.stat().st_mode & 0o777 == 0o600, key
        assert "PRIVATE KEY" in key.read_text()
    assert sorted(p.name for p in (tls / "ca").iterdir()) == [".lock", "ca.key"]  # nothing else to mount by mistake
    assert not [p for p in tls.rglob("*") if p.name.startswith(certs.TMP_PREFIX)]  # no work folder left


def test_a_second_make_changes_no_file(cfg):
    certs.make(cfg)
    before = digests(certs.tls_dir(cfg))
    rows = certs.make(cfg).rows
    assert {r.action for r in rows} == {"kept"}
    assert digests(certs.tls_dir(cfg)) == before


def test_renew_reissues_every_leaf_and_keeps_the_ca(cfg):
    certs.make(cfg)
    ca_before = certs.cert_path(cfg, "ca").read_bytes()
    serials = {n: serial(cfg, n) for n in LEAVES}
    rows = certs.make(cfg, renew=True).rows
    assert [r.action for r in rows] == ["kept"] + ["re-issued (renewal asked)"] * len(LEAVES)
    assert certs.cert_path(cfg, "ca").read_bytes() == ca_before
    for name in LEAVES:
        assert serial(cfg, name) != serials[name]
        assert certs.signed_by(certs.cert_path(cfg, "ca"), certs.cert_path(cfg, name))
    assert certs.warnings(cfg) == []


def test_renew_ca_makes_a_new_ca_and_leaves_that_verify_against_it(cfg):
    certs.make(cfg)
    old_ca = certs.cert_path(cfg, "ca").read_bytes()
    certs.make(cfg, renew_ca=True)
    assert certs.cert_path(cfg, "ca").read_bytes() != old_ca
    assert all(certs.signed_by(certs.cert_path(cfg, "ca"), certs.cert_path(cfg, n)) for n in LEAVES)


def test_changed_names_reissue_only_the_certificates_that_carry_them(cfg):
    certs.make(cfg)
    changed = config.derive(cfg, {"certs.db_names": ["db.example.org", "192.0.2.8"]})
    actions = {r.certificate: r.action for r in certs.make(changed).rows}
    assert actions["ca"] == actions["offsite"] == actions["client"] == "kept"
    assert actions["db"].startswith("re-issued (its names") and actions["postgres"].startswith("re-issued (its names")
    assert "192.0.2.8" in certs.read(certs.cert_path(cfg, "db")).names


def test_a_key_that_does_not_match_its_certificate_is_reported_and_reissued(cfg):
    """What a crash between the key's and the certificate's renames would leave."""
    certs.make(cfg)
    shutil.copy(certs.key_path(cfg, "postgres"), certs.key_path(cfg, "db"))
    assert [f.line() for f in certs.warnings(cfg)] == [
        f"error: db: {certs.key_path(cfg, 'db')} does not match {certs.cert_path(cfg, 'db')}: "
        "`invoke certs` re-issues it"]
    actions = {r.certificate: r.action for r in certs.make(cfg).rows}
    assert actions["db"] == "re-issued (its key does not match)" and actions["postgres"] == "kept"
    assert certs.warnings(cfg) == []


def test_work_folders_left_by_a_killed_make_are_removed(cfg):
    certs.make(cfg)
    leftover = certs.tls_dir(cfg) / f"{certs.TMP_PREFIX}dead"
    leftover.mkdir()
    (leftover / "key").write_text("half a key")
    certs.make(cfg)
    assert not leftover.exists()


def test_a_ca_certificate_without_its_key_is_refused(cfg):
    """The host that did not make the CA (the database's, with copies of ca.crt and its own files) must not
    start a CA of its own."""
    certs.make(cfg)
    certs.key_path(cfg, "ca").unlink()
    with pytest.raises(DrError, match="this host did not make the CA"):
        certs.make(cfg)


def test_a_key_readable_by_others_is_refused(cfg):
    certs.make(cfg)
    os.chmod(certs.key_path(cfg, "db"), 0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        certs.make(cfg)


def test_leaves_must_be_shorter_lived_than_the_ca(tmp_path):
    with pytest.raises(ConfigError, match="^certs.leaf_days: must be less than certs.ca_days"):
        certs.make(make_cfg(tmp_path, **{"certs.ca_days": 100, "certs.leaf_days": 100}))


# --- expiry and warnings ----------------------------------------------------------------------------------------

def test_nothing_is_said_without_certificates_while_tls_is_off(cfg):
    assert certs.describe(cfg) == [] and certs.warnings(cfg) == []


def test_with_tls_on_the_missing_files_of_the_database_are_errors(tmp_path):
    cfg = make_cfg(tmp_path, **{"db.tls": True})
    assert sorted((f.certificate, f.level) for f in certs.warnings(cfg)) == [
        ("ca", "error"), ("db", "error"), ("postgres", "error")]
    certs.make(cfg)
    assert certs.warnings(cfg) == []


def test_a_certificate_expiring_within_warn_days_warns(tmp_path):
    short = make_cfg(tmp_path / "short", **{"certs.leaf_days": 10})
    certs.make(short)
    findings = certs.warnings(short, days=30)
    assert [(f.certificate, f.level) for f in findings] == [(n, "warning") for n in LEAVES]
    assert "expires in 9 days" in findings[0].message or "expires in 10 days" in findings[0].message
    assert "`invoke certs --renew`" in findings[0].message
    assert [r.days_left < 11 for r in certs.describe(short)] == [False] + [True] * len(LEAVES)
    longer = make_cfg(tmp_path / "long", **{"certs.leaf_days": 40})
    certs.make(longer)
    assert certs.warnings(longer, days=30) == []


def test_an_expired_certificate_is_an_error(tmp_path):
    cfg = make_cfg(tmp_path, **{"certs.leaf_days": 10})
    certs.make(cfg)
    later = datetime.now(UTC) + timedelta(days=11)
    findings = certs.warnings(cfg, now=later)
    assert [(f.certificate, f.level) for f in findings] == [(n, "error") for n in LEAVES]
    assert all(" expired on " in f.message for f in findings)
    assert all(r.days_left < 0 for r in certs.describe(cfg, now=later)[1:])
    actions = {r.certificate: r.action for r in certs.make(cfg, now=later).rows}
    assert actions["ca"] == "kept" and actions["db"] == "re-issued (expired)"


def test_a_certificate_signed_by_another_ca_is_reported(tmp_path):
    ours, theirs = make_cfg(tmp_path / "ours"), make_cfg(tmp_path / "theirs")
    certs.make(ours)
    certs.make(theirs)
    for path in (certs.cert_path, certs.key_path):
        shutil.copy(path(theirs, "db"), path(ours, "db"))
    [finding] = certs.warnings(ours)
    assert finding.certificate == "db" and finding.level == "error"
    assert finding.message == f"{certs.cert_path(ours, 'db')} is not signed by the CA {certs.cert_path(ours, 'ca')}: " \
                              "`invoke certs` re-issues it"
    actions = {r.certificate: r.action for r in certs.make(ours).rows}
    assert actions["db"] == "re-issued (not signed by the present CA)"
    assert certs.warnings(ours) == []


def test_the_databases_configured_files_are_checked_when_they_are_not_ours(tmp_path):
    other = make_cfg(tmp_path / "other", **{"certs.leaf_days": 10})
    certs.make(other)
    cfg = make_cfg(tmp_path, **{"db.tls": True, "db.ca_file": str(certs.cert_path(other, "ca")),
                                "db.cert_file": str(certs.cert_path(other, "db")),
                                "db.key_file": str(certs.key_path(other, "db"))})
    certs.make(cfg)
    assert [(f.certificate, f.level) for f in certs.warnings(cfg)] == [("db.cert_file", "warning")]


# --- no container gets the CA's key ------------------------------------------------------------------------------

def test_no_container_mounts_the_ca_key_folder(tmp_path):
    cfg = make_cfg(tmp_path, **{"offsite.repository": "rest:http://offsite:8000/aggr", "offsite.network": "inst-o",
                                "collectors": [{"name": "c1", "host": "collector.example", "port": 22,
                                                "user": "collector", "key_file": "/etc/keys/c1",
                                                "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
                                                "archive_path": "/srv/archive"}]})
    certs.make(cfg)
    ca_dir = str(certs.ca_key_dir(cfg))
    specs = [contract.stage_spec(cfg, s) for s in contract.STAGES]
    specs += [contract.backup_spec(cfg, a, "h", offsite=o, role=r) for a in contract.ACTIONS for o in (False, True)
              for r in contract.roles_to_name(a) if o is False or contract.ACTIONS[a].repository]
    sources = [m.source for s in specs for m in s.mounts] + [x.source for s in specs for x in s.secrets]
    services_specs = [stack.postgres_spec(cfg), stack.db_spec(cfg), stack.webmirror_spec(cfg),
                      offsite.spec(cfg), broker.spec(cfg)]
    sources += [src for s in services_specs for src in s.kwargs.get("volumes", {})]
    assert sources and str(cfg.secrets_dir) in " ".join(sources)  # secrets are mounted: the check can fail
    assert [s for s in sources if s == ca_dir or s.startswith(ca_dir + "/")
            or ca_dir.startswith(s.rstrip("/") + "/")] == []


def test_what_certs_made_round_trips_and_renders_its_table(cfg):
    made = certs.make(cfg)
    assert certs.CertsMade.from_json(made.to_json()) == made
    data = made.to_dict()
    assert list(data) == ["certificates", "folder"]
    assert set(data["certificates"][0]) == {"certificate", "file", "subject", "names", "serial", "not_after",
                                            "days_left", "action"}
    lines = made.render().splitlines()
    assert lines[0].split() == ["certificate", "action", "days_left", "not_after", "names"]
    assert lines[1].split()[:2] == ["ca", "made"]
    assert int(lines[1].split()[2]) in (cfg.certs.ca_days - 1, cfg.certs.ca_days)
    assert [line.split()[0] for line in lines[2:-1]] == LEAVES
    assert lines[-1] == (f"in {certs.tls_dir(cfg)}; the CA's key stays on this host (docs/tls.md says where its "
                         "copy belongs)")
    assert [r.action for r in certs.make(cfg, renew=True).rows][1:] == ["re-issued (renewal asked)"] * len(LEAVES)
