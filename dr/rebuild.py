"""`invoke rebuild`: a freshly installed Debian host becomes a working Aggregator.

Phases: preflight, host bootstrap, base image, component images, start services, wait for health.
(Restore of the latest snapshot set and verification come with the restore issue.) Every phase is timed;
the total is the recovery time of this host.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dr import host, images, log, services
from dr.config import Config

_log = log.get("rebuild")


@dataclass
class RebuildReport:
    phases: list[tuple[str, float, str]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(p[1] for p in self.phases)

    def summary(self) -> str:
        lines = ["rebuild summary:"]
        for name, seconds, note in self.phases:
            lines.append(f"  {name:<12} {seconds:7.1f}s  {note}")
        lines.append(f"  {'total':<12} {self.total:7.1f}s")
        return "\n".join(lines)


def _phase(report: RebuildReport, name: str, fn):
    _log.info("== %s", name)
    start = time.monotonic()
    note = fn()
    report.phases.append((name, time.monotonic() - start, note or ""))


def rebuild(cfg: Config, refresh_base: bool = False) -> RebuildReport:
    report = RebuildReport()
    _phase(report, "preflight", lambda: "; ".join(host.preflight(cfg)))
    _phase(report, "bootstrap", lambda: host.bootstrap(cfg).summary())

    def build():
        built = images.build_all(cfg, refresh_base=refresh_base)
        unchanged = sum(1 for b in built if b.unchanged)
        return f"{len(built)} images ({unchanged} unchanged)"

    _phase(report, "images", build)
    _phase(report, "start", lambda: ", ".join(f"{k} {v}" for k, v in services.start(cfg).items()))
    _phase(report, "health", lambda: ", ".join(f"{k} healthy after {v}s"
                                                for k, v in services.wait_healthy(cfg).items()))
    return report
