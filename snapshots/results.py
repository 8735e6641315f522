"""The types of what `python -m snapshots.cli` prints on stdout: snapshots/actions.py's table names each
action's type, its function builds one and snapshots/cli.py prints it as JSON (`to_json`), dr/jobs/backup.py reads
the JSON back into the same type (dr/jobs/launch.py `run_job`). Every action's result is one record; `list`'s is
SetList, an object {"sets": [...]}.

The results an `invoke` task prints say themselves how: `render()` is the task's text (InitResult, TakeResult,
SetList, ForgetResult, CheckResult, CopyResult), `exit_status()` its exit code (1 for a check that failed).

The JSON keeps the shape the actions printed as dicts (operators and scripts read it with `--json`): the
attribute `set_id` is the key "set", and an optional field that is None has no key at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.records import Record, key, optional
from common.text import table
from stages.cli import Summary


def _indented(lines: list[str] | None) -> str:
    """lines, each on its own line under the one before, indented."""
    return "".join(f"\n    {line}" for line in lines or [])


@dataclass
class InitResult(Record):
    """`init`: the repository, and whether it was created now (False: it was there already)."""
    created: bool
    repository: str

    def render(self) -> str:
        return ("created" if self.created else "already exists:") + f" restic repository {self.repository}"


@dataclass
class DirectorySummary(Record):
    """One state directory as a manifest holds it (snapshots.manifest.directory_summary)."""
    files: int
    reports: int
    bytes: int
    digest: str


@dataclass
class DatabaseContent(Record):
    """A manifest's database part (snapshots.dbdump's counts file): the database's name, documents per
    collection, [reports, measurements] per "<test> <cc>"."""
    collections: dict[str, int]
    database: str | None = optional()
    reports_by_test_country: dict[str, list[int]] | None = optional()
    sha256: str | None = optional()  # of the whole dump stream (sets taken since the archive format)

    @property
    def documents(self) -> int:
        return sum(self.collections.values())


@dataclass
class PhysicalCopy(Record):
    """A manifest's physical copy (snapshots/pgcopy.py): the stream's size, the versions it was taken from,
    and PostgreSQL's exact counts per collection just before and just after it (a restored copy holds counts
    between the two); the stream's sha256 only in sets taken before 2026-11-29 (restic's content addresses and
    pg_verifybackup check a copy since)."""
    bytes: int
    postgres_version_num: int
    postgres_major: int
    ferretdb_version: str
    database: str
    collections: dict[str, int]
    collections_at_start: dict[str, int]
    sha256: str | None = optional()

    def problems(self, counts: dict[str, int]) -> list[str]:
        """What is wrong with counts found in a restored copy (nothing when every collection is in range)."""
        out = []
        for coll in sorted(set(self.collections) | set(self.collections_at_start) | set(counts)):
            low, high, n = self.collections_at_start.get(coll, 0), self.collections.get(coll, 0), counts.get(coll, 0)
            if not low <= n <= high:
                out.append(f"{coll}: {n} documents restored, the set's copy holds "
                           + (f"{high}" if low == high else f"between {low} and {high}"))
        return out


@dataclass
class CutMade(Record):
    """The set's cut of the data root (snapshots/cut.py): names given under the lock, folders, and the seconds
    making it (under the lock) and removing it (after the files snapshot) took."""
    files: int
    folders: int
    made_seconds: float
    removed_seconds: float


@dataclass(kw_only=True)
class Manifest(Record):
    """What a set must restore to (stored as the set's manifest.json; see snapshots/sets.py). Keys this
    version does not know (a set written by a newer one) are kept in `extra`."""
    EXTRA = "extra"

    format: int
    set_id: str = key("set")
    host: str
    version: str
    started: str
    locked: str
    ended: str
    paused_seconds: float
    lock_waited_seconds: float
    recovered: list[str]
    dump_under_lock: bool = False  # manifests from before backup.dump_under_lock lack it
    database_beside_files: bool = False  # the copy ran beside the files snapshot (backup.beside_files_mb)
    journal_position: int
    directories: dict[str, DirectorySummary]
    database: DatabaseContent
    snapshots: dict[str, str]
    added_bytes: dict[str, int] = field(default_factory=dict)
    physical: PhysicalCopy | None = optional()  # sets from before the physical copy have none
    parts: list[str] | None = optional()
    portable_dump: bool | None = optional()  # whether the set carries the portable dump
    cut: CutMade | None = optional()  # sets backed up under the lock (backup.cut = false, or older) have none
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reports(self) -> int:
        return sum(d.reports for d in self.directories.values())

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.directories.values())

    @property
    def documents(self) -> int:
        return self.database.documents

    @property
    def bytes_added(self) -> int:
        return sum(self.added_bytes.values())


@dataclass
class ArtifactsSaved(Record):
    """What `take` did with the build artifacts (snapshots.artifacts.save): saved or not, and why not."""
    saved: bool
    fingerprint: str | None = optional()
    snapshot: str | None = optional()
    artifacts: list[str] | None = optional()
    reason: str | None = optional()
    error: str | None = optional()


@dataclass
class Release(Record):
    """What a set's job did to let the collectors go of the reports the set holds (docs/snapshots.md): the
    release list the backup container wrote (its path under the data root, the reports it names) or why it
    wrote none (`error`), then on the host the sync stage's `--release` run (`sync`, its Summary). A release
    that failed never fails the set: the next run retries it."""
    set_id: str | None = optional("set")
    repository: str | None = optional()  # local or offsite
    file: str | None = optional()  # the list, under the data root
    reports: int | None = optional()
    error: str | None = optional()
    sync: Summary | None = optional()

    @property
    def failed(self) -> bool:
        return bool(self.error) or (self.sync is not None and (self.sync.exit_code != 0 or bool(self.sync.errors)))

    def line(self) -> str:
        """What the job's text says of it."""
        if self.error:
            head = f"release: no {self.repository} list ({self.error})"
        elif self.file:
            head = f"release: set {self.set_id} holds {self.reports} pulled report(s) ({self.file})"
        else:
            head = f"release: no new {self.repository} list"
        return head + (f"; {self.sync.render()}" if self.sync is not None else "")


@dataclass(kw_only=True)
class TakeResult(Manifest):
    """The new set's manifest; `artifacts` only when the host's artifact folder was mounted; `release` when
    the collectors' reports are released after a set (sync.release)."""
    artifacts: ArtifactsSaved | None = optional()
    release: Release | None = optional()

    def render(self) -> str:
        return (f"set {self.set_id} complete ({', '.join(self.parts or [])}): {self.reports} reports, "
                f"{self.documents} database documents; pipeline paused {self.paused_seconds:.1f}s; "
                f"added {self.bytes_added / 1e6:.1f} MB" + (f"\n{self.release.line()}" if self.release else ""))


@dataclass
class SetRow(Record):
    """One set in `list`; the sizes only for a complete set whose manifest was read."""
    set_id: str = key("set")
    time: str
    complete: bool
    parts: list[str]
    snapshots: dict[str, str]
    paused_seconds: float | None = optional()
    reports: int | None = optional()
    bytes: int | None = optional()
    documents: int | None = optional()
    added_bytes: int | None = optional()
    db_bytes: int | None = optional()  # the physical copy's stream (sets without one: none)
    problem: str | None = optional()

    def cells(self) -> dict[str, object]:
        """The row as SetList's table shows it."""
        return {"set": self.set_id, "time": self.time, "state": "complete" if self.complete else "INCOMPLETE",
                "reports": "" if self.reports is None else self.reports,
                "documents": "" if self.documents is None else self.documents,
                "MB": f"{(self.bytes or 0) / 1e6:.1f}" if self.complete else "",
                "paused_s": "" if self.paused_seconds is None else self.paused_seconds}


@dataclass
class SetList(Record):
    """`list`: the repository's sets, newest first."""
    sets: list[SetRow]

    COLUMNS = ("set", "time", "state", "reports", "documents", "MB", "paused_s")

    @property
    def complete(self) -> list[SetRow]:
        """The complete sets, newest first."""
        return [r for r in self.sets if r.complete]

    def render(self) -> str:
        if not self.sets:
            return "no snapshot sets in the repository"
        return table([r.cells() for r in self.sets], self.COLUMNS)


@dataclass
class ForgetResult(Record):
    """`forget`: the sets kept and those forgotten (with dry_run: those that would be)."""
    keep: list[str]
    forget: list[str]
    snapshots_removed: int
    dry_run: bool

    def render(self) -> str:
        verb = "would forget" if self.dry_run else "forgot"
        return (f"{verb} {len(self.forget)} set(s): {', '.join(self.forget) or 'none'}; "
                f"keeping {len(self.keep)}: {', '.join(self.keep) or 'none'}")


@dataclass
class ResticCheck(Record):
    ok: bool
    error: str | None
    findings: list[str] | None = optional()


@dataclass
class SetVerdict(Record):
    """One set read back by `check`: ok, FAILED or incomplete (then `parts` says which it has)."""
    set_id: str = key("set")
    verdict: str
    problems: list[str]
    parts: list[str] | None = optional()


@dataclass
class ArtifactsVerdict(Record):
    """The newest build-artifacts snapshot read back: ok, none or FAILED."""
    verdict: str
    snapshot: str | None
    artifacts: list[str]
    problems: list[str]

    @property
    def failed(self) -> bool:
        return self.verdict == "FAILED"

    def line(self) -> str:
        """What `check` says of the artifacts."""
        if self.verdict == "none":
            return "artifacts: none in the repository"
        if self.verdict == "ok":
            return f"artifacts: ok (snapshot {self.snapshot}: {', '.join(self.artifacts)} read back, sha256 as recorded)"
        return "artifacts: FAILED" + _indented(self.problems)


@dataclass
class CheckResult(Record):
    """`check`: restic's check, every set read back, the build artifacts read back; exit 1 when not ok."""
    ok: bool
    restic_check: ResticCheck
    read_data_subset: str | None
    sets: list[SetVerdict]
    failed_sets: list[str]
    artifacts: ArtifactsVerdict
    verified: int

    def failure(self) -> str:
        """One sentence naming what failed ("" when ok)."""
        if self.ok:
            return ""
        return ("the repository failed its check"
                + (f"; sets affected: {', '.join(self.failed_sets)}" if self.failed_sets else "")
                + (f"; the build artifacts (snapshot {self.artifacts.snapshot}) are damaged"
                   if self.artifacts.failed else ""))

    def render(self) -> str:
        rc = self.restic_check
        lines = ["restic check: " + ("ok" if rc.ok else f"FAILED: {rc.error}")
                 + (f" (read back {self.read_data_subset} of the data)" if self.read_data_subset else "")
                 + _indented(rc.findings)]
        lines += [f"set {r.set_id}: {r.verdict}" + _indented(r.problems) for r in self.sets]
        if not self.sets:
            lines.append("no snapshot sets in the repository")
        return "\n".join(lines + [self.artifacts.line()])

    def exit_status(self) -> int:
        return 0 if self.ok else 1


@dataclass
class ArtifactsCopied(Record):
    """What `copy` did with the primary's newest build-artifacts snapshot (snapshots/offsite.py): "copied",
    "present" (the off-site repository's newest one held the same binaries already) or "none" (the primary
    holds none); its fingerprint and the off-site snapshot's short id."""
    state: str
    fingerprint: str | None = optional()
    snapshot: str | None = optional()

    def line(self) -> str:
        """What `offsite` says of the artifacts."""
        if self.state == "none":
            return "artifacts: none in the primary repository (a set taken with the Go binaries built stores them)"
        return f"artifacts: {'copied' if self.state == 'copied' else 'already off-site'} (snapshot {self.snapshot})"


@dataclass
class CopyResult(Record):
    """`copy`: the sets copied to the off-site repository, those it had already, the build artifacts;
    `release` as TakeResult's."""
    copied: list[str]
    already_offsite: list[str]
    offsite_complete_sets: int
    repository: str
    release: Release | None = optional()  # when the collectors' reports are released after the copy
    artifacts: ArtifactsCopied | None = optional()  # copies made before the artifacts went off-site: none

    def render(self) -> str:
        return (f"copied {len(self.copied)} set(s) to {self.repository}: {', '.join(self.copied) or 'none'}"
                f"; {len(self.already_offsite)} already there; {self.offsite_complete_sets} complete off-site"
                + (f"\n{self.artifacts.line()}" if self.artifacts else "")
                + (f"\n{self.release.line()}" if self.release else ""))


@dataclass
class FilesRestored(Record):
    target: str
    directories: dict[str, DirectorySummary]
    seconds: float
    bytes: int
    files: int
    moved_aside: str | None


@dataclass
class DbRestored(Record):
    database: str
    collections: dict[str, int]
    reports_by_test_country: dict[str, list[int]]
    seconds: float

    @property
    def documents(self) -> int:
        return sum(self.collections.values())


@dataclass
class CopyRestored(Record):
    """The physical copy of a set put in place in PostgreSQL's volume (PostgreSQL stopped meanwhile):
    pg_verifybackup (and the sha256 of an older set's copy) checked; `replaced` names where the previous data
    directory went."""
    set_id: str = key("set")
    bytes: int
    seconds: float
    postgres_major: int
    replaced: str | None = optional()
    sha256: str | None = optional()


@dataclass
class CopyUndone(Record):
    """pg-undo: the restored data directory set aside as failed-<set>, the previous one (if any) back."""
    set_id: str = key("set")
    replaced: str | None = optional()


@dataclass
class RestoreResult(Record):
    """The set restored and its manifest; `files`, `db` and `copy` only for the parts restored."""
    set_id: str = key("set")
    set_started: str
    manifest: Manifest
    files: FilesRestored | None = optional()
    db: DbRestored | None = optional()
    copy: CopyRestored | None = optional()


@dataclass
class ArtifactsRestored(Record):
    restored: list[str]
    snapshot: str | None = optional()
    taken: str | None = optional()
    reason: str | None = optional()


@dataclass
class DbCounts(Record):
    """Exact documents per collection, counted by PostgreSQL (database/pgsql.py)."""
    database: str
    collections: dict[str, int]

    @property
    def documents(self) -> int:
        return sum(self.collections.values())


@dataclass
class DbIndexes(Record):
    """The GIN indexes that serve FerretDB's pushed-down filters, present after the action."""
    database: str
    indexes: list[str]


@dataclass
class PasswordSet(Record):
    """db-password: the role has its new password in PostgreSQL; changed is False when it had it already (an
    interrupted rotation told PostgreSQL before the host put the password file in place)."""
    role: str
    changed: bool
