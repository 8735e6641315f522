"""docs/runbook.md as the drills read it: its ```sh blocks, in order, with the drill markers right before
them (pure: text in, steps out).

A comment line right before a block can say, for the bare-host drill (one server):
    <!-- bare-host drill: skip: WHY -->        the drill does not run it (say why)
    <!-- bare-host drill: expect: TEXT -->     its output must contain TEXT (may be repeated)
    <!-- bare-host drill: exit: N -->          it must end with exit code N (default 0)
    <!-- bare-host drill: feed: N -->          before it, put N reports of the drill's own into raw/ on its
                                               server (dr/drills/feed.py); the drill's end checks they were imported
and for the two-host drill (the Aggregator's server and the database's, dr/drills/two_hosts.py):
    <!-- two-host drill: on: HOST -->          run it on HOST: aggregator or database
    <!-- two-host drill: skip|expect|exit|feed: ... -->   as above
    <!-- two-host drill: lose: HOST HOST -->   before it, destroy these servers; the next block on a lost
                                               host runs on a fresh one
and for the host-loss drill (dr/drills/host_loss.py: this host's Aggregator lost while its collectors hold
reports, rebuilt from the off-site copy):
    <!-- host-loss drill: run: WHAT -->        it runs this block (only blocks with a host-loss marker), as
                                               WHAT: rebuild, pipeline or release (LOSS_RUNS, in that order)
    <!-- host-loss drill: expect|exit: ... --> as above
A block with any two-host marker is run by the two-host drill by its two-host markers alone (on the
Aggregator's server unless `on` says otherwise); a block with none as the bare-host drill runs it, on the
Aggregator's server. A marker that would apply to nothing, or to a block that is not ```sh, is refused with
its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import DrError

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
MARK_RE = re.compile(r"^<!--\s*(bare-host|two-host|host-loss) drill:\s*(\w+)\s*:\s*(.*?)\s*-->$")
DRILLS = ("bare-host", "two-host", "host-loss")
HOSTS = ("aggregator", "database")
LOSS_RUNS = ("rebuild", "pipeline", "release")  # what a host-loss block does, in the order the drill runs them
KINDS = {"bare-host": ("skip", "expect", "exit", "feed"), "two-host": ("skip", "expect", "exit", "feed", "on", "lose"),
         "host-loss": ("run", "expect", "exit")}


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
    host: str = "aggregator"  # the two-host drill's server for it
    lose: list[str] = field(default_factory=list)
    feed: int = 0  # reports of the drill's own put into raw/ before it
    run: str = ""  # the host-loss drill's name for what the block does (its `run` marker)


def problems(step: Step, code: int, output: str) -> list[str]:
    """How a block's run differs from its markers: its exit code, the texts its output lacks. Pure."""
    found = [f"exit code {code}, the runbook expects {step.exit_code}"] if code != step.exit_code else []
    return found + [f"its output lacks {text!r}" for text in step.expect if text not in output]


def _marker(n: int, drill: str, kind: str, value: str) -> tuple[int, str, str, object]:
    """One marker, checked: (line, drill, kind, its value in the form the step takes)."""
    if kind not in KINDS[drill]:
        raise RunbookError(f"runbook line {n}: unknown {drill} drill marker {kind!r} ({', '.join(KINDS[drill])})")
    if kind in ("exit", "feed") and not value.isdigit():
        raise RunbookError(f"runbook line {n}: {kind} wants a number, not {value!r}")
    if kind == "run" and value not in LOSS_RUNS:
        raise RunbookError(f"runbook line {n}: run wants one of {', '.join(LOSS_RUNS)}, not {value!r}")
    if kind == "on" and value not in HOSTS:
        raise RunbookError(f"runbook line {n}: on wants one of {', '.join(HOSTS)}, not {value!r}")
    if kind == "lose":
        hosts = value.replace(",", " ").split()
        if not hosts or any(h not in HOSTS for h in hosts):
            raise RunbookError(f"runbook line {n}: lose wants hosts among {', '.join(HOSTS)}, not {value!r}")
        return n, drill, kind, hosts
    return n, drill, kind, int(value) if kind in ("exit", "feed") else value


def _apply(step: Step, markers: list[tuple[int, str, str, object]], drill: str) -> None:
    """The markers the drill follows for this block (see the module's docstring), onto step."""
    own = [m for m in markers if m[1] == drill] if drill != "bare-host" else []
    use = own if drill == "host-loss" else own or [m for m in markers if m[1] == "bare-host"]
    for _, _, kind, value in use:
        if kind == "run":
            step.run = value
        elif kind == "skip":
            step.skip = value or "(no reason given)"
        elif kind == "expect":
            step.expect.append(value)
        elif kind == "exit":
            step.exit_code = value
        elif kind == "feed":
            step.feed += value
        elif kind == "on":
            step.host = value
        else:
            step.lose.extend(value)


def parse(text: str, drill: str = "bare-host") -> list[Step]:
    """The ```sh blocks of the runbook, in order, with the markers drill follows (bare-host or two-host)."""
    if drill not in DRILLS:
        raise RunbookError(f"no {drill} drill; drills: {', '.join(DRILLS)}")
    steps: list[Step] = []
    heading = ""
    pending: list[tuple[int, str, str, object]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        n = i + 1
        m = MARK_RE.match(line)
        if m:
            pending.append(_marker(n, *m.groups()))
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
                _apply(step, pending, drill)
                if drill != "host-loss" or any(m[1] == drill for m in pending):
                    steps.append(step)
                pending = []
            elif pending:
                raise RunbookError(f"runbook line {pending[0][0]}: a drill marker must come right "
                                   f"before a ```sh block, not a ```{lang} one")
            i = end + 1
            continue
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line and pending:
            raise RunbookError(f"runbook line {pending[0][0]}: a drill marker must come right before "
                               f"a ```sh block (line {n} is in between)")
        i += 1
    if pending:
        raise RunbookError(f"runbook line {pending[0][0]}: a drill marker at the end of the runbook")
    if not any(not s.skip for s in steps):
        raise RunbookError(f"the runbook has no ```sh block for the {drill} drill to run")
    return steps
