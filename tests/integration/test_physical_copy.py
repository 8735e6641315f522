"""The physical copy of the database in every set (snapshots/pgcopy.py, dr/jobs/restore.py): taken by the real
pg_basebackup into the real restic, restored into PostgreSQL's volume, started and verified; a copy that
does not verify or cannot be read changes nothing; the portable dump only in the sets the policy names; the
volume layout of earlier versions moved on start."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from conftest import copy_repository, running_instance

from common import config
from database import db
from dr.drills import sandbox
from dr.engine import docker_api
from dr.jobs import backup, restore
from dr.services import stack


def volume_entries(cfg) -> list[str]:
    """The top-level entries of the instance's PostgreSQL volume."""
    out = docker_api.client().containers.run(
        cfg.image("backup"), ["ls", "-A", "/v"], remove=True,
        volumes={stack.pg_volume_name(cfg): {"bind": "/v", "mode": "ro"}})
    return sorted(out.decode().split())


def live_counts(cfg) -> dict[str, int]:
    return backup.db_counts(cfg)


@pytest.fixture(scope="module")
def live(built, tmp_path_factory):
    """An instance with the sample reports imported, a repository, and two sets: the first carries the
    portable dump (daily: none yet), the second only the physical copy."""
    with running_instance(tmp_path_factory.mktemp("pc"), "aggr-pc", sample=True) as cfg:
        assert backup.run(cfg, "init")[0] == 0
        code, first = backup.run(cfg, "take")
        assert code == 0
        code, second = backup.run(cfg, "take")
        assert code == 0
        yield cfg, first, second


def test_every_set_carries_the_physical_copy_and_the_dump_when_due(live):
    cfg, first, second = live
    assert first.parts == ["files", "pg", "db"] and first.portable_dump is True
    assert second.parts == ["files", "pg"] and second.portable_dump is False and "db" not in second.snapshots
    for m in (first, second):
        p = m.physical
        assert (p.postgres_major, p.ferretdb_version) == (17, "v1.24.2") and p.postgres_version_num // 10000 == 17
        assert p.collections == p.collections_at_start == live_counts(cfg)  # nothing imported meanwhile
        assert p.collections["reports"] == 18 and p.sha256 is None and p.bytes > 1 << 20  # restic addresses it
    assert second.database.collections == second.physical.collections  # no dump: the copy's counts
    code, listed = backup.run(cfg, "list")
    assert code == 0 and {r.set_id: (r.complete, r.parts) for r in listed.sets} == {
        first.set_id: (True, ["db", "files", "manifest", "pg"]), second.set_id: (True, ["files", "manifest", "pg"])}
    code, checked = backup.run(cfg, "check")
    assert code == 0 and checked.ok and checked.verified == 2, checked


def test_never_and_every_decide_the_dump(live, tmp_path):
    cfg, first, second = live
    assert first.database_beside_files and second.database_beside_files  # a few MB changed: beside the files
    for policy, parts, beside_mb in (("every", ["files", "pg", "db"], 256), ("never", ["files", "pg"], 0)):
        work = copy_repository(cfg, tmp_path / policy, **{"backup.portable_dump": policy,
                                                          "backup.beside_files_mb": beside_mb})
        code, m = backup.run(work, "take")
        assert code == 0 and m.parts == parts, policy
        assert m.database_beside_files is (beside_mb > 0)  # 0: the copy waits for the files snapshot
        assert m.physical.collections == live_counts(cfg)
    code, result = backup.run(work, "check")
    assert code == 0 and result.ok, result.to_json()[:2000]


def test_a_restore_puts_the_copy_in_place_and_keeps_the_previous_database(live):
    cfg, _, second = live
    client = stack.db_client(cfg, "owner")
    client[cfg.db.database]["reports"].insert_one({"_id": "written-after-the-set"})
    client.close()
    with pytest.raises(restore.DbRestoreFailed, match="is not empty"):
        restore.restore(cfg, second.set_id, files=False)
    done = restore.restore(cfg, second.set_id, files=False, force=True)
    assert done.copy is not None and done.dump is None and done.files is None
    assert done.copy.collections == second.physical.collections == live_counts(cfg)
    assert done.copy.bytes == second.physical.bytes and done.copy.replaced.startswith(
        f"replaced-{second.set_id}-")
    assert done.copy.replaced in volume_entries(cfg) and "data" in volume_entries(cfg)
    client = stack.db_client(cfg, "reader")
    assert client[cfg.db.database]["reports"].find_one({"_id": "written-after-the-set"}) is None
    assert client[cfg.db.database]["measurements"].count_documents({}) == second.physical.collections["measurements"]
    client.close()
    stack.check_db(cfg)  # every role logs in: roles and grants came back with the copy


