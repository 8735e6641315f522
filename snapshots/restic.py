"""restic, run through common.runner. The repository and its password file are passed in the environment
(RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE), never in argv or logs. restic's exit codes become one clear
sentence each. Runs where restic 0.18 is: in the backup image.

Every command line is built by a pure function, apart from the code that runs it, and unit-tested argument by
argument: restic's own commands here (`command`, `json_args`, `backup_args`, the listings, `dump`, `restore`,
`check`, `forget`, the lock commands; tests/unit/snapshots/test_restic.py); what one action adds, beside that
action: a set's parts (snapshots/sets.py: host, tags, paths, --stdin-from-command with its producer),
the build artifacts' snapshot (snapshots/artifacts.py), the off-site copy's `copy --from-repo`
(snapshots/offsite.py).

Reading the list of snapshots and a manifest takes no restic lock (`--no-lock`): a set runs two restic
processes at once (files, and the copy beside them), and a third one's short-lived lock file vanishing
while another restic checks the locks makes that one wait and retry (5.8 s instead of 0.8 s for a
no-change files snapshot at 2 GB; docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from common import log, runner
from common.errors import CommandError, DrError

_log = log.get("restic")

EXIT_NO_REPOSITORY, EXIT_LOCKED, EXIT_WRONG_PASSWORD = 10, 11, 12
# The backup containers' fixed host name: restic records it in its locks, so our own stale locks are known.
BACKUP_HOSTNAME = "aggregator-dr-backup"


def command(*args: str) -> list[str]:
    """restic's command line for args. The repository and every password are in Restic.env(), never here."""
    return ["restic", *args]


def json_args(*args: str) -> list[str]:
    """args with restic's --json last: a listing or a `cat` read back as JSON."""
    return [*args, "--json"]


def backup_args(*args: str) -> list[str]:
    """restic backup with its JSON status lines (progress, then the summary), then args: the host, the tags
    and the paths, or --stdin-filename and --stdin-from-command."""
    return ["backup", "--json", *args]


def tag_args(*tags: str) -> list[str]:
    """`--tag T` for each tag, in order (restic backup records them; restic snapshots keeps the snapshots
    that have them)."""
    return [a for tag in tags for a in ("--tag", tag)]


def stdin_args(filename: str, producer: list[str]) -> list[str]:
    """A backup of what producer writes to its stdout, stored as filename: restic's options, then `--` and the
    command untouched (restic runs it; a command that fails stores no snapshot)."""
    return ["--stdin-filename", filename, "--stdin-from-command", "--", *producer]


def init_args() -> list[str]:
    """restic init: a new repository where the environment names one."""
    return ["init"]


def cat_config_args() -> list[str]:
    """restic cat config: whether a repository is there (and opens with the password)."""
    return ["cat", "config"]


def snapshots_args(*tags: str) -> list[str]:
    """The snapshots (those with every tag given), read without taking a lock; give it to json_args."""
    return ["snapshots", "--no-lock", *tag_args(*tags)]


def dump_args(snapshot_id: str, path: str) -> list[str]:
    """One file of a snapshot, streamed to stdout (a copy, a dump: read by Restic.read)."""
    return ["dump", snapshot_id, path]


def dump_tar_args(snapshot_id: str, path: str) -> list[str]:
    """A folder of a snapshot streamed to stdout as a tar (read back whole by check)."""
    return ["dump", "--archive", "tar", snapshot_id, path]


def ls_args(snapshot_id: str, *folders: str) -> list[str]:
    """The files of a snapshot (all of them, or those anywhere under the absolute folders given), read without
    a lock; give it to json_args: one JSON line per file or folder (path, type, size), after one line naming
    the snapshot and its paths."""
    return ["ls", "--no-lock", snapshot_id, *folders, *(["--recursive"] if folders else [])]


def read_file_args(snapshot_id: str, path: str) -> list[str]:
    """One small file of a snapshot (a manifest), read whole without a lock and without progress lines."""
    return ["dump", "--no-lock", "--quiet", snapshot_id, path]


