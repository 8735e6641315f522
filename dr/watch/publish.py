"""What every job leaves for the operator once it ends: the status computed again from the history it just
extended, published as Prometheus gauges (<textfile_dir>/aggregator_dr_status.prom; the status page will be
written here too). `with publish.job(cfg, "snapshot") as run:` is monitoring.job (history, metrics, pings) and
then this. Publishing never fails the job: what goes wrong is logged."""

from __future__ import annotations

import calendar
import contextlib
import time
from typing import Iterator

from common import log
from common.config import Config
from dr.jobs import monitoring
from dr.watch import model as status_model
from dr.watch import rules
from dr.watch.model import StatusModel
from dr.watch.rules import Finding

_log = log.get("publish")
Sample = tuple[str, dict[str, str], float]


def unix(stamp: str) -> float:
    """A model's UTC time (`%Y-%m-%dT%H:%M:%SZ`) as unix time."""
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


def samples(m: StatusModel, findings: list[Finding]) -> list[Sample]:
    """The status model's gauges (dr/jobs/monitoring.STATUS_METRICS): one sample each, a rule firing 1 or 0 for
    every rule of the table, the recovery point's age only when there is a complete set."""
    out: list[Sample] = [("status_computed_timestamp_seconds", {}, unix(m.computed)),
                         ("recovery_point_objective_seconds", {}, m.backups.objective_seconds)]
    if m.backups.newest_set is not None:
        out.append(("recovery_point_age_seconds", {}, m.backups.newest_set.age_seconds))
    for b in m.pipeline.backlog:
        out.append(("backlog_inputs", {"state": b.state}, b.count))
        out.append(("oldest_input_age_seconds", {"state": b.state}, b.oldest_age_seconds or 0))
    for reason, count in sorted(m.pipeline.quarantine.items()):
        out.append(("quarantined_inputs", {"reason": reason}, count))
    firing = {f.rule for f in findings}
    out += [("rule_firing", {"rule": r.name}, 1 if r.name in firing else 0) for r in rules.RULES]
    return out


def publish(cfg: Config) -> None:
    """Compute the status and write its gauges; a failure is logged, never raised."""
    try:
        m = status_model.compute(cfg)
        path = monitoring.write_status(cfg, samples(m, rules.evaluate(m, cfg)))
        if path is not None:
            _log.info("status published: %s", path)
    except Exception as exc:  # the job's own outcome stands whatever happens here
        _log.warning("the status could not be published: %s: %s", type(exc).__name__, exc)


@contextlib.contextmanager
def job(cfg: Config, name: str) -> Iterator[monitoring.Run]:
    """monitoring.job(cfg, name), then publish(cfg), whether the job succeeded or not."""
    try:
        with monitoring.job(cfg, name) as run:
            yield run
    finally:
        publish(cfg)
