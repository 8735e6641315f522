"""Restore drills: prove that a snapshot set restores, and measure how long it takes, without touching the
live system.

A drill works in a sandbox (see sandbox): a throwaway `db` container on a network of its own, a throwaway
data folder, and a secrets folder holding only a copy of the repository password(s) and a fresh database
password. In it, it restores the set (files and database, each verified against the manifest by the
restore itself), asks the database through pymongo for the reports per test and country (must equal the
manifest's), runs the sanitizer and importer over whatever the set held in raw/, staging/ and reports/, and
checks that nothing doubled (one reports document per archived report, as many measurements as the reports
say). Then it tears the sandbox down and writes its report (drill_reports.RestoreDrillReport, filled as the
drill advances: JSON and Markdown) into the drill history.

The database comes back as the set's physical copy (put into the sandbox's PostgreSQL volume before
PostgreSQL starts, then verified like dr/jobs/restore.py does: counts within the copy's range, every collection
read through FerretDB), or, for a set without one, from its portable dump.

Phase timings: `copy` (a set with a physical copy: its files into the sandbox's data root and the copy into
its PostgreSQL volume, side by side in one backup container, before the database starts), `start` (sandbox and
database up), `restore` (the copy's verification; for a set without one, its files and its portable dump), `queries`,
`pipeline`. The restore time is copy + start + restore; the recovery point (RPO) is the set's age.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from common.config import Config
from common.errors import DrError, FailedWithResult
from dr.drills import drill_reports
from dr.drills.drill_reports import DrillPipeline, DrillQueries, RestoreDrillReport
from dr.drills.sandbox import Sandbox, throwaway
from dr.jobs import backup, pipeline
from dr.jobs import restore as dr_restore
from snapshots.results import RestoreResult


class DrillFailed(FailedWithResult):
    """The drill failed: `result` is its report (saved), or None when it failed before it had one."""


def _archived_reports(data_root: Path) -> list[str]:
    base = data_root / "archive"
    return sorted(p.name for p in base.rglob("*.yaml") if not p.name.startswith(".")) if base.is_dir() else []


def _doubles(sb: Sandbox) -> list[str]:
    """After the pipeline: one reports document per archived report, and as many measurements as the reports
    documents announce."""
    problems = []
    archived = _archived_reports(Path(sb.cfg.data_root))
    counts = backup.db_counts(sb.cfg)
    reports = counts.get("reports", 0)
    if reports != len(archived):
        problems.append(f"{reports} reports documents for {len(archived)} archived reports")
    files = [d["report_file"] for d in sb.db["reports"].find({}, {"report_file": 1})]
    if len(files) != len(set(files)):
        problems.append(f"{len(files) - len(set(files))} reports imported twice")
    announced = sum(int(d.get("entries") or 0) for d in sb.db["reports"].find({}, {"entries": 1}))
    measurements = counts.get("measurements", 0)
    if measurements != announced:
        problems.append(f"{measurements} measurements, the reports announce {announced}")
    return problems


def _restore(sb_cfg: Config, set_id: str, offsite: bool, db: bool, copy: bool = False) -> RestoreResult:
    """The set's files into the sandbox, with its portable dump (db) or its physical copy into the stopped
    sandbox PostgreSQL's volume (copy), each verified by the restore itself."""
    code, result = backup.run(sb_cfg, "restore", extra=("--snapshot-set", set_id), offsite=offsite, db=db,
                              copy=copy)
    if code != 0 or not result or (copy and result.copy is None):
        what = "files and physical copy" if copy else "files and dump" if db else "files"
        raise DrillFailed(f"the restore of set {set_id} ({what}) failed (exit {code}); its reason is in the log "
                          "above")
    return result


