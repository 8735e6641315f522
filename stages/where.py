"""Where is a report, and how did it get there: `invoke where NAME_OR_REPORT_ID` (reads the journal)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from common.records import Record, optional
from stages import journal
from stages.layout import DataRoot

MOVES = ("rename", "move")  # journal steps that put a report somewhere


@dataclass
class Move(Record):
    """One committed move of the report: when, by which stage, its outcome, the name the report had then, the
    places it went to, and its report id when the stage knew it."""
    time: str
    stage: str
    outcome: str
    report: str
    to: list[str]
    report_id: str | None = optional()

    def line(self) -> str:
        return f"  {self.time}  {self.stage:<9} {self.outcome:<13} {self.report} -> {', '.join(self.to)}"


@dataclass
class Whereabouts(Record):
    """What the journal of data_root says of query: whether a report matches (found), the files it is in now,
    and its moves, oldest first."""
    query: str
    data_root: str
    found: bool
    now: list[str]
    history: list[Move]

    def render(self) -> str:
        if not self.found:
            return f"no report matches {self.query!r} in the journal of {self.data_root}"
        lines = ["now: " + (", ".join(self.now) or "nowhere (duplicate of another report)")]
        return "\n".join(lines + [m.line() for m in self.history])

    def exit_status(self) -> int:
        return 0 if self.found else 1


def _move(entry: dict) -> Move:
    """A committed move from its journal entry."""
    report_id = entry.get("info", {}).get("report_id")
    return Move(entry["time"], entry["stage"], entry["outcome"], entry["report"],
                [s["dst"] for s in entry["steps"] if s["op"] in MOVES and not s["dst"].endswith(".reason.json")],
                report_id=str(report_id) if report_id else None)


def locate(dr: DataRoot, needle: str) -> Whereabouts:
    """The report's history (committed moves, oldest first) and the files it is in now."""
    moves = journal.history(dr, needle)
    # Every place a move put the report that still holds it (a later move empties earlier places).
    placed = [s["dst"] for m in moves for s in m["steps"] if s["op"] in MOVES
              and not s["dst"].endswith(".reason.json") and not s["dst"].startswith("originals/")]
    now = [p for p in dict.fromkeys(placed) if os.path.lexists(dr.root / p)]  # a quarantined link counts
    return Whereabouts(needle, str(dr.root), bool(moves), now, [_move(m) for m in moves])
