"""Component images, one per folder in dockerfiles/, all FROM our base image.

The build context is the project root filtered by .dockerignore (our Python packages, dockerfiles/ and the
Go binaries in build/bin). Builds stream their steps as progress. Labels carry the project version and git
commit; they are applied after every other step, so unchanged inputs are a full cache hit.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from common import __version__, log, runner
from common.config import Config
from common.errors import CommandError, ImageBuildError
from common.records import Record, optional
from common.text import table
from dr.engine import docker_api
from dr.machine import baseimage, gobuild, roles

_log = log.get("images")

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = ROOT / "dockerfiles"
# Build order matters only for readability; every image is FROM the base image.
COMPONENTS = ("sync", "sanitizer", "importer", "postgres", "db", "backup", "webmirror", "offsite", "broker",
              "collector")
# Not part of the Aggregator: built only when needed. aptcache: the bare-host drill's package cache
# (`invoke drill --bare-host`); promtool: checks and unit-tests monitoring/'s Prometheus rules (the tests).
TOOLS = ("aptcache", "promtool")
# Docker's predefined build arguments for an http proxy (apt inside a build honours them); passed on when
# set in our environment, for a site that reaches Debian's archive through a proxy or a package cache.
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY")
LABEL_VERSION = "org.opencontainers.image.version"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_COMPONENT = "org.aggregator-dr.component"


@dataclass
class Built(Record):
    """One image built: its size, how long it took, how many of its steps came from the cache."""
    component: str
    image: str
    image_id: str
    size_mb: float
    seconds: float
    cached_steps: int
    total_steps: int
    unchanged: bool  # the same image id as before the build: every input was a cache hit

    def row(self) -> dict[str, str]:
        """Its line in `invoke build`'s table."""
        return {"image": self.image, "seconds": f"{self.seconds:.0f}",
                "cached": f"{self.cached_steps}/{self.total_steps}", "size_mb": f"{self.size_mb:.0f}"}


@dataclass
class BuildResult(Record):
    """What `invoke build` built, in build order."""
    images: list[Built]

    def render(self) -> str:
        return table([b.row() for b in self.images], ["image", "seconds", "cached", "size_mb"])


@dataclass
class ImageRow(Record):
    """One image as `invoke status` shows it: present or not, and when present its creation time, version,
    revision (the base image: its package list's digest) and size."""
    image: str
    present: bool
    created: str | None = optional()
    version: str | None = optional()
    revision: str | None = optional()
    size_mb: int | None = optional()


def git_revision(root: Path = ROOT) -> str:
    try:
        rev = runner.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture=True, quiet=True).strip()
        dirty = runner.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture=True, quiet=True).strip()
        return rev + ("-dirty" if dirty else "")
    except CommandError:  # not a git checkout (a tarball), or no git
        return "unknown"


def dockerfile(component: str) -> Path:
    return DOCKERFILES / component / "Dockerfile"


def labels(component: str, revision: str) -> dict[str, str]:
    return {LABEL_VERSION: __version__, LABEL_REVISION: revision, LABEL_COMPONENT: component}


def build_one(cfg: Config, component: str, revision: str) -> Built:
    tag = cfg.image(component)
    _log.info("building %s from dockerfiles/%s/Dockerfile", tag, component)
    start = time.monotonic()
    before = docker_api.image_or_none(tag)
    steps = cached = 0
    image_id = None
    last_lines: list[str] = []
    stream = docker_api.client().api.build(
        path=str(ROOT),
        dockerfile=f"dockerfiles/{component}/Dockerfile",
        tag=tag,
        buildargs={"BASE_IMAGE": cfg.base_image, **{k: os.environ[k] for k in PROXY_VARS if k in os.environ}},
        labels=labels(component, revision),
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
    )
    for chunk in stream:
        if "error" in chunk:
            detail = "\n".join(last_lines[-20:])
            raise ImageBuildError(f"building {tag} failed: {chunk['error'].strip()}\n{detail}")
        text = chunk.get("stream", "")
        for line in text.splitlines():
            if not line.strip():
                continue
            last_lines.append(line)
            if line.startswith("Step "):
                steps += 1
                _log.info("  [%s] %s", component, line)
            elif "Using cache" in line:
                cached += 1
            elif line.startswith("Successfully built"):
                image_id = line.split()[-1]
            elif not line.startswith(" --->") and not line.startswith("Removing intermediate"):
                _log.info("  [%s] | %s", component, line)
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    if image_id is None:
        raise ImageBuildError(f"building {tag} produced no image:\n" + "\n".join(last_lines[-20:]))
    img = docker_api.client().images.get(tag)
    seconds = time.monotonic() - start
    unchanged = before is not None and before.id == img.id
    built = Built(component, tag, img.id, img.attrs.get("Size", 0) / 1e6, seconds, cached, steps, unchanged)
    _log.info("built %s in %.0fs (%s; %d steps from cache, %.0f MB)", tag, seconds,
              "unchanged" if unchanged else "new image", cached, built.size_mb)
    return built


def components_of(cfg: Config) -> tuple[str, ...]:
    """The images this host needs (its role's, dr/machine/roles.py)."""
    return roles.of(cfg).images or COMPONENTS


def build_all(cfg: Config, components=COMPONENTS, refresh_base: bool = False) -> BuildResult:
    """Base image, Go binaries, then every component image."""
    baseimage.ensure(cfg, refresh=refresh_base)
    gobuild.stage_into(ROOT, cfg.cache_path)
    revision = git_revision()
    return BuildResult([build_one(cfg, c, revision) for c in components])


def describe(cfg: Config) -> list[ImageRow]:
    """What `invoke status` shows for images: the base image and every component's."""
    rows = []
    for component in ("base", *COMPONENTS):
        name = cfg.base_image if component == "base" else cfg.image(component)
        try:
            img = docker_api.client().images.get(name)
        except docker.errors.ImageNotFound:
            rows.append(ImageRow(name, False))
            continue
        lbl = img.labels or {}
        rows.append(ImageRow(name, True, created=img.attrs.get("Created", "")[:19],
                             version=lbl.get(LABEL_VERSION, ""),
                             revision=lbl.get(LABEL_REVISION, lbl.get(baseimage.LABEL_PACKAGES, ""))[:12],
                             size_mb=round(img.attrs.get("Size", 0) / 1e6)))
    return rows