def run(cfg: Config, wanted: str = "latest", offsite: bool = False) -> RestoreDrillReport:
    """One drill; returns its report (also saved in the history). Raises DrillFailed after saving a failing
    report."""
    from snapshots import manifest

    started = dt.datetime.now(dt.timezone.utc)
    report = RestoreDrillReport(started=started.strftime("%Y-%m-%dT%H:%M:%SZ"), requested=wanted,
                                repository=cfg.offsite.repository if offsite else cfg.backup.repository,
                                verdict=drill_reports.FAIL, problems=[])  # FAIL until it concludes
    phases = report.phases
    t = time.monotonic()
    try:
        row = dr_restore.chosen_set(cfg, wanted, offsite, newest_whole=True)
        report.set_id = wanted = row.set_id
        physical = dr_restore.has_copy(row)
        restored: dict = {}

        def put_files_and_copy(sb_cfg: Config) -> None:
            # Before the database starts: the files into the sandbox's data root and the copy into its
            # PostgreSQL volume, side by side in one backup container (each part verified by the restore).
            t1 = time.monotonic()
            result = _restore(sb_cfg, wanted, offsite, db=False, copy=True)
            restored.update(result=result, seconds=round(time.monotonic() - t1, 2))

        with throwaway(cfg, before_start=put_files_and_copy if physical else None) as sb:
            phases["copy"] = restored.get("seconds", 0.0)
            phases["start"] = round(time.monotonic() - t - phases["copy"], 2)
            t = time.monotonic()
            if physical:
                result = restored["result"]
                m = result.manifest
                documents = sum(dr_restore.verify(sb.cfg, m, lambda colls: dr_restore.read_through_ferretdb(
                    sb.cfg, colls)).values())
            else:
                result = _restore(sb.cfg, wanted, offsite, db=True)
                m = result.manifest
                documents = result.db.documents
            phases["restore"] = round(time.monotonic() - t, 2)
            _restored(report, started, result, documents, physical)
            t = time.monotonic()
            tally = manifest.report_tally(sb.db)
            # The dump's tally: the physical copy was taken before it, so only a dump restore must equal it.
            expected = None if physical else m.database.reports_by_test_country
            report.problems += manifest.compare(
                {"database": {"reports_by_test_country": tally if expected is None else expected}},
                {"database": {"reports_by_test_country": tally}})
            report.queries = DrillQueries(test_country_pairs=len(tally), reports=sum(v[0] for v in tally.values()))
            phases["queries"] = round(time.monotonic() - t, 2)
            t = time.monotonic()
            pending = sum(m.directories[s].reports for s in ("raw", "staging", "reports"))
            stages = pipeline.run(sb.cfg).stages if pending else []
            report.pipeline = DrillPipeline(pending_reports=pending,
                                            stages={r.stage: dict(r.outcomes) for r in stages})
            report.problems += [f"stage {r.stage} failed: {'; '.join(r.errors[:3])}" for r in stages
                                if r.exit_code != 0]
            report.problems += _doubles(sb)
            phases["pipeline"] = round(time.monotonic() - t, 2)
    except DrError as exc:
        report.problems.append(str(exc))
    except Exception as exc:  # anything unexpected is a failed drill, with a report that says what happened
        report.problems.append(f"unexpected {type(exc).__name__}: {exc}")
    return _conclude(cfg, report)


def _restored(report: RestoreDrillReport, started: dt.datetime, result: RestoreResult, documents: int,
              physical: bool) -> None:
    """What the restore brought back into the report, and the set's
    age when the drill started (the recovery point)."""
    m = result.manifest
    set_time = dt.datetime.strptime(m.started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    report.set_id, report.set_started = result.set_id, m.started
    report.rpo_seconds = round((started - set_time).total_seconds())
    report.bytes_restored, report.files_restored = result.files.bytes, result.files.files
    report.documents_restored = documents
    report.database_from = "physical copy" if physical else "portable dump"


def _conclude(cfg: Config, report: RestoreDrillReport) -> RestoreDrillReport:
    """The report's times and verdict, saved in the history; the report, or DrillFailed after it is saved."""
    phases = report.phases
    report.restore_seconds = round(phases.get("start", 0) + phases.get("copy", 0) + phases.get("restore", 0), 2)
    report.total_seconds = round(sum(phases.values()), 2)
    passed = not report.problems and report.set_started is not None
    report.verdict = drill_reports.PASS if passed else drill_reports.FAIL
    drill_reports.save(cfg, report)
    if report.verdict != drill_reports.PASS:
        raise DrillFailed(f"drill of set {report.set_id or report.requested} FAILED: " + "; ".join(report.problems),
                          report)
    return report
