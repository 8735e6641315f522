"""Integrity of the repository, of every complete set and of the build artifacts.

Three steps, as restic's design suggests (everything is content-addressed; verify by reading back):
1. `restic check` (structure: indexes, packs, trees), with `--read-data-subset` to also read back and
   decrypt that share of the data;
2. every complete set read back in full and compared with its manifest: the files snapshot streamed as a tar
   (`restic dump -a tar`) and hashed as it passes, the physical copy read as a tar (every chunk checked
   by restic against its sha256 as it is read; the files every base backup holds; the whole stream's sha256
   against an older set's manifest that records one), the portable dump (when the set has one)
   streamed through the dump verifier (the archive's framing, each collection's CRC, counts). Nothing is
   written to disk. A set whose files
   snapshot has the same root tree as one already verified holds the same content (content addressing), so
   it is not read twice;
3. the newest build-artifacts snapshot (snapshots/artifacts.py) read back in full, every artifact compared
   with the sha256 recorded beside it: a rebuild on a bare host depends on it, and it belongs to no set.

A damaged pack shows up in step 2 as the set(s) that cannot be read, so the operator knows which sets are
affected, not only which pack.
"""

from __future__ import annotations

import tarfile

from common import log
from snapshots import artifacts, dbdump, manifest, pgcopy, sets
from snapshots.restic import Restic, ResticError, check_args, dump_args, dump_tar_args

_log = log.get("check")


def _read_files(restic: Restic, snap: dict) -> dict:
    """The directories' summary of a files snapshot, computed from its content as restic gives it back."""
    path = snap["paths"][0]
    return restic.read(dump_tar_args(snap["id"], path),
                       lambda stream: manifest.directories_from_tar(stream, path))


def _read_db(restic: Restic, snap: dict, sha256: str | None = None) -> dict:
    """The database part of a manifest (counts per collection, reports per test/country), computed from a
    db snapshot's dump stream after it passed its checks (its sha256 too, when the manifest has one)."""
    tally: dict = {}
    counts = restic.read(dump_args(snap["id"], f"/{sets.DUMP_NAME}"),
                         lambda stream: dbdump.verify(stream, tally, expect_sha256=sha256))
    return {"collections": counts, "reports_by_test_country": tally}


def verify_set(restic: Restic, set_id: str, parts: dict, seen_trees: dict[str, dict]) -> dict:
    """Read one complete set back and compare it with its manifest: {set, verdict, problems}.
    seen_trees caches the summary of files trees already read in this run (same tree = same content)."""
    try:
        expected = sets.read_manifest(restic, parts["manifest"]["id"])
    except (ResticError, ValueError) as exc:
        return {"set": set_id, "verdict": "FAILED", "problems": [f"manifest unreadable: {exc}"]}
    problems: list[str] = []
    files = parts["files"]
    try:
        if files["tree"] not in seen_trees:
            _log.info("set %s: reading the files snapshot %s back", set_id, files["short_id"])
            seen_trees[files["tree"]] = _read_files(restic, files)
        problems += manifest.compare({"directories": expected["directories"]},
                                     {"directories": seen_trees[files["tree"]]})
    except (ResticError, OSError, ValueError, EOFError, tarfile.TarError) as exc:
        problems.append(f"files snapshot {files['short_id']} cannot be read back: {exc}")
    if "pg" in parts:
        pg = parts["pg"]
        try:
            _log.info("set %s: reading the physical copy %s back", set_id, pg["short_id"])
            problems += restic.read(dump_args(pg["id"], f"/{pgcopy.COPY_NAME}"),
                                    lambda stream: pgcopy.read_back(stream, expected["physical"].get("sha256")))
        except (ResticError, OSError, KeyError) as exc:
            problems.append(f"physical copy {pg['short_id']} cannot be read back: {exc}")
    if "db" in parts:
        try:
            _log.info("set %s: reading the database dump %s back", set_id, parts["db"]["short_id"])
            read = _read_db(restic, parts["db"], expected["database"].get("sha256"))
            problems += manifest.compare({"database": expected["database"]}, {"database": read})
        except (ResticError, dbdump.DumpError) as exc:
            problems.append(f"database dump {parts['db']['short_id']} cannot be read back: {exc}")
    return {"set": set_id, "verdict": "ok" if not problems else "FAILED", "problems": problems}


def check(restic: Restic, read_data_subset: str | None = None) -> dict:
    """restic check, then every complete set against its manifest, then the build artifacts. ok is True only
    if everything passed (no artifacts snapshot at all passes: its verdict is "none")."""
    try:
        restic.run(*check_args(read_data_subset))
        structure = {"ok": True, "error": None}
    except ResticError as exc:
        findings = [line.strip() for line in exc.details.splitlines()
                    if any(w in line.lower() for w in ("error", "pack", "blob", "missing", "damaged"))]
        structure = {"ok": False, "error": str(exc), "findings": findings[-20:]}
    results = []
    seen_trees: dict[str, dict] = {}
    for set_id, parts in sorted(sets.grouped(restic).items(), reverse=True):
        if not sets.is_complete(parts):
            results.append({"set": set_id, "verdict": "incomplete", "problems": [], "parts": sorted(parts)})
            continue
        results.append(verify_set(restic, set_id, parts, seen_trees))
    failed = [r["set"] for r in results if r["verdict"] == "FAILED"]
    built = artifacts.verify(restic)
    return {"ok": structure["ok"] and not failed and built["verdict"] != "FAILED", "restic_check": structure,
            "read_data_subset": read_data_subset, "sets": results, "failed_sets": failed, "artifacts": built,
            "verified": sum(1 for r in results if r["verdict"] == "ok")}
