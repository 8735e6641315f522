"""The drills' reports, typed records (common/records.py): the restore drill's (RestoreDrillReport, built by
dr/drills/drill.py), the runbook drills' (RunbookDrillReport, built by dr/drills/bare_host.py and
two_hosts.py) and the host-loss drill's (HostLossReport, dr/drills/host_loss.py). Each renders as Markdown (`render()`), is saved as <folder>/<time>.json (`to_json()`) and .md
with the newest `drill.keep` kept, and the restore drills' are read back as the history (DrillHistory).

Every report has `started` (UTC, `%Y-%m-%dT%H:%M:%SZ`), `verdict` ("pass" or "FAIL"; "unreadable" for a saved
file the history cannot read) and `problems`. The Markdown documents have one shape: a title with the verdict,
bullets, one table, then the problems."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import atomic, text
from common.config import Config
from common.records import Record, RecordError, optional

PASS = "pass"
FAIL = "FAIL"
UNREADABLE = "unreadable"


def _document(title: str, bullets: list[str], header: tuple[str, ...], rows: list[tuple], problems: list[str]) -> str:
    lines = [f"# {title}", ""] + [f"- {b}" for b in bullets] + [""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    if problems:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in problems]
    return "\n".join(lines) + "\n"


def _known(value: Any) -> Any:
    """value, or "?" when the report does not have it."""
    return "?" if value is None else value


def _blank(value: Any) -> Any:
    """value, or "" when the report does not have it."""
    return "" if value is None else value


class Verdict:
    """A drill report's exit status as a job's result: 0 when it passed."""
    verdict: str

    def exit_status(self) -> int:
        return 0 if self.verdict == PASS else 1


@dataclass
class DrillQueries(Record):
    """What the restore drill read through pymongo: the (test, country) pairs and the reports they count."""
    test_country_pairs: int
    reports: int


@dataclass
class DrillPipeline(Record):
    """The restore drill's pipeline run: the reports the set held in raw/, staging/ and reports/, and each
    stage's outcomes (outcome -> count)."""
    pending_reports: int
    stages: dict[str, dict[str, int]]


@dataclass(kw_only=True)
class RestoreDrillReport(Verdict, Record):
    """The restore drill's report (dr/drills/drill.py). Only started, verdict and problems are always there:
    a failing drill fills no more than it reached, and reports saved by older versions may lack the rest (or
    have keys this version does not know: kept in `extra`)."""
    EXTRA = "extra"

    started: str
    repository: str | None = optional()
    requested: str | None = optional()  # the set asked for: an id, or latest
    set_id: str | None = optional("set")  # the set drilled, once known
    set_started: str | None = optional()
    rpo_seconds: int | None = optional()  # the set's age when the drill started: the recovery point
    bytes_restored: int | None = optional()
    files_restored: int | None = optional()
    documents_restored: int | None = optional()
    database_from: str | None = optional()  # "physical copy" or "portable dump"
    queries: DrillQueries | None = optional()
    pipeline: DrillPipeline | None = optional()
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds (copy, start, restore, ...)
    restore_seconds: float | None = optional()  # copy + start + restore
    total_seconds: float | None = optional()
    verdict: str
    problems: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unreadable(cls, started: str, problem: str) -> RestoreDrillReport:
        """The history's row for a saved report it cannot read."""
        return cls(started=started, verdict=UNREADABLE, problems=[problem])

    def render(self) -> str:
        return _document(
            f"Restore drill {self.started}: {self.verdict}",
            [f"set: {_known(self.set_id or self.requested)} (taken {_known(self.set_started)}; "
             f"recovery point {_known(self.rpo_seconds)} s before the drill)",
             f"repository: {_known(self.repository)}",
             f"restored: {self.files_restored or 0} files, {(self.bytes_restored or 0) / 1e6:.1f} MB, "
             f"{self.documents_restored or 0} database documents",
             f"restore time: {_known(self.restore_seconds)} s; total {_known(self.total_seconds)} s"],
            ("phase", "seconds"), list(self.phases.items()), self.problems)


@dataclass
class StepRow(Record):
    """One runbook block of a runbook drill: where it is (line, section), its commands, and either why it was
    skipped or how it ran (seconds, exit code, the last lines of its output, what did not match its markers);
    host: its server in the two-host drill."""
    line: int
    section: str
    commands: str
    skipped: str | None = optional()
    seconds: float | None = optional()
    exit_code: int | None = optional()
    output_tail: list[str] | None = optional()
    problems: list[str] | None = optional()  # only when there are some
    host: str | None = optional()

    def result(self) -> str:
        """The block as its report's last column: skipped (why), its problems, or its exit code."""
        if self.skipped is not None:
            return f"skipped: {self.skipped}"
        return "; ".join(self.problems) if self.problems else f"exit {self.exit_code}"


