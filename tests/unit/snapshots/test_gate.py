"""The manifest's gate (snapshots/gate.py), run as restic runs it: a child process that passes the file on
once the set writes it, and exits 1 with no output when the set stops it, when its folder is removed, or
when its parent (restic) is gone; and the restic wrapper's shortcut for a local repository's lock folder."""

import subprocess
import sys
import time
from pathlib import Path

from snapshots import gate
from snapshots.restic import Restic

ROOT = Path(__file__).resolve().parents[3]


def start(g: gate.Gate) -> subprocess.Popen:
    return subprocess.Popen(g.argv(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_the_gate_passes_the_file_on_once_it_is_written(tmp_path):
    g = gate.Gate(tmp_path / "manifest.json", tmp_path / "stop")
    proc = start(g)
    time.sleep(0.2)
    assert proc.poll() is None  # waiting
    g.open(b'{"set": "x"}\n')
    g.stop()  # said after open: no effect
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out == b'{"set": "x"}\n' and not (tmp_path / "stop").exists()


def test_a_stopped_gate_writes_nothing_and_fails(tmp_path):
    g = gate.Gate(tmp_path / "manifest.json", tmp_path / "stop")
    proc = start(g)
    g.stop()
    g.open(b"too late\n")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == b"" and b"nothing was stored" in err
    assert not (tmp_path / "manifest.json").exists()


def test_a_gate_whose_folder_is_removed_fails(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    proc = start(gate.Gate(folder / "manifest.json", folder / "stop"))
    folder.rmdir()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == b""


def test_a_gate_whose_restic_died_fails(tmp_path):
    """sleep stands for restic (the gate's parent when restic runs it): gone, and the gate gives up."""
    g = gate.Gate(tmp_path / "manifest.json", tmp_path / "stop")
    restic = subprocess.Popen(["sleep", "600"])
    proc = subprocess.Popen([*g.argv(), "--watch", str(restic.pid)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    restic.kill()
    restic.wait()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == b"" and b"nothing was stored" in err


def test_a_local_repository_without_lock_files_needs_no_restic_run(tmp_path):
    repo = tmp_path / "repo"
    (repo / "locks").mkdir(parents=True)
    r = Restic(str(repo), str(tmp_path / "password"))
    assert r.local_folder() == repo and not r.no_lock_files()  # no config: not a repository, restic says why
    (repo / "config").write_bytes(b"x")
    assert r.no_lock_files()
    assert Restic(f"local:{repo}", "p").no_lock_files()
    (repo / "locks" / "0123abcd").write_bytes(b"x")
    assert not r.no_lock_files()
    for other in ("rest:http://127.0.0.1:8000/", "sftp:host:/srv/repo", "relative/repo"):
        assert Restic(other, "p").local_folder() is None and not Restic(other, "p").no_lock_files()
    (repo / "locks" / "0123abcd").unlink()
    (repo / "locks").rmdir()
    assert not r.no_lock_files()  # no lock folder: restic says what is wrong


def test_a_copy_stopped_at_its_gate_copies_nothing(tmp_path):
    """`pgcopy copy --wait-for`: stopped before it was opened, pg_basebackup never runs and nothing is written."""
    g = gate.Gate(tmp_path / "copy.go", tmp_path / "copy.stop")
    argv = [sys.executable, "-m", "snapshots.pgcopy", "copy", "--host", "nowhere.invalid", "--user", "backup",
            "--password-file", str(tmp_path / "pw"), "--info-file", str(tmp_path / "info.json")]
    proc = subprocess.Popen([*argv, *g.wait_args()], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    g.stop()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == b"" and b"nothing was copied" in err
    assert b"pg_basebackup" not in err and not (tmp_path / "info.json").exists()
    half = subprocess.run([*argv, "--wait-for", str(g.file)], cwd=ROOT, capture_output=True)
    assert half.returncode == 2 and b"--wait-for and --stop-file go together" in half.stderr
