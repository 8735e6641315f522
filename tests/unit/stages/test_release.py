"""stages/release.py: what a release list says, which lists a release mode accepts, which are done."""

import json
from pathlib import Path

import pytest

from stages import release
from stages.layout import DataRoot

A, B, C = "a" * 64, "b" * 64, "c" * 64


def write(dr: DataRoot, set_id: str, repository: str, reports: list[tuple[str, str, str]]):
    path = release.path(dr, set_id, repository)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": 1, "set": set_id, "repository": repository,
                                "written": "2026-12-07T11:00:00Z",
                                "reports": [{"collector": c, "remote": r, "sha256": s} for c, r, s in reports]}))
    return path


def test_each_mode_accepts_its_lists():
    assert [m for m in ("pulled", "set", "offsite") if release.accepted("local", m)] == ["set"]
    assert [m for m in ("pulled", "set", "offsite") if release.accepted("offsite", m)] == ["set", "offsite"]


def test_the_lists_a_mode_accepts_are_read_and_a_bad_one_is_named_and_kept(tmp_path):
    dr = DataRoot(tmp_path)
    assert release.read(dr, "set") == ([], [])  # no folder yet
    local = write(dr, "20261207T100000Z", "local", [("c1", "2014/a.yaml", A)])
    offsite = write(dr, "20261207T090000Z", "offsite", [("c1", "b.yaml", B), ("c2", "c.yaml", C)])
    (release.folder(dr) / "20261207T110000Z-local.json").write_text("{not json")
    (release.folder(dr) / ".20261207T120000Z-local.json.tmp-1-0").write_text("half")  # being written
    (release.folder(dr) / "20261207T120000Z-local.json").write_text(json.dumps(
        {"format": 1, "set": "x", "repository": "local", "reports": [{"collector": "c1", "remote": "a", "sha256": "0"}]}))
    lists, problems = release.read(dr, "set")
    assert [lst.path for lst in lists] == [offsite, local]
    assert lists[0] == release.ReleaseList(offsite, "20261207T090000Z", "offsite",
                                           (release.Held("c1", "b.yaml", B), release.Held("c2", "c.yaml", C)))
    assert len(problems) == 2 and "not JSON" in problems[0] and "reports[0] needs" in problems[1]
    assert [lst.path for lst in release.read(dr, "offsite")[0]] == [offsite]
    assert release.read(dr, "pulled")[0] == []


@pytest.mark.parametrize("doc, problem", [
    ({"format": 2, "set": "s", "repository": "local", "reports": []}, "not a release list of format 1"),
    ({"format": 1, "set": "s", "repository": "elsewhere", "reports": []}, "repository must be one of local, offsite"),
    ({"format": 1, "repository": "local", "reports": []}, "needs a set id"),
    ({"format": 1, "set": "s", "repository": "local", "reports": [{"collector": "c1", "sha256": A}]},
     "reports[0] needs a collector, a remote name"),
])
def test_a_list_that_is_not_one_is_named(doc, problem):
    with pytest.raises(ValueError, match=r"^/x/l\.json: " + problem.replace("[", r"\[").replace("]", r"\]")):
        release.parse(Path("/x/l.json"), json.dumps(doc).encode())


def test_a_list_is_done_once_every_collector_it_names_was_reached_and_none_of_its_files_is_left(tmp_path):
    lst = release.ReleaseList(tmp_path / "l.json", "s", "local",
                              (release.Held("c1", "a.yaml", A), release.Held("c1", "b.yaml", B),
                               release.Held("c2", "a.yaml", C)))
    assert release.wanted([lst]) == {"c1": [("a.yaml", A), ("b.yaml", B)], "c2": [("a.yaml", C)]}
    assert release.released(lst, "c1", {("a.yaml", A), ("a.yaml", C)}) == ["a.yaml"]
    assert not release.done(lst, {"c1": {("a.yaml", A), ("b.yaml", B)}})  # c2 not reached
    assert not release.done(lst, {"c1": {("a.yaml", A)}, "c2": {("a.yaml", C)}})  # b.yaml still there
    assert not release.done(lst, {"c1": {("a.yaml", A), ("b.yaml", B)}, "c2": {("a.yaml", A)}})  # other bytes
    assert release.done(lst, {"c1": {("a.yaml", A), ("b.yaml", B)}, "c2": {("a.yaml", C)}})


def test_the_same_name_in_two_lists_with_other_bytes_is_asked_for_twice(tmp_path):
    first = release.ReleaseList(tmp_path / "1.json", "1", "local", (release.Held("c1", "a.yaml", A),))
    second = release.ReleaseList(tmp_path / "2.json", "2", "local", (release.Held("c1", "a.yaml", B),
                                                                      release.Held("c1", "a.yaml", A)))
    assert release.wanted([first, second]) == {"c1": [("a.yaml", A), ("a.yaml", B)]}
