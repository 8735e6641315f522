"""sanitize: raw/ -> staging/, the privacy boundary.

For each raw file (plain, gzip or a tar archive, detected by content), each report in it is rewritten by
rewrite.sanitize_stream and named canonically (see naming); a report that raises Quarantine (bad or missing
header, unsafe tag, oversized document or report, alias bomb) goes under quarantine/<reason>/ with a
`.reason.json`. The raw file goes, compressed, to originals/.

Workers (one per core, in pool's spawned processes) write durable temporary files only; the parent commits
each raw file as one journal transaction under the shared data-root lock, so a crash at any point converges
on the next run.

    python -m stages.sanitize --data-root DIR [--config FILE] [--json]
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from common import atomic, digest
from stages import failures, follow, journal, lock, naming, pool, privacy, quarantine, stage
from stages.cli import Flagged, Summary
from stages.cli import main as cli_main
from stages.inputs import InputError, clean_name, open_input, open_members
from stages.layout import DataRoot
from stages.quarantine import NOT_REGULAR
from stages.rewrite import SANITIZER_VERSION, Output, Quarantine, content_digest, sanitize_stream

STAGE = "sanitize"
REASONS = ("empty", "invalid_header", "unparseable", "unsafe_tag", "too_large", "not_a_report", NOT_REGULAR)


@dataclass(frozen=True)
class Settings:
    max_report_bytes: int
    max_doc_bytes: int
    bridge_db: str

    @classmethod
    def from_config(cls, cfg) -> "Settings":
        p = cfg.pipeline
        return cls(p.max_report_mb << 20, p.max_document_mb << 20, p.bridge_db)


@dataclass
class FileResult:
    raw: Path
    size: int
    outputs: list[Output]
    original_tmp: Path | None
    original_name: str
    original_sha256: str
    error: str = ""                  # nothing was decided for this file: why
    reason: str = ""                 # the failure's kind (the same kind twice in a row: poison)
    infra: bool = False              # the machine's fault (disk full...), not the input's: stop the stage


# ---- one raw file ---------------------------------------------------------------------------------------

def _copy_to(stream, tmp: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with atomic.writing(tmp) as out:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _member_bytes(raw: Path, index: int, limit: int, tmp: Path) -> tuple[str, int]:
    """Copy the index-th member of a raw archive into tmp (for quarantine)."""
    for i, member in enumerate(open_members(raw, limit)):
        if i == index:
            return _copy_to(member.stream, tmp)
        for _ in iter(lambda: member.stream.read(1 << 20), b""):
            pass
    raise InputError("unparseable", f"member {index} vanished from {raw.name}")


def _original(raw: Path, dr: DataRoot) -> tuple[Path, str, str]:
    """A compressed copy of the raw file in originals/ (as a temporary): (tmp, final name, sha256)."""
    rel = raw.relative_to(dr.state("raw"))
    with open_input(raw) as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    final = dr.state("originals") / (str(rel) if gz else str(rel) + ".gz")
    tmp = atomic.temp_path(final)
    digest = hashlib.sha256()
    with atomic.writing(tmp) as out:
        if gz:
            with open_input(raw) as src:
                shutil.copyfileobj(src, out, 1 << 20)
        else:
            # Level 1: these are private archival copies; level 9 took a third of the sanitizer's time.
            with open_input(raw) as src, gzip.GzipFile(filename=rel.name, mode="wb", fileobj=out, mtime=0,
                                                       compresslevel=1) as z:
                shutil.copyfileobj(src, z, 1 << 20)
    with open(tmp, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return tmp, str(final.relative_to(dr.state("originals"))), digest.hexdigest()


def sanitize_file(raw: Path, root: str, settings: Settings) -> FileResult:
    """Worker: decide the fate of one raw file, writing only durable temporary files."""
    dr = DataRoot(root)
    rel = raw.relative_to(dr.state("raw"))
    outputs: list[Output] = []
    staging = dr.state("staging")
    members = 0
    size = 0
    try:
        bridges = privacy.BridgeDB.load(settings.bridge_db)
        size = raw.lstat().st_size
        try:
            for index, member in enumerate(open_members(raw, settings.max_report_bytes)):
                members += 1
                report_file = f"/{rel.parent / member.name}" if member.in_archive else f"/{rel}"
                tmp = atomic.temp_path(staging / f"{STAGE}")
                try:
                    outputs.append(sanitize_stream(member.stream, report_file, tmp, settings.max_doc_bytes,
                                                  bridges))
                except (Quarantine, InputError) as q:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
                    outputs.append(_quarantined(raw, dr, member.name, index, q, settings))
        except InputError as exc:
            # The container itself (gzip/tar) is broken: the whole raw file is quarantined as it is.
            outputs = [Output(member=raw.name, outcome="quarantined", tmp=None, name=raw.name,
                              reason=exc.reason, error=str(exc))]
        if len(outputs) == 1 and outputs[0].outcome == "quarantined" and members <= 1:
            # A single report: quarantine the raw file itself (a rename), not a copy.
            q = outputs[0]
            if q.tmp is not None:
                q.tmp.unlink()
            q.tmp, q.name = None, raw.name
        orig_tmp, orig_name, orig_sha = _original(raw, dr)
        return FileResult(raw, size, outputs, orig_tmp, orig_name, orig_sha)
    except Exception as exc:  # noqa: BLE001 - whatever one input does, it fails only that input
        for o in outputs:
            if o.tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    o.tmp.unlink()
        return failed_result(raw, size, rel, exc)


def failed_result(raw: Path, size: int, rel, exc: BaseException) -> FileResult:
    """The result of a file on which the worker failed: an OSError of the machine (disk full) stops the
    stage; anything else fails this input only."""
    infra = isinstance(exc, OSError) and exc.errno in failures.INFRA_ERRNOS
    reason = f"{type(exc).__name__}" + (f":{errno.errorcode.get(exc.errno, exc.errno)}"
                                         if isinstance(exc, OSError) and exc.errno else "")
    return FileResult(raw, size, [], None, "", "", error=f"{rel}: {type(exc).__name__}: {exc}"[:500],
                      reason=reason, infra=infra)


def _quarantined(raw: Path, dr: DataRoot, member: str, index: int, q, settings: Settings) -> Output:
    reason = q.reason if q.reason in REASONS else "unparseable"
    out = Output(member=member, outcome="quarantined", name=member, reason=reason,
                 error=str(q.error if isinstance(q, Quarantine) else q), line=getattr(q, "line", 0))
    tmp = atomic.temp_path(dr.state("quarantine") / reason / member)
    try:
        out.sha256, out.size = _member_bytes(raw, index, settings.max_report_bytes, tmp)
        out.tmp = tmp
    except InputError:
        out.tmp = None  # cannot re-read it (too large): the whole raw file is quarantined instead
    return out


# ---- committing ---------------------------------------------------------------------------------------

def _places(dr: DataRoot, name: str) -> list[Path]:
    """Where a sanitized report of this name may already be: staging, reports, or its archive folder."""
    return [dr.state("staging") / name, dr.state("reports") / name,
            dr.state("archive") / naming.archive_subdir(name) / name]


def _final_name(dr: DataRoot, name: str, content_sha256: str) -> tuple[str, bool]:
    """(name to use, duplicate?): the same content already present is a duplicate; a different report
    with the same name gets the next free numeric suffix."""
    n = 1
    candidate = name
    while True:
        existing = [p for p in _places(dr, candidate) if p.exists()]
        if not existing:
            return candidate, False
        if any(content_digest(p) == content_sha256 for p in existing):
            return candidate, True
        n += 1
        candidate = naming.with_suffix_number(name, n)


def _input_name(raw_rel: str, raw: Path, member: str) -> str:
    """How a summary names an input: the raw file, or `<raw file> member <name>` inside an archive."""
    whole = (raw.name, clean_name(raw.name), f"/{raw_rel.removeprefix('raw/')}")
    return raw_rel if member in whole else f"{raw_rel} member {member}"


def commit(dr: DataRoot, result: FileResult, summary: Summary) -> None:
    """One journal transaction for one raw file: originals, outputs, then the raw file goes."""
    raw_rel = dr.relative(result.raw)
    outcomes = [o.outcome for o in result.outputs]
    tx = journal.Transaction(STAGE, "+".join(sorted(set(outcomes))) or "none", raw_rel)
    orig_final, same = quarantine.free_path(dr.state("originals") / result.original_name, result.original_sha256)
    if same:
        tx.remove(result.original_tmp)
    else:
        tx.rename(result.original_tmp, orig_final, result.original_sha256, result.original_tmp.stat().st_size)
    raw_moved = False
    placed = []
    for out in result.outputs:
        if out.outcome == "sanitized":
            name, duplicate = _final_name(dr, out.name, out.content_sha256)
            if duplicate:
                tx.remove(out.tmp)
                summary.count("duplicate")
                placed.append({"member": out.member, "duplicate_of": name})
                continue
            tx.rename(out.tmp, dr.state("staging") / name, out.sha256, out.size)
            summary.count("sanitized")
            placed.append({"member": out.member, "to": f"staging/{name}", **out.info})
            if out.info.get("dropped"):  # entries that could not be read: listed in its sanitizer_dropped
                summary.flagged.append(Flagged(_input_name(raw_rel, result.raw, out.member), f"staging/{name}",
                                               dropped_entries=out.info["dropped"]))
        else:
            src = out.tmp if out.tmp is not None else result.raw
            sha = out.sha256 or digest.sha256_file(result.raw)
            target, same = quarantine.add(
                tx, dr, src, out.name, sha, out.size or result.size, out.reason,
                {"error": out.error, "line": out.line, "source": raw_rel, "member": out.member,
                 "sanitizer_version": SANITIZER_VERSION})
            if same and src != result.raw:
                tx.remove(src)
            raw_moved = raw_moved or (src == result.raw and not same)
            summary.quarantine(_input_name(raw_rel, result.raw, out.member), out.reason, out.error,
                               dr.relative(target))
            placed.append({"member": out.member, "to": dr.relative(target), "reason": out.reason})
    if not raw_moved:
        tx.remove(result.raw)
    tx.info = {"outputs": placed, "original": f"originals/{orig_final.relative_to(dr.state('originals'))}"}
    journal.run(dr, tx)


# ---- the stage ----------------------------------------------------------------------------------------

def _workers(cfg) -> int:
    return cfg.pipeline.workers or os.cpu_count() or 1


def quarantine_poison(dr: DataRoot, result: "FileResult", previous: dict, summary: Summary) -> None:
    raw_rel = dr.relative(result.raw)
    tx = journal.Transaction(STAGE, "quarantined", raw_rel)
    target, same = quarantine.add(tx, dr, result.raw, result.raw.name, digest.sha256_file(result.raw),
                                  result.size, failures.POISON,
                                  {"source": raw_rel, "sanitizer_version": SANITIZER_VERSION,
                                   **failures.details(STAGE, previous, result.reason, result.error)})
    if same:
        tx.remove(result.raw)
    journal.run(dr, tx)
    summary.quarantine(raw_rel, failures.POISON, result.error, dr.relative(target))


class _Run:
    """One run's bookkeeping in the parent: results to commit in batches, failures and poison."""

    def __init__(self, cfg, dr: DataRoot, summary: Summary):
        self.cfg, self.dr, self.summary = cfg, dr, summary
        self.batch: list[FileResult] = []
        self.failures = failures.Failures.load(dr, STAGE)
        self.stopped = False

    def collect(self, result: FileResult) -> None:
        rel = self.dr.relative(result.raw)
        if result.infra:
            self.summary.errors.append(result.error)
            self.stopped = True
            return
        if result.error:
            def set_aside(previous):
                with lock.shared(self.dr, self.cfg.pipeline.lock_timeout):
                    quarantine_poison(self.dr, result, previous, self.summary)
            failures.handle(self.failures, self.summary, rel, result.reason, result.error, set_aside)
            return
        self.failures.clear(rel)
        self.summary.bytes_in += result.size
        self.batch.append(result)
        if len(self.batch) >= self.cfg.pipeline.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            with lock.shared(self.dr, self.cfg.pipeline.lock_timeout):
                for r in self.batch:
                    commit(self.dr, r, self.summary)
            self.batch.clear()
        self.failures.save()

    def died(self, path: Path) -> None:
        """The worker process died on this file even alone: it fails this input."""
        size = 0
        with contextlib.suppress(OSError):
            size = path.lstat().st_size
        self.collect(failed_result(path, size, self.dr.relative(path),
                                   pool.WorkerDied("the worker process died while sanitizing this file")))


