"""Release lists (snapshots/release.py): which pulled reports a set holds, from a real journal (the stages'
own transactions, run with stages.journal on a data root in tmp_path) followed to the set's position, and the
set's files listing (data: what `restic ls --json` prints, parsed by Listing). Real restic runs in
tests/integration/test_release.py."""

import json

from common import atomic, digest
from snapshots import release
from stages import journal
from stages.layout import DataRoot


class Root:
    """A data root whose journal the stages' transactions write, as sync and sanitize do."""

    def __init__(self, tmp_path):
        self.dr = DataRoot(tmp_path / "data").ensure()

    def write(self, rel: str, body: bytes):
        p = self.dr.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
        return p

    def pull(self, collector: str, remote: str, body: bytes, duplicate: bool = False, **info) -> str:
        """sync's pull: raw/.incoming/<c>/<remote> into raw/<c>/<remote> (a duplicate: the copy dropped)."""
        src = self.write(f"raw/.incoming/{collector}/{remote}", body)
        sha = digest.sha256_file(src)
        tx = journal.Transaction("sync", "duplicate" if duplicate else "pulled", f"{collector}:{remote}",
                                 info={"collector": collector, "remote": remote, **info})
        if duplicate:
            tx.remove(src)
        else:
            tx.rename(src, self.dr.state("raw") / collector / remote, sha, len(body))
        journal.run(self.dr, tx)
        return sha

    def sanitize(self, raw_rel: str, original: str, staged: str, reuse_original: bool = False) -> None:
        """sanitize's commit: the original compressed into originals/, the output into staging/, raw goes."""
        raw = self.dr.root / raw_rel
        tx = journal.Transaction("sanitize", "sanitized", raw_rel)
        if not reuse_original:
            tmp = atomic.temp_path(self.dr.root / original)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(b"gz:" + raw.read_bytes())
            tx.rename(tmp, self.dr.root / original, digest.sha256_file(tmp), tmp.stat().st_size)
        out = atomic.temp_path(self.dr.root / staged)
        out.write_bytes(b"sanitized")
        tx.rename(out, self.dr.root / staged, digest.sha256_file(out), 9).remove(raw)
        tx.info = {"outputs": [{"to": staged}], "original": original}
        journal.run(self.dr, tx)

    def quarantine(self, raw_rel: str, to: str) -> None:
        """A raw file moved whole into quarantine/ (its bytes unchanged), its reason file beside it."""
        raw = self.dr.root / raw_rel
        side = atomic.temp_path(self.dr.root / (to + ".reason.json"))
        side.parent.mkdir(parents=True, exist_ok=True)
        side.write_bytes(b"{}")
        tx = journal.Transaction("sanitize", "quarantined", raw_rel)
        tx.rename(side, self.dr.root / (to + ".reason.json"), digest.sha256_file(side), 2)
        tx.rename(raw, self.dr.root / to, digest.sha256_file(raw), raw.stat().st_size)
        journal.run(self.dr, tx)

    def note(self, event: str, collector: str, files: list[str]) -> None:
        journal.append(self.dr, {"time": journal.now(), "op": "note", "stage": "sync", "event": event,
                                 "collector": collector, "files": files})

    def files(self) -> dict[str, int]:
        """What a files snapshot taken now would list: every file in raw/, originals/, quarantine/."""
        return {self.dr.relative(p): p.stat().st_size for s in release.HOLDING
                for p in self.dr.state(s).rglob("*") if p.is_file() and ".incoming" not in p.parts}

    def held(self, position: int, files: dict[str, int]) -> list[tuple[str, str, str]]:
        return sorted((p.collector, p.remote, p.sha256)
                      for p in release.held(release.pulls(journal.committed(self.dr), position), files))


def test_a_report_is_held_in_raw_originals_or_quarantine_where_the_journal_puts_it_at_the_set(tmp_path):
    r = Root(tmp_path)
    a = r.pull("c1", "2024/a.json", b"report a")
    b = r.pull("c1", "b.json", b"report b")
    c = r.pull("c2", "c.json", b"report c")
    r.sanitize("raw/c1/2024/a.json", "originals/c1/2024/a.json.gz", "staging/A.yaml")
    r.quarantine("raw/c2/c.json", "quarantine/unreadable/c.json")
    files = r.files()
    assert set(files) == {"raw/c1/b.json", "originals/c1/2024/a.json.gz", "quarantine/unreadable/c.json",
                          "quarantine/unreadable/c.json.reason.json"}
    assert r.held(journal.position(r.dr), files) == sorted(
        [("c1", "2024/a.json", a), ("c1", "b.json", b), ("c2", "c.json", c)])