@dataclass(kw_only=True)
class RunbookDrillReport(Verdict, Record):
    """A runbook drill's report (dr/drills/bare_host.py, two_hosts.py): drill is "bare-host" or "two-hosts";
    set is the set the runbook must restore, once known; one row per runbook block."""
    drill: str
    started: str
    set_id: str | None = optional("set")
    repository: str
    steps: list[StepRow] = field(default_factory=list)
    prepare_seconds: float | None = optional()  # copies, images, servers: before the first block
    total_seconds: float = 0.0
    fed_reports: int = 0  # the reports of its own the drill fed its servers (dr/drills/feed.py)
    verdict: str
    problems: list[str] = field(default_factory=list)

    def render(self) -> str:
        if self.drill == "two-hosts":
            return _document(
                f"Two-host drill {self.started}: {self.verdict}",
                ["runbook executed on two fresh Debian servers (the Aggregator's and the database's), starting "
                 f"from set {_known(self.set_id)} of a copy of {self.repository}",
                 f"total {self.total_seconds} s (preparing {_known(self.prepare_seconds)} s)"],
                ("runbook line", "section", "server", "seconds", "result"),
                [(r.line, r.section, r.host or "", _blank(r.seconds), r.result()) for r in self.steps], self.problems)
        return _document(
            f"Bare-host drill {self.started}: {self.verdict}",
            [f"runbook executed on a fresh Debian server, restoring set {_known(self.set_id)} from a copy of "
             f"{self.repository}",
             f"total {self.total_seconds} s (preparing the server {_known(self.prepare_seconds)} s)"],
            ("runbook line", "section", "seconds", "result"),
            [(r.line, r.section, _blank(r.seconds), r.result()) for r in self.steps], self.problems)


@dataclass(kw_only=True)
class LossRound(Record):
    """One round of the host-loss drill (dr/drills/host_loss.py): the moment aimed at and what the flow was doing
    when the host was lost, the reports written on the collectors so far, the runbook blocks run, the time from
    the rebuild's start to every report back (in the archive and the database), and what the checks found."""
    round: int
    moment: str
    lost_at: str = ""
    written: int = 0
    caught_up: int | None = optional()  # reports sync pulled again from the collectors' .pulled/
    rebuild_seconds: float | None = optional()
    back_seconds: float | None = optional()
    lost: int = 0
    doubled: int = 0
    left_on_collectors: int | None = optional()
    steps: list[StepRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class HostLossReport(Verdict, Record):
    """The host-loss drill's report: its rounds and the closing figures (reports written, lost, doubled, the
    longest time from a rebuild's start to every report back)."""
    drill: str = "host-loss"
    started: str
    seed: int
    repository: str = ""  # the off-site repository every rebuild restored from
    rounds: list[LossRound] = field(default_factory=list)
    reports: int = 0
    lost: int = 0
    doubled: int = 0
    back_seconds_max: float | None = optional()
    prepare_seconds: float | None = optional()
    total_seconds: float = 0.0
    verdict: str
    problems: list[str] = field(default_factory=list)

    def render(self) -> str:
        return _document(
            f"Host-loss drill {self.started}: {self.verdict}",
            [f"{len(self.rounds)} rounds (seed {self.seed}): the Aggregator's host destroyed, rebuilt from the off-site "
             f"copy {self.repository or '?'} alone, the Go module proxy out of reach",
             f"reports written on the collectors {self.reports}, lost {self.lost}, doubled {self.doubled}",
             f"longest time from a rebuild's start to every report back: {_known(self.back_seconds_max)} s",
             f"total {self.total_seconds} s (preparing {_known(self.prepare_seconds)} s)"],
            ("round", "moment", "lost at", "written", "caught up", "rebuild s", "back s", "lost", "doubled", "left"),
            [(r.round, r.moment, r.lost_at, r.written, _blank(r.caught_up), _blank(r.rebuild_seconds),
              _blank(r.back_seconds), r.lost, r.doubled, _blank(r.left_on_collectors)) for r in self.rounds],
            self.problems)


@dataclass
class DrillHistory(Record):
    """The restore drills' saved reports, newest first, and the folder they are in (`invoke drills`)."""
    folder: str
    reports: list[RestoreDrillReport]

    def render(self) -> str:
        if not self.reports:
            return f"no drills yet in {self.folder}"
        rows = [{"started": r.started, "set": _blank(r.set_id), "verdict": r.verdict,
                 "restore_s": _blank(r.restore_seconds), "rpo_s": _blank(r.rpo_seconds),
                 "MB": f"{(r.bytes_restored or 0) / 1e6:.1f}"} for r in self.reports]
        return text.table(rows, ["started", "set", "verdict", "restore_s", "rpo_s", "MB"])


def save(cfg: Config, report: RestoreDrillReport | RunbookDrillReport | HostLossReport, folder: Path | None = None
         ) -> Path:
    """Write <folder>/<time>.json (report.to_json()) and .md (report.render()); keep the newest drill.keep
    reports. folder: the drill history (drill.history_dir) by default. Returns the JSON file."""
    hist = folder or Path(cfg.drill.history_dir)
    hist.mkdir(parents=True, exist_ok=True)
    stem = report.started.replace(":", "").replace("-", "")
    atomic.write_bytes(hist / f"{stem}.md", report.render().encode())
    atomic.write_bytes(hist / f"{stem}.json", (report.to_json() + "\n").encode())
    reports = sorted(hist.glob("*.json"))
    for old in reports[:-cfg.drill.keep]:
        old.unlink()
        old.with_suffix(".md").unlink(missing_ok=True)
    return hist / f"{stem}.json"


def read(path: Path) -> RestoreDrillReport:
    """A saved restore drill report; an "unreadable" one saying why when it is not JSON or does not fit."""
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return RestoreDrillReport.unreadable(path.stem, f"{path} is not valid JSON")
    try:
        return RestoreDrillReport.from_dict(data)
    except RecordError as exc:
        return RestoreDrillReport.unreadable(path.stem, f"{path} is not a drill report: {exc}")


def history(cfg: Config, folder: Path | None = None) -> DrillHistory:
    """The saved restore drill reports, newest first (folder: drill.history_dir by default)."""
    hist = folder or Path(cfg.drill.history_dir)
    paths = sorted(hist.glob("*.json"), reverse=True) if hist.is_dir() else []
    return DrillHistory(str(hist), [read(p) for p in paths])