def test_a_copy_that_fails_its_verification_puts_the_previous_database_back(live):
    cfg, _, second = live
    client = stack.db_client(cfg, "owner")
    client[cfg.db.database]["reports"].insert_one({"_id": "still-here-after-a-failed-restore"})
    client.close()
    before = live_counts(cfg)
    wrong = dataclasses.replace(second.physical, collections={**second.physical.collections, "reports": 1000},
                                collections_at_start={**second.physical.collections_at_start, "reports": 1000})
    with pytest.raises(restore.DbRestoreFailed, match="reports: 18 documents restored.*previous database is back"):
        restore.restore_copy(cfg, second.set_id, dataclasses.replace(second, physical=wrong), force=True)
    assert live_counts(cfg) == before
    assert f"failed-{second.set_id}" in volume_entries(cfg)
    client = stack.db_client(cfg, "reader")
    assert client[cfg.db.database]["reports"].find_one({"_id": "still-here-after-a-failed-restore"}) is not None
    client.close()


# Run in the backup image with the repository at /repo: flips one byte in the middle of every data blob of the
# snapshot given as argv[1] (found through its tree and the repository's index), where the blob lies in its pack.
FLIP_BLOBS = r"""
import json, subprocess, sys
def restic(*args):
    return json.loads(subprocess.run(["restic", "--no-lock", *args], check=True, capture_output=True).stdout)
def contents(tree):
    for node in restic("cat", "blob", tree)["nodes"]:
        if node["type"] == "dir":
            yield from contents(node["subtree"])
        elif node["type"] == "file":
            yield from node.get("content") or []
wanted = set(contents(restic("cat", "snapshot", sys.argv[1])["tree"]))
index_ids = subprocess.run(["restic", "--no-lock", "list", "index"], check=True, capture_output=True,
                           text=True).stdout.split()
flipped = set()
for index_id in index_ids:
    for pack in restic("cat", "index", index_id)["packs"]:
        for blob in pack["blobs"]:
            if blob["id"] in wanted and blob["id"] not in flipped:
                with open(f"/repo/data/{pack['id'][:2]}/{pack['id']}", "r+b") as f:
                    f.seek(blob["offset"] + blob["length"] // 2)
                    byte = f.read(1)[0]
                    f.seek(-1, 1)
                    f.write(bytes([byte ^ 0xFF]))
                flipped.add(blob["id"])
assert wanted and flipped == wanted, (len(wanted), len(flipped))
print(len(flipped))
"""


def restic_in_backup_image(cfg, argv: list[str], label: str) -> str:
    """stdout of argv run in the backup image with cfg's repository at /repo (rw) and its password."""
    from common import secrets
    from dr.engine import containers

    password = secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD)
    code, out = containers.run_tool(
        cfg, "backup", argv,
        {cfg.backup.repository: {"bind": "/repo", "mode": "rw"},
         str(password): {"bind": "/run/secrets/restic-password", "mode": "ro"}}, None, label,
        environment={"RESTIC_REPOSITORY": "/repo", "RESTIC_PASSWORD_FILE": "/run/secrets/restic-password"})
    assert code == 0, out
    return out


def test_a_damaged_copy_is_refused_and_the_database_is_not_changed(live, tmp_path):
    cfg, _, second = live
    damaged = copy_repository(cfg, tmp_path / "damaged")
    # One byte flipped in every blob of the second set's copy (and nothing else: its manifest, trees and the
    # other parts stay readable), whichever packs restic put them in.
    flipped = restic_in_backup_image(damaged, ["python3", "-c", FLIP_BLOBS, second.snapshots["pg"]], "flip-blobs")
    assert int(flipped) > 0
    before = live_counts(cfg)
    with pytest.raises(restore.DbRestoreFailed, match="could not be put in place.*not changed"):
        restore.restore(damaged, second.set_id, files=False, force=True)
    assert live_counts(cfg) == before
    assert not any(e.startswith("restore-") for e in volume_entries(cfg))
    code, checked = backup.run(damaged, "check")
    assert code == 1 and second.set_id in checked.failed_sets