def test_a_report_the_set_does_not_hold_is_not_listed(tmp_path):
    r = Root(tmp_path)
    a = r.pull("c1", "a.json", b"report a")
    b = r.pull("c1", "b.json", b"report b")
    r.sanitize("raw/c1/a.json", "originals/c1/a.json.gz", "staging/A.yaml")
    files = r.files()
    position = journal.position(r.dr)
    assert r.held(position, {k: v for k, v in files.items() if not k.startswith("originals/")}) == [
        ("c1", "b.json", b)]
    assert r.held(position, {**files, "raw/c1/b.json": 3}) == [("c1", "a.json", a)]  # not the size pulled


def test_a_report_pulled_after_the_sets_position_is_not_held_even_when_its_path_is_listed(tmp_path):
    r = Root(tmp_path)
    a = r.pull("c1", "a.json", b"report a")
    position = journal.position(r.dr)
    r.pull("c1", "late.json", b"pulled after the set")
    assert r.held(position, r.files()) == [("c1", "a.json", a)]


def test_where_the_report_went_after_the_set_does_not_matter(tmp_path):
    r = Root(tmp_path)
    a = r.pull("c1", "a.json", b"report a")
    position = journal.position(r.dr)
    files = r.files()  # the set: a in raw/
    r.sanitize("raw/c1/a.json", "originals/c1/a.json.gz", "staging/A.yaml")
    assert r.held(position, files) == [("c1", "a.json", a)]


def test_reports_released_or_removed_at_pull_time_are_left_out(tmp_path):
    r = Root(tmp_path)
    r.pull("c1", "a.json", b"report a")
    r.pull("c1", "b.json", b"report b")
    c = r.pull("c2", "a.json", b"report a of c2")
    position = journal.position(r.dr)
    files = r.files()
    r.note("released", "c1", ["a.json"])
    r.note("removed_from_collector", "c1", ["b.json"])
    assert r.held(position, files) == [("c2", "a.json", c)]


def test_a_name_the_collector_used_again_after_a_release_is_a_new_report(tmp_path):
    r = Root(tmp_path)
    r.pull("c1", "a.json", b"first")
    r.note("released", "c1", ["a.json"])
    r.sanitize("raw/c1/a.json", "originals/c1/a.json.gz", "staging/A.yaml")
    second = r.pull("c1", "a.json", b"second")
    assert r.held(journal.position(r.dr), r.files()) == [("c1", "a.json", second)]


def test_the_name_held_on_the_collector_is_the_remote_of_the_list(tmp_path):
    r = Root(tmp_path)
    a = r.pull("c1", "a.json", b"report a", held_as="a.json.2")
    assert r.held(journal.position(r.dr), r.files()) == [("c1", "a.json.2", a)]


def test_a_duplicate_is_held_when_the_report_it_duplicates_is(tmp_path):
    r = Root(tmp_path)
    a = r.pull("c1", "a.json", b"same bytes")
    r.note("released", "c1", ["a.json"])
    r.pull("c1", "a.json", b"same bytes", duplicate=True, sha256=a, held_as="a.json.2")
    r.pull("c1", "x.json", b"no sha256 recorded", duplicate=True)
    position = journal.position(r.dr)
    assert r.held(position, r.files()) == [("c1", "a.json.2", a)]
    assert r.held(position, {}) == []


def test_an_original_sanitize_found_in_place_already_holds_the_report(tmp_path):
    r = Root(tmp_path)
    a = r.pull("c1", "a.json", b"report a")
    r.sanitize("raw/c1/a.json", "originals/c1/a.json.gz", "staging/A.yaml")
    b = r.pull("c9", "a.json", b"report a")  # the same bytes from another collector
    r.sanitize("raw/c9/a.json", "originals/c1/a.json.gz", "staging/A2.yaml", reuse_original=True)
    files = r.files()
    assert r.held(journal.position(r.dr), files) == sorted([("c1", "a.json", a), ("c9", "a.json", b)])


def test_a_file_put_in_place_of_a_report_after_it_moved_on_does_not_hold_it(tmp_path):
    r = Root(tmp_path)
    r.pull("c1", "a.json", b"report a")
    r.sanitize("raw/c1/a.json", "originals/c1/a.json.gz", "staging/A.yaml")
    files = {"raw/c1/a.json": 8}  # a file of that name and size, but not the report: its bytes left raw/
    assert r.held(journal.position(r.dr), files) == []


def test_aborted_and_unfinished_transactions_hold_nothing(tmp_path):
    r = Root(tmp_path)
    src = r.write("raw/.incoming/c1/a.json", b"report a")
    tx = journal.Transaction("sync", "pulled", "c1:a.json", info={"collector": "c1", "remote": "a.json"})
    tx.rename(src, r.dr.state("raw") / "c1" / "a.json", digest.sha256_file(src), 8)
    journal.append(r.dr, journal._entry(r.dr, tx, "begin"))  # then the process dies
    assert r.held(journal.position(r.dr), {"raw/c1/a.json": 8}) == []
    journal.append(r.dr, journal._entry(r.dr, tx, "abort"))
    assert r.held(journal.position(r.dr), {"raw/c1/a.json": 8}) == []


