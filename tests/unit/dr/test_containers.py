"""What a tool says inside its container reaches the operator with the host's paths (containers.host_paths):
whole paths only, longest bind first, never replaced twice, and URLs without credentials."""

import json

import pytest

from dr import containers

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


class _FakeContainer:
    def __init__(self, record):
        self.record = record

    def start(self):
        pass

    def logs(self, stream=False, follow=False, stdout=True, stderr=False):
        if stream:
            return iter([b"reading /run/secrets/db-password\n"])
        return b'{"at": "/data/raw"}'

    def wait(self):
        return {"StatusCode": 0}

    def remove(self, force=False):
        self.record["removed"] = True


class _FakeClient:
    def __init__(self, record):
        self.record = record
        self.containers = self

    def create(self, image, cmd, **kwargs):
        self.record.update(image=image, cmd=cmd, **kwargs)
        return _FakeContainer(self.record)


@pytest.mark.parametrize("network, expected", [
    ("none", {"network_mode": "none"}), (None, {"network": None}), (["inst"], {"network": "inst"})])
def test_run_tool_passes_the_user_and_the_network_and_rewrites_with_the_given_binds(monkeypatch, caplog, network,
                                                                                     expected):
    from common import config
    from dr import docker_api

    record = {}
    monkeypatch.setattr(docker_api, "image_or_none", lambda image: object())
    monkeypatch.setattr(docker_api, "client", lambda: _FakeClient(record))
    caplog.set_level("INFO", logger="aggregator-dr")
    volumes = {"/tmp/copy-of-secret": {"bind": "/run/secrets/db-password", "mode": "ro"},
               "/srv/data": {"bind": "/data", "mode": "rw"}}
    binds = {"/run/secrets/db-password": "/etc/aggregator-dr/secrets/db-password", "/data": "/srv/data"}
    code, out = containers.run_tool(config.load(overrides={}), "importer", ["x"], volumes, network, "importer",
                                    user="990:990", binds=binds)
    assert code == 0 and json.loads(out) == {"at": "/srv/data/raw"}
    assert record["user"] == "990:990" and record["removed"]
    assert {k: record.get(k, "absent") for k in expected} == expected
    if network == "none":
        assert "network" not in record
    assert "reading /etc/aggregator-dr/secrets/db-password" in caplog.text  # the original, not the copy
