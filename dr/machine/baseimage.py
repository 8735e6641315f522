"""The base image: `debootstrap --variant=minbase <suite>` into a temporary folder, then `docker import`.

No registry is involved, now or in a disaster: the only input is Debian's archive. The image is labelled
with the suite, the date it was made and a sha256 over its package list; it is reused while present, and
`invoke rebuild --refresh-base` makes it again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common import log, runner
from common.config import Config
from common.errors import CommandError, DrError
from dr.engine import docker_api

_log = log.get("base")

LABEL_SUITE = "org.aggregator-dr.debian-suite"
LABEL_DATE = "org.aggregator-dr.created"
LABEL_PACKAGES = "org.aggregator-dr.packages-sha256"

APT_CONF = """\
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
"""
# Image builds should not keep .deb files around.
DPKG_CLEAN = 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\n'


@dataclass
class BaseImageResult:
    image: str
    created: bool
    packages_sha256: str
    seconds: float = 0.0


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts") as fh:
        return [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]


def _unmount_all(root: Path) -> None:
    for mnt in sorted(_mounts_under(root), key=len, reverse=True):
        with contextlib.suppress(CommandError):  # what stays mounted is named just below
            runner.run(["umount", "-l", mnt], quiet=True)
    left = _mounts_under(root)
    if left:
        raise DrError(f"refusing to delete {root}: still mounted: {', '.join(left)}")


def write_apt_config(root: Path, cfg: Config) -> None:
    suite = cfg.images.suite
    (root / "etc/apt/apt.conf.d/90aggregator-dr").write_text(APT_CONF)
    (root / "etc/apt/apt.conf.d/91aggregator-dr-clean").write_text(DPKG_CLEAN)
    sources = (
        f"deb {cfg.images.mirror} {suite} main\n"
        f"deb {cfg.images.mirror} {suite}-updates main\n"
        f"deb {cfg.images.security_mirror} {suite}-security main\n"
    )
    (root / "etc/apt/sources.list").write_text(sources)


def package_list(root: Path) -> str:
    out = runner.run(["chroot", str(root), "dpkg-query", "-W", "-f=${Package} ${Version}\\n"],
                     capture=True, quiet=True)
    return "\n".join(sorted(out.splitlines())) + "\n"


def ensure(cfg: Config, refresh: bool = False) -> BaseImageResult:
    image = cfg.base_image
    current = docker_api.image_or_none(image)
    if current is not None and not refresh:
        _log.info("base image %s present (made %s), reused", image, current.labels.get(LABEL_DATE, "?"))
        return BaseImageResult(image, False, current.labels.get(LABEL_PACKAGES, ""))
    return create(cfg)


def create(cfg: Config) -> BaseImageResult:
    start = dt.datetime.now(dt.timezone.utc)
    image = cfg.base_image
    workdir = cfg.cache_path / "debootstrap"
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="rootfs-", dir=workdir))
    root = tmp / "root"
    try:
        _log.info("debootstrap %s from %s (progress below)", cfg.images.suite, cfg.images.mirror)
        runner.run(["debootstrap", "--variant=minbase", cfg.images.suite, str(root), cfg.images.mirror])
        _unmount_all(root)
        write_apt_config(root, cfg)
        # debootstrap takes the suite as released; bring in trixie-updates and security fixes.
        apt_env = {"DEBIAN_FRONTEND": "noninteractive"}
        runner.run(["chroot", str(root), "apt-get", "update", "-q"], env=apt_env)
        runner.run(["chroot", str(root), "apt-get", "upgrade", "-y", "-q"], env=apt_env)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for f in (root / cache).glob("*"):
                if f.is_file():
                    f.unlink()
        packages = package_list(root)
        digest = hashlib.sha256(packages.encode()).hexdigest()
        tarball = tmp / "rootfs.tar"
        runner.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(tarball), "."])
        changes = [
            f'LABEL {LABEL_SUITE}="{cfg.images.suite}"',
            f'LABEL {LABEL_DATE}="{start.strftime("%Y-%m-%dT%H:%M:%SZ")}"',
            f'LABEL {LABEL_PACKAGES}="{digest}"',
            "ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive",
            'CMD ["/bin/bash"]',
        ]
        repo, tag = image.rsplit(":", 1)
        _log.info("docker import %s as %s", tarball.name, image)
        docker_api.client().api.import_image(src=str(tarball), repository=repo, tag=tag, changes=changes)
    finally:
        if root.exists():
            _unmount_all(root)
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = (dt.datetime.now(dt.timezone.utc) - start).total_seconds()
    _log.info("base image %s created in %.0fs (packages sha256 %s)", image, seconds, digest[:12])
    return BaseImageResult(image, True, digest, seconds)
