"""README.md opens with a quickstart of exactly two commands, and .ci/run runs the second one."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quickstart_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```(?:sh|bash)?\n(.*?)```", text, re.S)
    assert block, "README.md has no Quickstart code block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_quickstart_is_two_commands_main_job_then_tests():
    cmds = quickstart_commands()
    assert len(cmds) == 2, cmds
    assert cmds[0].startswith("./run invoke rebuild --sample")
    assert cmds[1].endswith("# tests") and cmds[1].startswith("./run pytest")


def test_ci_runs_exactly_the_readme_test_command():
    expected = re.sub(r"\s*# tests$", "", quickstart_commands()[1])
    script = (ROOT / ".ci" / "run").read_text()
    # .ci/run extracts the command from README.md itself; run that extraction and compare.
    line = next(l for l in script.splitlines() if l.startswith("test_cmd="))
    out = subprocess.run(["bash", "-c", line + '; printf %s "$test_cmd"'], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out == expected
    assert "$test_cmd" in script.split(line, 1)[1]
