"""Running a ContainerSpec (dr/jobs/contract.py): make the folders it mounts, check its secrets, write its one
configuration file into a private temporary folder, hand the data root to the container's user when it is
not root (dr/jobs/ownership.py) with private copies of its secrets owned by that user, run it
(containers.run_tool), and remove the temporary folder afterwards. `run_job` reads what the container
printed back into its result's type (common/records.py): one reader for stages and snapshot actions."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TypeVar

from common import secrets
from common.config import Config
from common.errors import DrError
from common.records import Record, RecordError
from dr.engine import containers
from dr.jobs import contract, ownership
from dr.jobs.contract import ContainerSpec

R = TypeVar("R", bound=Record)


def _ids(user: str) -> tuple[int, int]:
    uid, _, gid = user.partition(":")
    return int(uid), int(gid or uid)


def _private_copy(source: str, dest: Path, uid: int, gid: int) -> None:
    """dest: a copy of source readable only by uid:gid (mode 0400). The value is never logged."""
    data = Path(source).read_bytes()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    try:
        os.fchown(fd, uid, gid)
        os.write(fd, data)
    finally:
        os.close(fd)


def volumes(spec: ContainerSpec, workdir: Path, config_file: Path) -> dict:
    """The docker volumes argument of spec: its mounts, its secrets (private copies in workdir when it does
    not run as root) and its configuration file."""
    out: dict = {str(config_file): {"bind": contract.CONFIG_PATH, "mode": "ro"}}
    for m in spec.mounts:
        out[m.source] = {"bind": m.target, "mode": m.mode}
    copies = workdir / "secrets"
    for n, s in enumerate(spec.secrets):
        source = s.source
        if not spec.runs_as_root:
            copies.mkdir(mode=0o700, exist_ok=True)
            dest = copies / f"{n}-{Path(s.target).name}"
            _private_copy(s.source, dest, *_ids(spec.user))
            source = str(dest)
        out[source] = {"bind": s.target, "mode": "ro"}
    return out


def network(spec: ContainerSpec) -> str | list[str]:
    """run_tool's network argument for spec: none at all when it is isolated, else its networks (none listed:
    Docker's default bridge)."""
    return containers.NO_NETWORK if spec.isolated else list(spec.networks)


def prepare(spec: ContainerSpec) -> None:
    """What must be there before the container starts: the folders it mounts that may be made, its secrets
    (present and private: a clear error before anything starts), and for a container not run as root a
    data root it can write."""
    for m in spec.mounts:
        if m.create is not None:
            Path(m.source).mkdir(parents=True, exist_ok=True, mode=m.create)
    for s in spec.secrets:
        if s.target.startswith(contract.SECRETS + "/"):
            secrets.read(str(Path(s.source).parent), Path(s.source).name)
    data = spec.data_root
    if data is not None and not spec.runs_as_root:
        ownership.hand_over(data.source, *_ids(spec.user))


def run_spec(cfg: Config, spec: ContainerSpec) -> tuple[int, str]:
    """(exit code, stdout with host paths) of the container spec describes."""
    prepare(spec)
    workdir = Path(tempfile.mkdtemp(prefix=f"aggregator-dr-{spec.label}-"))
    try:
        config_file = workdir / "config.toml"
        config_file.write_text(contract.container_config(cfg, spec))
        config_file.chmod(0o444)  # no secret in it: paths and settings only
        return containers.run_tool(cfg, spec.component, list(spec.command), volumes(spec, workdir, config_file),
                                   network(spec), spec.label, hostname=spec.hostname, user=spec.user,
                                   binds=spec.binds())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_job(cfg: Config, spec: ContainerSpec, result_type: type[R]) -> tuple[int, R | None]:
    """(exit code, result) of the container spec describes: what it printed on stdout read back into
    result_type (read_result)."""
    code, out = run_spec(cfg, spec)
    return code, read_result(spec.label, result_type, code, out)


def read_result(what: str, result_type: type[R], code: int, out: str) -> R | None:
    """What a job's container printed (its result, JSON) read back into result_type; None when it failed
    (exit code not 0) without printing one: its reason went to stderr, which is logged. DrError naming what
    when it succeeded without a result, or printed one that does not fit its type. Pure."""
    try:
        data = json.loads(out)
    except ValueError:
        if code != 0:
            return None
        raise DrError(f"{what} exited 0 without printing its result:\n{out[-1000:]}") from None
    try:
        return result_type.from_dict(data)
    except RecordError as exc:
        raise DrError(f"{what} printed a result that does not fit its type {result_type.__name__}: {exc}") from None
