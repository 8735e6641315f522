"""What every job leaves behind: its run in the job history and, for the scheduled jobs, Prometheus textfile
metrics and healthcheck pings.

`with monitoring.job(cfg, "snapshot") as run:` runs the body, which hands over the job's result with
run.record(result); when the body ends, the run goes into the job history (dr/jobs/history.py: ok or failed by
the result, error when the body raised without one; the data root's free space and the inputs waiting then),
whatever the job. A scheduled job (SCHEDULED) also pings <url>/start before the body and <url> or <url>/fail
after it, and writes <textfile_dir>/aggregator_dr_<job>.prom (prometheus_client's write_to_textfile: a
temporary file renamed into place, so node-exporter never reads half a file) with its own gauges from its
result (snapshot_metrics, check_metrics, ... by JOB_GAUGES; JOB_METRICS names them all with their help). The
time of the last success survives failed runs, so an alert on its age fires when a job keeps failing. A ping
that cannot be delivered, or a history that cannot be appended to, is logged and never fails the job.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from common import log
from common.config import Config
from common.errors import DrError, FailedWithResult
from common.records import Record
from dr.jobs import history
from dr.jobs.pipeline import PipelineRun
from stages.layout import WAITING, DataRoot

_log = log.get("monitoring")
PREFIX = "aggregator_dr"
# The label naming the job on its gauges. Not `job`: Prometheus puts the scrape job's name there and, with the
# default honor_labels: false, renames ours exported_job, so no rule selecting on it would match.
LABEL = "dr_job"
OLD_LABEL = "job"  # the label before dr_job, still read for the last success time of a file written then
PING_TIMEOUT = 10
# The scheduled jobs (dr/jobs/schedule.py; and check --offsite) write metrics and ping; every job has its history.
SCHEDULED = frozenset({"pipeline", "snapshot", "forget", "check", "check-offsite", "offsite", "drill"})

# Every job's metrics, without the prefix: name -> help. COMMON ones are written for every job.
COMMON = {
    "last_run_timestamp_seconds": "when the job last ran (start, unix time)",
    "last_run_success": "1 if the job's last run succeeded, else 0",
    "last_run_duration_seconds": "how long the job's last run took",
    "last_success_timestamp_seconds": "when the job last succeeded (end, unix time)",
}
_CHECK = {
    "check_failed_sets": "sets that failed their read-back against the manifest",
    "check_verified_sets": "sets read back and matching their manifest",
    "check_restic_ok": "1 if restic check found the repository sound, else 0",
    "check_artifacts_ok": "1 if the build artifacts read back with their recorded sha256 (or there are none)",
}
JOB_METRICS: dict[str, dict[str, str]] = {
    "pipeline": {
        "pipeline_reports_pulled": "reports pulled from the collectors",
        "pipeline_reports_sanitized": "reports sanitized",
        "pipeline_reports_imported": "reports imported into the database",
        "pipeline_quarantined": "inputs quarantined, any reason",
        "pipeline_poison": "inputs quarantined as poison (failed twice for the same reason)",
        "pipeline_failed_inputs": "inputs that failed this run and are tried again next run",
        "pipeline_errors": "infrastructure errors that stopped a stage",
    },
    "snapshot": {
        "snapshot_set_complete": "1 if the run left a complete snapshot set, else 0",
        "snapshot_paused_seconds": "seconds the pipeline was paused for the set",
        "snapshot_bytes_added": "bytes the set added to the repository",
        "snapshot_reports": "reports in the set",
        "snapshot_bytes": "bytes of the state directories in the set",
        "snapshot_documents": "database documents in the set",
    },
    "forget": {"forget_sets_removed": "snapshot sets forgotten by the retention policy"},
    "check": _CHECK,
    "check-offsite": _CHECK,
    "offsite": {
        "offsite_sets_copied": "sets copied to the off-site repository",
        "offsite_complete_sets": "complete sets in the off-site repository",
    },
    "drill": {
        "drill_pass": "1 if the restore drill passed, else 0",
        "drill_restore_seconds": "seconds the drill's restore took",
        "drill_total_seconds": "seconds the whole drill took",
        "drill_rpo_seconds": "age of the drilled set when the drill ran (recovery point)",
        "drill_bytes_restored": "bytes the drill restored",
    },
}
# The status model's gauges, without the prefix: name -> help. Written after every job to
# <textfile_dir>/aggregator_dr_status.prom, without a dr_job label; monitoring/aggregator-dr.rules.yml alerts on them.
STATUS_METRICS: dict[str, str] = {
    "recovery_point_age_seconds": "age of the newest complete snapshot set (the recovery point); absent when "
                                  "there is none",
    "recovery_point_objective_seconds": "the recovery point's objective ([status] recovery_point_minutes)",
    "backlog_inputs": "inputs waiting in a state directory (label state: raw, staging or reports)",
    "oldest_input_age_seconds": "age of the oldest input waiting in a state directory (label state)",
    "quarantined_inputs": "inputs in quarantine, per reason (label reason)",
    "collector_held_reports": "pulled reports a collector keeps in .pulled/ until a release ([sync] release), as "
                              "the last sync that reached it counted them (label collector)",
    "collector_held_bytes": "their bytes on the collector (label collector)",
    "collector_oldest_held_age_seconds": "age of the oldest of them, from its modification time on the collector; "
                                         "0 when it holds none (label collector)",
    "broker_up": "1 while the broker's container runs and is healthy, else 0; absent without broker.enabled and "
                 "a broker container",
    "broker_ready_messages": "claim checks ready in the broker's queue reports; absent when not read",
    "broker_unacknowledged_messages": "claim checks delivered to a subscriber and not yet acknowledged; absent "
                                      "when not read",
    "broker_dead_letter_messages": "messages in the dead-letter queue reports.dead; absent when not read",
    "subscriber_dead_lettered_recent": "messages the subscriber dead-lettered in the last 24 hours (its journal "
                                       "notes)",
    "rule_firing": "1 while the stall or risk rule (label rule) holds, else 0",
    "status_computed_timestamp_seconds": "when the status was computed (unix time)",
}
# What a job's run reports when its body fails before it sets them.
_FAILED = {"snapshot": {"snapshot_set_complete": 0}, "drill": {"drill_pass": 0}}


@dataclass
class Run:
    job: str
    metrics: dict[str, float] = field(default_factory=dict)  # extra gauges: name -> value
    exit_status: int = 0  # the one its result calls for: a run whose result reports a failure failed
    result: Record | None = None  # what the body recorded, for the history

    def record(self, result: Record) -> None:
        """The job's result (the pipeline's run, the set taken, the check, the drill report, ...): kept for
        the history, with whether it reports a failure, and the job's own gauges from it by the function of
        JOB_GAUGES for this job (a job without gauges has none)."""
        self.result = result
        self.exit_status = result.exit_status()
        gauges = JOB_GAUGES.get(self.job)
        if gauges is not None:
            self.metrics.update(gauges(result))


def pipeline_metrics(run: PipelineRun) -> dict[str, float]:
    """The pipeline job's gauges from its stages' summaries (dr.jobs.pipeline.run): reports pulled,
    sanitized and imported; inputs quarantined (any reason) and, among them, poison (failed twice in a row for
    the same reason); inputs that failed this run and are tried again next run; infrastructure errors."""
    summaries = run.stages
    outcomes: Counter = Counter()
    for s in summaries:
        outcomes.update(s.outcomes)
    return {"pipeline_reports_pulled": outcomes["pulled"], "pipeline_reports_sanitized": outcomes["sanitized"],
            "pipeline_reports_imported": outcomes["imported"],
            "pipeline_quarantined": sum(n for k, n in outcomes.items() if k.startswith("quarantined:")),
            "pipeline_poison": outcomes["quarantined:poison"],
            "pipeline_failed_inputs": sum(len(s.failed) for s in summaries),
            "pipeline_errors": sum(len(s.errors) for s in summaries)}


def snapshot_metrics(m) -> dict[str, float]:
    """The snapshot job's gauges from the set taken (the typed result of `take`)."""
    return {"snapshot_set_complete": 1, "snapshot_paused_seconds": m.paused_seconds,
            "snapshot_bytes_added": m.bytes_added, "snapshot_reports": m.reports, "snapshot_bytes": m.bytes,
            "snapshot_documents": m.documents}


