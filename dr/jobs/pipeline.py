"""Running the pipeline's stages in their images (`invoke pipeline`).

Each stage is one `docker run` of its own image as the unprivileged user `aggregator` (990), with what
dr/jobs/contract.py's table gives it: the data root at /data, one derived configuration file, and only for the
importer the database password (a private copy) and the project network; sync gets its collectors' keys
(private copies) and the project network; the sanitizer no network at all. The stage's JSON summary (stdout)
is its result, read back into a Summary with the container's exit code in it; its log (stderr) is streamed
as progress. A run of the pipeline is a PipelineRun: the summaries of the stages it ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common import log
from common.config import Config
from common.errors import DrError, ServiceError, UsageError
from common.records import Record
from dr.engine import docker_api
from dr.jobs import contract, launch
from dr.services import stack
from stages.cli import Summary

_log = log.get("pipeline")

# Stage name -> image component. In pipeline order.
STAGES = {name: row.component for name, row in contract.STAGES.items()}


@dataclass
class PipelineRun(Record):
    """One run of the pipeline (`invoke pipeline`): the summary of each stage it ran, in order."""
    stages: list[Summary] = field(default_factory=list)

    def render(self) -> str:
        """One line per stage."""
        return "\n".join(s.render() for s in self.stages)

    def exit_status(self) -> int:
        """The worst stage's exit code, or 1 when a stage reported errors yet exited 0."""
        worst = max((s.exit_code for s in self.stages), default=0)
        return worst or (1 if any(s.errors for s in self.stages) else 0)


def run_stage(cfg: Config, stage: str, extra: tuple[str, ...] = ()) -> Summary:
    """One stage run in its image: the summary it printed, with the container's exit code in it."""
    spec = contract.stage_spec(cfg, stage, extra)
    if (contract.STAGES[stage].db_role and "db" in stack.services_of(cfg)
            and docker_api.container_or_none(stack.container_name(cfg, "db")) is None):
        raise ServiceError("the database is not running; run `invoke rebuild` first")
    _log.info("stage %s in %s as %s", stage, cfg.image(spec.component), spec.user)
    code, summary = launch.run_job(cfg, spec, Summary)
    return exited(stage, code, summary)


def exited(stage: str, code: int, summary: Summary | None) -> Summary:
    """The summary a stage's container printed, with the container's exit code in it; DrError when it printed
    none (its reason is in its log, above). Pure."""
    if summary is None:
        raise DrError(f"stage {stage} exited {code} without a summary (its log above says why)")
    summary.exit_code = code
    return summary


def stage_names(cfg: Config, stage: str | None = None) -> list[str]:
    """The stages a run runs: the one asked for, or every stage in order (sync only when collectors are
    configured)."""
    return [stage] if stage else [s for s in STAGES if s != "sync" or cfg.collectors]


def job_name(stage: str | None = None, catch_up: bool = False) -> str:
    """The job a run is in the job history: "pipeline" (a full run: the scheduled job), "stage-<stage>" or
    "catch-up"; UsageError for a stage that does not exist, or a stage with catch_up."""
    if catch_up and stage:
        raise UsageError("--catch-up is the importer's own job: give no --stage with it")
    if stage and stage not in STAGES:
        raise UsageError(f"--stage {stage}: no such stage; stages: {', '.join(STAGES)}")
    return "catch-up" if catch_up else f"stage-{stage}" if stage else "pipeline"


def run(cfg: Config, stage: str | None = None) -> PipelineRun:
    """Run one stage, or every stage in order (stage_names). Stops at a stage that hit an infrastructure or
    usage error (Summary.stopped); inputs that failed on their own (named in the summary's `failed`, tried
    again next run) do not keep the later stages from running."""
    result = PipelineRun()
    for name in stage_names(cfg, stage):
        summary = run_stage(cfg, name)
        result.stages.append(summary)
        if summary.stopped:
            break
    return result


def catch_up(cfg: Config) -> PipelineRun:
    """The importer's other job: the archived reports the database lacks imported again (after the
    database was restored from a set older than the archive: its own host lost, docs/runbook.md 12.2)."""
    return PipelineRun([run_stage(cfg, "importer", ("--catch-up",))])
