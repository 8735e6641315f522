"""The cost of a set's cut (snapshots/cut.py) per file, beside the plain tools, on a data root of many small
files (issue 23: the pipeline's pause is the cut's making; it must cost time per file, not per byte).

    ./run python bench/cut_bench.py [--files 100000] [--work /var/tmp]

Makes a data root with --files report files spread over the state directories (1 KB each; the size does not
matter to a cut), then times, each in the same run: the walk alone (os.walk + lstat, and `find -printf ''`),
the cut (`cut.make`: the index, a hard link per file, the folders' metadata), the plain `cp -al` of the state
directories (hard links, no index), and the cut's removal (`cut.clear`) beside `rm -rf` of the cp -al copy.
Prints one JSON document; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from snapshots import cut  # noqa: E402
from stages.layout import REPORT_STATES, DataRoot  # noqa: E402


def timed(fn) -> float:
    start = time.monotonic()
    fn()
    return round(time.monotonic() - start, 3)


def populate(dr: DataRoot, files: int) -> None:
    """files report files of 1 KB over the state directories, 500 per folder."""
    body = b"x" * 1024
    for i in range(files):
        state = REPORT_STATES[i % len(REPORT_STATES)]
        folder = dr.state(state) / f"d{i // 500:05d}"
        if i % 500 < len(REPORT_STATES):
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"report-{i:07d}.yaml").write_bytes(body)


def walk(root: Path) -> None:
    for here, _, names in os.walk(root):
        for n in names:
            os.lstat(os.path.join(here, n))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--files", type=int, default=100_000)
    p.add_argument("--work", type=Path, default=None)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aggr-cutbench-", dir=args.work))
    try:
        dr = DataRoot(work / "data").ensure()
        populate(dr, args.files)
        copy = work / "copy"
        copy.mkdir()
        r: dict = {"files": args.files}
        r["walk_python_seconds"] = timed(lambda: walk(dr.root))
        r["find_seconds"] = timed(lambda: subprocess.run(["find", str(dr.root), "-printf", ""], check=True))
        made: list = []
        r["cut_seconds"] = timed(lambda: made.append(cut.make(dr)))
        r["cut_files"] = made[0].files
        r["cp_al_seconds"] = timed(lambda: subprocess.run(
            ["cp", "-al", *[str(dr.state(s)) for s in REPORT_STATES], str(copy)], check=True))
        r["clear_seconds"] = timed(lambda: cut.clear(dr.root))
        r["rm_rf_seconds"] = timed(lambda: subprocess.run(["rm", "-rf", str(copy)], check=True))
        r["cut_per_file_us"] = round(r["cut_seconds"] / args.files * 1e6, 1)
        print(json.dumps(r, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