def forget_metrics(result) -> dict[str, float]:
    return {"forget_sets_removed": len(result.forget)}


def check_metrics(result) -> dict[str, float]:
    """The check job's gauges (check and check-offsite) from the typed result of `check`."""
    return {"check_failed_sets": len(result.failed_sets), "check_verified_sets": result.verified,
            "check_restic_ok": 1 if result.restic_check.ok else 0,
            "check_artifacts_ok": 0 if result.artifacts.failed else 1}


def offsite_metrics(result) -> dict[str, float]:
    return {"offsite_sets_copied": len(result.copied), "offsite_complete_sets": result.offsite_complete_sets}


def drill_metrics(report) -> dict[str, float]:
    """The drill job's gauges from a passing drill's report (dr/drills/drill_reports.RestoreDrillReport)."""
    return {"drill_pass": 1, "drill_restore_seconds": report.restore_seconds,
            "drill_total_seconds": report.total_seconds, "drill_rpo_seconds": report.rpo_seconds,
            "drill_bytes_restored": report.bytes_restored}


JOB_GAUGES: dict[str, Callable[..., dict[str, float]]] = {
    "pipeline": pipeline_metrics, "snapshot": snapshot_metrics, "forget": forget_metrics, "check": check_metrics,
    "check-offsite": check_metrics, "offsite": offsite_metrics, "drill": drill_metrics}


