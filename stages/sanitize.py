"""sanitize: raw/ -> staging/, the privacy boundary.

For each raw file (plain, gzip or a tar archive, detected by content), document by document as libyaml
parse events (see yamldocs): the header is checked and rewritten (probe_ip 127.0.0.1, report_file,
sanitizer_version), every entry has the probe IP and private bridges removed (see privacy) and is written
back in block style. Output is named canonically (see naming). Unparseable entries are dropped and listed,
with their line numbers, in the header's `sanitizer_dropped`; a bad or missing header, an unsafe tag, an
oversized document or report, or an alias bomb quarantines the report under quarantine/<reason>/ with a
`.reason.json`. The raw file goes, compressed, to originals/.

Workers (one per core) write durable temporary files only; the parent commits each raw file as one journal
transaction under the shared data-root lock, so a crash at any point converges on the next run.

    python -m stages.sanitize --data-root DIR [--config FILE] [--json]
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures as cf
import contextlib
import errno
import gzip
import hashlib
import multiprocessing
import os
import shutil
import sys
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from common import __version__, atomic, digest
from stages import failures, journal, lock, naming, privacy, quarantine, stage, yamldocs
from stages.cli import Summary
from stages.cli import main as cli_main
from stages.inputs import InputError, clean_name, open_input, open_members
from stages.layout import DataRoot
from stages.quarantine import NOT_REGULAR

STAGE = "sanitize"
SANITIZER_VERSION = f"aggregator-dr {__version__}"
REPORT_FILE_LINE = b"report_file: "
# What the sanitizer writes into a header: a report's own values for these are never published.
RESERVED_HEADER_KEYS = ("report_file", "sanitizer_version", "sanitizer_dropped")
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


class Quarantine(Exception):
    def __init__(self, reason: str, error: str, line: int = 0):
        super().__init__(error)
        self.reason, self.error, self.line = reason, error, line


@dataclass
class Output:
    """What became of one report (a raw file, or one member of a raw archive)."""
    member: str
    outcome: str                     # "sanitized" or "quarantined"
    tmp: Path | None = None          # durable temporary file to put in place (None: move the raw file)
    name: str = ""                   # canonical name (sanitized) or member name (quarantined)
    sha256: str = ""
    size: int = 0
    content_sha256: str = ""         # sanitized content without report_file: equal means the same report
    reason: str = ""
    error: str = ""
    line: int = 0
    info: dict = field(default_factory=dict)


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


# ---- one report --------------------------------------------------------------------------------------

def _scalar(value) -> yaml.ScalarEvent:
    if value is None:
        return yaml.ScalarEvent(None, None, (True, False), "null")
    return yaml.ScalarEvent(None, None, (True, True), str(value))


def _top_level(events: list) -> dict[str, int]:
    """Index of each top-level key's value event, for scalar values of a mapping document."""
    found: dict[str, int] = {}
    if len(events) < 2 or not isinstance(events[1], yaml.MappingStartEvent):
        return found
    depth, expecting_key, key = 0, True, None
    for i, ev in enumerate(events[1:], start=1):
        if depth == 1:
            if isinstance(ev, (yaml.MappingEndEvent,)) and expecting_key:
                break
            if expecting_key:
                key = ev.value if isinstance(ev, yaml.ScalarEvent) else None
                expecting_key = False
                if isinstance(ev, yaml.CollectionStartEvent):
                    depth += 1
                continue
            if isinstance(ev, yaml.ScalarEvent) and key is not None:
                found[key] = i
            expecting_key = True
        if isinstance(ev, yaml.CollectionStartEvent):
            depth += 1
        elif isinstance(ev, yaml.CollectionEndEvent):
            depth -= 1
    return found


def _bridge_rewrite(events: list, bridges: privacy.BridgeDB) -> list[str]:
    """Replace a private bridge's fields in an entry (in place); returns addresses to redact elsewhere."""
    keys = _top_level(events)
    values = {k: events[i].value for k, i in keys.items()}
    bridge = privacy.parse_bridge(values.get("input")) or privacy.parse_bridge(values.get("bridge_address"))
    if bridge is None:
        return []
    private = bridges.private(bridge)
    fields = private if private is not None else privacy.PUBLIC_BRIDGE_FIELDS
    end = len(events) - 2  # the top-level MappingEndEvent, before DocumentEndEvent
    additions = []
    for k, v in fields.items():
        if k in keys:
            events[keys[k]] = _scalar(v)
        elif k != "input":
            additions += [_scalar(k), _scalar(v)]
    events[end:end] = additions
    return [bridge.address, bridge.ip] if private is not None else []