def restore_args(snapshot_id: str, target: Path | str) -> list[str]:
    """A snapshot restored under target (its paths recreated there)."""
    return ["restore", snapshot_id, "--target", str(target)]


def check_args(read_data_subset: str | None = None) -> list[str]:
    """restic check; with read_data_subset (restic's syntax: "5%", "1/10"), that share of the data is read
    back and decrypted as well."""
    return ["check", "--read-data-subset", read_data_subset] if read_data_subset else ["check"]


def forget_args(snapshot_ids: list[str]) -> list[str]:
    """restic forget of these snapshots (a whole set's parts together); prune then frees their data."""
    return ["forget", *snapshot_ids]


def prune_args() -> list[str]:
    """restic prune: the data no snapshot refers to any more removed."""
    return ["prune"]


def list_locks_args() -> list[str]:
    """The ids of the repository's locks, read without taking a lock."""
    return ["--no-lock", "list", "locks"]


def cat_lock_args(lock_id: str) -> list[str]:
    """One lock's JSON (its host name tells whose it is), read without taking a lock."""
    return ["--no-lock", "cat", "lock", lock_id]


def unlock_args(remove_all: bool) -> list[str]:
    """restic unlock: every lock when remove_all (all of them are stale locks of ours), else only those
    restic's own rule can tell are stale."""
    return ["unlock", "--remove-all"] if remove_all else ["unlock"]


class ResticError(DrError):
    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details  # the tail of restic's output, for reports that name packs and blobs