def metrics_path(cfg: Config, job: str) -> Path:
    return Path(cfg.monitoring.textfile_dir) / f"{PREFIX}_{job}.prom"


def _last_success(path: Path, job: str) -> float | None:
    """The job's last success time from its textfile, None when there is none (or it cannot be read). A file
    written before the label was dr_job has it under OLD_LABEL: its time survives the upgrade."""
    try:
        families = list(text_string_to_metric_families(path.read_text()))
    except (OSError, ValueError):
        return None
    for family in families:
        for sample in family.samples:
            labelled = sample.labels.get(LABEL, sample.labels.get(OLD_LABEL))
            if sample.name == f"{PREFIX}_last_success_timestamp_seconds" and labelled == job:
                return sample.value
    return None


def registry(job: str, ok: bool, started: float, duration: float, last_success: float | None,
             extra: dict[str, float]) -> CollectorRegistry:
    """The gauges of one run, labelled dr_job=<job>, in a registry of their own."""
    values = {"last_run_timestamp_seconds": started, "last_run_success": 1 if ok else 0,
              "last_run_duration_seconds": duration}
    if last_success is not None:
        values["last_success_timestamp_seconds"] = last_success
    values.update(sorted(extra.items()))
    helps = {**COMMON, **JOB_METRICS.get(job, {})}
    reg = CollectorRegistry(auto_describe=True)
    for name, value in values.items():
        help_text = helps.get(name) or f"{job}: {name.replace('_', ' ')}"
        Gauge(f"{PREFIX}_{name}", help_text, [LABEL], registry=reg).labels(job).set(float(value))
    return reg


def write_metrics(cfg: Config, run: Run, ok: bool, started: float, duration: float) -> Path | None:
    if not cfg.monitoring.textfile_dir:
        return None
    path = metrics_path(cfg, run.job)
    path.parent.mkdir(parents=True, exist_ok=True)
    last = time.time() if ok else _last_success(path, run.job)
    write_to_textfile(str(path), registry(run.job, ok, started, duration, last, run.metrics))
    return path


STATUS_FILE = f"{PREFIX}_status.prom"


def status_registry(samples: list[tuple[str, dict[str, str], float]]) -> CollectorRegistry:
    """The status model's gauges (STATUS_METRICS), each sample (name without the prefix, labels, value)."""
    reg = CollectorRegistry(auto_describe=True)
    gauges: dict[str, Gauge] = {}
    for name, labels, value in samples:
        if name not in STATUS_METRICS:
            raise ValueError(f"{name} is no status metric (STATUS_METRICS)")
        if name not in gauges:
            gauges[name] = Gauge(f"{PREFIX}_{name}", STATUS_METRICS[name], sorted(labels), registry=reg)
        gauge = gauges[name].labels(**labels) if labels else gauges[name]
        gauge.set(float(value))
    return reg


