"""A set's cut of the data root (snapshots/cut.py), and the stages' view of it (stages/cut.py): real files, real
hard links, a real second file system for the refusal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dr.jobs import ownership
from snapshots import cut, manifest
from stages import cut as stage_cut
from stages import journal
from stages.inputs import InputError, open_input
from stages.layout import REGULAR, DataRoot

ROOT = Path(__file__).resolve().parents[3]


def populated(tmp_path: Path) -> DataRoot:
    dr = DataRoot(tmp_path / "data").ensure()
    for rel, text in {"raw/c1/a.yaml": "a", "staging/b.yaml": "bb", "reports/c.yaml": "ccc",
                      "reports/c.jsonl": "{}", "archive/2024-01-01/d.yaml": "dddd", "archive/index.json": "{}",
                      "quarantine/bad/e.yaml": "e", "originals/c1/a.yaml.gz": "gz", ".journal-recovered-all": "7",
                      # left out of the files snapshot, so out of the cut
                      "raw/.incoming/c1/.x.yaml": "partial", "staging/.f.yaml.tmp-123": "tmp", ".lock": "",
                      ".lock-sync": "", "releases/s1-local.json": "{}"}.items():
        p = dr.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    journal.append(dr, {"op": "note", "stage": "sync", "what": "one"})
    os.utime(dr.state("archive"), ns=(1_000_000_000, 1_000_000_000))
    os.chmod(dr.state("raw") / "c1", 0o750)
    return dr


def tree_files(dr: DataRoot) -> set[str]:
    tree = stage_cut.tree(dr.root)
    return {str(Path(here, f).relative_to(tree)) for here, _, files in os.walk(tree) for f in files}


def test_the_cut_names_every_file_the_snapshot_holds_and_nothing_else(tmp_path):
    dr = populated(tmp_path)
    made = cut.make(dr)
    tree = stage_cut.tree(dr.root)
    assert tree_files(dr) == {"raw/c1/a.yaml", "staging/b.yaml", "reports/c.yaml", "reports/c.jsonl",
                              "archive/2024-01-01/d.yaml", "archive/index.json", "quarantine/bad/e.yaml",
                              "originals/c1/a.yaml.gz", ".journal-recovered-all"}
    assert made.files == 9
    for rel in tree_files(dr):  # the same file: a second name, no byte copied
        assert os.lstat(tree / rel).st_ino == os.lstat(dr.root / rel).st_ino
        assert os.lstat(dr.root / rel).st_nlink == 2
    # folders as they are: mode, owner, modification time
    for rel in ("", "raw", "raw/c1", "archive", "originals"):
        a, b = os.lstat(dr.root / rel), os.lstat(tree / rel)
        assert (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) == (b.st_mode, b.st_uid, b.st_gid, b.st_mtime_ns), rel
    # the index names each file's inode, written before the links
    assert stage_cut.read_index(dr.root) == {os.lstat(dr.root / r).st_ino: r for r in tree_files(dr)}
    assert manifest.directories(tree) == manifest.directories(dr.root)


def test_what_moves_after_the_cut_leaves_the_cut_as_it_was(tmp_path):
    dr = populated(tmp_path)
    position = journal.position(dr)
    before = manifest.directories(dr.root)
    made = cut.make(dr)
    # the pipeline goes on: a rename, a removal, a new file, a replaced file, the journal grows
    os.rename(dr.root / "staging/b.yaml", dr.root / "reports/b.yaml")
    os.unlink(dr.root / "raw/c1/a.yaml")
    (dr.root / "archive/2024-01-01/new.yaml").write_text("new")
    (dr.root / "archive/index.json.tmp").write_text('{"changed": 1}')
    os.replace(dr.root / "archive/index.json.tmp", dr.root / "archive/index.json")
    journal.append(dr, {"op": "note", "stage": "sync", "what": "after the cut"})
    cut.copy_journal(dr, position, made)
    tree = stage_cut.tree(dr.root)
    assert manifest.directories(tree) == before
    assert (tree / "archive/index.json").read_text() == "{}" and (tree / "raw/c1/a.yaml").read_text() == "a"
    assert (tree / "journal.jsonl").read_bytes() == dr.journal.read_bytes()[:position]
    assert os.lstat(tree / "journal.jsonl").st_nlink == 1 and os.lstat(dr.journal).st_nlink == 1


def test_clear_removes_the_cut_and_keeps_its_mount_point(tmp_path):
    dr = populated(tmp_path)
    cut.copy_journal(dr, journal.position(dr), cut.make(dr))
    assert cut.clear(dr.root) == 10
    tree = stage_cut.tree(dr.root)
    assert tree.is_dir() and not any(tree.iterdir()) and not stage_cut.index_path(dr.root).exists()
    assert all(os.lstat(dr.root / r).st_nlink == 1 for r in ("staging/b.yaml", "archive/index.json"))
    assert cut.clear(dr.root) == 0  # idempotent
    assert cut.clear(tmp_path / "nothing-here") == 0


def test_a_cut_is_made_only_where_none_is(tmp_path):
    dr = populated(tmp_path)
    cut.make(dr)
    with pytest.raises(cut.CutError, match="already there"):
        cut.make(dr)
    cut.clear(dr.root)
    assert cut.make(dr).files == 9


def test_the_stages_take_a_file_named_by_the_cut_for_a_file_with_one_name(tmp_path):
    dr = populated(tmp_path)
    cut.make(dr)
    kinds = dict(dr.entries("staging")) | dict(dr.entries("archive"))
    assert set(kinds.values()) == {REGULAR}
    with open_input(dr.root / "staging/b.yaml") as fh:
        assert fh.read() == b"bb"
    # renamed after the cut: the index still explains its second name
    os.rename(dr.root / "staging/b.yaml", dr.root / "reports/b2.yaml")
    assert dict(dr.entries("reports"))[dr.root / "reports/b2.yaml"] == REGULAR
    with open_input(dr.root / "reports/b2.yaml") as fh:
        assert fh.read() == b"bb"


def test_a_hard_link_of_its_own_is_still_refused_with_a_cut_or_without(tmp_path):
    dr = populated(tmp_path)
    outside = tmp_path / "secret"
    outside.write_text("s3cret")
    os.link(outside, dr.root / "raw/c1/linked.yaml")
    assert dict(dr.entries("raw"))[dr.root / "raw/c1/linked.yaml"] == "hard link (2 names)"
    cut.make(dr)  # now three names, one of them the cut's
    assert dict(dr.entries("raw"))[dr.root / "raw/c1/linked.yaml"] == "hard link (2 names)"
    with pytest.raises(InputError, match="hard link"):
        open_input(dr.root / "raw/c1/linked.yaml")
    # a file the cut never named, with two names, is refused while a cut exists too
    os.link(outside, dr.root / "raw/c1/later.yaml")
    assert dict(dr.entries("raw"))[dr.root / "raw/c1/later.yaml"] == "hard link (3 names)"


def test_a_cut_not_made_by_root_explains_nothing(tmp_path):
    dr = populated(tmp_path)
    cut.make(dr)
    os.chown(stage_cut.folder(dr.root), 990, 990)  # as a stage (or what a collector sent) could have made it
    assert dict(dr.entries("staging"))[dr.root / "staging/b.yaml"] == "hard link (2 names)"


def test_a_cut_removed_or_remade_meanwhile_is_looked_at_again(tmp_path):
    dr = populated(tmp_path)
    cut.make(dr)
    path = dr.root / "staging/b.yaml"
    names = stage_cut.Names(dr.root)
    st = os.lstat(path)
    assert names.outside(st, lambda: os.lstat(path)) == 1
    cut.clear(dr.root)  # between a stage's stat and its look at the cut
    assert names.outside(st, lambda: os.lstat(path)) == 1
    # a newer cut, made while this Names kept the older index: read again
    cut.make(dr)
    os.rename(path, dr.root / "staging/b-renamed.yaml")
    moved = dr.root / "staging/b-renamed.yaml"
    cut.clear(dr.root)
    cut.make(dr)
    st = os.lstat(moved)
    assert st.st_nlink == 2 and names.outside(st, lambda: os.lstat(moved)) == 1


def test_a_half_made_cut_never_makes_a_report_look_like_a_hard_link(tmp_path):
    """A set killed while it made its cut: the index was written first, only some links exist."""
    dr = populated(tmp_path)
    cut.make(dr)
    tree = stage_cut.tree(dr.root)
    os.unlink(tree / "staging/b.yaml")  # as if the set died before this link
    assert set(dict(dr.entries("staging")).values()) == {REGULAR}
    assert set(dict(dr.entries("archive")).values()) == {REGULAR}


def test_handing_the_data_root_over_skips_the_cut_and_gives_files_it_names(tmp_path):
    dr = populated(tmp_path)
    dropped = dr.root / "raw/c1/dropped.yaml"
    dropped.write_text("by hand")
    os.chown(dropped, 0, 0)
    cut.make(dr)
    os.chown(stage_cut.folder(dr.root), 0, 0)
    ownership.hand_over(dr.root, 990, 990)
    assert os.lstat(dropped).st_uid == 990  # one name besides the cut's: handed over
    assert os.lstat(stage_cut.folder(dr.root)).st_uid == 0 and os.lstat(stage_cut.tree(dr.root)).st_uid == 0


def test_the_manifest_and_the_files_snapshot_leave_out_the_same_paths():
    for rel, held in {"raw/a.yaml": True, "raw/.incoming/a": False, ".lock": False, ".lock-sync": False,
                      "releases/x.json": False, ".cut/tree/raw/a.yaml": False, ".cut": False,
                      "archive/.a.yaml.tmp-9": False, ".journal-recovered-all": True, "journal.jsonl": True,
                      "releases": False, "releasesX": True}.items():
        assert manifest.backed_up(rel) is held, rel


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and util-linux's unshare "
                    "for a private mount (CI runs as root)")
def test_a_file_system_without_room_for_a_second_name_is_refused_clearly(tmp_path):
    """The cut's folder on another file system (a tmpfs, in a mount namespace of its own): link(2) fails
    with EXDEV, as on a file system without hard links; the set is refused with what to do."""
    dr = populated(tmp_path)
    stage_cut.folder(dr.root).mkdir()
    program = ("import sys; from snapshots import cut; from stages.layout import DataRoot\n"
               "try:\n    cut.make(DataRoot(sys.argv[1]))\n"
               "except cut.CutError as exc:\n    print(exc); sys.exit(3)\n")
    shell = f'mount -t tmpfs none "$1/.cut" && exec "{sys.executable}" -c "$2" "$1"'
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", shell, "sh", str(dr.root), program],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert "must allow hard links" in done.stdout and "backup.cut = false" in done.stdout
