"""The bare-host drill reads its commands from docs/runbook.md: the ```sh blocks, in order, with the markers
right before them. The parser must take the real runbook and refuse a marker that would silently apply to
nothing or to the wrong block."""

import pytest

from dr.drills import runbook
from dr.drills.runbook import RunbookError

DOC = """# Title

## 1. First

<!-- bare-host drill: expect: hello -->
<!-- bare-host drill: expect: world -->
```sh
echo hello world
```

```toml
key = "value"
```

## 2. Second

<!-- bare-host drill: exit: 1 -->
```sh
false
```
<!-- bare-host drill: skip: needs a server we do not have -->

```sh
ssh elsewhere
```
"""


def test_blocks_in_order_with_their_markers_and_sections():
    steps = runbook.parse(DOC)
    assert [(s.heading, s.script, s.expect, s.exit_code, s.skip) for s in steps] == [
        ("1. First", "echo hello world", ["hello", "world"], 0, ""),
        ("2. Second", "false", [], 1, ""),
        ("2. Second", "ssh elsewhere", [], 0, "needs a server we do not have"),
    ]
    assert steps[0].line == 7


@pytest.mark.parametrize("doc, message", [
    ("<!-- bare-host drill: expect: x -->\nsome text\n```sh\ntrue\n```\n", "line 2 is in between"),
    ("<!-- bare-host drill: expect: x -->\n```toml\na = 1\n```\n```sh\ntrue\n```\n", "not a ```toml one"),
    ("<!-- bare-host drill: run: x -->\n```sh\ntrue\n```\n", "unknown bare-host drill marker 'run'"),
    ("<!-- bare-host drill: exit: one -->\n```sh\ntrue\n```\n", "exit wants a number"),
    ("<!-- bare-host drill: feed: some -->\n```sh\ntrue\n```\n", "feed wants a number"),
    ("```sh\ntrue\n", "never closed"),
    ("```sh\ntrue\n```\n<!-- bare-host drill: expect: x -->\n", "at the end of the runbook"),
    ("<!-- bare-host drill: skip: no -->\n```sh\ntrue\n```\n", "no ```sh block for the bare-host drill to run"),
    ("<!-- two-host drill: on: web -->\n```sh\ntrue\n```\n", "on wants one of aggregator, database"),
    ("<!-- two-host drill: lose: aggregator db -->\n```sh\ntrue\n```\n", "lose wants hosts among"),
    ("<!-- two-host drill: carry: a -> b -->\n```sh\ntrue\n```\n", "unknown two-host drill marker 'carry'"),
    ("<!-- host-loss drill: run: reboot -->\n```sh\ntrue\n```\n", "run wants one of rebuild, pipeline, release"),
    ("<!-- host-loss drill: skip: x -->\n```sh\ntrue\n```\n", "unknown host-loss drill marker 'skip'"),
])
def test_misplaced_or_malformed_markers_are_refused_with_their_line(doc, message):
    with pytest.raises(RunbookError, match=message.replace("(", r"\(").replace("*", r"\*")):
        runbook.parse(doc)


TWO = """## 1. One host

<!-- bare-host drill: expect: one -->
```sh
echo one
```

## 2. Two hosts

<!-- bare-host drill: skip: the two-host drill's -->
<!-- two-host drill: on: database -->
<!-- two-host drill: expect: two -->
```sh
echo two
```

<!-- bare-host drill: skip: the two-host drill's -->
<!-- two-host drill: lose: aggregator, database -->
<!-- two-host drill: exit: 3 -->
```sh
exit 3
```
"""


def test_each_drill_follows_its_own_markers():
    bare = runbook.parse(TWO)
    assert [(s.skip, s.expect, s.exit_code, s.host, s.lose) for s in bare] == [
        ("", ["one"], 0, "aggregator", []),
        ("the two-host drill's", [], 0, "aggregator", []),
        ("the two-host drill's", [], 0, "aggregator", [])]
    two = runbook.parse(TWO, "two-host")
    assert [(s.skip, s.expect, s.exit_code, s.host, s.lose) for s in two] == [
        ("", ["one"], 0, "aggregator", []),  # no two-host marker: as the bare-host drill runs it
        ("", ["two"], 0, "database", []),
        ("", [], 3, "aggregator", ["aggregator", "database"])]
    with pytest.raises(RunbookError, match="no tri-host drill"):
        runbook.parse(TWO, "tri-host")


def test_the_real_runbook_parses_and_runs_its_rebuild_and_a_drill():
    steps = runbook.parse(runbook.RUNBOOK.read_text())
    run = [s.script for s in steps if not s.skip]
    assert any("./run invoke rebuild" in s for s in run)
    assert any("./run invoke drill" in s for s in run)
    # Every skipped block says why.
    assert all(len(s.skip) > 10 for s in steps if s.skip)


def test_a_feed_marker_gives_its_block_reports_of_the_drills_own():
    doc = ("<!-- bare-host drill: feed: 2 -->\n<!-- bare-host drill: feed: 1 -->\n```sh\n./run invoke pipeline\n```\n"
           "<!-- bare-host drill: skip: x -->\n<!-- two-host drill: feed: 4 -->\n```sh\n./run invoke pipeline\n```\n")
    assert [s.feed for s in runbook.parse(doc)] == [3, 0]
    assert [s.feed for s in runbook.parse(doc, "two-host")] == [3, 4]


# What a block prints that depends on which reports the repository holds: expected only where the drill
# fed the block reports of its own (a user's repository may hold the samples, or no report at all).
DEPENDS_ON_DATA = ("imported", "sanitized", "duplicate", "quarantined", "pulled", "lacked")


@pytest.mark.parametrize("drill", runbook.DRILLS)
def test_the_real_runbooks_expectations_hold_whatever_the_repository_holds(drill):
    steps = [s for s in runbook.parse(runbook.RUNBOOK.read_text(), drill) if not s.skip]
    for s in steps:
        # An operator's procedure never runs the sample collector: its reports may be in the user's sets.
        assert "--sample" not in s.script, f"runbook line {s.line} runs the sample collector"
        for text in s.expect:
            if any(word in text for word in DEPENDS_ON_DATA):
                assert s.feed and "invoke pipeline" in s.script, \
                    f"runbook line {s.line} expects {text!r} without the drill feeding it reports"
    if drill != "host-loss":  # its collectors are fed all through the drill
        assert any(s.feed for s in steps), f"the {drill} drill brings no report of its own"


def test_the_host_loss_drill_runs_only_its_own_blocks_and_the_others_do_not_run_them():
    doc = ("```sh\necho everyone\n```\n"
           "<!-- bare-host drill: skip: elsewhere -->\n<!-- host-loss drill: run: rebuild -->\n"
           "<!-- host-loss drill: expect: summary -->\n```sh\n./run invoke rebuild --offsite\n```\n")
    loss = runbook.parse(doc, "host-loss")
    assert [(s.script, s.run, s.expect, s.skip) for s in loss] == [
        ("./run invoke rebuild --offsite", "rebuild", ["summary"], "")]
    assert [s.skip for s in runbook.parse(doc)] == ["", "elsewhere"]
    assert [s.skip for s in runbook.parse(doc, "two-host")] == ["", "elsewhere"]


def test_a_blocks_run_is_judged_by_its_exit_code_and_expected_texts():
    step = runbook.Step(1, "h", "x", expect=["done", "ok"], exit_code=0)
    assert runbook.problems(step, 0, "all done, ok") == []
    assert runbook.problems(step, 2, "done") == ["exit code 2, the runbook expects 0", "its output lacks 'ok'"]