def write_status(cfg: Config, samples: list[tuple[str, dict[str, str], float]]) -> Path | None:
    """<textfile_dir>/aggregator_dr_status.prom from the status model's samples (None: no textfile_dir)."""
    if not cfg.monitoring.textfile_dir:
        return None
    path = Path(cfg.monitoring.textfile_dir) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), status_registry(samples))
    return path


def ping(cfg: Config, job: str, event: str) -> bool:
    """GET <url>/start, <url> or <url>/fail (healthchecks.io's convention); False when it did not arrive."""
    base = cfg.monitoring.healthcheck_url
    if not base:
        return False
    url = base.replace("{job}", job).rstrip("/") + {"start": "/start", "success": "", "fail": "/fail"}[event]
    try:
        with urllib.request.urlopen(url, timeout=PING_TIMEOUT) as resp:
            resp.read()
        return True
    except OSError as exc:
        _log.warning("healthcheck ping %s for %s did not arrive: %s", event, job, exc)
        return False


def data_free_bytes(cfg: Config) -> int | None:
    """Free bytes of the file system that holds the data root; None when the data root does not exist."""
    try:
        return shutil.disk_usage(cfg.data_root).free
    except OSError:
        return None


def backlog(cfg: Config) -> dict[str, int] | None:
    """The inputs waiting per state directory (stages/layout.WAITING), for a job's history line: the status
    page's backlog over the last day. None when there is no data root, or it cannot be counted (logged: a
    count never fails the job)."""
    dr = DataRoot(cfg.data_root)
    try:
        if not dr.root.is_dir():
            return None
        return {state: len(dr.waiting(state)) for state in WAITING}
    except Exception as exc:
        _log.warning("the inputs waiting in %s could not be counted: %s: %s", dr.root, type(exc).__name__, exc)
        return None


def error_text(exc: BaseException) -> str:
    """What the history says of the error a job stopped with."""
    if isinstance(exc, DrError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"unexpected {type(exc).__name__}: {exc}"


def job_run(cfg: Config, run: Run, started: dt.datetime, exc: BaseException | None) -> history.JobRun:
    """The history's account of a run that ended: with the result the body recorded (ok or failed, by its
    exit_status), or with the error it raised (error; failed with the result a FailedWithResult carries, such
    as a failing drill's saved report)."""
    if exc is None:
        result, error = run.result, None
        if result is None:
            error = "the job ended without recording its result"
    else:
        result, error = (exc.result if isinstance(exc, FailedWithResult) else None), error_text(exc)
    entry = history.run_of(run.job, started, dt.datetime.now(dt.timezone.utc), result, error, data_free_bytes(cfg),
                           backlog(cfg))
    if exc is not None and entry.outcome == "ok":  # a result carried by an error is a failure whatever it says
        entry.outcome, entry.exit_code = "failed", getattr(exc, "exit_code", 1)
    return entry


def append_history(cfg: Config, run: Run, started: dt.datetime, exc: BaseException | None) -> None:
    """Append the run to the job history; a failure to do so (disk full, permissions) is only logged."""
    try:
        history.append(cfg, job_run(cfg, run, started, exc))
    except Exception as err:  # the job's own outcome, or its error, must come through
        _log.warning("the run of %s is not in the job history (%s): %s", run.job, cfg.history.dir, err)


@contextlib.contextmanager
def job(cfg: Config, name: str) -> Iterator[Run]:
    """Run the body, then append its run to the job history (the body's exception is re-raised; a result
    recorded that reports a failure, such as a check that found damage, is a failure too). A scheduled job
    also pings start, and success or failure, and writes its metrics: a failed snapshot reports
    snapshot_set_complete 0, a failed drill drill_pass 0."""
    scheduled = name in SCHEDULED
    run = Run(name, dict(_FAILED.get(name, {})))
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    if scheduled:
        ping(cfg, name, "start")
    ok = False
    error: BaseException | None = None
    try:
        yield run
        ok = run.exit_status == 0
    except BaseException as exc:
        error = exc
        raise
    finally:
        append_history(cfg, run, started, error)
        if scheduled:
            path = write_metrics(cfg, run, ok, started.timestamp(), round(time.monotonic() - t0, 3))
            ping(cfg, name, "success" if ok else "fail")
            _log.info("%s %s; metrics: %s", name, "succeeded" if ok else "FAILED", path or "off")
