"""The bare-host drill reads its commands from docs/runbook.md: the ```sh blocks, in order, with the markers
right before them. The parser must take the real runbook and refuse a marker that would silently apply to
nothing or to the wrong block."""

import pytest

from dr import runbook
from dr.runbook import RunbookError

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
    ("```sh\ntrue\n", "never closed"),
    ("```sh\ntrue\n```\n<!-- bare-host drill: expect: x -->\n", "at the end of the runbook"),
    ("<!-- bare-host drill: skip: no -->\n```sh\ntrue\n```\n", "no ```sh block for the drill to run"),
])
def test_misplaced_or_malformed_markers_are_refused_with_their_line(doc, message):
    with pytest.raises(RunbookError, match=message.replace("(", r"\(").replace("*", r"\*")):
        runbook.parse(doc)


def test_the_real_runbook_parses_and_runs_its_rebuild_and_a_drill():
    steps = runbook.parse(runbook.RUNBOOK.read_text())
    run = [s.script for s in steps if not s.skip]
    assert any("./run invoke rebuild" in s for s in run)
    assert any("./run invoke drill" in s for s in run)
    # Every skipped block says why.
    assert all(len(s.skip) > 10 for s in steps if s.skip)
