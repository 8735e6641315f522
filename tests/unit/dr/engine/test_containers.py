"""What a tool says inside its container reaches the operator with the host's paths (containers.host_paths):
whole paths only, longest bind first, never replaced twice, and URLs without credentials."""

import json

import pytest

from dr.engine import containers

BINDS = {"/repo": "/var/lib/aggregator-dr/restic", "/data": "/srv/aggr data",
         "/run/secrets/restic-password": "/etc/aggregator-dr/secrets/restic-password",
         "/run/secrets": "/etc/aggregator-dr/secrets", "/cache/restic": "/var/cache/aggregator-dr/restic"}


@pytest.mark.parametrize("text, expected", [
    ("there is no restic repository at /repo (run `invoke repo-init`)",
     "there is no restic repository at /var/lib/aggregator-dr/restic (run `invoke repo-init`)"),
    ("the password in /run/secrets/restic-password does not open the repository at /repo",
     "the password in /etc/aggregator-dr/secrets/restic-password does not open the repository at "
     "/var/lib/aggregator-dr/restic"),
    ("secret file /run/secrets/db-password does not exist",  # the longest bind that is a whole path wins
     "secret file /etc/aggregator-dr/secrets/db-password does not exist"),
    # the repository's own data/ folder: /data inside the replaced /repo path is not replaced again
    ("open /repo/data/b6/b69e84c5: no such file", "open /var/lib/aggregator-dr/restic/data/b6/b69e84c5: no such file"),
    ("/data is not empty (archive: 3 files)", "/srv/aggr data is not empty (archive: 3 files)"),
    ("moved aside to /data/.replaced-20261128T055449Z.", "moved aside to /srv/aggr data/.replaced-20261128T055449Z."),
    ("no artifacts in /data.", "no artifacts in /srv/aggr data."),
    ('{"path": "/data"}', '{"path": "/srv/aggr data"}'),
    ("lock /cache/restic/.aggregator-dr.lock held", "lock /var/cache/aggregator-dr/restic/.aggregator-dr.lock held"),
    # not a bind path, only a name that starts or ends like one
    ("dump /database.dbdump", "dump /database.dbdump"),
    ("/data2 and /data.json and /data-old", "/data2 and /data.json and /data-old"),
    ("/srv/data and ./data and ~/data", "/srv/data and ./data and ~/data"),
    ("/cache/other", "/cache/other"),
    ("rest:http://aggregator:s3cret@backup-host:8000/aggregator failed",
     "rest:http://backup-host:8000/aggregator failed"),
    ("sftp://user@host//srv/repo", "sftp://host//srv/repo"),
    ("rest:http://backup-host:8000/a@b", "rest:http://backup-host:8000/a@b"),
])
def test_container_paths_become_host_paths(text, expected):
    assert containers.host_paths(text, BINDS) == expected


def test_no_binds_still_hides_credentials():
    assert containers.host_paths("at /repo via https://u:p@h/x", {}) == "at /repo via https://h/x"


def test_volumes_give_the_binds_and_a_json_result_stays_json():
    volumes = {"/srv/aggr data": {"bind": "/data", "mode": "rw"},
               "/etc/keys/id_ed25519": {"bind": "/etc/keys/id_ed25519", "mode": "ro"},  # mounted where it is
               'C:/odd "quoted" path': {"bind": "/repo", "mode": "rw"}}
    binds = containers.bind_map(volumes)
    assert binds == {"/data": "/srv/aggr data", "/repo": 'C:/odd "quoted" path'}
    out = json.dumps({"repository": "/repo", "problems": ["open /repo/config: denied"], "n": 3})
    assert json.loads(containers.host_output(out, binds)) == {
        "repository": 'C:/odd "quoted" path', "problems": ['open C:/odd "quoted" path/config: denied'], "n": 3}
    assert containers.host_output("Traceback ... /data/raw/x.yaml\n", binds) == \
        "Traceback ... /srv/aggr data/raw/x.yaml\n"


@pytest.mark.parametrize("network, where, extra", [
    ("none", {"network_mode": "none"}, []), (None, {"network": None}, []), ("inst", {"network": "inst"}, []),
    (["inst", "offsite"], {"network": "inst"}, ["offsite"])])
def test_create_args_place_the_tool_on_its_networks_as_its_user(network, where, extra):
    from common import config

    cfg = config.load(overrides={"instance": "inst"})
    volumes = {"/srv/data": {"bind": "/data", "mode": "rw"}}
    kwargs, connect = containers.create_args(cfg, "importer", ["x"], volumes, network, "import",
                                             environment={"A": "1"}, user="990:990")
    assert connect == extra
    assert {k: kwargs.get(k, "absent") for k in ("network", "network_mode")} == {
        "network": where.get("network", "absent"), "network_mode": where.get("network_mode", "absent")}
    assert kwargs["image"] == cfg.image("importer") and kwargs["command"] == ["x"] and kwargs["user"] == "990:990"
    assert kwargs["volumes"] == volumes and kwargs["environment"] == {"A": "1"}
    assert kwargs["labels"] == {"org.aggregator-dr.instance": "inst", "org.aggregator-dr.tool": "import"}


def test_create_args_without_a_user_keep_the_images_own():
    from common import config

    kwargs, _ = containers.create_args(config.load(overrides={}), "backup", ["x"], {}, None, "t")
    assert "user" not in kwargs and kwargs["environment"] == {}
