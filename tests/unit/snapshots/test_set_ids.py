"""Snapshot set ids: the UTC second a set started, never the same twice (snapshots/sets.unique_id)."""

from snapshots import sets


def test_set_ids_taken_in_the_same_second_differ(tmp_path):
    last = tmp_path / "cache" / "last-set-id"
    ids = [sets.unique_id(last)[0] for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert last.read_text() == ids[-1]
