"""Gates: restic started before the set is ready for it, and released by the set.

A file handed to restic once it is written: `restic backup --stdin-from-command -- python3 -m snapshots.gate
--file F --stop S` starts before F exists, so that restic opens the repository (its key derivation alone
takes about 0.6 s of CPU) while the set's other parts run, and stores F as soon as the set writes it.

The gate exits 1 without writing a byte when the stop file appears (the set failed), when its folder is
gone, or when restic (its parent, or the process it is told to watch) is gone: restic stores no snapshot when its command fails. Write F
atomically (common.atomic): the gate passes it on the moment its name appears.

The physical copy waits at a gate of its own (`pgcopy copy --wait-for`): its restic opens the repository
while the set waits for the pipeline's lock, and pg_basebackup starts when the set opens the gate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from common import atomic

POLL_S = 0.01


class Gate:
    """The set's side: open (write the file restic waits for) or stop; whatever is said first counts."""

    def __init__(self, file: Path, stop: Path):
        self.file, self.stop_file = file, stop
        self.said = False

    def argv(self) -> list[str]:
        """The gate as restic's command: it hands the file to restic."""
        return ["python3", "-m", "snapshots.gate", "--file", str(self.file), "--stop", str(self.stop_file)]

    def wait_args(self) -> list[str]:
        """The options of a command that waits at this gate itself (`pgcopy copy`)."""
        return ["--wait-for", str(self.file), "--stop-file", str(self.stop_file)]

    def open(self, data: bytes) -> None:
        if not self.said:
            atomic.write_bytes(self.file, data)
            self.said = True

    def stop(self) -> None:
        if not self.said:
            atomic.write_bytes(self.stop_file, b"stop\n")
            self.said = True


def exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # there, another user's
    return True


def wait(file: Path, stop: Path, watch: int, poll_s: float = POLL_S) -> bool:
    """Wait until file or stop exists; True when file came first. False as well when file's folder is gone
    or the watched process (restic, the parent) is."""
    while not file.exists():
        if stop.exists() or not file.parent.is_dir() or not exists(watch):
            return False
        time.sleep(poll_s)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m snapshots.gate")
    p.add_argument("--file", type=Path, required=True, help="write this file to stdout once it exists")
    p.add_argument("--stop", type=Path, required=True, help="exit 1 without output when this appears")
    p.add_argument("--watch", type=int, default=None, help="give up when this process is gone (default: parent)")
    args = p.parse_args(argv)
    if not wait(args.file, args.stop, args.watch or os.getppid()):
        print("error: the set stopped before this part was written: nothing was stored", file=sys.stderr)
        return 1
    with open(args.file, "rb") as fh:
        shutil.copyfileobj(fh, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
