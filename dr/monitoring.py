"""What every scheduled job leaves behind for monitoring: Prometheus textfile metrics and healthcheck pings.

`with monitoring.job(cfg, "snapshot") as run:` pings <url>/start, runs the body, then writes
<textfile_dir>/aggregator_dr_<job>.prom (atomically: node-exporter never reads half a file) and pings <url>
or <url>/fail. The body adds job-specific gauges to run.metrics (bytes added, paused seconds, ...). The time
of the last success survives failed runs, so an alert on its age fires when a job keeps failing. A ping that
cannot be delivered is logged and never fails the job.
"""

from __future__ import annotations

import contextlib
import re
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from common import atomic, log
from common.config import Config

_log = log.get("monitoring")
PREFIX = "aggregator_dr"
PING_TIMEOUT = 10


@dataclass
class Run:
    job: str
    metrics: dict[str, float] = field(default_factory=dict)  # extra gauges: name -> value


def pipeline_metrics(summaries: list[dict]) -> dict[str, float]:
    """The pipeline job's gauges from its stage summaries (`invoke pipeline --json`): reports pulled,
    sanitized and imported; inputs quarantined (any reason) and, among them, poison (failed twice in a row for
    the same reason); inputs that failed this run and are tried again next run; infrastructure errors."""
    outcomes: Counter = Counter()
    for s in summaries:
        outcomes.update(s["outcomes"])
    return {"pipeline_reports_pulled": outcomes["pulled"], "pipeline_reports_sanitized": outcomes["sanitized"],
            "pipeline_reports_imported": outcomes["imported"],
            "pipeline_quarantined": sum(n for k, n in outcomes.items() if k.startswith("quarantined:")),
            "pipeline_poison": outcomes["quarantined:poison"],
            "pipeline_failed_inputs": sum(len(s.get("failed", [])) for s in summaries),
            "pipeline_errors": sum(len(s["errors"]) for s in summaries)}


def metrics_path(cfg: Config, job: str) -> Path:
    return Path(cfg.monitoring.textfile_dir) / f"{PREFIX}_{job}.prom"


def _last_success(path: Path, job: str) -> float | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    m = re.search(rf'^{PREFIX}_last_success_timestamp_seconds{{job="{re.escape(job)}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def render(job: str, ok: bool, started: float, duration: float, last_success: float | None,
           extra: dict[str, float]) -> str:
    """The textfile for one run, in Prometheus' text format."""
    label = f'{{job="{job}"}}'
    gauges = [("last_run_timestamp_seconds", "when the job last ran (start, unix time)", started),
              ("last_run_success", "1 if the job's last run succeeded, else 0", 1 if ok else 0),
              ("last_run_duration_seconds", "how long the job's last run took", duration)]
    if last_success is not None:
        gauges.append(("last_success_timestamp_seconds", "when the job last succeeded (end, unix time)",
                       last_success))
    gauges += [(name, f"{job}: {name.replace('_', ' ')}", value) for name, value in sorted(extra.items())]
    lines = []
    for name, help_text, value in gauges:
        value = float(value)
        text = str(int(value)) if value.is_integer() else repr(value)
        lines += [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} gauge",
                  f"{PREFIX}_{name}{label} {text}"]
    return "\n".join(lines) + "\n"


def write_metrics(cfg: Config, run: Run, ok: bool, started: float, duration: float) -> Path | None:
    if not cfg.monitoring.textfile_dir:
        return None
    path = metrics_path(cfg, run.job)
    path.parent.mkdir(parents=True, exist_ok=True)
    last = time.time() if ok else _last_success(path, run.job)
    atomic.write_bytes(path, render(run.job, ok, started, duration, last, run.metrics).encode())
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


@contextlib.contextmanager
def job(cfg: Config, name: str) -> Iterator[Run]:
    """Ping start, run the body, write the metrics and ping success or failure (the body's exception, a
    task's non-zero Exit included, is re-raised)."""
    run = Run(name)
    started = time.time()
    t0 = time.monotonic()
    ping(cfg, name, "start")
    ok = False
    try:
        yield run
        ok = True
    finally:
        path = write_metrics(cfg, run, ok, started, round(time.monotonic() - t0, 3))
        ping(cfg, name, "success" if ok else "fail")
        _log.info("%s %s; metrics: %s", name, "succeeded" if ok else "FAILED", path or "off")
