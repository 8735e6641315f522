"""sync against a real collector container (sshd, key auth, pinned host key) with real rsync: pulls, what it
lets go of on the collector ([sync] release) and its `--release`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port

from common import config
from dr.machine import configfile
from stages import journal, release, sync
from stages.layout import DataRoot

ARCHIVE = "/srv/collector/archive"
REPO = Path(__file__).resolve().parents[2]


def make_cfg(root, entry, **extra):
    entries = entry if isinstance(entry, list) else [entry]
    return config.load(overrides={"data_root": str(root), "collectors": entries, **extra})


def remote_files(container, archive: str = ARCHIVE) -> list[str]:
    """The closed reports on the collector (what sync lists: not .pulled/)."""
    out = container.exec_run(["sh", "-c", f"cd {archive} && find . -path ./.pulled -prune -o -type f -printf '%P\\0'"])
    return sorted(name for name in out.output.decode().split("\0") if name)


def held_files(container, archive: str = ARCHIVE) -> dict[str, str]:
    """What the collector holds in .pulled/: name -> sha256."""
    out = container.exec_run(["sh", "-c", f"cd {archive}/.pulled 2>/dev/null && find . -type f -printf '%P\\0' | "
                              "xargs -0 -r sha256sum"]).output.decode()
    return {name: sha for sha, _, name in (line.partition("  ") for line in out.splitlines())}


def put_remote(container, name: str, size_kb: int = 0, text: str | None = None):
    script = (f"head -c {size_kb * 1024} /dev/urandom > \"$1\"" if text is None else "printf '%s' \"$2\" > \"$1\"")
    r = container.exec_run(["sh", "-c", script, "sh", f"{ARCHIVE}/{name}", text or ""], user="collector")
    assert r.exit_code == 0, r.output


def test_pulls_verifies_then_removes_from_the_collector(sample_collector, tmp_path):
    entry, container = sample_collector
    before = remote_files(container)
    assert len(before) == 20
    dr = DataRoot(tmp_path / "data")
    s = sync.run(make_cfg(dr.root, entry, **{"sync.release": "pulled"}), dr)  # the original design
    assert s.exit_code == 0, s.errors
    assert s.outcomes == {"pulled": 20, "removed_from_collector": 20}
    size = sum(p.stat().st_size for p in dr.files("raw"))
    assert [c.to_dict() for c in s.collectors] == [{"collector": "sample", "reached": True, "listed": 20, "pulled": 20,
                                                    "left": 0, "bytes": size, "held": 0, "held_bytes": 0}]
    assert sorted(p.name for p in dr.files("raw")) == before
    assert remote_files(container) == [] and held_files(container) == {}
    assert not any((dr.state("raw") / ".incoming" / "sample").iterdir())
    pulled = [e for _, e in journal.read(dr) if e.get("op") == "begin"]
    assert len(pulled) == 20 and all(e["stage"] == "sync" for e in pulled)
    again = sync.run(make_cfg(dr.root, entry, **{"sync.release": "pulled"}), dr)
    assert again.outcomes == {} and again.exit_code == 0


def test_unsafe_names_are_refused_and_never_written(sample_collector, tmp_path):
    entry, container = sample_collector
    for name in ("-rf.yaml", "bad name.yaml", "evil\nname.yaml", "esc\x1b[31m.yaml"):
        put_remote(container, name, text="x")
    dr = DataRoot(tmp_path / "data")
    s = sync.run(make_cfg(dr.root, entry), dr)
    assert s.outcomes["refused:unsafe_name"] == 4 and s.outcomes["pulled"] == 20
    assert len(remote_files(container)) == 4  # left where they were
    names = {p.name for p in (tmp_path / "data").rglob("*")}
    assert not any(n in names for n in ("-rf.yaml", "bad name.yaml", "evil\nname.yaml"))
    assert any("refused unsafe name" in n for n in s.notes)


def test_a_file_that_changes_during_sync_is_left_for_the_next_run(sample_collector, tmp_path, monkeypatch):
    entry, container = sample_collector
    victim = "extracted-spec-tcp_connect-2013.yaml"
    original_pull = sync.Remote.pull

    def pull_then_collector_appends(self, names, dest):
        original_pull(self, names, dest)
        put_remote(container, victim + ".tmp", text="")  # stand-in for a probe still writing
        container.exec_run(["sh", "-c", f"echo '# more' >> {ARCHIVE}/{victim}"], user="collector")

    monkeypatch.setattr(sync.Remote, "pull", pull_then_collector_appends)
    dr = DataRoot(tmp_path / "data")
    s = sync.run(make_cfg(dr.root, entry), dr)
    assert s.outcomes["changed"] == 1 and s.outcomes["pulled"] == 19
    assert victim in remote_files(container)
    assert not (dr.state("raw") / "sample" / victim).exists()
    monkeypatch.undo()
    s = sync.run(make_cfg(dr.root, entry), dr)
    assert s.outcomes.get("pulled") == 2  # the changed report, and the .tmp file now that it is closed
    assert (dr.state("raw") / "sample" / victim).read_text().endswith("# more\n")


def test_wrong_host_key_pulls_and_removes_nothing(sample_collector, tmp_path):
    entry, container = sample_collector
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                           capture_output=True)
    assert other.returncode == 0
    wrong = dict(entry, host_key=" ".join((tmp_path / "k.pub").read_text().split()[:2]))
    dr = DataRoot(tmp_path / "data")
    s = sync.run(make_cfg(dr.root, wrong), dr)
    assert s.exit_code == 1 and "Host key verification failed" in s.errors[0]
    assert len(remote_files(container)) == 20 and dr.files("raw") == []
    pull = s.collectors[0]
    assert not pull.reached and pull.listed == pull.pulled == 0 and "Host key verification failed" in pull.error


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_stops_cleanly_and_removes_only_what_was_pulled(sample_collector, small_disk):
    entry, container = sample_collector
    container.exec_run(["sh", "-c", f"rm -f {ARCHIVE}/*"], user="collector")
    for i in range(5):
        put_remote(container, f"big-{i}.yaml", size_kb=700)
    dr = DataRoot(small_disk / "data")
    s = sync.run(make_cfg(dr.root, entry, **{"sync.reserve_mb": 1}), dr)
    assert s.exit_code == 1 and "reserve" in s.errors[0]
    pulled = sorted(p.name for p in dr.files("raw"))
    assert 1 <= len(pulled) <= 2
    left = remote_files(container)
    assert sorted(left + pulled) == [f"big-{i}.yaml" for i in range(5)]  # each report in exactly one place
    for p in dr.files("raw"):
        assert p.stat().st_size == 700 * 1024


def test_a_file_the_collector_cannot_read_fails_alone_then_is_left_there_as_poison(sample_collector, tmp_path):
    entry, container = sample_collector
    put_remote(container, "unreadable.yaml", text="x")
    container.exec_run(["chmod", "000", f"{ARCHIVE}/unreadable.yaml"], user="collector")
    dr = DataRoot(tmp_path / "data")
    first = sync.run(make_cfg(dr.root, entry), dr)
    assert first.outcomes == {"pulled": 20, "held_on_collector": 20, "failed": 1}, first.errors
    assert first.exit_code == 1 and not first.errors
    assert first.failed[0].input == "sample:unreadable.yaml" and first.failed[0].reason == "not_pulled"
    second = sync.run(make_cfg(dr.root, entry), dr)
    assert second.outcomes == {"quarantined:poison": 1} and second.exit_code == 0
    note = sync.poison_note(dr, "sample", "unreadable.yaml")
    assert note.exists() and len(json.loads(note.read_text())["errors"]) == 2
    third = sync.run(make_cfg(dr.root, entry), dr)
    assert third.outcomes == {"skipped:poison": 1} and third.exit_code == 0
    assert (third.collectors[0].reached, third.collectors[0].listed, third.collectors[0].left) == (True, 1, 1)
    assert remote_files(container) == ["unreadable.yaml"]  # never removed: nothing was pulled


# --- release after a durable copy ([sync] release = "set" / "offsite") -----------------------------------------

def release_list(dr: DataRoot, set_id: str, repository: str, reports: list[tuple[str, str, str]]) -> Path:
    """A release list as the snapshot side writes it: (collector, name under .pulled/, sha256) each."""
    path = release.path(dr, set_id, repository)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": 1, "set": set_id, "repository": repository, "written": journal.now(),
                                "reports": [{"collector": c, "remote": r, "sha256": h} for c, r, h in reports]}))
    return path


def notes(dr: DataRoot, event: str) -> list[dict]:
    return [e for _, e in journal.read(dr) if e.get("op") == "note" and e.get("event") == event]


def release_cli(cfg, folder: Path) -> tuple[int, dict]:
    """`python -m stages.sync --release --json` as the pipeline runs a stage (here on the host)."""
    cfg_file = folder / "config.toml"
    cfg_file.write_text(configfile.to_toml(cfg.as_dict()))
    out = subprocess.run([sys.executable, "-m", "stages.sync", "--config", str(cfg_file), "--release", "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, json.loads(out.stdout)


def test_set_holds_a_pulled_report_in_pulled_until_a_release_and_never_pulls_it_twice(sample_collector, tmp_path):
    entry, container = sample_collector
    before = remote_files(container)
    dr = DataRoot(tmp_path / "data")
    cfg = make_cfg(dr.root, entry, **{"sync.release": "set"})
    s = sync.run(cfg, dr)
    assert s.exit_code == 0 and s.outcomes == {"pulled": 20, "held_on_collector": 20}, s.errors
    size = sum(p.stat().st_size for p in dr.files("raw"))
    pull = s.collectors[0]
    assert (pull.listed, pull.pulled, pull.left, pull.held, pull.held_bytes) == (20, 20, 0, 20, size)
    assert remote_files(container) == [] and sorted(held_files(container)) == before
    assert held_files(container) == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in dr.files("raw")}
    infos = [e["info"] for _, e in journal.read(dr) if e.get("op") == "begin"]
    assert sorted(i["remote"] for i in infos) == before
    assert all(i["held_as"] == i["remote"] and i["collector"] == "sample" and len(i["sha256"]) == 64 for i in infos)
    assert sorted(notes(dr, "held_on_collector")[0]["files"]) == before

    again = sync.run(cfg, dr)  # not pulled twice, still counted as held
    assert again.outcomes == {} and again.exit_code == 0
    assert (again.collectors[0].listed, again.collectors[0].held, again.collectors[0].held_bytes) == (0, 20, size)
    assert again.collectors[0].oldest_held == pull.oldest_held is not None

    # the collector reuses a name: the new report is pulled, and held beside the first under another name
    reused = before[0]
    put_remote(container, reused, text="a new report under an old name\n")
    third = sync.run(cfg, dr)
    assert third.outcomes == {"pulled": 1, "held_on_collector": 1} and third.collectors[0].held == 21
    assert held_files(container)[f"{reused}.2"] == hashlib.sha256(b"a new report under an old name\n").hexdigest()
    last = [e["info"] for _, e in journal.read(dr) if e.get("op") == "begin"][-1]
    assert (last["remote"], last["held_as"]) == (reused, f"{reused}.2")


def test_release_deletes_exactly_the_listed_reports_with_their_bytes_and_is_idempotent(sample_collector, tmp_path):
    entry, container = sample_collector
    dr = DataRoot(tmp_path / "data")
    cfg = make_cfg(dr.root, entry, **{"sync.release": "set"})
    assert sync.run(cfg, dr).outcomes["held_on_collector"] == 20
    held = held_files(container)
    names = sorted(held)
    right = [("sample", n, held[n]) for n in names[:3]]
    wrong = [("sample", names[3], "0" * 64)]  # bytes no set holds
    ok_list = release_list(dr, "20261207T100000Z", "local", right)
    wrong_list = release_list(dr, "20261207T110000Z", "local", wrong)
    offsite_cfg = make_cfg(dr.root, entry, **{"sync.release": "offsite"})
    assert sync.run_release(offsite_cfg, dr).outcomes == {}  # a local list is not enough for "offsite"
    assert held_files(container) == held

    code, first = release_cli(cfg, tmp_path)
    assert code == 0, first["errors"]
    assert first["outcomes"] == {"released": 3, "release_list_done": 1, "kept:other_bytes": 1}
    assert first["collectors"][0]["held"] == 17 and first["collectors"][0]["reached"]
    assert sorted(held_files(container)) == names[3:]
    assert not ok_list.exists() and wrong_list.exists()  # its report is still there
    assert [(n["collector"], n["set"], n["files"]) for n in notes(dr, "released")] == [
        ("sample", "20261207T100000Z", names[:3])]

    again = sync.run_release(cfg, dr)  # a second run (or one after a kill): nothing more goes
    assert again.outcomes == {"kept:other_bytes": 1} and again.exit_code == 0
    assert sorted(held_files(container)) == names[3:] and wrong_list.exists()
    release_list(dr, "20261207T120000Z", "offsite", [("sample", names[3], held[names[3]])])
    done = sync.run_release(cfg, dr)
    assert done.outcomes == {"released": 1, "release_list_done": 2}  # the wrong list's report is gone now too
    assert sorted(held_files(container)) == names[4:] and not list(release.folder(dr).iterdir())


def test_a_list_naming_an_unreachable_collector_is_kept_and_the_reachable_one_is_released(sample_collector,
                                                                                          tmp_path):
    entry, container = sample_collector
    other_archive = "/home/collector/other"
    r = container.exec_run(["sh", "-c", f"mkdir -p {other_archive}/.pulled && printf x > {other_archive}/.pulled/x.yaml"],
                           user="collector")
    assert r.exit_code == 0, r.output
    closed = free_port()  # nothing listens there
    other = dict(entry, name="other", archive_path=other_archive)
    dr = DataRoot(tmp_path / "data")
    assert sync.run(make_cfg(dr.root, entry, **{"sync.release": "set"}), dr).exit_code == 0
    first_held = sorted(held_files(container))[0]
    lst = release_list(dr, "20261207T100000Z", "offsite",
                       [("sample", first_held, held_files(container)[first_held]),
                        ("other", "x.yaml", hashlib.sha256(b"x").hexdigest())])

    s = sync.run_release(make_cfg(dr.root, [entry, dict(other, port=closed)], **{"sync.release": "set"}), dr)
    assert s.exit_code == 1 and s.outcomes == {"released": 1}
    assert len(s.errors) == 1 and s.errors[0].startswith("other: ssh failed") and "a later run" in s.errors[0]
    assert [(c.collector, c.reached) for c in s.collectors] == [("sample", True), ("other", False)]
    assert first_held not in held_files(container) and lst.exists()

    s = sync.run_release(make_cfg(dr.root, [entry, other], **{"sync.release": "set"}), dr)
    assert s.exit_code == 0 and s.outcomes == {"released": 1, "release_list_done": 1}, s.errors
    assert held_files(container, other_archive) == {} and not lst.exists()
    assert s.collectors[1].held == 0 and s.collectors[0].held == 19


def test_a_data_root_restored_from_an_older_set_pulls_again_exactly_what_it_does_not_know(sample_collector,
                                                                                          tmp_path):
    """Issue 22, catching up after a loss: the collector holds in .pulled/ what a lost data root pulled; the
    older one that replaces it pulls those (and only those) again, once, and they stay held there."""
    import shutil

    entry, container = sample_collector
    lost = DataRoot(tmp_path / "lost")
    cfg = make_cfg(lost.root, entry, **{"sync.release": "set"})
    assert sync.run(cfg, lost).outcomes == {"pulled": 20, "held_on_collector": 20}
    older = DataRoot(tmp_path / "older")
    shutil.copytree(lost.root, older.root, symlinks=True)  # what the older set holds
    names = sorted(held_files(container))

    # after that set, the lost data root pulled three new reports and one under the name of a report that a
    # release let go (the same name, other bytes), then it was lost
    r = container.exec_run(["rm", f"{ARCHIVE}/.pulled/{names[0]}"], user="collector")
    assert r.exit_code == 0, r.output
    for i in range(3):
        put_remote(container, f"new-{i}.yaml", text=f"new report {i}\n")
    put_remote(container, names[0], text="another report under a released name\n")
    assert sync.run(cfg, lost).outcomes == {"pulled": 4, "held_on_collector": 4}
    held = held_files(container)
    after = sorted(set(held) - set(names)) + [names[0]]

    older_cfg = make_cfg(older.root, entry, **{"sync.release": "set"})
    s = sync.run(older_cfg, older)
    assert s.exit_code == 0, s.errors
    assert s.outcomes == {"pulled": 4, "caught_up": 4}, s.notes
    assert held_files(container) == held  # they stay held until a set of this data root holds them
    raw = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in older.files("raw"))
    assert len(raw) == 24 and set(raw) >= {held[name] for name in after}  # the report it had under names[0] too
    caught = [e["info"] for _, e in journal.read(older) if e.get("op") == "begin" and e["info"].get("caught_up")]
    assert sorted(i["held_as"] for i in caught) == sorted(after) and all(i["collector"] == "sample" for i in caught)
    assert sync.run(older_cfg, older).outcomes == {}  # known now: never pulled a third time
    assert sync.run(cfg, lost).outcomes == {}  # and the data root that pulled them first knows them too


def test_release_pulled_deletes_what_an_earlier_mode_left_held_once_this_data_root_has_it(sample_collector, tmp_path):
    entry, container = sample_collector
    dr = DataRoot(tmp_path / "data")
    assert sync.run(make_cfg(dr.root, entry, **{"sync.release": "set"}), dr).outcomes["held_on_collector"] == 20
    foreign = "from-another-data-root.yaml"  # held there, but pulled by no data root this one knows
    r = container.exec_run(["sh", "-c", f"printf x > {ARCHIVE}/.pulled/{foreign}"], user="collector")
    assert r.exit_code == 0, r.output
    s = sync.run(make_cfg(dr.root, entry, **{"sync.release": "pulled"}), dr)
    assert s.exit_code == 0, s.errors
    # the foreign file is pulled (caught up) and, verified here, deleted with the 20 known ones
    assert s.outcomes == {"pulled": 1, "caught_up": 1, "removed_from_collector": 21}, s.notes
    assert held_files(container) == {} and s.collectors[0].held == 0
