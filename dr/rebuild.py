"""`invoke rebuild`: a freshly installed Debian host becomes a working Aggregator.

Phases: preflight, host bootstrap, base image, component images, start services, wait for health; with
`sample`, also start the built-in sample collector and run the whole pipeline on it (sync, sanitize,
importer), so that the web mirror publishes the sample reports.
(Restore of the latest snapshot set and verification come with the restore issue.) Every phase is timed;
the total is the recovery time of this host.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dr import collector, config, host, images, log, pipeline, services
from dr.config import Config
from dr.errors import DrError

_log = log.get("rebuild")


@dataclass
class RebuildReport:
    phases: list[tuple[str, float, str]] = field(default_factory=list)
    pipeline: list[dict] = field(default_factory=list)

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


def with_sample_collector(cfg: Config) -> Config:
    """Start the built-in sample collector; the configuration gains it as one more collector."""
    entry = collector.start(cfg)
    others = [c.as_dict() for c in cfg.collectors if c.name != entry["name"]]
    return config.derive(cfg, {"collectors": others + [entry]})


def _pipeline_note(results: list[dict]) -> str:
    return "; ".join(f"{r['stage']} " + (", ".join(f"{v} {k}" for k, v in sorted(r["outcomes"].items()))
                                         or "nothing to do") for r in results)


def rebuild(cfg: Config, refresh_base: bool = False, sample: bool = False) -> RebuildReport:
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
    if sample:
        holder = {}

        def start_sample():
            holder["cfg"] = with_sample_collector(cfg)
            return f"sample collector {collector.container_name(cfg)} with the built-in reports"

        _phase(report, "collector", start_sample)

        def run_pipeline():
            results = pipeline.run(holder["cfg"])
            report.pipeline = results
            failed = [r for r in results if r["exit_code"]]
            if failed:
                raise PipelineFailed(f"stage {failed[0]['stage']} failed: {'; '.join(failed[0]['errors'][:3])}")
            return _pipeline_note(results)

        _phase(report, "pipeline", run_pipeline)
    return report


class PipelineFailed(DrError):
    pass
