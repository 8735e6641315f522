"""stages/sync.py without a collector: what a pull killed outright leaves in raw/.incoming/<collector>/, the
release mode, the names of held reports, a collector's answers read back."""

import pytest

from common import config
from common.errors import ConfigError
from stages import sync
from stages.cli import CollectorPull


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


def test_the_release_mode_auto_is_offsite_when_an_offsite_repository_is_configured():
    assert sync.release_mode(config.load(overrides={})) == "set"
    assert sync.release_mode(config.load(overrides={"offsite.repository": "rest:http://backup:8000/a"})) == "offsite"
    for mode in ("pulled", "set", "offsite"):
        assert sync.release_mode(config.load(overrides={"sync.release": mode,
                                                        "offsite.repository": "rest:http://backup:8000/a"})) == mode
    with pytest.raises(ConfigError, match=r"^sync\.release: must be one of pulled, set, offsite, auto, got 'never'"):
        config.load(overrides={"sync.release": "never"})


def test_a_pulled_report_is_held_under_its_own_name_unless_the_collector_reused_it():
    assert sync.held_name("2014/a.yaml", set()) == "2014/a.yaml"
    assert sync.held_name("2014/a.yaml", {"2014/a.yaml"}) == "2014/a.yaml.2"
    assert sync.held_name("2014/a.yaml", {"2014/a.yaml", "2014/a.yaml.2"}) == "2014/a.yaml.3"
    assert sync.held_name("2014", {"2014/a.yaml"}) == "2014.2"  # a folder there of that name
    assert sync.held_name("2014/a.yaml", {"2014"}) == "2014.2/a.yaml"  # a file there named like its folder
    assert sync.held_name("2014/a.yaml", {"2014", "2014.2"}) == "2014.3/a.yaml"


def test_what_a_collector_holds_is_counted_with_the_oldest_files_time():
    survey = sync.Survey([("new.yaml", 5), ("-bad name", 1)], {"a.yaml": (100, 1_700_000_000.5), "b.yaml": (20, 1_600_000_000.0)})
    pull = CollectorPull("c1")
    survey.tell(pull)
    assert pull.to_dict() == {"collector": "c1", "reached": True, "listed": 2, "pulled": 0, "left": 2, "bytes": 0,
                              "held": 2, "held_bytes": 120, "oldest_held": "2020-09-13T12:26:40Z"}
    survey.held.clear()
    survey.tell_held(pull)
    assert (pull.held, pull.held_bytes, pull.oldest_held) == (0, 0, None)
    assert "oldest_held" not in pull.to_dict()


def test_a_collectors_answer_is_read_back_whatever_its_names_hold():
    out = ("L\t12\t2014/a.yaml\0L\t3\tbad\tname\nx\0H\t7\t1600000000.25\t2013/b.yaml\0"
           f"removed\t{'a' * 64}\tc.yaml\0kept\t{'b' * 64}\td.yaml\0")
    survey, other = sync.Remote._records(out)
    assert survey.listing == [("2014/a.yaml", 12), ("bad\tname\nx", 3)]
    assert survey.held == {"2013/b.yaml": (7, 1600000000.25)}
    assert other == {"removed": [("c.yaml", "a" * 64)], "kept": [("d.yaml", "b" * 64)]}


def test_lost_pulls_are_the_held_names_no_known_pull_was_held_under_with_that_size_and_second():
    known = {("a", "r1.yaml"): [(10, 1000, "s1")], ("a", "r2.yaml"): [(10, 1000, "s2"), (12, 2000, "s2b")],
             ("a", "old.yaml"): [(None, None, None)],  # an entry from before size and second were recorded
             ("b", "r3.yaml"): [(10, 1000, "s3")]}
    held = {"r1.yaml": (10, 1000.9),   # known (the same second)
            "r2.yaml": (12, 2000.0),   # known: the name's second pull
            "old.yaml": (99, 5.0),     # known by its name alone
            "r3.yaml": (10, 1000.0),   # known, but of another collector
            "r4.yaml": (1, 1.0)}       # never pulled here
    assert sync.lost_pulls(known, "a", held) == ["r3.yaml", "r4.yaml"]
    assert sync.lost_pulls(known, "a", {"r1.yaml": (11, 1000.0), "r2.yaml": (10, 2000.0)}) == ["r1.yaml", "r2.yaml"]
    assert sync.lost_pulls({}, "a", {}) == []
    # release "pulled" deletes what is known with its sha256 (the one of the matching pull); not old.yaml
    assert sync.known_pulls(known, "a", held) == {"r1.yaml": "s1", "r2.yaml": "s2b"}
