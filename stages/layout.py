"""The data root and its state directories. Every path the pipeline touches is made here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Where a report can be, in pipeline order, and the private folders beside them.
REPORT_STATES = ("raw", "staging", "reports", "archive", "quarantine")
STATE_DIRS = REPORT_STATES + ("originals",)
PRIVATE = ("raw", "originals", "quarantine")


@dataclass(frozen=True)
class DataRoot:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    def state(self, name: str) -> Path:
        if name not in STATE_DIRS:
            raise ValueError(f"unknown state directory {name!r}")
        return self.root / name

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    def stage_lock_file(self, stage: str) -> Path:
        return self.root / f".lock-{stage}"

    def ensure(self) -> "DataRoot":
        self.root.mkdir(parents=True, exist_ok=True)
        for name in STATE_DIRS:
            d = self.state(name)
            d.mkdir(exist_ok=True)
            os.chmod(d, 0o700 if name in PRIVATE else 0o755)
        return self

    def relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.root))

    def files(self, name: str):
        """Every report file in a state directory (temporaries and sidecars excluded), sorted."""
        base = self.state(name)
        out = []
        for dirpath, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                if f.startswith(".") or f.endswith(".reason.json"):
                    continue
                out.append(Path(dirpath) / f)
        return out
