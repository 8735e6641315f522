"""The build artifacts read back as `restic dump -a tar` streams them: each binary's content against the
sha256 recorded beside it (the form snapshots/artifacts.py saves and restores); the artifacts snapshot's
restic arguments."""

import json
from pathlib import Path

from common.digest import sha256_file
from snapshots import artifacts
from unit.snapshots.test_manifest import tar_of


def make_artifacts(folder):
    binary = folder / "ferretdb-v1.24.2" / "ferretdb"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF" + bytes(range(256)) * 64)
    binary.with_suffix(".json").write_text(json.dumps({"version": "v1.24.2", "sha256": sha256_file(binary)}))
    return binary


def read_back(folder):
    return artifacts.tar_digests(tar_of(folder, "artifacts"), "/artifacts")


def test_artifacts_read_back_match_their_recorded_sha256(tmp_path):
    make_artifacts(tmp_path)
    content, recorded = read_back(tmp_path)
    assert recorded == artifacts.inventory(tmp_path)  # the same view as saving and restoring have
    assert artifacts.problems(content, recorded) == []


def test_a_changed_or_missing_binary_or_none_at_all_is_a_problem(tmp_path):
    binary = make_artifacts(tmp_path)
    data = bytearray(binary.read_bytes())
    data[100] ^= 0x01
    binary.write_bytes(bytes(data))
    assert artifacts.problems(*read_back(tmp_path)) == ["ferretdb-v1.24.2/ferretdb does not match its recorded sha256"]
    binary.unlink()
    assert artifacts.problems(*read_back(tmp_path)) == ["ferretdb-v1.24.2/ferretdb is missing"]
    binary.with_suffix(".json").unlink()
    assert artifacts.problems(*read_back(tmp_path)) == ["it holds no artifact with its metadata"]


def test_the_stored_snapshot_is_remembered_while_the_repository_still_holds_it(tmp_path):
    """No restic runs here: a remembered snapshot is trusted only when its file is in the local repository,
    for the same repository and fingerprint; anything else sends save() to restic's listing again."""
    from snapshots.restic import Restic

    repo = tmp_path / "repo"
    (repo / "snapshots").mkdir(parents=True)
    restic = Restic(str(repo), str(tmp_path / "password"), str(tmp_path / "cache"))
    full = "ab" * 32
    artifacts._remember(restic, "fp1", full)
    assert artifacts._known(restic, "fp1") is None  # not in the repository (forgotten, or another copy)
    (repo / "snapshots" / full).write_bytes(b"x")
    assert artifacts._known(restic, "fp1") == full
    assert artifacts._known(restic, "fp2") is None  # other binaries
    other = Restic(str(tmp_path / "other"), restic.password_file, restic.cache_dir)
    assert artifacts._known(other, "fp1") is None  # another repository
    remote = Restic("rest:http://127.0.0.1:1/", restic.password_file, str(tmp_path / "cache2"))
    artifacts._remember(remote, "fp1", full)
    assert artifacts._known(remote, "fp1") is None  # only restic can tell: nothing remembered
    (tmp_path / "cache" / artifacts.KNOWN_NAME).write_text("{not json")
    assert artifacts._known(restic, "fp1") is None


def test_the_artifacts_snapshot_is_tagged_with_its_kind_and_fingerprint_and_no_set():
    assert artifacts.snapshot_args("aggregator-dr-backup", "0123456789abcdef", Path("/artifacts")) == [
        "--host", "aggregator-dr-backup", "--tag", "kind:artifacts", "--tag", "artifacts:0123456789abcdef",
        "/artifacts"]


def test_the_newest_artifacts_snapshot_and_its_fingerprint_are_read_from_any_listing():
    listing = [{"id": "a" * 64, "time": "2026-01-01T00:00:00Z", "tags": ["set:20260101T000000Z", "kind:files"]},
               {"id": "b" * 64, "time": "2026-01-02T00:00:00Z", "tags": ["kind:artifacts", "artifacts:fp1"]},
               {"id": "c" * 64, "time": "2026-01-03T00:00:00Z", "tags": ["kind:artifacts", "artifacts:fp2"]},
               {"id": "d" * 64, "time": "2026-01-04T00:00:00Z", "tags": None}]
    assert artifacts.newest(listing)["id"] == "c" * 64 and artifacts.fingerprint_of(artifacts.newest(listing)) == "fp2"
    assert artifacts.newest(listing[:1]) is None and artifacts.newest([]) is None
    assert artifacts.fingerprint_of(listing[0]) is None
