"""The off-site copy's restic commands (snapshots/offsite.py): `restic copy` from the primary repository, named
with its password file (the off-site one is in the environment), data parts first and manifests last, and
nothing run for nothing to copy; what copy_plan gives those commands; whether the newest build artifacts go
too, and what the copy says of them. Pure: no restic."""

import pytest

from snapshots import offsite
from snapshots.restic import Restic, command

SET = "20260101T000000Z"
PRIMARY = Restic("/repo", "/run/secrets/restic-password", "/cache/restic")


def part(kind: str, letter: str, parts: str = "files+pg+db") -> dict:
    tags = [f"set:{SET}", f"kind:{kind}"] + ([f"parts:{parts}"] if kind == "manifest" else [])
    return {"id": letter * 64, "short_id": letter * 8, "tags": tags}


def test_a_copy_names_the_primary_repository_and_its_password_file():
    assert offsite.copy_args(PRIMARY, ["a" * 64, "b" * 64]) == [
        "copy", "--from-repo", "/repo", "--from-password-file", "/run/secrets/restic-password", "a" * 64, "b" * 64]
    assert command(*offsite.copy_args(PRIMARY, ["d" * 64]))[:3] == ["restic", "copy", "--from-repo"]


def test_the_data_parts_are_copied_before_the_manifests():
    assert offsite.copy_runs(PRIMARY, ["a" * 64, "b" * 64], ["d" * 64]) == [
        ["copy", "--from-repo", "/repo", "--from-password-file", "/run/secrets/restic-password", "a" * 64, "b" * 64],
        ["copy", "--from-repo", "/repo", "--from-password-file", "/run/secrets/restic-password", "d" * 64]]
    assert offsite.copy_runs(PRIMARY, [], ["d" * 64]) == [offsite.copy_args(PRIMARY, ["d" * 64])]
    assert offsite.copy_runs(PRIMARY, [], []) == []


def test_a_set_held_in_part_off_site_gets_its_missing_parts_then_its_manifest():
    primary = {SET: {k: part(k, c) for k, c in (("files", "a"), ("pg", "b"), ("db", "c"), ("manifest", "d"))}}
    there = {SET: {"files": part("files", "a")}}  # an interrupted copy
    todo, data, manifests = offsite.copy_plan(primary, there)
    assert todo == [SET]
    assert offsite.copy_runs(PRIMARY, data, manifests) == [offsite.copy_args(PRIMARY, ["b" * 64, "c" * 64]),
                                                           offsite.copy_args(PRIMARY, ["d" * 64])]
    assert offsite.copy_runs(PRIMARY, *offsite.copy_plan(primary, primary)[1:]) == []  # all there: no run


def built(letter: str, fp: str, time: str) -> dict:
    """An artifacts snapshot as `restic snapshots --json` lists it (snapshots/artifacts.py's tags)."""
    return {"id": letter * 64, "short_id": letter * 8, "time": time,
            "tags": ["kind:artifacts", f"artifacts:{fp}"], "paths": ["/artifacts"]}


def test_the_newest_build_artifacts_go_off_site_unless_the_newest_there_holds_the_same_binaries():
    older, newer = built("e", "fp-old", "2026-01-01T00:00:00Z"), built("f", "fp-new", "2026-02-01T00:00:00Z")
    sets_only = [part("files", "a"), part("manifest", "d")]
    primary = [*sets_only, older, newer]
    assert offsite.artifacts_plan(primary, []) == (newer, True)  # the first copy
    assert offsite.artifacts_plan(primary, [older]) == (newer, True)  # binaries rebuilt since the last copy
    assert offsite.artifacts_plan(primary, [*sets_only, older, dict(newer, id="9" * 64)]) == (newer, False)
    assert offsite.artifacts_plan(sets_only, [older]) == (None, False)  # the primary holds none: nothing to copy
    # Built back to earlier binaries: the off-site copy's newest (the one a rebuild restores) must be those.
    again = built("g", "fp-old", "2026-03-01T00:00:00Z")
    assert offsite.artifacts_plan([older, newer, again], [older, newer]) == (again, True)


def test_the_copy_says_what_it_did_with_the_artifacts_and_fails_when_they_are_still_not_there():
    from snapshots.restic import ResticError

    newer = built("f", "fp-new", "2026-02-01T00:00:00Z")
    copied_there = dict(newer, id="9" * 64, short_id="99999999")  # restic copy gives it an id of its own there
    assert offsite.artifacts_result(newer, True, [copied_there]) == {
        "state": "copied", "fingerprint": "fp-new", "snapshot": "99999999"}
    assert offsite.artifacts_result(newer, False, [copied_there])["state"] == "present"
    assert offsite.artifacts_result(None, False, []) == {"state": "none"}
    with pytest.raises(ResticError, match="newest build artifacts are not those of the primary's snapshot ffffffff"):
        offsite.artifacts_result(newer, True, [built("e", "fp-old", "2026-01-01T00:00:00Z")])

