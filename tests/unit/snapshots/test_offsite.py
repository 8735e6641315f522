"""The off-site copy's restic commands (snapshots/offsite.py): `restic copy` from the primary repository, named
with its password file (the off-site one is in the environment), data parts first and manifests last, and
nothing run for nothing to copy; what copy_plan gives those commands. Pure: no restic."""

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
