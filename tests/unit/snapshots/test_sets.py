"""What makes a snapshot set complete (snapshots/sets.is_complete), for every caller that asks, and which
sets carry the portable dump (sets.dump_due)."""

import datetime as dt

import pytest

from snapshots import sets

PART = {"id": "0" * 64, "short_id": "00000000"}


def manifest(parts: str | None) -> dict:
    return PART | {"tags": ["set:20260101T000000Z", "kind:manifest"] + ([f"parts:{parts}"] if parts else [])}


def test_a_set_is_complete_with_every_part_its_manifest_names():
    assert sets.is_complete({"files": PART, "pg": PART, "db": PART, "manifest": manifest("files+pg+db")})
    assert sets.is_complete({"files": PART, "pg": PART, "manifest": manifest("files+pg")})
    assert not sets.is_complete({"files": PART, "pg": PART, "manifest": manifest("files+pg+db")})
    assert not sets.is_complete({"files": PART, "db": PART, "manifest": manifest("files+pg")})
    assert not sets.is_complete({"files": PART, "pg": PART, "db": PART})  # no manifest: interrupted
    assert not sets.is_complete({})


def test_a_set_from_before_the_physical_copy_needs_files_and_dump():
    assert sets.is_complete({"files": PART, "db": PART, "manifest": manifest(None)})
    for missing in sets.LEGACY_PARTS:
        assert not sets.is_complete({k: PART for k in sets.LEGACY_PARTS if k != missing} | {"manifest": manifest(None)})


NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("policy,last,due", [
    ("every", "20261129T115900Z", True),
    ("never", None, False),
    ("daily", None, True),                   # no set with a dump yet
    ("daily", "20261129T060000Z", False),    # six hours ago
    ("daily", "20261128T120500Z", True),     # a day ago, give or take a daily job's jitter
    ("daily", "20261128T114500Z", True),
    ("daily", "20261128T122000Z", False),    # 23 h 40 min ago
])
def test_which_sets_carry_the_portable_dump(policy, last, due):
    assert sets.dump_due(policy, last, NOW) is due


def test_a_listed_manifest_comes_from_the_cache_once_read(tmp_path):
    """No restic here: a cached manifest is returned without a restic run (there is no restic on the test
    host, so any run would fail); manifests of snapshots no longer listed are dropped from the cache."""
    from snapshots.restic import Restic

    restic = Restic(str(tmp_path / "repo"), str(tmp_path / "password"), str(tmp_path / "cache"))
    kept, gone = "ab" * 32, "cd" * 32
    folder = sets._manifest_cache(restic)
    folder.mkdir(parents=True)
    (folder / f"{kept}.json").write_text('{"set": "20260101T000000Z"}')
    (folder / f"{gone}.json").write_text('{"set": "20250101T000000Z"}')
    assert sets.listed_manifest(restic, kept) == {"set": "20260101T000000Z"}
    sets._forget_cached(restic, {kept})
    assert sorted(p.name for p in folder.iterdir()) == [f"{kept}.json"]
    other = Restic(str(tmp_path / "other"), restic.password_file, restic.cache_dir)
    assert sets._manifest_cache(other) != folder  # one folder per repository
