"""A running service container is kept only when it is made of what the configuration says now: the
fingerprint of its image and settings (ports, mounts, network) decides. CI once reused a container left by a
killed run that published an old port."""

from common import config
from dr.services import stack


def spec(tmp_path, **overrides):
    cfg = config.load(overrides={"secrets_dir": str(tmp_path / "secrets"), "data_root": str(tmp_path / "data"),
                                 **overrides})
    return stack.webmirror_spec(cfg)


def test_the_same_configuration_gives_the_same_fingerprint(tmp_path):
    assert spec(tmp_path).fingerprint("sha256:1") == spec(tmp_path).fingerprint("sha256:1")


def test_another_port_image_or_mount_gives_another(tmp_path):
    base = spec(tmp_path).fingerprint("sha256:1")
    assert spec(tmp_path, **{"webmirror.port": 8081}).fingerprint("sha256:1") != base
    assert spec(tmp_path).fingerprint("sha256:2") != base
    assert spec(tmp_path, data_root=str(tmp_path / "elsewhere")).fingerprint("sha256:1") != base


def test_postgres_gets_its_volume_and_every_role_password_read_only_and_no_port(tmp_path):
    from database import db

    cfg = config.load(overrides={"instance": "inst", "secrets_dir": str(tmp_path / "secrets")})
    pg = stack.postgres_spec(cfg)
    assert pg.image == cfg.image("postgres") and pg.named_volumes == ("inst-pgdata",)
    assert pg.kwargs["volumes"]["inst-pgdata"] == {"bind": "/var/lib/postgresql/volume", "mode": "rw"}
    for role in db.ROLES:
        name = db.password_name(role)
        assert pg.kwargs["volumes"][str(tmp_path / "secrets" / name)] == {"bind": f"/run/secrets/{name}", "mode": "ro"}
        assert (tmp_path / "secrets" / name).stat().st_mode & 0o077 == 0  # made private when missing
    assert "ports" not in pg.kwargs  # only the instance network reaches PostgreSQL


def test_ferretdb_holds_no_secret_and_is_published_where_configured(tmp_path):
    cfg = config.load(overrides={"instance": "inst", "db.port": 27999, "db.bind": "127.0.0.1"})
    ferret = stack.db_spec(cfg)
    assert ferret.kwargs["environment"] == {"PG_HOST": "inst-postgres"}
    assert "volumes" not in ferret.kwargs
    assert ferret.kwargs["ports"] == {"27017/tcp": ("127.0.0.1", 27999)}


def _role_cfg(tmp_path, role, **overrides):
    values = {"instance": "inst", "secrets_dir": str(tmp_path / "secrets"), "host.role": role, "db.tls": True}
    if role == "aggregator":
        values["db.host"] = "db.example.org"
    return config.load(overrides={**values, **overrides})


def _certs(tmp_path):
    tls = tmp_path / "secrets" / "tls"
    tls.mkdir(parents=True)
    for name in ("postgres.crt", "postgres.key"):
        (tls / name).write_text("x")


def test_each_host_role_runs_its_own_services(tmp_path):
    assert stack.services_of(_role_cfg(tmp_path, "all")) == ("postgres", "db", "webmirror")
    assert stack.services_of(_role_cfg(tmp_path, "database")) == ("postgres", "db")
    assert stack.services_of(_role_cfg(tmp_path, "aggregator")) == ("webmirror",)


def test_the_database_host_publishes_postgresql_for_tls_from_any_address(tmp_path):
    _certs(tmp_path)
    pg = stack.postgres_spec(_role_cfg(tmp_path, "database", **{"db.bind": "0.0.0.0", "db.postgres_port": 5433}))
    assert pg.kwargs["ports"] == {"5432/tcp": ("0.0.0.0", 5433)}
    assert pg.kwargs["environment"]["PG_FROM"] == "all" and pg.kwargs["environment"]["PG_TLS"] == "1"
    one_host = stack.postgres_spec(_role_cfg(tmp_path, "all"))
    assert "ports" not in one_host.kwargs and "PG_FROM" not in one_host.kwargs["environment"]


def test_this_hosts_tools_reach_the_database_where_it_is(tmp_path):
    assert stack.db_address(_role_cfg(tmp_path, "aggregator", **{"db.port": 27117})) == ("db.example.org", 27117)
    assert stack.db_address(_role_cfg(tmp_path, "database", **{"db.bind": "0.0.0.0"})) == ("127.0.0.1", 27017)
    assert stack.db_address(_role_cfg(tmp_path, "database", **{"db.bind": "10.0.0.5"})) == ("10.0.0.5", 27017)
    assert stack.db_address(config.load(overrides={})) == ("127.0.0.1", 27017)


