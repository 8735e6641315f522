"""Worker functions for sanitizer tests, importable by spawned worker processes: the real worker, except
that a file whose name holds FAIL_MARK fails with an exception and one holding KILL_MARK kills its worker."""

from __future__ import annotations

import os
from pathlib import Path

from stages import sanitize

FAIL_MARK = "injectfail"
KILL_MARK = "injectkill"


def failing_worker(raw: Path, root: str, settings) -> sanitize.FileResult:
    if KILL_MARK in raw.name:
        os._exit(9)
    if FAIL_MARK in raw.name:
        rel = raw.relative_to(Path(root) / "raw")
        return sanitize.failed_result(raw, raw.stat().st_size, rel, RuntimeError("injected failure"))
    return sanitize.sanitize_file(raw, root, settings)
