"""The publisher's pure parts (collector/pending.py), apart from the broker: which files of an archive folder are
complete reports to announce (the rules of sync's listing), the state file of what the broker confirmed, a
changed report announced again, the claim check it publishes, and the retry schedule's bounds."""

import json
import os

import pytest

from collector import pending
from common import paths
from common.broker import read_claim


def write(path, data=b"report\n", mtime_ns=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def names(found):
    return [f.path for f in found.files]


def test_the_scan_finds_complete_reports_in_the_folder_and_its_sub_folders(tmp_path):
    write(tmp_path / "b.yaml")
    write(tmp_path / "a.yaml", b"12345")
    write(tmp_path / "2026" / "12" / "r.json")
    found = pending.scan(tmp_path)
    assert names(found) == ["2026/12/r.json", "a.yaml", "b.yaml"]
    a = found.files[1]
    assert (a.size, a.mtime_ns) == (5, (tmp_path / "a.yaml").stat().st_mtime_ns)
    assert found.unsafe == []


def test_dot_files_and_dot_folders_are_never_reports(tmp_path):
    write(tmp_path / ".r.yaml.tmp-12-0")            # being written
    write(tmp_path / ".pulled" / "old.yaml")        # pulled, held until released
    write(tmp_path / "2026" / ".partial" / "x.yaml")
    write(tmp_path / "2026" / ".hidden.yaml")
    write(tmp_path / "done.yaml")
    found = pending.scan(tmp_path)
    assert names(found) == ["done.yaml"]
    assert found.unsafe == []  # in flight or held: not worth a warning


def test_links_folders_and_other_non_files_are_no_reports(tmp_path):
    write(tmp_path / "real.yaml")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "real.yaml")
    (tmp_path / "linked-folder").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "empty-folder").mkdir()
    assert names(pending.scan(tmp_path)) == ["real.yaml"]


def test_names_sync_refuses_are_not_published_but_said(tmp_path):
    write(tmp_path / "-flag.yaml")
    write(tmp_path / "sp ace.yaml")
    write(tmp_path / "bad;folder" / "r.yaml")
    deep = tmp_path.joinpath(*"abcde")
    write(deep / "ok.yaml")                          # 6 parts: the deepest sync takes
    write(deep / "f" / "too-deep.yaml")              # 7 parts
    found = pending.scan(tmp_path)
    assert names(found) == ["a/b/c/d/e/ok.yaml"]
    assert found.unsafe == ["-flag.yaml", "a/b/c/d/e/f/", "bad;folder/", "sp ace.yaml"]
    assert all(paths.safe_name(n) for n in names(found))


def test_a_missing_archive_folder_scans_empty(tmp_path):
    assert pending.scan(tmp_path / "nowhere") == pending.Scan()


def test_the_state_file_round_trip(tmp_path):
    path = tmp_path / "state" / "publisher.json"
    assert pending.load_state(path) == {}
    state = {"a.yaml": pending.Published(5, 123, "a" * 64), "d/b.yaml": pending.Published(0, 7, "b" * 64)}
    pending.save_state(path, state)
    assert pending.load_state(path) == state
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["publisher.json"]  # no temporary left


@pytest.mark.parametrize("text", ["{not json", "[]", '{"version": 1}', '{"version": 9, "published": {}}',
                                  '{"version": 1, "published": {"a": {"size": 1}}}'])
def test_a_state_file_that_does_not_read_is_an_error_that_says_so(tmp_path, text):
    path = write(tmp_path / "state.json", text.encode())
    with pytest.raises(ValueError, match="state file"):
        pending.load_state(path)


def test_only_what_the_broker_did_not_confirm_is_published(tmp_path):
    write(tmp_path / "a.yaml", mtime_ns=1_000)
    write(tmp_path / "b.yaml", mtime_ns=2_000)
    files = pending.scan(tmp_path).files
    assert [f.path for f in pending.to_publish(files, {})] == ["a.yaml", "b.yaml"]
    state = {"a.yaml": pending.Published(files[0].size, 1_000, "a" * 64)}
    assert [f.path for f in pending.to_publish(files, state)] == ["b.yaml"]


def test_a_report_changed_after_it_was_published_is_published_again(tmp_path):
    report = write(tmp_path / "a.yaml", b"first", mtime_ns=1_000)
    seen = pending.scan(tmp_path).files[0]
    state = {"a.yaml": pending.Published(seen.size, seen.mtime_ns, pending.read_digest(tmp_path, seen))}
    assert pending.to_publish(pending.scan(tmp_path).files, state) == []
    write(report, b"second!", mtime_ns=1_000)   # another size
    again = pending.to_publish(pending.scan(tmp_path).files, state)
    assert [f.path for f in again] == ["a.yaml"]
    write(report, b"second!", mtime_ns=5_000)   # the same size, another time
    again = pending.to_publish(pending.scan(tmp_path).files, state)
    assert [f.path for f in again] == ["a.yaml"]
    claim = pending.claim("c1", again[0], pending.read_digest(tmp_path, again[0]))
    assert claim.sha256 != state["a.yaml"].sha256  # a new sha256, so a new message id


def test_reports_gone_from_the_folder_leave_the_state(tmp_path):
    write(tmp_path / "kept.yaml")
    state = {"kept.yaml": pending.Published(7, 1, "a" * 64), "released.yaml": pending.Published(1, 1, "b" * 64)}
    assert set(pending.forget_gone(state, pending.scan(tmp_path).files)) == {"kept.yaml"}


def test_a_report_changed_while_it_is_read_is_left_for_the_next_scan(tmp_path):
    report = write(tmp_path / "a.yaml", b"12345", mtime_ns=1_000)
    seen = pending.scan(tmp_path).files[0]
    write(report, b"12345", mtime_ns=2_000)
    assert pending.read_digest(tmp_path, seen) is None
    report.unlink()
    assert pending.read_digest(tmp_path, seen) is None


def test_the_claim_check_reads_back_as_the_consumer_reads_it(tmp_path):
    write(tmp_path / "2026" / "r.yaml", b"hello\n", mtime_ns=1_765_163_045_123_456_789)
    seen = pending.scan(tmp_path).files[0]
    sha256 = pending.read_digest(tmp_path, seen)
    claim = pending.claim("probe.eu", seen, sha256)
    assert sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert claim.completed == "2025-12-08T03:04:05.123456Z"
    back = read_claim(claim.to_json().encode())
    assert back == claim
    assert json.loads(claim.to_json()) == {"collector": "probe.eu", "path": "2026/r.yaml", "size": 6,
                                           "sha256": sha256, "completed": "2025-12-08T03:04:05.123456Z"}
    assert back.message_id() == f"probe.eu/2026/r.yaml@{sha256}"


def test_the_backoff_grows_is_capped_and_jittered_within_bounds():
    for attempt in range(40):
        for rand in (0.0, 0.5, 0.999999):
            delay = pending.backoff(attempt, rand=lambda r=rand: r)
            assert pending.FIRST_DELAY <= delay <= pending.MAX_DELAY
    highest = [pending.backoff(a, rand=lambda: 0.999999) for a in range(12)]
    assert highest == sorted(highest)
    assert highest[0] == pytest.approx(0.5)
    assert highest[-1] == pytest.approx(30.0)
    assert pending.backoff(10_000, rand=lambda: 0.0) == pytest.approx(15.0)  # capped, then jittered down by half
    assert len({pending.backoff(8) for _ in range(50)}) > 1  # jittered