def run(cfg, dr: DataRoot, worker=None) -> Summary:
    """worker: the function a worker process runs on one raw file (sanitize_file; tests give others)."""
    settings = Settings.from_config(cfg)
    privacy.BridgeDB.load(settings.bridge_db)  # a broken bridge database stops the stage before any work
    with stage.running(cfg, dr, STAGE, temp_dirs=("staging", "originals", "quarantine")) as summary:
        todo, others = dr.inputs("raw")
        if others:
            with lock.shared(dr, cfg.pipeline.lock_timeout):
                for path, kind in others:
                    quarantine.node(dr, STAGE, path, kind, summary, {"sanitizer_version": SANITIZER_VERSION})
        if not todo:
            return summary
        state = _Run(cfg, dr, summary)
        try:
            pool.run_isolated(worker or sanitize_file, todo, (str(dr.root), settings),
                              min(_workers(cfg), len(todo)), state.collect, state.died, lambda: state.stopped)
        finally:
            state.flush()
    return summary


def waiting(dr: DataRoot) -> tuple:
    """What waits for sanitize (`--follow`): raw/'s entries."""
    return follow.names(dr, "raw")


def main(argv=None) -> int:
    return cli_main(STAGE, "sanitize raw reports into staging (the privacy boundary)", run, argv, waiting=waiting)


if __name__ == "__main__":
    sys.exit(main())