def _redact_scalar(ev: yaml.ScalarEvent, redactor: privacy.Redactor) -> yaml.ScalarEvent:
    if ev.tag == yamldocs.BINARY_TAG:
        try:
            data = base64.b64decode("".join(ev.value.split()), validate=True)
        except (binascii.Error, ValueError):
            line = ev.start_mark.line + 1 if ev.start_mark else 0
            raise yamldocs.DocError("unparseable", "invalid !!binary value", line) from None
        clean = redactor.data(data)
        if clean == data:
            return ev
        return yaml.ScalarEvent(ev.anchor, ev.tag, ev.implicit, base64.encodebytes(clean).decode(), style="|")
    clean = redactor.text(ev.value)
    if clean == ev.value:
        return ev
    implicit = (True, True) if ev.tag is None else ev.implicit
    style = ev.style if ev.style in ("'", '"', "|", ">") else None
    return yaml.ScalarEvent(ev.anchor, ev.tag, implicit, clean, style=style)


_DOC_START, _DOC_END = yaml.DocumentStartEvent, yaml.DocumentEndEvent
_MAP_START, _SEQ_START, _SCALAR = yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.ScalarEvent


def _entry_events(events: list, redactor: privacy.Redactor, bridges: privacy.BridgeDB | None):
    if bridges is not None:
        redactor = redactor.extended(_bridge_rewrite(events, bridges))
    redact = bool(redactor)
    for ev in events:  # the hot loop: dispatch on the exact event type
        kind = type(ev)
        if kind is _SCALAR:
            yield _redact_scalar(ev, redactor) if redact else ev
        elif kind is _MAP_START or kind is _SEQ_START:
            ev.flow_style = False
            yield ev
        elif kind is _DOC_START:
            yield yaml.DocumentStartEvent(explicit=True)
        elif kind is _DOC_END:
            yield yaml.DocumentEndEvent(explicit=True)
        else:
            yield ev


def _header(frames, first_line_hint: str):
    for frame in frames:
        if frame.text is None and frame.size == 0:
            continue  # a stray trailer before any document
        try:
            events = yamldocs.parse(frame)
        except yamldocs.DocError as exc:
            reason = "invalid_header" if exc.reason == "unparseable" else exc.reason
            raise Quarantine(reason, f"header: {exc}", exc.line) from None
        if len(events) >= 2 and isinstance(events[1], yaml.ScalarEvent) and events[1].value in ("", "~", "null"):
            continue  # an empty document
        if len(events) < 2 or not isinstance(events[1], yaml.MappingStartEvent):
            raise Quarantine("not_a_report", "the first document is not a mapping (no report header)",
                             frame.line)
        try:
            header = yamldocs.construct(frame)
        except (yaml.YAMLError, ValueError, TypeError, AttributeError) as exc:  # e.g. !!binary, !!set, !!timestamp
            raise Quarantine("invalid_header", f"header: cannot be read: {exc}"[:500], frame.line) from None
        if not isinstance(header.get("test_name"), str) or not header.get("test_name").strip():
            raise Quarantine("invalid_header", "the header has no test_name", frame.line)
        when = naming.start_time(header)
        if when is None:
            raise Quarantine("invalid_header", "the header has no usable start_time or test_start_time",
                             frame.line)
        return header, when
    raise Quarantine("empty", f"{first_line_hint}: no report header (empty input)")


