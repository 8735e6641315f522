"""Build artifacts that Debian's archive cannot give back (the FerretDB binary built from its Go module),
kept in the repository so that a rebuild works when the Go module proxy is out of reach.

The artifact folder (`<cache_dir>/go`: `<name>-<version>/<name>` plus `<name>.json` with its version, module
checksum, Go version and sha256) is stored as its own restic snapshot tagged `kind:artifacts` and
`artifacts:<fingerprint>`, where the fingerprint is a sha256 over the binaries' names and sha256s; a new
snapshot is made only when that changes. This host remembers the snapshot it stored or found (in the restic
cache folder) and, for a local repository whose snapshot file is still there, does not list the snapshots
again: each restic run costs the repository's key derivation. These snapshots belong to no set, so `forget`
never removes them.
Restoring checks every binary against the sha256 recorded beside it before it is put in place; `check` reads
the newest artifacts snapshot back in full the same way (it is small), since restic's own check reads only a
share of the packs, if any. `copy` puts the newest one into the off-site repository too (snapshots/offsite.py),
so that a host lost with its local repository rebuilds from the off-site copy alone (`rebuild --offsite`); both
`check --offsite` and that restore read it there with the same code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from pathlib import Path

from common import atomic, log
from common.digest import sha256_file
from snapshots import manifest
from snapshots.restic import Restic, ResticError, dump_tar_args, restore_args, snapshots_args, tag_args

_log = log.get("artifacts")
KIND = "artifacts"
KNOWN_NAME = ".aggregator-dr-artifacts.json"  # in the restic cache folder: the snapshot last stored or found


def inventory(folder: Path) -> dict[str, str]:
    """{"<name>-<version>/<name>": sha256} of every artifact whose metadata file is beside it."""
    found = {}
    for meta in sorted(folder.glob("*/*.json")):
        binary = meta.with_suffix("")
        if binary.is_file():
            found[f"{meta.parent.name}/{binary.name}"] = json.loads(meta.read_text())["sha256"]
    return found


def fingerprint(items: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{k} {v}\n" for k, v in sorted(items.items())).encode()).hexdigest()[:16]


def snapshot_args(host: str, fp: str, folder: Path) -> list[str]:
    """restic backup's arguments (after `backup --json`) for the artifact folder: tagged with its kind and
    its fingerprint (no set)."""
    return ["--host", host, *tag_args(f"kind:{KIND}", f"artifacts:{fp}"), str(folder)]


def newest(snapshots: list[dict]) -> dict | None:
    """The newest artifacts snapshot of a listing (`restic snapshots --json`: any kinds), or None. Pure."""
    found = [s for s in snapshots if f"kind:{KIND}" in (s.get("tags") or [])]
    return max(found, key=lambda s: s["time"]) if found else None


def fingerprint_of(snapshot: dict) -> str | None:
    """The fingerprint an artifacts snapshot is tagged with (`artifacts:<fingerprint>`), or None. Pure."""
    return next((t.removeprefix("artifacts:") for t in snapshot.get("tags") or [] if t.startswith("artifacts:")),
                None)


def _latest(restic: Restic) -> dict | None:
    return newest(restic.json(*snapshots_args(f"kind:{KIND}")) or [])


def save(restic: Restic, folder: Path, host: str) -> dict:
    """Store the artifact folder unless the newest artifacts snapshot already holds the same binaries."""
    items = inventory(folder)
    if not items:
        return {"saved": False, "reason": f"no artifacts in {folder}"}
    for rel, digest in items.items():
        if sha256_file(folder / rel) != digest:
            raise ResticError(f"artifact {folder / rel} does not match the sha256 recorded beside it; "
                              "rebuild it (`invoke build`) before it is kept in the repository")
    fp = fingerprint(items)
    known = _known(restic, fp)
    if known:  # stored before, and still there: no listing (each restic run costs 0.6 s of key derivation)
        return {"saved": False, "fingerprint": fp, "snapshot": known[:8], "artifacts": sorted(items)}
    latest = _latest(restic)
    if latest and fingerprint_of(latest) == fp:
        _remember(restic, fp, latest["id"])
        return {"saved": False, "fingerprint": fp, "snapshot": latest["short_id"], "artifacts": sorted(items)}
    summary = restic.backup(*snapshot_args(host, fp, folder))
    _remember(restic, fp, summary["snapshot_id"])
    return {"saved": True, "fingerprint": fp, "snapshot": summary["snapshot_id"][:8], "artifacts": sorted(items)}


def _known_file(restic: Restic) -> Path | None:
    return Path(restic.cache_dir) / KNOWN_NAME if restic.cache_dir else None


def _known(restic: Restic, fp: str) -> str | None:
    """The full id of the artifacts snapshot with fingerprint fp that this host stored or found in this
    repository, when the repository still holds it (a local repository: its snapshot file is there);
    otherwise None, and the repository is asked."""
    path = _known_file(restic)
    try:
        known = json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        return None
    if not isinstance(known, dict) or known.get("repository") != restic.repository or known.get("fingerprint") != fp:
        return None
    snapshot = str(known.get("snapshot", ""))
    return snapshot if restic.has_snapshot(snapshot) else None


def _remember(restic: Restic, fp: str, snapshot_id: str) -> None:
    path = _known_file(restic)
    if path is not None and restic.local_folder() is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(path, json.dumps({"repository": restic.repository, "fingerprint": fp,
                                             "snapshot": snapshot_id}).encode())


def restore(restic: Restic, folder: Path) -> dict:
    """Put the newest stored artifacts into folder (only those missing or different), each one verified."""
    latest = _latest(restic)
    if latest is None:
        return {"restored": [], "reason": "the repository holds no build artifacts"}
    tmp = folder / ".restore-artifacts"
    shutil.rmtree(tmp, ignore_errors=True)
    restic.run(*restore_args(latest["id"], tmp))
    got = tmp / latest["paths"][0].lstrip("/")
    restored = []
    try:
        for rel, digest in inventory(got).items():
            if sha256_file(got / rel) != digest:
                raise ResticError(f"the stored artifact {rel} does not match its recorded sha256")
            dest = folder / rel
            if dest.is_file() and dest.with_suffix(".json").is_file() and sha256_file(dest) == digest:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(got / rel, dest.with_name(dest.name + ".tmp"))
            os.replace(dest.with_name(dest.name + ".tmp"), dest)
            shutil.copy2((got / rel).with_suffix(".json"), dest.with_suffix(".json"))
            restored.append(rel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"restored": restored, "snapshot": latest["short_id"], "taken": latest["time"][:19]}


def tar_digests(stream, prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """({file: sha256 of its content}, {artifact: sha256 recorded beside it}) of a `restic dump -a tar` of the
    artifact folder whose members are named `<prefix>/...`; the content is hashed as it streams past."""
    content, recorded = {}, {}
    for rel, _, fh in manifest.tar_files(stream, prefix):
        if rel.count("/") == 1 and rel.endswith(".json"):  # an artifact's metadata (see inventory)
            recorded[rel.removesuffix(".json")] = json.loads(fh.read())["sha256"]
        else:
            content[rel] = hashlib.file_digest(fh, "sha256").hexdigest()
    return content, recorded


def problems(content: dict[str, str], recorded: dict[str, str]) -> list[str]:
    """What is wrong with an artifact folder read back (tar_digests): artifacts missing or different from the
    sha256 recorded beside them, or no artifact at all."""
    found = [f"{rel} is missing" if rel not in content else f"{rel} does not match its recorded sha256"
             for rel, digest in sorted(recorded.items()) if content.get(rel) != digest]
    return found if recorded else ["it holds no artifact with its metadata"]


def verify(restic: Restic) -> dict:
    """Read the newest artifacts snapshot (the one a rebuild restores) back in full and compare every
    artifact with the sha256 recorded beside it; nothing is written to disk.
    {verdict: ok | none | FAILED, snapshot, artifacts, problems}."""
    latest = _latest(restic)
    if latest is None:
        return {"verdict": "none", "snapshot": None, "artifacts": [], "problems": []}
    path = latest["paths"][0]
    _log.info("reading the build artifacts snapshot %s back", latest["short_id"])
    try:
        content, recorded = restic.read(dump_tar_args(latest["id"], path),
                                        lambda stream: tar_digests(stream, path))
    except (ResticError, OSError, ValueError, KeyError, EOFError, tarfile.TarError) as exc:
        return {"verdict": "FAILED", "snapshot": latest["short_id"], "artifacts": [],
                "problems": [f"artifacts snapshot {latest['short_id']} cannot be read back: {exc}"]}
    found = problems(content, recorded)
    return {"verdict": "FAILED" if found else "ok", "snapshot": latest["short_id"], "artifacts": sorted(recorded),
            "problems": [f"artifacts snapshot {latest['short_id']}: {p}" for p in found]}
