"""Handing the data root to the stages' user (dr/jobs/ownership.py): folders and regular files with one name change
owner; links, hard links and special files are never followed nor changed; a warm run changes nothing."""

from __future__ import annotations

import os

import pytest

from common.errors import DrError
from dr.jobs import ownership

UID = GID = 990

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")


def owner(path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "data"
    (root / "raw" / "c1").mkdir(parents=True)
    (root / "archive" / "2014").mkdir(parents=True)
    (root / "journal.jsonl").write_text("{}\n")
    (root / ".lock").write_text("")
    (root / ".failures-importer.json").write_text("{}")
    dropped = root / "raw" / "c1" / "report.yaml"
    dropped.write_text("---\n")
    dropped.chmod(0o600)  # an operator's copy, as root
    (root / "archive" / "2014" / "r.yaml").write_text("x")
    outside = tmp_path / "shadow"
    outside.write_text("secret")
    outside.chmod(0o600)
    (root / "raw" / "c1" / "link.yaml").symlink_to(outside)
    os.link(outside, root / "raw" / "c1" / "hard.yaml")
    outside_dir = tmp_path / "etc"
    outside_dir.mkdir()
    (outside_dir / "passwd").write_text("root")
    (root / "raw" / "dirlink").symlink_to(outside_dir)
    os.mkfifo(root / "raw" / "c1" / "fifo.yaml")
    return root, outside, outside_dir


def test_folders_and_single_files_are_handed_over_links_and_specials_are_not(tree):
    root, outside, outside_dir = tree
    changed = ownership.hand_over(root, UID, GID)
    for rel in ("", "raw", "raw/c1", "archive", "archive/2014", "journal.jsonl", ".lock",
                ".failures-importer.json", "raw/c1/report.yaml", "archive/2014/r.yaml"):
        assert owner(root / rel) == (UID, GID), rel
    assert changed == 10
    assert oct((root / "raw" / "c1" / "report.yaml").stat().st_mode & 0o777) == "0o600"  # modes are kept
    for rel in ("raw/c1/link.yaml", "raw/dirlink", "raw/c1/fifo.yaml"):
        assert owner(root / rel) == (0, 0), rel
    assert owner(outside) == (0, 0) and owner(root / "raw" / "c1" / "hard.yaml") == (0, 0)
    assert owner(outside_dir) == (0, 0) and owner(outside_dir / "passwd") == (0, 0)


def test_a_warm_run_changes_nothing(tree):
    root, _, _ = tree
    ownership.hand_over(root, UID, GID)
    assert ownership.hand_over(root, UID, GID) == 0
    (root / "raw" / "c1" / "new.yaml").write_text("dropped later")
    assert ownership.hand_over(root, UID, GID) == 1


def test_a_missing_data_root_is_made(tmp_path):
    assert ownership.hand_over(tmp_path / "new" / "data", UID, GID) == 1
    assert owner(tmp_path / "new" / "data") == (UID, GID) and owner(tmp_path / "new") == (0, 0)


def test_a_data_root_reached_through_a_link_is_handed_over_below_its_real_folder(tmp_path):
    real = tmp_path / "real"
    (real / "raw").mkdir(parents=True)
    (tmp_path / "via").symlink_to(real)
    ownership.hand_over(tmp_path / "via", UID, GID)
    assert owner(real / "raw") == (UID, GID) and owner(tmp_path / "via") == (0, 0)


def test_an_entry_swapped_for_a_link_is_not_followed(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    victim = root / "f"
    victim.write_text("x")
    outside = tmp_path / "outside"
    outside.write_text("y")
    real_stat = os.stat

    def swap_after_look(name, *a, **kw):  # the look sees a file; then it becomes a link
        st = real_stat(name, *a, **kw)
        if name == "f":
            victim.unlink()
            victim.symlink_to(outside)
        return st
    monkeypatch.setattr(ownership.os, "stat", swap_after_look)
    ownership.hand_over(root, UID, GID)
    assert owner(outside) == (0, 0) and owner(victim) == (0, 0)


def test_without_permission_the_error_says_so(tmp_path, monkeypatch):
    def refuse(*a, **kw):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(ownership.os, "fchown", refuse)
    with pytest.raises(DrError, match="must run as root"):
        ownership.hand_over(tmp_path, UID, GID)