def test_the_offsite_server_serves_https_only_with_its_certificate(tmp_path):
    import pytest

    from common.errors import ServiceError
    from dr.services import offsite

    cfg = config.load(overrides={"instance": "inst", "secrets_dir": str(tmp_path / "secrets"), "offsite.serve_tls": True})
    with pytest.raises(ServiceError, match=r"offsite.serve_tls is on but .*offsite\.crt is missing"):
        offsite.spec(cfg)
    tls = tmp_path / "secrets" / "tls"
    tls.mkdir(parents=True)
    for name in ("offsite.crt", "offsite.key"):
        (tls / name).write_text("x")
    spec = offsite.spec(cfg)
    assert spec.kwargs["environment"]["OFFSITE_TLS"] == "1"
    assert spec.kwargs["volumes"][str(tls / "offsite.key")] == {"bind": "/run/tls/offsite.key", "mode": "ro"}
    assert offsite.repository_url(cfg) == "rest:https://inst-offsite:8000/aggregator"
    plain = config.load(overrides={"instance": "inst", "secrets_dir": str(tmp_path / "secrets")})
    assert "OFFSITE_TLS" not in offsite.spec(plain).kwargs["environment"]
    assert offsite.repository_url(plain) == "rest:http://inst-offsite:8000/aggregator"


def _mirror(tmp_path, **overrides):
    cfg = config.load(overrides={"data_root": str(tmp_path / "data"), "status.page_dir": str(tmp_path / "status"),
                                 **overrides})
    spec = stack.webmirror_spec(cfg)
    pages = [(host, m["bind"]) for host, m in spec.kwargs["volumes"].items() if m["bind"] != "/srv/archive"]
    assert all(m["mode"] == "ro" for m in spec.kwargs["volumes"].values())
    assert pages in ([], [(str(tmp_path / "status"), "/srv/status")], [(str(tmp_path / "status"), "/srv/status-local")])
    return (pages[0][1] if pages else None), spec.kwargs["ports"], stack.status_url(cfg)


def test_the_status_page_on_a_loopback_mirror_is_served_by_its_own_listener(tmp_path):
    """[webmirror] status = loopback (the default) and a loopback bind: the mirror's listener already is
    loopback-only."""
    assert _mirror(tmp_path) == ("/srv/status", {"8080/tcp": ("127.0.0.1", 8080)}, "http://127.0.0.1:8080/status/")
    assert _mirror(tmp_path, **{"webmirror.bind": "::1", "webmirror.port": 8090}) == \
        ("/srv/status", {"8080/tcp": ("::1", 8090)}, "http://[::1]:8090/status/")
    assert (tmp_path / "status").is_dir()  # made for the mount


def test_the_status_page_of_a_published_mirror_is_on_a_second_listener_on_loopback(tmp_path):
    """loopback and a bind beyond loopback: the page's folder is mounted where only nginx's second listener
    serves it (the main one answers 404 at /status/), and that listener is published on 127.0.0.1 alone."""
    for bind in ("0.0.0.0", "10.0.0.5", "::"):
        assert _mirror(tmp_path, **{"webmirror.bind": bind, "webmirror.status_port": 8099}) == (
            "/srv/status-local", {"8080/tcp": (bind, 8080), "8081/tcp": ("127.0.0.1", 8099)},
            "http://127.0.0.1:8099/status/")


def test_a_public_status_page_is_served_like_the_archive(tmp_path):
    assert _mirror(tmp_path, **{"webmirror.status": "public", "webmirror.bind": "10.0.0.5"}) == \
        ("/srv/status", {"8080/tcp": ("10.0.0.5", 8080)}, "http://10.0.0.5:8080/status/")
    assert _mirror(tmp_path, **{"webmirror.status": "public", "webmirror.bind": "0.0.0.0"}) == \
        ("/srv/status", {"8080/tcp": ("0.0.0.0", 8080)}, "http://127.0.0.1:8080/status/")


def test_no_status_page_when_off_or_without_a_page_folder(tmp_path):
    for overrides in ({"webmirror.status": "off"}, {"webmirror.status": "off", "webmirror.bind": "0.0.0.0"},
                      {"webmirror.status": "public", "status.page_dir": ""},
                      {"webmirror.bind": "0.0.0.0", "status.page_dir": ""}):
        pages, ports, url = _mirror(tmp_path, **overrides)
        assert pages is None and list(ports) == ["8080/tcp"] and url is None, overrides