@dataclass
class Restic:
    repository: str
    password_file: str
    cache_dir: str | None = None
    rest_user: str | None = None  # rest-server credentials (rest: repositories), given to restic in its
    rest_password_file: str | None = None  # environment only
    cacert: str | None = None  # the CA a rest:https:// server's certificate is verified with (RESTIC_CACERT)

    def env(self) -> dict[str, str]:
        env = {"RESTIC_REPOSITORY": self.repository, "RESTIC_PASSWORD_FILE": self.password_file,
               "RESTIC_PROGRESS_FPS": "0.5"}
        if self.cache_dir:
            env["RESTIC_CACHE_DIR"] = self.cache_dir
        if self.cacert:
            env["RESTIC_CACERT"] = self.cacert
        if self.rest_user and self.rest_password_file:
            try:
                with open(self.rest_password_file, encoding="utf-8") as fh:
                    env["RESTIC_REST_PASSWORD"] = fh.readline().strip()
            except OSError:
                raise ResticError(f"the rest-server password file {self.rest_password_file} is missing or "
                                  "unreadable") from None
            env["RESTIC_REST_USERNAME"] = self.rest_user
        return env

    def _explain(self, exc: CommandError) -> ResticError:
        if exc.returncode == EXIT_NO_REPOSITORY:
            return ResticError(f"there is no restic repository at {self.repository} (run `invoke repo-init"
                               + (" --offsite" if self.rest_user else "") + "`)")
        if exc.returncode == EXIT_WRONG_PASSWORD:
            return ResticError(f"the password in {self.password_file} does not open the repository at "
                               f"{self.repository}")
        if exc.returncode == EXIT_LOCKED:
            return ResticError(f"the repository at {self.repository} is locked by another restic process")
        tail = exc.stderr_tail.strip().splitlines()
        return ResticError(f"restic {exc.argv[1] if len(exc.argv) > 1 else ''} failed (exit {exc.returncode}): "
                           + (tail[-1] if tail else "no message"), exc.stderr_tail)

    def run(self, *args: str, capture: bool = False, stdin=None, on_stdout=None, quiet: bool = False) -> str:
        return self._call(runner.run, command(*args), capture=capture, stdin=stdin, on_stdout=on_stdout,
                          quiet=quiet)

    def read(self, args: list[str], consume):
        """Run restic with args and hand its binary stdout to consume (a `dump` read as it streams)."""
        return self._call(runner.read, command(*args), consume)

    def _call(self, how, argv: list[str], *args, **kwargs):
        """One restic run through the runner (how: runner.run or runner.read), with the repository's
        environment; a missing password file or restic's failure becomes a ResticError that says why."""
        if not os.access(self.password_file, os.R_OK):
            raise ResticError(f"the repository password file {self.password_file} is missing or unreadable")
        try:
            return how(argv, *args, env=self.env(), **kwargs)
        except CommandError as exc:
            raise self._explain(exc) from None

    def local_folder(self) -> Path | None:
        """The folder of a local repository (an absolute path, or local:<path>); None for other backends."""
        path = self.repository[len("local:"):] if self.repository.startswith("local:") else self.repository
        return Path(path) if os.path.isabs(path) else None

    def no_lock_files(self) -> bool:
        """True when a local repository's locks/ folder is there and empty: no lock, so none is stale, and
        no restic run (each one costs the repository's key derivation, about 0.6 s of CPU) is needed to
        know it. False when it cannot be told from here: restic is asked."""
        folder = self.local_folder()
        if folder is None or not (folder / "config").is_file():
            return False
        try:
            with os.scandir(folder / "locks") as entries:
                return next(entries, None) is None
        except OSError:
            return False

    def has_snapshot(self, snapshot_id: str) -> bool | None:
        """Whether a local repository holds the snapshot (its full id): its file is there. None for other
        backends, where only restic can tell."""
        folder = self.local_folder()
        if folder is None or len(snapshot_id) != 64 or not all(c in "0123456789abcdef" for c in snapshot_id):
            return None
        return (folder / "snapshots" / snapshot_id).is_file()

    def clear_stale_locks(self, ours: str) -> list[str]:
        """Remove the restic locks a killed run of ours left behind. Call it only while holding our own
        host-wide repository lock (snapshots.cli does): then no run of ours is active, so every lock whose
        host name is `ours` (the backup containers' fixed host name) is stale. A lock from anywhere else
        (an operator's restic) is left alone, and only restic's own stale-lock rule applies to it."""
        if self.no_lock_files():
            return []
        ids = self.run(*list_locks_args(), capture=True, quiet=True).split()
        if not ids:
            return []
        hosts = {}
        for lock_id in ids:
            try:
                hosts[lock_id] = json.loads(self.run(*cat_lock_args(lock_id), capture=True,
                                                     quiet=True)).get("hostname")
            except (ResticError, ValueError):
                hosts[lock_id] = None  # vanished meanwhile, or unreadable: not provably ours
        if all(h == ours for h in hosts.values()):
            _log.info("removing %d stale restic lock(s) left by a killed run of ours", len(ids))
            self.run(*unlock_args(remove_all=True))
            return ids
        self.run(*unlock_args(remove_all=False))  # restic's own rule: only locks it can tell are stale
        return [i for i, h in hosts.items() if h == ours]

    def json(self, *args: str):
        return json.loads(self.run(*json_args(*args), capture=True, quiet=True) or "null")

    def backup(self, *args: str) -> dict:
        """restic backup --json, its status lines rendered as a progress line every few seconds; returns the
        summary message (snapshot_id, files_new, data_added, ...)."""
        summary: dict = {}
        last = [0.0]

        def progress(line: str):
            try:
                msg = json.loads(line)
            except ValueError:
                _log.info("  | %s", line)
                return
            kind = msg.get("message_type")
            if kind == "status" and time.monotonic() - last[0] >= 2:
                last[0] = time.monotonic()
                done = msg.get("bytes_done", 0) / 1e6
                total = msg.get("total_bytes", 0) / 1e6
                if total:
                    _log.info("  restic: %3.0f%%  %.1f / %.1f MB  %s files", 100 * msg.get("percent_done", 0),
                              done, total, msg.get("files_done", 0))
                else:  # a stream (--stdin-from-command): restic knows no total until it ends
                    _log.info("  restic: %.1f MB read from the stream in %s s", done, msg.get("seconds_elapsed", 0))
            elif kind == "summary":
                summary.update(msg)
            elif kind == "error":
                _log.info("  restic error: %s", msg.get("error", msg))

        self.run(*backup_args(*args), on_stdout=progress)
        if not summary.get("snapshot_id"):
            raise ResticError("restic backup finished without a snapshot")
        return summary
