"""Snapshot sets from the command line, as the backup image runs them (`invoke snapshot` and friends
start this in the backup container):

    python -m snapshots.cli ACTION
                            [--offsite] [--dry-run] [--release-list]
                            [--read-data-subset N%] [--snapshot-set ID] [--no-files] [--no-db] [--force]
                            [--config FILE] [--set KEY=VALUE ...] [--host NAME]

ACTION is one of snapshots/actions.py's table. --offsite makes init, list, check, forget and restore work on
the off-site repository; copy copies complete sets from the primary repository to the off-site one. Prints
the action's result (its type in the table, one record: `list` prints {"sets": [...]}) as JSON on stdout;
errors are one sentence on stderr and a non-zero exit (2: configuration). A result that reports a failure is
printed too and exits with its exit_status(): a check with "ok": false exits 1. An action on a repository
holds the host-wide lock of our restic runs (snapshots/repolock.py).
"""

from __future__ import annotations

import argparse
import sys

from common import config as dr_config
from common import log
from common.config import Config
from common.errors import DrError
from common.records import Record
from snapshots import actions
from snapshots.actions import ACTIONS
from snapshots.repolock import repo_lock
from snapshots.restic import BACKUP_HOSTNAME, ResticError
from stages.lock import LockTimeout


def repositories(args: argparse.Namespace) -> list[str]:
    """The repositories the action works on: "primary", "offsite" or both (copy)."""
    both = ACTIONS[args.action].both_repositories
    return ([] if args.offsite and not both else ["primary"]) + (["offsite"] if both or args.offsite else [])


def _clear_stale(args: argparse.Namespace, cfg: Config) -> None:
    """Remove the restic locks a killed run of ours left in the repositories the action works on."""
    opening = {"primary": actions.restic_for, "offsite": actions.offsite_restic_for}
    for r in (opening[name](cfg) for name in repositories(args)):
        try:
            r.clear_stale_locks(BACKUP_HOSTNAME)
        except ResticError as exc:
            if "no restic repository" not in str(exc):  # init creates it; other actions say so themselves
                raise


def run(args: argparse.Namespace, cfg: Config) -> Record:
    """The action's result, by its row: an action on a repository under the lock of our restic runs, stale
    restic locks of ours cleared first; the others (PostgreSQL only) without it."""
    action = ACTIONS[args.action]
    if not action.repository:
        return action.run(args, cfg)
    with repo_lock(cfg):
        _clear_stale(args, cfg)
        return action.run(args, cfg)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m snapshots.cli")
    p.add_argument("action", choices=tuple(ACTIONS))
    p.add_argument("--offsite", action="store_true", help="work on the off-site repository")
    p.add_argument("--dry-run", action="store_true", help="forget: only say which sets would go")
    p.add_argument("--read-data-subset", help="check: also read back this share of the data (restic syntax)")
    p.add_argument("--snapshot-set", default="latest", metavar="ID", help="restore: which set (default latest)")
    p.add_argument("--no-files", action="store_true", help="restore: leave the data root alone")
    p.add_argument("--no-db", action="store_true", help="restore: leave the database alone")
    p.add_argument("--force", action="store_true", help="restore: replace a non-empty data root or database")
    p.add_argument("--with-copy", action="store_true",
                   help="restore: also the set's physical copy into PostgreSQL's volume at /pgvolume (stopped)")
    p.add_argument("--replaced", help="pg-undo: the data directory pg-restore put aside (its result's replaced)")
    p.add_argument("--release-list", action="store_true",
                   help="take, copy: write the set's release list into the data root (docs/snapshots.md)")
    p.add_argument("--cut-view", metavar="PATH",
                   help="take: where the data root's cut is seen at the path the snapshots record (snapshots/cut.py)")
    p.add_argument("--config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--host", help="host name recorded in the snapshots")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    log.setup()
    try:
        cfg = dr_config.load(args.config, dr_config.parse_overrides(args.set))
        result = run(args, cfg)
    except DrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except LockTimeout as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.to_json())
    return result.exit_status()


if __name__ == "__main__":
    sys.exit(main())
