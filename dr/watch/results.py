"""The job history's results read back into their types.

A `JobRun` (dr/jobs/history.py) keeps its job's result as JSON with the name of the result's type. TYPES names
every type a job of the history returns, by job: pipeline, stage-sync, stage-sanitize, stage-importer and
catch-up (PipelineRun), snapshot (TakeResult), check and check-offsite (CheckResult), forget (ForgetResult),
offsite (CopyResult), drill (RestoreDrillReport), drill-bare-host and drill-two-hosts (RunbookDrillReport),
rebuild (RebuildReport), rotate-secrets (Rotation). `typed(run)` is the run's result as that type, or None
when the run has none (it stopped with an error) or the result cannot be read here: a type this version does
not know, or a shape it does not (an older or a newer version wrote it).
"""

from __future__ import annotations

from common import log
from common.records import Record, RecordError
from dr.drills.drill_reports import RestoreDrillReport, RunbookDrillReport
from dr.jobs.history import JobRun
from dr.jobs.pipeline import PipelineRun
from dr.jobs.rebuild import RebuildReport
from dr.jobs.rotate import Rotation
from snapshots.results import CheckResult, CopyResult, ForgetResult, TakeResult

_log = log.get("watch")

# Every result type a job of the history returns, by its name (JobRun.result_type).
TYPES: dict[str, type[Record]] = {t.__name__: t for t in (
    PipelineRun, TakeResult, CheckResult, ForgetResult, CopyResult, RestoreDrillReport, RunbookDrillReport,
    RebuildReport, Rotation)}


def typed(run: JobRun) -> Record | None:
    """run's result as its type; None when it has none, or its type or shape is not this version's."""
    kind = TYPES.get(run.result_type or "")
    if run.result is None or kind is None:
        return None
    try:
        return kind.from_dict(run.result)
    except RecordError as exc:
        _log.debug("%s run ended %s: its %s is not this version's, left out: %s", run.job, run.ended,
                   run.result_type, exc)
        return None
