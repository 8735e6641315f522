"""Snapshot sets under stress: taken while the pipeline moves a few thousand reports, and `invoke snapshot`
killed at random moments. Real pipeline stages in their images, real restic, real FerretDB."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import docker
import pytest
from conftest import running_instance

from common import config
from dr.drills import sandbox
from dr.jobs import backup, pipeline
from dr.jobs import restore as dr_restore
from dr.machine import configfile
from pipeline_helpers import generate, journal_lines
from stages import cut
from stages.layout import REPORT_STATES, DataRoot

ROOT = Path(__file__).resolve().parents[2]
REPORTS = 1500


@pytest.fixture(scope="module")
def busy(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("busy")
    with running_instance(root, "aggr-busy", **{"pipeline.workers": 2}) as cfg:
        assert backup.run(cfg, "init")[0] == 0
        yield cfg


def where_is_each_report(root: Path, raw_names: dict[str, str]) -> dict[str, list[str]]:
    """report id -> the state directories holding it (a restored data root, read by file names)."""
    seen: dict[str, list[str]] = {}
    for state in REPORT_STATES:
        for p in DataRoot(root).files(state):
            if p.suffix != ".yaml":
                continue
            rid = raw_names.get(p.name) if state == "raw" else p.name.split("-")[4]
            seen.setdefault(rid, []).append(state)
    return seen


@pytest.mark.parametrize("under_lock,reports", [(False, REPORTS), (True, 1000)])
def test_a_set_taken_while_the_pipeline_is_busy_restores_consistently(busy, under_lock, reports):
    """With the dump after the files snapshot (the default) and with the dump under the lock too."""
    cfg = config.derive(busy, {"backup.dump_under_lock": under_lock})
    dr = DataRoot(cfg.data_root).ensure()
    raw_names = generate(dr, random.Random(7 + under_lock), reports, 0, entries=(1, 3), body=(50, 400))
    ids = set(raw_names.values())

    lines, archived = journal_lines(dr), len(dr.files("archive"))
    quarantined = len(dr.files("quarantine"))
    results = []
    runner = threading.Thread(target=lambda: results.extend(pipeline.run(cfg).stages))
    runner.start()
    taken = []
    # One set while the sanitizer works, one while the importer works.
    for ready in (lambda: journal_lines(dr) >= lines + 300,
                  lambda: len(dr.files("archive")) >= archived + 100):
        while not ready():
            assert runner.is_alive(), f"the pipeline finished before the snapshot: {results}"
            time.sleep(0.2)
        code, m = backup.run(cfg, "take")
        assert code == 0 and m.dump_under_lock is under_lock
        taken.append(m)
    runner.join()
    assert [r.exit_code for r in results] == [0, 0], results
    # The stages ran beside each set's cut (a second name of every file): none took a report for a hard link.
    assert len(dr.files("quarantine")) == quarantined, [str(p) for p in dr.files("quarantine")][-5:]
    assert all(m.cut is not None and m.cut.files > 0 for m in taken) and all(m.paused_seconds < 30 for m in taken)
    assert not any(cut.tree(dr.root).iterdir()) and not cut.index_path(dr.root).exists()

    for m in taken:
        pending = sum(m.directories[s].reports for s in ("raw", "staging", "reports"))
        assert pending > 0 and m.directories["archive"].reports + m.directories["staging"].reports > 0, \
            f"set {m.set_id} was not taken mid-flight: {m.directories}"
        # The database comes back from the set's physical copy, put into the sandbox's volume before
        # PostgreSQL starts (as drills do); the files from their snapshot.
        copied = []
        put_copy = lambda sb_cfg, sid=m.set_id: copied.append(  # noqa: E731
            backup.run(sb_cfg, "pg-restore", extra=("--snapshot-set", sid)))
        with sandbox.throwaway(cfg, "busy", before_start=put_copy) as sb:
            assert copied[0][0] == 0, copied  # sha256 and pg_verifybackup checked
            code, restored = backup.run(sb.cfg, "restore", extra=("--snapshot-set", m.set_id), db=False)
            assert code == 0  # files verified against the manifest by the restore itself
            counts = dr_restore.verify(sb.cfg, m, lambda colls: dr_restore.read_through_ferretdb(sb.cfg, colls))
            where = where_is_each_report(Path(sb.cfg.data_root), raw_names)
            assert ids <= set(where), "reports missing from the set"
            doubled = {rid: states for rid, states in where.items() if len(states) != 1}
            assert not doubled, f"reports in more than one state: {list(doubled.items())[:5]}"
            archived = {p.name for p in DataRoot(sb.cfg.data_root).files("archive") if p.suffix == ".yaml"}
            in_db = {d["report_file"] for d in sb.db["reports"].find({}, {"report_file": 1})}
            assert archived <= in_db, "an archived report without its documents in the physical copy"
            assert m.physical.collections_at_start["reports"] <= counts["reports"] <= m.physical.collections["reports"]


def _snapshot_cmd(cfg_file: Path) -> list[str]:
    return [str(ROOT / "run"), "invoke", "snapshot", "--config", str(cfg_file)]


# Moments to kill at, by what the backup container logs: our start-up (restic locks), waiting for the data
# root's lock, the files backup, the physical copy and the dump streaming into restic, the manifest being stored.
MOMENTS = ("waiting for the exclusive lock", ": locked", ": cut of", "$ restic backup --json --host",
           "removing the cut", "--stdin-filename postgres.tar", "--stdin-filename database.dbdump",
           "--stdin-filename manifest.json")


def _backup_container(instance: str, timeout: float = 60):
    client = docker.from_env()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.containers.list(filters={"label": [f"org.aggregator-dr.instance={instance}",
                                                           "org.aggregator-dr.tool=snapshot-take"]})
        if found:
            return found[0]
        time.sleep(0.05)
    return None


def _wait_for_log(container, marker: str) -> bool:
    for line in container.logs(stream=True, follow=True):
        if marker in line.decode(errors="replace"):
            return True
    return False  # the container ended first


@pytest.mark.parametrize("seed", range(4))
def test_killing_snapshot_never_leaves_a_complete_set_that_does_not_restore(busy, seed, tmp_path):
    cfg = config.derive(busy, {"backup.portable_dump": "every"})  # every part of a set can be killed
    rng = random.Random(1000 + seed)
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(configfile.to_toml(cfg.as_dict()))
    before = {r.set_id for r in backup.run(cfg, "list")[1].complete}
    landed = []
    for _ in range(2):
        proc = subprocess.Popen(_snapshot_cmd(cfg_file), cwd=ROOT, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        moment = rng.choice(MOMENTS)
        whole = rng.random() < 0.7  # the host process and its container (a crash), or only the host process
        container = _backup_container(cfg.instance)
        assert container is not None, "invoke snapshot started no backup container"
        seen = _wait_for_log(container, moment)
        time.sleep(rng.uniform(0, 0.4))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if whole:
            try:
                container.kill()
            except docker.errors.APIError:
                pass  # it had finished
            container.remove(force=True)
        else:
            container.wait(timeout=600)  # it goes on alone; the next run removes it once it has exited
        landed.append(f"{'crash' if whole else 'host process'} at {moment!r}{'' if seen else ' (never reached)'}")
    # The next run succeeds: the data root's lock died with its holder, restic locks of ours are cleared.
    final = subprocess.run(_snapshot_cmd(cfg_file), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    assert docker.from_env().containers.list(all=True, filters={"label": [
        f"org.aggregator-dr.instance={cfg.instance}", "org.aggregator-dr.tool=snapshot-take"]}) == []
    # Every set listed as complete reads back whole and matches its manifest.
    code, result = backup.run(cfg, "check")
    assert code == 0 and result.ok, (landed, result.to_json()[:3000])
    complete = {r.set_id for r in backup.run(cfg, "list")[1].complete}
    assert len(complete - before) >= 1, landed
    dr = DataRoot(cfg.data_root)
    assert not any(cut.tree(dr.root).iterdir()) and not cut.index_path(dr.root).exists(), landed


def test_a_set_killed_between_its_cut_and_its_removal_holds_nothing_up(busy, tmp_path):
    """Host and backup container killed while the cut exists (its files snapshot running): the stages go on
    with every file's second name in place and take none for a hard link; the next set clears the cut."""
    cfg = config.derive(busy, {"backup.portable_dump": "never"})
    dr = DataRoot(cfg.data_root).ensure()
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(configfile.to_toml(cfg.as_dict()))
    raw_names = generate(dr, random.Random(23), 200, 0, entries=(1, 3), body=(50, 400))
    quarantined = len(dr.files("quarantine"))
    proc = subprocess.Popen(_snapshot_cmd(cfg_file), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    container = _backup_container(cfg.instance)
    assert container is not None and _wait_for_log(container, ": cut of")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    container.remove(force=True)
    left = {os.lstat(p).st_nlink for p in dr.files("raw")}
    assert left == {2}, "the killed set's cut should still name every waiting report"
    assert [r.exit_code for r in pipeline.run(cfg).stages] == [0, 0]
    assert len(dr.files("quarantine")) == quarantined
    where = where_is_each_report(dr.root, raw_names)
    assert set(raw_names.values()) <= {rid for rid, states in where.items() if states == ["archive"]}
    final = subprocess.run(_snapshot_cmd(cfg_file), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    assert not any(cut.tree(dr.root).iterdir()) and not cut.index_path(dr.root).exists()
    assert {os.lstat(p).st_nlink for p in dr.files("archive")} == {1}


def _start_restic_that_hangs(cfg, hostname: str):
    """A restic backup holding its repository lock (its stdin command sleeps), as a killed run would leave."""
    from common import secrets

    pw = secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD)
    return docker.from_env().containers.run(
        cfg.image("backup"), ["restic", "backup", "--stdin-filename", "hang", "--stdin-from-command", "--",
                              "sleep", "300"], detach=True, hostname=hostname,
        volumes={cfg.backup.repository: {"bind": "/repo", "mode": "rw"},
                 str(pw): {"bind": "/run/secrets/restic-password", "mode": "ro"}},
        environment={"RESTIC_REPOSITORY": "/repo", "RESTIC_PASSWORD_FILE": "/run/secrets/restic-password"},
        labels={"org.aggregator-dr.instance": cfg.instance})


def _locks(cfg) -> list[str]:
    return os.listdir(Path(cfg.backup.repository) / "locks")


def _leave_a_lock_behind(cfg, hostname: str, tries: int = 3) -> None:
    """A restic backup killed while it holds its lock, so that the lock stays behind. A lock seen while that
    restic is no longer running was a passing one (it took its lock, found the repository busy, dropped it
    and ended): tried again."""
    for _ in range(tries):
        c = _start_restic_that_hangs(cfg, hostname)
        try:
            deadline = time.monotonic() + 30
            while not _locks(cfg) and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)  # a lock that only passes by is gone by now, with its restic
            c.reload()
            held = c.status == "running" and bool(_locks(cfg))
        finally:
            c.remove(force=True)  # killed (SIGKILL) while it runs: its lock stays behind
        if held:
            return
    raise AssertionError(f"restic took no lock that it kept, in {tries} tries")


def test_stale_restic_locks_of_ours_are_cleared_and_foreign_ones_kept(busy, caplog):
    import logging

    from snapshots.restic import BACKUP_HOSTNAME

    caplog.set_level(logging.INFO, logger="aggregator-dr")
    for hostname, ours in ((BACKUP_HOSTNAME, True), ("an-operators-laptop", False)):
        _leave_a_lock_behind(busy, hostname)
        caplog.clear()
        code, result = backup.run(busy, "check")  # check needs restic's exclusive lock
        text = "\n".join(r.getMessage() for r in caplog.records)
        if ours:
            assert code == 0 and result.ok and "removing 1 stale restic lock(s)" in text
            assert _locks(busy) == []
        else:
            assert code == 1 and "is locked by another restic process" in result.restic_check.error
            assert len(_locks(busy)) == 1  # an operator's lock is theirs to remove
            for name in _locks(busy):
                os.remove(Path(busy.backup.repository) / "locks" / name)