def test_a_drill_restores_the_physical_copy(live):
    from dr.drills import drill

    cfg, _, second = live
    report = drill.run(cfg, second.set_id)
    assert report.verdict == "pass" and report.database_from == "physical copy"
    assert report.documents_restored == sum(second.physical.collections.values())
    assert report.phases["copy"] > 0


def test_a_volume_of_the_earlier_layout_moves_into_data_on_start(built, tmp_path):
    """Before the physical copy, PostgreSQL's data directory was the volume itself."""
    cfg = config.derive(built, {"instance": "aggr-pc-layout", "secrets_dir": str(tmp_path / "secrets")})
    volume = stack.pg_volume_name(cfg)
    docker_api.remove_volume(volume)
    first = sandbox.start_database(cfg)
    client = db.client_as(cfg.db, cfg.secrets_dir, "owner", host="127.0.0.1", port=first.port)
    client[cfg.db.database]["reports"].insert_one({"_id": "from-the-earlier-layout"})
    client.close()
    for container in first.containers:
        container.stop()  # a clean shutdown; the volume stays
    # The earlier layout: the same cluster at the volume's root.
    docker_api.client().containers.run(
        cfg.image("backup"), ["sh", "-c", "mv /v/data/* /v/ && rmdir /v/data"], remove=True,
        volumes={volume: {"bind": "/v", "mode": "rw"}})
    assert "PG_VERSION" in volume_entries(cfg) and "data" not in volume_entries(cfg)
    database = sandbox.start_database(cfg)  # waits until the owner logs in
    try:
        assert volume_entries(cfg) == ["data"]
        client = db.client_as(cfg.db, cfg.secrets_dir, "reader", host="127.0.0.1", port=database.port)
        assert client[cfg.db.database]["reports"].find_one({"_id": "from-the-earlier-layout"}) is not None
        client.close()
    finally:
        sandbox.stop_database(database)
        docker_api.remove_network(stack.network_name(cfg))
        shutil.rmtree(tmp_path / "secrets", ignore_errors=True)


def test_a_copy_of_another_major_version_is_refused_pointing_to_the_dump(live, tmp_path, caplog):
    """The set's manifest says PostgreSQL 16 (as a set taken before a major upgrade would)."""
    import logging

    cfg, _, second = live
    other = copy_repository(cfg, tmp_path / "pg16")
    code, listed = backup.run(other, "list")
    manifest_id = next(r for r in listed.sets if r.set_id == second.set_id).snapshots["manifest"]
    edit = ("import json, sys; m = json.load(sys.stdin); m['physical']['postgres_major'] = 16; "
            "m['physical']['postgres_version_num'] = 160004; print(json.dumps(m))")
    script = (f"restic dump --quiet {manifest_id} /manifest.json | python3 -c \"{edit}\" > /tmp/m.json && "
              f"restic forget --quiet {manifest_id} && restic backup --quiet --host h --tag set:{second.set_id} "
              "--tag kind:manifest --tag parts:files+pg --stdin --stdin-filename manifest.json < /tmp/m.json")
    restic_in_backup_image(other, ["bash", "-o", "pipefail", "-c", script], "edit-manifest")
    before = live_counts(cfg)
    caplog.set_level(logging.INFO, logger="aggregator-dr")
    with pytest.raises(restore.DbRestoreFailed, match="the set's physical copy is of PostgreSQL 16, this host "
                       "runs PostgreSQL 17.*invoke restore --from-dump"):
        restore.restore(other, second.set_id, files=False, force=True)
    assert "stopping aggr-pc-postgres" not in "\n".join(r.getMessage() for r in caplog.records)
    assert live_counts(cfg) == before
    # The backup image refuses it too, whoever asks (a drill puts the copy in a volume before any check).
    code, _ = backup.run(other, "pg-restore", extra=("--snapshot-set", second.set_id, "--force"))
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert code == 1 and "this host runs PostgreSQL 17" in said and "Traceback" not in said
    assert not any(e.startswith("restore-") for e in volume_entries(cfg))