LS = [  # restic 0.18's `ls --json` of a files part: the snapshot, then one line per node
    {"time": "2026-03-01T10:00:00Z", "paths": ["/data"], "hostname": "aggregator-dr-backup",
     "tags": ["set:20260301T100000Z", "kind:files"], "id": "ab" * 32, "short_id": "abababab",
     "message_type": "snapshot", "struct_type": "snapshot"},
    {"name": "raw", "type": "dir", "path": "/data/raw", "mode": 2147484096, "message_type": "node",
     "struct_type": "node"},
    {"name": "a.json", "type": "file", "path": "/data/raw/c1/a.json", "size": 8, "mode": 384,
     "message_type": "node", "struct_type": "node"},
    {"name": "l", "type": "symlink", "path": "/data/quarantine/not_a_regular_file/l", "linktarget": "/etc/passwd",
     "message_type": "node", "struct_type": "node"},
    {"name": "a.json.gz", "type": "file", "path": "/data/originals/c1/a.json.gz", "size": 31, "mode": 384,
     "message_type": "node", "struct_type": "node"},
]


def test_restics_listing_gives_the_regular_files_under_the_data_root():
    listing = release.Listing()
    for line in [*map(json.dumps, LS), "not json", "[1]"]:
        listing.add(line)
    assert listing.files() == {"raw/c1/a.json": 8, "originals/c1/a.json.gz": 31}


def test_a_listing_without_one_root_is_refused():
    listing = release.Listing()
    listing.add(json.dumps({**LS[0], "paths": ["/a", "/b"]}))
    try:
        listing.files()
    except release.ReleaseError as exc:
        assert "2 paths" in str(exc)
    else:
        raise AssertionError("a listing of two roots was accepted")


def test_the_listing_verifies_against_the_manifests_directories():
    files = {"raw/c1/a.json": 8, "originals/c1/a.json.gz": 31, "raw/.x.tmp-1-abc": 5}
    dirs = {"raw": {"files": 1, "bytes": 8}, "originals": {"files": 1, "bytes": 31},
            "quarantine": {"files": 0, "bytes": 0}, "archive": {"files": 7, "bytes": 70}}
    assert release.problems(dirs, files) == []
    assert release.problems({**dirs, "raw": {"files": 2, "bytes": 16}}, files) == [
        "raw/: 1 files in the snapshot, the manifest says 2", "raw/: 8 bytes in the snapshot, the manifest says 16"]


def test_an_offsite_set_counts_only_when_this_data_root_took_it(tmp_path):
    r = Root(tmp_path)
    r.pull("c1", "a.json", b"report a")
    journal.append(r.dr, release.taken_note("20260301T100000Z", 321))
    entries = list(journal.committed(r.dr))
    assert release.taken_here(entries, "20260301T100000Z", 321)
    assert not release.taken_here(entries, "20260301T100000Z", 322)  # another history's position
    assert not release.taken_here(entries, "20260302T100000Z", 321)


def test_the_list_is_written_atomically_under_its_set_and_repository(tmp_path):
    r = Root(tmp_path)
    a = r.pull("c1", "a.json", b"report a")
    pulled = release.pulls(journal.committed(r.dr), journal.position(r.dr))
    body = release.release_list("20260301T100000Z", "local", pulled + pulled, written="2026-03-01T10:00:05Z")
    assert body == {"format": 1, "set": "20260301T100000Z", "repository": "local", "written": "2026-03-01T10:00:05Z",
                    "reports": [{"collector": "c1", "remote": "a.json", "sha256": a}]}
    path = release.write(r.dr, body)
    assert path == r.dr.root / "releases" / "20260301T100000Z-local.json"
    assert json.loads(path.read_text()) == body
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_a_name_held_again_on_the_collector_names_only_the_newer_report(tmp_path):
    r = Root(tmp_path)
    r.pull("c1", "a.json", b"first")
    r.sanitize("raw/c1/a.json", "originals/c1/a.json.gz", "staging/A.yaml")
    second = r.pull("c1", "a.json", b"second")  # the first went from .pulled/ without a note (killed)
    assert r.held(journal.position(r.dr), r.files()) == [("c1", "a.json", second)]


def test_a_sets_note_is_no_move_for_the_status(tmp_path):
    from dr.watch import folders

    r = Root(tmp_path)
    r.pull("c1", "a.json", b"report a")
    moved = folders.last_journal_time(r.dr.journal)
    journal.append(r.dr, release.taken_note("20990101T000000Z", journal.position(r.dr)))
    assert folders.last_journal_time(r.dr.journal) == moved
