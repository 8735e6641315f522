"""docs/runbook.md as the bare-host drill reads it: its ```sh blocks, in order, with the drill markers right
before them (pure: text in, steps out).

A comment line right before a block can say:
    <!-- bare-host drill: skip: WHY -->        the drill does not run it (say why)
    <!-- bare-host drill: expect: TEXT -->     its output must contain TEXT (may be repeated)
    <!-- bare-host drill: exit: N -->          it must end with exit code N (default 0)
A marker that would apply to nothing, or to a block that is not ```sh, is refused with its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import DrError

RUNBOOK = Path(__file__).resolve().parents[1] / "docs" / "runbook.md"
MARK_RE = re.compile(r"^<!--\s*bare-host drill:\s*(\w+)\s*:\s*(.*?)\s*-->$")


class RunbookError(DrError):
    """The runbook's drill markers are malformed."""


@dataclass
class Step:
    line: int  # of the ```sh line in the runbook
    heading: str
    script: str
    skip: str = ""
    expect: list[str] = field(default_factory=list)
    exit_code: int = 0


def parse(text: str) -> list[Step]:
    """The ```sh blocks of the runbook, in order, with their drill markers."""
    steps: list[Step] = []
    heading = ""
    pending: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        n = i + 1
        m = MARK_RE.match(line)
        if m:
            if m.group(1) not in ("skip", "expect", "exit"):
                raise RunbookError(f"runbook line {n}: unknown bare-host drill marker {m.group(1)!r} "
                                   "(skip, expect or exit)")
            pending.append((n, m.group(1), m.group(2)))
            i += 1
            continue
        if line.startswith("```"):
            lang = line[3:].strip()
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith("```"):
                end += 1
            if end == len(lines):
                raise RunbookError(f"runbook line {n}: the code block is never closed")
            if lang == "sh":
                step = Step(n, heading, "\n".join(lines[i + 1:end]))
                for mn, kind, value in pending:
                    if kind == "skip":
                        step.skip = value or "(no reason given)"
                    elif kind == "expect":
                        step.expect.append(value)
                    else:
                        if not value.isdigit():
                            raise RunbookError(f"runbook line {mn}: exit wants a number, not {value!r}")
                        step.exit_code = int(value)
                steps.append(step)
                pending = []
            elif pending:
                raise RunbookError(f"runbook line {pending[0][0]}: a bare-host drill marker must come right "
                                   f"before a ```sh block, not a ```{lang} one")
            i = end + 1
            continue
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line and pending:
            raise RunbookError(f"runbook line {pending[0][0]}: a bare-host drill marker must come right before "
                               f"a ```sh block (line {n} is in between)")
        i += 1
    if pending:
        raise RunbookError(f"runbook line {pending[0][0]}: a bare-host drill marker at the end of the runbook")
    if not any(not s.skip for s in steps):
        raise RunbookError("the runbook has no ```sh block for the drill to run")
    return steps
