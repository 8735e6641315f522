"""What sync's catch-up costs each run (issue 22): stages/sync.py `known_held(dr)` (sync's lines of the journal,
read with the stage filter) on a generated journal, beside the plain full pass (`journal.committed(dr)`, what the
release list after a set reads).

    ./run python bench/journal_scan_bench.py [--pulls 200000] [--work /var/tmp]

No Docker: the journal is written in bulk into a temporary data root, as the stages write it (sorted keys, no
spaces): per report a sync pull (held in .pulled/), a sanitize and an importer transaction, each a begin and
a commit line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from stages import journal, sync
from stages.layout import DataRoot


def entry(stage: str, i: int, info: dict) -> list[str]:
    begin = {"time": journal.now(), "op": "begin", "txid": f"{stage}{i}", "stage": stage, "outcome": "x",
             "report": f"r{i}", "info": info, "steps": [{"op": "rename", "src": f"raw/.incoming/c1/r{i}.yaml",
                                                         "dst": f"raw/c1/r{i}.yaml", "sha256": "b" * 64, "size": 1234}]}
    commit = {"time": journal.now(), "op": "commit", "txid": f"{stage}{i}", "stage": stage}
    return [json.dumps(e, sort_keys=True, separators=(",", ":")) for e in (begin, commit)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pulls", type=int, default=200_000)
    p.add_argument("--work", default=None)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="journal-bench-", dir=args.work))
    try:
        dr = DataRoot(tmp)
        dr.journal.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(args.pulls):
            lines += entry("sync", i, {"collector": "c1", "remote": f"r{i}.yaml", "sha256": "a" * 64,
                                       "held_as": f"r{i}.yaml", "size": 1234, "mtime": 1700000000})
            lines += entry("sanitize", i, {"original": f"originals/r{i}.yaml.gz"})
            lines += entry("importer", i, {"report_id": f"id{i}", "report_key": "k"})
        dr.journal.write_text("\n".join(lines) + "\n")
        t = time.perf_counter()
        known = sync.known_held(dr)
        catch_up = time.perf_counter() - t
        t = time.perf_counter()
        entries = sum(1 for _ in journal.committed(dr))
        full = time.perf_counter() - t
        print(json.dumps({"pulls": args.pulls, "lines": len(lines), "journal_mb": round(dr.journal.stat().st_size / 1e6),
                          "known_held_seconds": round(catch_up, 2), "held_names": len(known),
                          "committed_pass_seconds": round(full, 2), "committed_entries": entries}))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
