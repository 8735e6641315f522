"""What makes a snapshot set complete (snapshots/sets.is_complete), for every caller that asks."""

from snapshots import sets


def test_a_set_is_complete_only_with_files_db_and_manifest():
    part = {"id": "0" * 64, "short_id": "00000000"}
    assert sets.is_complete({"files": part, "db": part, "manifest": part})
    assert not sets.is_complete({})
    for missing in sets.KINDS:
        assert not sets.is_complete({k: part for k in sets.KINDS if k != missing}), missing
