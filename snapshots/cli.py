"""Snapshot sets from the command line, as the backup image runs them (`invoke snapshot` and friends
start this in the backup container):

    python -m snapshots.cli init|take|list|forget [--dry-run] [--config FILE] [--set KEY=VALUE ...] [--host NAME]

Prints JSON on stdout; errors are one sentence on stderr and a non-zero exit (2: configuration).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dr import config as dr_config
from dr import log
from dr.errors import DrError
from snapshots import sets
from snapshots.restic import Restic, ResticError
from stages.layout import DataRoot
from stages.lock import LockTimeout

PASSWORD = "restic-password"


def restic_for(cfg) -> Restic:
    return Restic(cfg.backup.repository, str(Path(cfg.secrets_dir) / PASSWORD), str(Path(cfg.cache_dir) / "restic"))


def init(restic: Restic) -> dict:
    try:
        restic.run("cat", "config", capture=True, quiet=True)
        return {"created": False, "repository": restic.repository}
    except ResticError as exc:
        if "no restic repository" not in str(exc):
            raise
    restic.run("init")
    return {"created": True, "repository": restic.repository}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m snapshots.cli")
    p.add_argument("action", choices=("init", "take", "list", "forget"))
    p.add_argument("--dry-run", action="store_true", help="forget: only say which sets would go")
    p.add_argument("--config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--host", help="host name recorded in the snapshots")
    args = p.parse_args(argv)
    log.setup()
    try:
        cfg = dr_config.load(args.config, dr_config.parse_overrides(args.set))
        restic = restic_for(cfg)
        if args.action == "init":
            result = init(restic)
        elif args.action == "take":
            result = sets.take(cfg, restic, DataRoot(cfg.data_root), args.host)
        elif args.action == "forget":
            result = sets.forget(restic, cfg.retention, args.dry_run)
        else:
            result = sets.listing(restic)
    except DrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except LockTimeout as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
