"""stages/sync.py without a collector: what a pull killed outright leaves in raw/.incoming/<collector>/."""

from stages import sync


def test_rsync_temporaries_left_by_a_killed_pull_are_found_and_nothing_else(tmp_path):
    incoming = tmp_path / "incoming"
    (incoming / "2014" / ".rsync-partial").mkdir(parents=True)
    left = [incoming / ".copy-12.yaml.ua3Efu", incoming / "2014" / ".r.yaml.Ab12Cd"]
    kept = [incoming / "copy-12.yaml",                        # a pulled file, waiting for its verification
            incoming / "2014" / ".rsync-partial" / "r.yaml",  # what a resumed pull goes on from
            incoming / ".copy-13.yaml.toolong7"]              # not rsync's pattern (six characters)
    for p in left + kept:
        p.write_text("x")
    (incoming / ".link.yaml.Zz99zz").symlink_to(tmp_path / "elsewhere")
    assert sync.rsync_leftovers(incoming) == sorted(left)
