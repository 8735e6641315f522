"""Running the pipeline's stages in their images (`invoke pipeline`).

Each stage is one `docker run` of its own image with the data root bind-mounted at /data. Only the importer
gets the database password (mounted read-only) and joins the project network to reach the database.
The stage's JSON summary (stdout) is the result; its log (stderr) is streamed as progress.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import config as dr_config
from common import log, secrets
from common.config import Config
from common.errors import DrError, ServiceError
from dr import containers, docker_api, services

_log = log.get("pipeline")

# Stage name -> image component. In pipeline order.
STAGES = {"sync": "sync", "sanitize": "sanitizer", "importer": "importer"}


def _sync_config(cfg: Config, workdir: Path) -> Path:
    """The configuration the sync container gets: collectors and sync settings (key files are mounted at
    the same paths), and nothing about the database."""
    values = {"data_root": "/data", "sync": cfg.sync.as_dict(), "pipeline": cfg.pipeline.as_dict(),
              "collectors": [c.as_dict() for c in cfg.collectors]}
    path = workdir / "sync.toml"
    path.write_text(dr_config.to_toml(values))
    return path


def _stage_args(cfg: Config, stage: str, workdir: Path) -> tuple[list[str], dict, str | None]:
    """(extra arguments, volumes, network) of one stage's container."""
    volumes = {str(cfg.data_root_path): {"bind": "/data", "mode": "rw"}}
    args: list[str] = []
    network = None
    if stage == "sync":
        if not cfg.collectors:
            raise DrError("no collectors are configured ([[collectors]] in the configuration)")
        volumes[str(_sync_config(cfg, workdir))] = {"bind": "/run/aggregator-dr.toml", "mode": "ro"}
        for c in cfg.collectors:
            secrets.read(str(Path(c.key_file).parent), Path(c.key_file).name)  # present and private
            volumes[c.key_file] = {"bind": c.key_file, "mode": "ro"}
        args += ["--config", "/run/aggregator-dr.toml"]
        network = services.network_name(cfg)
        return args, volumes, network
    if stage == "sanitize" and cfg.pipeline.bridge_db:
        volumes[cfg.pipeline.bridge_db] = {"bind": "/run/bridge_db.json", "mode": "ro"}
        args += ["--set", "pipeline.bridge_db=/run/bridge_db.json"]
    if stage == "importer":
        pw = secrets.path(cfg.secrets_dir, secrets.DB_PASSWORD)
        secrets.read(cfg.secrets_dir, secrets.DB_PASSWORD)  # clear error before starting anything
        volumes[str(pw)] = {"bind": "/run/secrets/db-password", "mode": "ro"}
        network = services.network_name(cfg)
        args += ["--set", f"db.host={services.container_name(cfg, 'db')}", "--set", "db.port=27017",
                 "--set", "secrets_dir=/run/secrets"]
    for key in ("workers", "batch_size", "lock_timeout", "max_report_mb", "max_document_mb"):
        args += ["--set", f"pipeline.{key}={getattr(cfg.pipeline, key)}"]
    return args, volumes, network


def run_stage(cfg: Config, stage: str) -> dict:
    if stage not in STAGES:
        raise DrError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    Path(cfg.data_root).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"stage-{stage}-") as workdir:
        return _run_container(cfg, stage, *_stage_args(cfg, stage, Path(workdir)))


def _run_container(cfg: Config, stage: str, args: list[str], volumes: dict, network: str | None) -> dict:
    if stage == "importer" and docker_api.container_or_none(services.container_name(cfg, "db")) is None:
        raise ServiceError("the database is not running; run `invoke rebuild` first")
    _log.info("stage %s in %s", stage, cfg.image(STAGES[stage]))
    cmd = ["python3", "-m", f"stages.{stage}", "--data-root", "/data", "--json", *args]
    code, out = containers.run_tool(cfg, STAGES[stage], cmd, volumes, network, stage)
    try:
        summary = json.loads(out)
    except ValueError:
        raise DrError(f"stage {stage} exited {code} without a summary:\n{out[-2000:]}") from None
    summary["exit_code"] = code
    return summary


def run(cfg: Config, stage: str | None = None) -> list[dict]:
    """Run one stage, or every stage in order (sync only when collectors are configured). Stops at a stage
    that hit an infrastructure or usage error; inputs that failed on their own (named in the summary's
    `failed`, tried again next run) do not keep the later stages from running."""
    results = []
    names = [stage] if stage else [s for s in STAGES if s != "sync" or cfg.collectors]
    for name in names:
        summary = run_stage(cfg, name)
        results.append(summary)
        if summary.get("errors") or summary["exit_code"] not in (0, 1):
            break
    return results
