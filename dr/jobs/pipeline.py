"""Running the pipeline's stages in their images (`invoke pipeline`).

Each stage is one `docker run` of its own image as the unprivileged user `aggregator` (990), with what
dr/jobs/contract.py's table gives it: the data root at /data, one derived configuration file, and only for the
importer the database password (a private copy) and the project network; sync gets its collectors' keys
(private copies) and the project network; the sanitizer no network at all. The stage's JSON summary (stdout)
is the result; its log (stderr) is streamed as progress.
"""

from __future__ import annotations

from common import log
from common.config import Config
from common.errors import DrError, ServiceError
from dr.engine import docker_api
from dr.jobs import contract, launch
from dr.services import stack
from stages.cli import StageResult

_log = log.get("pipeline")

# Stage name -> image component. In pipeline order.
STAGES = {name: row.component for name, row in contract.STAGES.items()}


def run_stage(cfg: Config, stage: str, extra: tuple[str, ...] = ()) -> StageResult:
    spec = contract.stage_spec(cfg, stage, extra)
    if (contract.STAGES[stage].db_role and "db" in stack.services_of(cfg)
            and docker_api.container_or_none(stack.container_name(cfg, "db")) is None):
        raise ServiceError("the database is not running; run `invoke rebuild` first")
    _log.info("stage %s in %s as %s", stage, cfg.image(spec.component), spec.user)
    code, out = launch.run_spec(cfg, spec)
    return stage_result(stage, code, out)


def stage_result(stage: str, code: int, out: str) -> StageResult:
    """What a stage's container printed (its summary, JSON) with its exit code, read back; DrError when it
    printed no summary. Pure."""
    try:
        return StageResult.from_output(out, code)
    except ValueError as exc:
        raise DrError(f"stage {stage} exited {code} without a summary ({exc}):\n{out[-2000:]}") from None


def stage_names(cfg: Config, stage: str | None = None) -> list[str]:
    """The stages a run runs: the one asked for, or every stage in order (sync only when collectors are
    configured)."""
    return [stage] if stage else [s for s in STAGES if s != "sync" or cfg.collectors]


def run(cfg: Config, stage: str | None = None) -> list[StageResult]:
    """Run one stage, or every stage in order (stage_names). Stops at a stage that hit an infrastructure or
    usage error (StageResult.stopped); inputs that failed on their own (named in the summary's `failed`,
    tried again next run) do not keep the later stages from running."""
    results = []
    for name in stage_names(cfg, stage):
        result = run_stage(cfg, name)
        results.append(result)
        if result.stopped:
            break
    return results


def exit_code(results: list[StageResult]) -> int:
    """The pipeline's exit code: the worst stage's, or 1 when a stage reported errors yet exited 0."""
    worst = max((r.exit_code for r in results), default=0)
    return worst or (1 if any(r.summary.errors for r in results) else 0)


def catch_up(cfg: Config) -> StageResult:
    """The importer's other job: the archived reports the database lacks imported again (after the
    database was restored from a set older than the archive: its own host lost, docs/runbook.md 12.2)."""
    return run_stage(cfg, "importer", ("--catch-up",))