def sanitize_stream(stream, report_file: str, out_tmp: Path, settings: Settings,
                    bridges: privacy.BridgeDB) -> Output:
    """Sanitize one report from a byte stream into out_tmp (durable). Raises Quarantine."""
    frames = yamldocs.frames(stream, settings.max_doc_bytes)
    header, when = _header(frames, report_file)
    redactor = privacy.probe_redactor(header)
    test_name = naming.canonical_test_name(header.get("test_name"))
    bridge_rules = bridges if test_name in privacy.BRIDGE_TESTS else None
    entries_tmp = out_tmp.with_name(out_tmp.name + "-entries")
    dropped: list[dict] = []
    entries = 0
    try:
        with atomic.writing(entries_tmp, "w") as fh:
            def events():
                nonlocal entries
                yield yaml.StreamStartEvent()
                for frame in frames:
                    if frame.trailer is not None:
                        dropped.append({"line": frame.trailer_line, "error": "text after the end marker"})
                    if frame.text is None and frame.size == 0:
                        continue
                    try:
                        evs = yamldocs.parse(frame)
                        if len(evs) == 3 and isinstance(evs[1], yaml.ScalarEvent) and \
                                evs[1].value in ("", "~", "null"):
                            continue  # an empty document
                        out = list(_entry_events(evs, redactor, bridge_rules))
                    except yamldocs.DocError as exc:
                        if exc.reason in ("unsafe_tag", "too_large"):
                            raise Quarantine(exc.reason, str(exc), exc.line) from None
                        dropped.append({"line": exc.line, "error": str(exc)[:300]})
                        continue
                    entries += 1
                    yield from out
                yield yaml.StreamEndEvent()
            yaml.emit(events(), fh, Dumper=yaml.CSafeDumper, allow_unicode=True, width=100)
        clean = {k: v for k, v in redactor.obj(header).items() if k not in RESERVED_HEADER_KEYS}
        if "probe_ip" in clean:
            clean["probe_ip"] = privacy.SANITIZED_PROBE_IP
        clean["report_file"] = redactor.text(report_file)  # raw and tar member names are the sender's
        clean["sanitizer_version"] = SANITIZER_VERSION
        if dropped:
            clean["sanitizer_dropped"] = dropped
        # width=-1: every header value on one line, so that content_digest can leave report_file out.
        head = yaml.dump(clean, Dumper=yaml.CSafeDumper, explicit_start=True, explicit_end=True,
                         default_flow_style=False, allow_unicode=True, sort_keys=False, width=-1).encode()
        digest, content = hashlib.sha256(), hashlib.sha256()
        size = len(head)
        with atomic.writing(out_tmp) as out, open(entries_tmp, "rb") as body:
            out.write(head)
            digest.update(head)
            for line in head.splitlines(keepends=True):
                if not line.startswith(REPORT_FILE_LINE):
                    content.update(line)
            for chunk in iter(lambda: body.read(1 << 20), b""):
                out.write(chunk)
                digest.update(chunk)
                content.update(chunk)
                size += len(chunk)
    finally:
        with contextlib.suppress(FileNotFoundError):
            entries_tmp.unlink()
    name = naming.report_file_name(clean, when)
    return Output(member=report_file, outcome="sanitized", tmp=out_tmp, name=name, sha256=digest.hexdigest(),
                  size=size, content_sha256=content.hexdigest(),
                  info={"report_id": header.get("report_id"), "test_name": test_name, "entries": entries,
                        "dropped": len(dropped)})


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
                    outputs.append(sanitize_stream(member.stream, report_file, tmp, settings, bridges))
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


def content_digest(path: Path) -> str:
    """sha256 of a sanitized report without its header's report_file line: the same report pulled under
    two raw names has the same content digest."""
    h = hashlib.sha256()
    in_header = True
    with open(path, "rb") as fh:
        for line in fh:
            if in_header:
                if line.startswith(REPORT_FILE_LINE):
                    continue
                if line.rstrip(b"\r\n") == b"...":
                    in_header = False
            h.update(line)
    return h.hexdigest()


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
                summary.flagged.append({"input": _input_name(raw_rel, result.raw, out.member),
                                        "to": f"staging/{name}", "dropped_entries": out.info["dropped"]})
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
            _sanitize_all(worker or sanitize_file, todo, str(dr.root), settings, min(_workers(cfg), len(todo)),
                          state)
        finally:
            state.flush()
    return summary


def _sanitize_all(worker, todo: list[Path], root: str, settings: Settings, workers: int, state: _Run) -> None:
    """Sanitize every file in worker processes (spawned, not forked: a worker must not inherit the lock
    descriptors, or one outliving a killed parent would keep the stage lock). A worker that dies (killed,
    out of memory, crashed in C code) breaks the pool: the files it had in flight are then run one at a
    time in a pool of their own, so that only the file that kills a worker fails."""
    pending = list(todo)
    while pending and not state.stopped:
        suspects, pending = _pool_pass(worker, pending, root, settings, workers, state)
        for path in suspects:
            if state.stopped:
                break
            died_again, _ = _pool_pass(worker, [path], root, settings, 1, state)
            if died_again:
                state.collect(failed_result(path, _size(path), state.dr.relative(path),
                                            WorkerDied("the worker process died while sanitizing this file")))


class WorkerDied(Exception):
    pass


def _size(path: Path) -> int:
    with contextlib.suppress(OSError):
        return path.lstat().st_size
    return 0


def _pool_pass(worker, todo: list[Path], root: str, settings: Settings, workers: int,
               state: _Run) -> tuple[list[Path], list[Path]]:
    """Run todo through one pool, collecting results. Returns (the files in flight when a worker died,
    the files not started then); both empty when the pool stayed whole."""
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        inflight: dict[cf.Future, Path] = {}
        it = iter(todo)
        for p in it:
            inflight[pool.submit(worker, p, root, settings)] = p
            if len(inflight) >= 2 * workers:
                break
        while inflight:
            done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                path = inflight.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    # Which of the files in flight killed the worker is not known yet.
                    return [path, *inflight.values()], list(it)
                state.collect(result)
                if state.stopped:
                    return [], []
                nxt = next(it, None)
                if nxt is not None:
                    inflight[pool.submit(worker, nxt, root, settings)] = nxt
    return [], []


def main(argv=None) -> int:
    return cli_main(STAGE, "sanitize raw reports into staging (the privacy boundary)", run, argv)


if __name__ == "__main__":
    sys.exit(main())
