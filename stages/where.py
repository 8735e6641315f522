"""Where is a report, and how did it get there: `invoke where NAME_OR_REPORT_ID` (reads the journal)."""

from __future__ import annotations

import os

from stages import journal
from stages.layout import DataRoot

MOVES = ("rename", "move")  # journal steps that put a report somewhere


def locate(dr: DataRoot, needle: str) -> dict:
    """The report's history (committed moves, oldest first) and the files it is in now."""
    moves = journal.history(dr, needle)
    # Every place a move put the report that still holds it (a later move empties earlier places).
    placed = [s["dst"] for m in moves for s in m["steps"] if s["op"] in MOVES
              and not s["dst"].endswith(".reason.json") and not s["dst"].startswith("originals/")]
    now = [p for p in dict.fromkeys(placed) if os.path.lexists(dr.root / p)]  # a quarantined link counts
    return {
        "query": needle,
        "found": bool(moves),
        "now": now,
        "history": [{"time": m["time"], "stage": m["stage"], "outcome": m["outcome"], "report": m["report"],
                     "to": [s["dst"] for s in m["steps"] if s["op"] in MOVES
                            and not s["dst"].endswith(".reason.json")],
                     **({"report_id": m["info"].get("report_id")} if m.get("info", {}).get("report_id") else {})}
                    for m in moves],
    }
