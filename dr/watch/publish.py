"""What every job leaves for the operator once it ends: the status computed again from the history it just
extended, published as Prometheus gauges (<textfile_dir>/aggregator_dr_status.prom) and as the status page
(<status.page_dir>/index.html, dr/watch/page.py, for the web mirror to serve). `with publish.job(cfg,
"snapshot") as run:` is monitoring.job (history, metrics, pings) and then this; `as_job(cfg, "snapshot", body)`
runs body() so and records its result (what every task does). Publishing never fails the job:
what goes wrong is logged."""

from __future__ import annotations

import calendar
import contextlib
import os
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from common import atomic, log
from common.config import Config
from dr.jobs import monitoring
from dr.watch import model as status_model
from dr.watch import page, rules
from dr.watch.model import StatusModel
from dr.watch.rules import Finding

_log = log.get("publish")
PAGE = "index.html"
Sample = tuple[str, dict[str, str], float]
R = TypeVar("R")


def unix(stamp: str) -> float:
    """A model's UTC time (`%Y-%m-%dT%H:%M:%SZ`) as unix time."""
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


def samples(m: StatusModel, findings: list[Finding]) -> list[Sample]:
    """The status model's gauges (dr/jobs/monitoring.STATUS_METRICS): one sample each, a rule firing 1 or 0 for
    every rule of the table, the recovery point's age only when there is a complete set, what a collector holds
    only when a sync reached it in the history read, the broker's only with its section (its queues' only when
    they were read)."""
    out: list[Sample] = [("status_computed_timestamp_seconds", {}, unix(m.computed)),
                         ("recovery_point_objective_seconds", {}, m.backups.objective_seconds)]
    if m.backups.newest_set is not None:
        out.append(("recovery_point_age_seconds", {}, m.backups.newest_set.age_seconds))
    for b in m.pipeline.backlog:
        out.append(("backlog_inputs", {"state": b.state}, b.count))
        out.append(("oldest_input_age_seconds", {"state": b.state}, b.oldest_age_seconds or 0))
    for c in m.pipeline.collectors:
        if c.held is not None:  # a collector no sync reached in the history read has no figures
            labels = {"collector": c.collector}
            out += [("collector_held_reports", labels, c.held), ("collector_held_bytes", labels, c.held_bytes or 0),
                    ("collector_oldest_held_age_seconds", labels, c.oldest_held_age_seconds or 0)]
    for reason, count in sorted(m.pipeline.quarantine.items()):
        out.append(("quarantined_inputs", {"reason": reason}, count))
    b = m.broker
    if b is not None:
        out += [("broker_up", {}, 1 if b.healthy else 0), ("subscriber_dead_lettered_recent", {}, b.dead_lettered)]
        if b.ready is not None:
            out += [("broker_ready_messages", {}, b.ready), ("broker_unacknowledged_messages", {}, b.unacknowledged),
                    ("broker_dead_letter_messages", {}, b.dead)]
    firing = {f.rule for f in findings}
    out += [("rule_firing", {"rule": r.name}, 1 if r.name in firing else 0) for r in rules.RULES]
    return out


def write_page(cfg: Config, m: StatusModel, findings: list[Finding]) -> Path | None:
    """The status page in <status.page_dir>/index.html, atomically, mode 0644 in a folder 0755 (the web mirror
    serves it read-only); None when status.page_dir is empty."""
    if not cfg.status.page_dir:
        return None
    folder = Path(cfg.status.page_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    path = folder / PAGE
    atomic.write_bytes(path, page.render(m, findings, cfg).encode(), mode=0o644)
    return path


def publish(cfg: Config) -> None:
    """Compute the status, write its gauges, then its page; a failure is logged, never raised (the page is
    still written when the gauges cannot be)."""
    try:
        m = status_model.compute(cfg)
        findings = rules.evaluate(m, cfg)
    except Exception as exc:  # the job's own outcome stands whatever happens here
        _log.warning("the status could not be computed: %s: %s", type(exc).__name__, exc)
        return
    for what, write in (("gauges", lambda: monitoring.write_status(cfg, samples(m, findings))),
                        ("page", lambda: write_page(cfg, m, findings))):
        try:
            path = write()
        except Exception as exc:
            _log.warning("the status %s could not be published: %s: %s", what, type(exc).__name__, exc)
            continue
        if path is not None:
            _log.info("status %s published: %s", what, path)


@contextlib.contextmanager
def job(cfg: Config, name: str) -> Iterator[monitoring.Run]:
    """monitoring.job(cfg, name), then publish(cfg), whether the job succeeded or not."""
    try:
        with monitoring.job(cfg, name) as run:
            yield run
    finally:
        publish(cfg)


def as_job(cfg: Config, name: str, body: Callable[[], R]) -> R:
    """body() run as the job `name` inside job(cfg, name), its result recorded (the job's outcome and exit
    status, the history's typed result); returns that result."""
    with job(cfg, name) as run:
        result = body()
        run.record(result)
    return result
