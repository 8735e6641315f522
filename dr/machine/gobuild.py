"""Go programs we build from their modules on the host (the host reaches the Go module proxy and trusts its CA).

Each artifact is pinned here (module, version, package) and cached under cache_dir/go/<name>-<version>/
with its sha256, so a warm run reuses it and the build context gets a byte-identical file (-trimpath builds
are reproducible, which keeps Docker's layer cache warm too).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common import log, runner
from common.digest import sha256_file
from common.errors import PreflightError

_log = log.get("go")

MIN_GO = (1, 24)
GO_DIRS = ("/usr/local/go/bin", "/usr/lib/go/bin", "/usr/lib/go-1.24/bin")


@dataclass(frozen=True)
class GoArtifact:
    name: str
    module: str
    version: str
    package: str
    # Files some modules expect to be generated before `go build` (distro packagers write these).
    generated: tuple[tuple[str, str], ...] = ()


# FerretDB 1.x: v1.24.2 is the last 1.x release on the module proxy (2025-05-27).
# build/version/version.go embeds *.txt and wants version.txt (required) written before building.
FERRETDB = GoArtifact(
    name="ferretdb",
    module="github.com/FerretDB/FerretDB",
    version="v1.24.2",
    package="./cmd/ferretdb",
    generated=(("build/version/version.txt", "v1.24.2\n"), ("build/version/package.txt", "aggregator-dr\n")),
)

ARTIFACTS = (FERRETDB,)


def go_binary() -> str:
    """A Go toolchain new enough for our artifacts; installs Debian's golang-go when none is found."""
    for attempt in range(2):
        go = runner.which("go", GO_DIRS)
        if go:
            out = runner.run([go, "env", "GOVERSION"], capture=True, quiet=True).strip()
            m = re.match(r"go(\d+)\.(\d+)", out)
            if m and (int(m.group(1)), int(m.group(2))) >= MIN_GO:
                return go
            _log.info("%s is %s; need go >= %d.%d", go, out, *MIN_GO)
        if attempt == 0:
            runner.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "golang-go"],
                       env={"DEBIAN_FRONTEND": "noninteractive"})
    raise PreflightError(f"no Go toolchain >= {MIN_GO[0]}.{MIN_GO[1]} (Debian trixie's golang-go is 1.24)")


def cached_path(cache_dir: Path, art: GoArtifact) -> Path:
    return cache_dir / "go" / f"{art.name}-{art.version}" / art.name


def build(art: GoArtifact, cache_dir: Path) -> Path:
    """Return the cached binary, building it from the module proxy when it is not cached yet."""
    target = cached_path(cache_dir, art)
    meta = target.with_suffix(".json")
    if cached(art, cache_dir):
        _log.info("%s %s: cached (%s)", art.name, art.version, target)
        return target
    if target.is_file():
        _log.info("%s %s: cached file does not match its sha256, rebuilding", art.name, art.version)
    go = go_binary()
    env = {"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    if not os.environ.get("HOME"):  # the go command needs somewhere for its caches
        env.update(GOPATH=str(cache_dir / "gopath"), GOCACHE=str(cache_dir / "go-build"))
    _log.info("building %s %s from the Go module proxy", art.module, art.version)
    info = json.loads(runner.run([go, "mod", "download", "-json", f"{art.module}@{art.version}"],
                                 capture=True, env=env))
    if info.get("Error"):
        raise PreflightError(f"cannot download {art.module}@{art.version}: {info['Error']}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{art.name}-src-", dir=target.parent) as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(info["Dir"], src)
        for root, dirs, files in os.walk(src):  # the module cache is read-only
            os.chmod(root, 0o755)
        for rel, content in art.generated:
            (src / rel).write_text(content)
        out = Path(tmp) / art.name
        runner.run([go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(out), art.package], cwd=src, env=env)
        go_version = runner.run([go, "env", "GOVERSION"], capture=True, quiet=True).strip()
        digest = sha256_file(out)
        os.replace(out, target)
    meta.write_text(json.dumps({
        "name": art.name, "module": art.module, "version": art.version, "sha256": digest,
        "module_sum": info.get("Sum", ""), "go": go_version,
    }, indent=2) + "\n")
    _log.info("%s %s built: sha256 %s", art.name, art.version, digest)
    return target


def cached(art: GoArtifact, cache_dir: Path) -> bool:
    """The artifact is in the cache and matches the sha256 recorded beside it."""
    target = cached_path(cache_dir, art)
    meta = target.with_suffix(".json")
    return target.is_file() and meta.is_file() and sha256_file(target) == json.loads(meta.read_text())["sha256"]


def metadata(art: GoArtifact, cache_dir: Path) -> dict:
    return json.loads(cached_path(cache_dir, art).with_suffix(".json").read_text())


def stage_into(context_dir: Path, cache_dir: Path) -> dict[str, dict]:
    """Build (or reuse) every artifact and copy it into <context>/build/bin for the image builds."""
    bin_dir = context_dir / "build" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    result = {}
    for art in ARTIFACTS:
        src = build(art, cache_dir)
        dst = bin_dir / art.name
        if not dst.exists() or sha256_file(dst) != sha256_file(src):
            tmp = dst.with_suffix(".tmp")
            shutil.copy2(src, tmp)
            os.replace(tmp, dst)
        result[art.name] = metadata(art, cache_dir)
    return result
