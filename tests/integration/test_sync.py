"""sync against a real collector container (sshd, key auth, pinned host key) with real rsync."""

from __future__ import annotations

import json
import subprocess

import pytest

from common import config
from stages import journal, sync
from stages.layout import DataRoot

ARCHIVE = "/srv/collector/archive"


def make_cfg(root, entry, **extra):
    return config.load(overrides={"data_root": str(root), "collectors": [entry], **extra})


def remote_files(container) -> list[str]:
    out = container.exec_run(["sh", "-c", f"cd {ARCHIVE} && find . -type f -printf '%P\\0'"])
    return sorted(name for name in out.output.decode().split("\0") if name)


def put_remote(container, name: str, size_kb: int = 0, text: str | None = None):
    script = (f"head -c {size_kb * 1024} /dev/urandom > \"$1\"" if text is None else "printf '%s' \"$2\" > \"$1\"")
    r = container.exec_run(["sh", "-c", script, "sh", f"{ARCHIVE}/{name}", text or ""], user="collector")
    assert r.exit_code == 0, r.output


def test_pulls_verifies_then_removes_from_the_collector(sample_collector, tmp_path):
    entry, container = sample_collector
    before = remote_files(container)
    assert len(before) == 20
    dr = DataRoot(tmp_path / "data")
    s = sync.run(make_cfg(dr.root, entry), dr)
    assert s.exit_code == 0, s.errors
    assert s.outcomes == {"pulled": 20, "removed_from_collector": 20}
    size = sum(p.stat().st_size for p in dr.files("raw"))
    assert [c.to_dict() for c in s.collectors] == [{"collector": "sample", "reached": True, "listed": 20, "pulled": 20,
                                                    "left": 0, "bytes": size}]
    assert sorted(p.name for p in dr.files("raw")) == before
    assert remote_files(container) == []
    assert not any((dr.state("raw") / ".incoming" / "sample").iterdir())
    pulled = [e for _, e in journal.read(dr) if e.get("op") == "begin"]
    assert len(pulled) == 20 and all(e["stage"] == "sync" for e in pulled)
    again = sync.run(make_cfg(dr.root, entry), dr)
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
    assert first.outcomes == {"pulled": 20, "removed_from_collector": 20, "failed": 1}, first.errors
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
