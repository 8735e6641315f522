"""importer: staging/ -> reports/ -> archive/, and the database. The only stage given the database
credentials.

1. post-process (staging -> reports): each sanitized report gets its database documents as JSON lines
   (see postprocess); the pair <name>.yaml + <name>.jsonl moves to reports/ in one transaction.
2. import (reports -> archive): batched inserts keyed by the deterministic ids (a document already there
   is replaced); what the database refuses is stored as a stub (see below); then the database's counts
   for the report are checked against the file, and only then does the pair move to
   archive/<YYYY-MM-DD>/<CC>/. Re-running after a crash anywhere converges: ids are deterministic, so a
   rerun replaces, never adds. A report that fails twice in a row for the same reason is poison
   (stages/failures.py); only the database's own failures stop the stage.
3. publication: archive/index.json (name, size, sha256, test_name, CC, date of every published report) is
   rewritten atomically after each run that changed the archive.

    python -m stages.importer --data-root DIR [--config FILE] [--set db.host=HOST] [--json]
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import bson
import pymongo
import yaml

from common import atomic, digest
from common.errors import ConfigError, SecretError
from database import db as dbconn
from database import schema
from stages import failures, follow, journal, lock, naming, pool, postprocess, quarantine, stage
from stages.cli import Flagged, Summary
from stages.cli import main as cli_main
from stages.inputs import InputError
from stages.layout import DataRoot

STAGE = "importer"
BATCH = 500
BATCH_BYTES = 4 << 20


class ImportMismatch(Exception):
    pass


@dataclass(frozen=True)
class Target:
    """Where the database is and where our password is: what a worker process needs to connect (the
    configuration object does not cross a process boundary)."""
    host: str
    port: int
    database: str
    secrets_dir: str
    role: str  # the contract's role for the importer (db.role): writes documents, creates nothing
    tls: bool = False  # db.tls: over TLS, verifying the database against ca_file
    ca_file: str = ""

    @classmethod
    def from_config(cls, cfg) -> "Target":
        return cls(cfg.db.host, cfg.db.port, cfg.db.database, str(cfg.secrets_dir), cfg.db.role, cfg.db.tls,
                   cfg.db.ca_file)


def connect(cfg):
    return connect_to(Target.from_config(cfg))


def connect_to(target: Target):
    # A socket timeout: a database that stops answering fails the run (exit 1) instead of hanging it.
    client = dbconn.client_as(target, target.secrets_dir, dbconn.role_of(target), timeout_s=30, socketTimeoutMS=600_000)
    return client, client[target.database]


# ---- 1. post-process ----------------------------------------------------------------------------------

def postprocess_prepare(dr: DataRoot, yaml_path: Path) -> tuple[journal.Transaction, int]:
    """Write the report's JSON lines as a durable temporary file (no lock needed); return the transaction
    that puts the pair in reports/."""
    name = yaml_path.name
    reports = dr.state("reports")
    jsonl_final = reports / (name[: -len(".yaml")] + ".jsonl")
    tmp = atomic.temp_path(jsonl_final)
    with atomic.writing(tmp) as out:
        report = postprocess.write_jsonl(yaml_path, out)
    size = yaml_path.stat().st_size
    tx = journal.Transaction(STAGE, "postprocessed", dr.relative(yaml_path),
                             info={"report_id": report.get("report_id"), "report_key": report["_id"],
                                   "entries": report["entries"]})
    tx.rename(tmp, jsonl_final, digest.sha256_file(tmp), tmp.stat().st_size)
    tx.rename(yaml_path, reports / name, digest.sha256_file(yaml_path), size)
    return tx, size


def quarantine_one(dr: DataRoot, yaml_path: Path, error: str, summary: Summary) -> None:
    """A staged report that cannot be post-processed (it should not happen: the sanitizer validated it)."""
    tx = journal.Transaction(STAGE, "quarantined", dr.relative(yaml_path))
    target, _ = quarantine.add(tx, dr, yaml_path, yaml_path.name, digest.sha256_file(yaml_path),
                               yaml_path.stat().st_size, "postprocess", {"error": error, "source": dr.relative(yaml_path)})
    journal.run(dr, tx)
    summary.quarantine(dr.relative(yaml_path), "postprocess", error, dr.relative(target))


# ---- 2. import ------------------------------------------------------------------------------------------
# What the database refuses of one report stays that report's problem:
# - a command too large for the client or the server is split until each document goes alone;
# - a document the database refuses (alone) is stored as a stub: its ids and common fields plus
#   "refused": {"error", "archive", "document"}, and the report document lists it in "refused_entries";
#   the archived file keeps everything;
# - a stub refused too, or counts that do not add up, fail the report (tried again next run, poison after).

DUPLICATE_KEY = 11000
AUTH_CODES = frozenset({13, 18})  # Unauthorized, AuthenticationFailed: the machine's problem, not the input's
STUB_FIELDS = ("_id", "report_key", "test_name", "probe_cc", "probe_asn", "start_time", "index", "report_id",
               "report_file", "entries")


def _whole_command_refused(exc: Exception) -> bool:
    if isinstance(exc, pymongo.errors.OperationFailure):
        return exc.code not in AUTH_CODES and dbconn.refusal_state(exc) is None
    return isinstance(exc, (pymongo.errors.DocumentTooLarge, bson.errors.InvalidDocument, OverflowError))


def _split_until_alone(db, write, docs: list[dict]) -> tuple[int, list[tuple[dict, str]]]:
    """write(docs) -> (written, refused [(doc, error)]); when the client or the server refuses the command as
    a whole, halves are written apart until a refused document is alone. A dropped connection counts as a
    refusal only while the database still answers (FerretDB 1.x closes the connection on some documents),
    and a document alone is tried twice before it counts as refused; otherwise it is DatabaseDown."""
    try:
        return write(docs)
    except Exception as exc:  # noqa: BLE001 - sorted below; what is not a refusal is re-raised
        if isinstance(exc, pymongo.errors.ConnectionFailure):
            if not _alive(db.client):
                raise DatabaseDown(f"database unreachable: {exc}") from None
            if len(docs) == 1:
                try:
                    return write(docs)
                except pymongo.errors.ConnectionFailure as again:
                    if not _alive(db.client):
                        raise DatabaseDown(f"database unreachable: {again}") from None
                    return 0, [(docs[0], f"the database closed the connection on this document: {again}"[:500])]
        elif not _whole_command_refused(exc):
            raise
        elif len(docs) == 1:
            return 0, [(docs[0], f"{type(exc).__name__}: {exc}"[:500])]
    mid = len(docs) // 2
    w1, r1 = _split_until_alone(db, write, docs[:mid])
    w2, r2 = _split_until_alone(db, write, docs[mid:])
    return w1 + w2, r1 + r2


def _errmsg(error: dict) -> str:
    return f"code {error.get('code')}: {error.get('errmsg', '')}"[:500]


UPSERT_LOCK: list[Path] = []  # a worker's lock file for update commands (set by `work`)


def _upsert(db, collection: str, docs: list[dict]) -> tuple[int, list[tuple[dict, str]]]:
    """Replace-or-insert by _id with the `update` command itself (pymongo's bulk_write cannot read
    FerretDB's reply when a write fails). Returns (documents matched or inserted, refused). Workers send
    update commands one at a time (UPSERT_LOCK): FerretDB 1.24 deadlocked two concurrent updates on its
    PostgreSQL connection pool (both waiting in pgxpool.Acquire; seen after a crash, when every document
    of a re-imported report goes this way)."""
    with _one_at_a_time():
        reply = db.command({"update": collection, "ordered": False,
                            "updates": [{"q": {"_id": d["_id"]}, "u": d, "upsert": True} for d in docs]})
    errors = reply.get("writeErrors") or []
    return int(reply.get("n", 0)), [(docs[e["index"]], _errmsg(e)) for e in errors]


def _insert(db, collection: str, docs: list[dict]) -> tuple[int, list[tuple[dict, str]]]:
    """Insert; documents already there (a rerun after a crash) are replaced instead. No query first:
    FerretDB 1.x pushes only `_id` equality down to SQLite, and even that costs a scan per lookup, so
    reading back every id is quadratic."""
    reply = db.command({"insert": collection, "ordered": False, "documents": docs})
    errors = reply.get("writeErrors") or []
    refused = [(docs[e["index"]], _errmsg(e)) for e in errors if e.get("code") != DUPLICATE_KEY]
    written = int(reply.get("n", 0))
    again = [docs[e["index"]] for e in errors if e.get("code") == DUPLICATE_KEY]
    if again:
        w, r = _split_until_alone(db, lambda d: _upsert(db, collection, d), again)
        written, refused = written + w, refused + r
    return written, refused


@contextlib.contextmanager
def _one_at_a_time():
    if not UPSERT_LOCK:
        yield
        return
    with open(UPSERT_LOCK[0], "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def stub(doc: dict, error: str, where: str) -> dict:
    """What is stored of a document the database refused."""
    document = doc["index"] + 2 if "index" in doc else 1
    return {**{k: doc[k] for k in STUB_FIELDS if k in doc},
            "refused": {"error": error, "archive": where, "document": document}}


def store(db, collection: str, docs: list[dict], where: str) -> tuple[int, list[dict]]:
    """Write docs; refused ones are stored as stubs. Returns (written, the refused documents' stubs)."""
    written, refused = _split_until_alone(db, lambda d: _insert(db, collection, d), docs)
    stubs = [stub(doc, error, where) for doc, error in refused]
    if stubs:
        w, still = _split_until_alone(db, lambda d: _insert(db, collection, d), stubs)
        if still:
            raise ImportMismatch(f"{collection}: the database refuses even the stub of {still[0][0]['_id']}: "
                                 f"{still[0][1]}")
        written += w
    return written, stubs


def import_documents(db, jsonl: Path, name: str) -> tuple[dict, dict]:
    """Store a report's documents from its JSON lines and check the database's own count of what it wrote
    against the file, then read the report document back (no lock needed: ids are deterministic, so a rerun
    replaces instead of adding). Returns (the report document, its flags). `name` is the report's canonical
    name (jsonl may be the worker's temporary file of it).

    Only the report is read back: FerretDB 1.x over PostgreSQL finds even an `_id` by a sequential scan
    (its filter `_jsonb -> '_id' @> v` cannot use the `_id` B-tree), so reading measurements back costs a
    scan of the whole collection per probe, and grows with it; the reports collection is small."""
    where = naming.archive_path(name)
    report = None
    ids = 0
    written = 0
    refused: list[int] = []
    batch: list[dict] = []
    batch_bytes = 0

    def flush():
        nonlocal written, batch, batch_bytes
        w, stubs = store(db, "measurements", batch, where)
        written += w
        refused.extend(s["index"] for s in stubs)
        batch, batch_bytes = [], 0

    for coll, doc, size in postprocess.read_jsonl(jsonl):
        if coll == "reports":
            report = doc
            continue
        ids += 1
        if doc.get("refused"):  # post-processing could not convert it (see postprocess.documents)
            refused.append(doc["index"])
        batch.append(doc)
        batch_bytes += size  # its JSON line's: about its BSON size, without encoding it again
        if len(batch) >= BATCH or batch_bytes >= BATCH_BYTES:
            flush()
    if batch:
        flush()
    if report is None:
        raise ImportMismatch(f"{name[: -len('.yaml')]}.jsonl: no report document (truncated file?)")
    if refused:
        report["refused_entries"] = refused[:postprocess.MAX_LISTED]
        report["refused_entries_count"] = len(refused)
    _, report_stub = store(db, "reports", [report], where)
    missing = [] if db.reports.find_one({"_id": report["_id"]}, {"_id": 1}) else [report["_id"]]
    if written != report["entries"] or ids != report["entries"] or missing:
        raise ImportMismatch(f"{name}: the database wrote {written} measurements, the file has "
                             f"{report['entries']}" + (f"; not found: {missing}" if missing else ""))
    flags = {"omitted_entries": report.get("omitted_entries_count", 0), "refused_entries": len(refused),
             "report_refused": bool(report_stub)}
    return report, flags


def archive_transaction(dr: DataRoot, yaml_path: Path, report: dict, flags: dict,
                        known: dict[str, tuple[str, int]] | None = None) -> journal.Transaction:
    """The transaction that moves the pair from reports/ to the archive. known: {path: (sha256, size)} of
    files whose digests are known already (the worker's, before the pair is in reports/)."""
    target = dr.state("archive") / naming.archive_subdir(yaml_path.name)
    tx = journal.Transaction(STAGE, "imported", dr.relative(yaml_path),
                             info={"report_id": report.get("report_id"), "report_key": report["_id"],
                                   "entries": report["entries"], **{k: v for k, v in flags.items() if v}})
    for p in (yaml_path.with_suffix(".jsonl"), yaml_path):
        sha, size = (known or {}).get(str(p)) or (digest.sha256_file(p), p.stat().st_size)
        tx.rename(p, target / p.name, sha, size)
    return tx


def flag(dr: DataRoot, yaml_path: Path, flags: dict, summary: Summary) -> None:
    """Name a report imported with entries altered in the summary."""
    if any(flags.values()):
        summary.flagged.append(Flagged(dr.relative(yaml_path), naming.archive_path(yaml_path.name), **flags))


def import_prepare(dr: DataRoot, db, yaml_path: Path, summary: Summary | None = None) -> journal.Transaction:
    """Store a report waiting in reports/ (import_documents); return the transaction that moves the pair to
    the archive."""
    report, flags = import_documents(db, yaml_path.with_suffix(".jsonl"), yaml_path.name)
    if summary is not None:
        flag(dr, yaml_path, flags, summary)
    return archive_transaction(dr, yaml_path, report, flags)


# ---- 3. publication -------------------------------------------------------------------------------------

def write_index(dr: DataRoot) -> int:
    """archive/index.json, reusing the sha256 of files unchanged since the last index (by size and mtime)."""
    archive = dr.state("archive")
    cache_path = archive / ".index-cache.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (FileNotFoundError, ValueError):
        cache = {}
    entries, new_cache = [], {}
    for p in dr.files("archive"):
        if not p.name.endswith(".yaml"):
            continue
        rel = p.relative_to(archive).as_posix()
        st = p.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
        sha = cache.get(rel, {}).get("sha256") if cache.get(rel, {}).get("stamp") == stamp else None
        sha = sha or digest.sha256_file(p)
        new_cache[rel] = {"stamp": stamp, "sha256": sha}
        parts = p.name.split("-")
        entries.append({"name": rel, "size": st.st_size, "sha256": sha, "test_name": parts[3] if len(parts) > 3 else "",
                        "probe_cc": parts[1] if len(parts) > 1 else "", "date": rel[:10]})
    body = {"generated": journal.now(), "count": len(entries), "reports": entries}
    atomic.write_bytes(archive / "index.json", (json.dumps(body, indent=1) + "\n").encode())
    atomic.write_bytes(cache_path, json.dumps(new_cache).encode())
    os.chmod(archive / "index.json", 0o644)
    return len(entries)


# ---- the stage ------------------------------------------------------------------------------------------

def _inputs(dr: DataRoot, state: str) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(the reports waiting in a state directory, entries there that are not regular files)."""
    regular, others = dr.inputs(state)
    top = dr.state(state)
    return ([p for p in regular if p.parent == top and p.name.endswith(".yaml")],
            [(p, kind) for p, kind in others if p.parent == top])


def quarantine_poison(dr: DataRoot, yaml_path: Path, details: dict, summary: Summary) -> None:
    """A report that failed twice in a row for the same reason: its files go to quarantine/poison/."""
    rel = dr.relative(yaml_path)
    tx = journal.Transaction(STAGE, "quarantined", rel)
    targets = []
    for p in (yaml_path, yaml_path.with_suffix(".jsonl")):
        if p.is_file() and not p.is_symlink():
            target, same = quarantine.add(tx, dr, p, p.name, digest.sha256_file(p), p.stat().st_size,
                                          failures.POISON, {"source": dr.relative(p), **details})
            if same:
                tx.remove(p)
            targets.append(dr.relative(target))
    journal.run(dr, tx)
    summary.quarantine(rel, failures.POISON, details["errors"][-1]["error"], ", ".join(targets))


def _report_key(jsonl: Path) -> str | None:
    """The report key of a post-processed report (its first document's), or None if unreadable."""
    try:
        for _, doc, _ in postprocess.read_jsonl(jsonl):
            return str(doc.get("report_key") or doc["_id"])
    except (OSError, ValueError, KeyError, InputError):
        return None
    return None


def forget_partial(db, key: str | None) -> None:
    """Remove what a poison report left in the database (one scan; poison is rare)."""
    if key is not None:
        db.measurements.delete_many({"report_key": key})
        db.reports.delete_one({"_id": key})


class DatabaseDown(Exception):
    pass


def _alive(client) -> bool:
    try:
        client.admin.command("ping")
        return True
    except pymongo.errors.PyMongoError:
        return False


def _reason(exc: BaseException, role: str, client=None) -> str:
    """The kind of a report's failure; raises DatabaseDown when the failure is the database's, not the
    report's (a connection drop with the database still answering counts as the report's: FerretDB 1.x
    closes the connection on some documents)."""
    if isinstance(exc, DatabaseDown):
        raise exc
    if isinstance(exc, pymongo.errors.OperationFailure) and exc.code in AUTH_CODES:
        raise DatabaseDown(f"the database refuses our credentials: {exc}")
    refused = dbconn.refusal(exc, role)
    if refused is not None:
        raise DatabaseDown(str(refused))
    if isinstance(exc, pymongo.errors.ConnectionFailure):
        if client is None or not _alive(client):
            raise DatabaseDown(f"database unreachable: {exc}")
        return "connection_lost"
    return type(exc).__name__


# Each report is post-processed and imported by one worker process (stages/pool.py: spawned, and a worker
# that dies costs only its report), so that one report's Python work (YAML to documents) overlaps another's
# database work (FerretDB converts every document in Go, PostgreSQL stores it) and both cores stay busy.
# Reports of the same key go to one worker, one after the other: FerretDB 1.x loses concurrent updates of
# one document. Workers write only temporary files and the database; the parent commits every move under
# the shared lock, counts, and keeps the failures, as before.

@dataclass
class ReportResult:
    """What a worker did with one report; crosses the process boundary by pickle."""
    source: str                                         # where the worker took it: staging/ or reports/
    size: int = 0                                       # of the sanitized report, when post-processed
    postprocessed: journal.Transaction | None = None    # staging/ -> reports/
    unconvertible: str = ""                             # cannot be post-processed: quarantined as such
    imported: journal.Transaction | None = None         # reports/ -> archive/
    flags: dict = field(default_factory=dict)
    reason: str = ""                                    # this report's failure: tried again, poison after
    error: str = ""
    stop: str = ""                                      # the machine's failure: the stage stops


_worker_db: tuple | None = None  # (client, db) of this worker process, made on first use


def _database(target: Target):
    global _worker_db
    if _worker_db is None:
        _worker_db = connect_to(target)
    return _worker_db


def work(group: tuple[str, ...], root: str, target: Target, with_db: bool) -> list[ReportResult]:
    """A worker's job (in a spawned process): the reports of one key, in order. Without the database
    (it is unusable) staged reports are only post-processed."""
    dr = DataRoot(Path(root))
    UPSERT_LOCK[:] = [dr.root / ".lock-importer-update"]
    results: list[ReportResult] = []
    for path in group:
        results.append(report_work(dr, Path(path), target, with_db))
        if results[-1].stop:
            break
    return results


def report_work(dr: DataRoot, path: Path, target: Target, with_db: bool) -> ReportResult:
    """Post-process a staged report (to a temporary file), then import it from that file; or import a
    report waiting in reports/. The parent commits what this returns: first the move to reports/, then the
    move to the archive. A crash before those commits loses nothing: the database holds documents under
    deterministic ids, which the next run replaces."""
    result = ReportResult(str(path))
    yaml_path, jsonl, known = path, path.with_suffix(".jsonl"), None
    if path.parent == dr.state("staging"):
        if not _postprocess(dr, path, result) or not with_db:
            return result
        tx = result.postprocessed
        yaml_path = dr.state("reports") / path.name
        jsonl = Path(tx.steps[0]["src"])  # the temporary file, until the parent commits the move
        known = {step["dst"]: (step["sha256"], step["size"]) for step in tx.steps}
    client = None
    try:
        client, db = _database(target)
        report, flags = import_documents(db, jsonl, yaml_path.name)
        result.imported, result.flags = archive_transaction(dr, yaml_path, report, flags, known), flags
    except SecretError as exc:
        result.stop = str(exc)
    except Exception as exc:  # noqa: BLE001 - sorted by _reason: the database's, or this report's
        if isinstance(exc, OSError) and exc.errno in failures.INFRA_ERRNOS:
            result.stop = f"infrastructure error: {exc}"
            return result
        try:
            result.reason = _reason(exc, target.role, client)
        except DatabaseDown as down:
            result.stop = str(down)
            return result
        result.error = f"{yaml_path.name}: {type(exc).__name__}: {exc}"[:500]
    return result


def _postprocess(dr: DataRoot, path: Path, result: ReportResult) -> bool:
    """Post-process a staged report into result; False when it failed (result says how)."""
    try:
        result.postprocessed, result.size = postprocess_prepare(dr, path)
        return True
    except (ValueError, UnicodeDecodeError, yaml.YAMLError) as exc:
        result.unconvertible = f"cannot post-process: {exc}"[:500]
    except Exception as exc:  # noqa: BLE001 - one report's failure is that report's only
        if isinstance(exc, OSError) and exc.errno in failures.INFRA_ERRNOS:
            result.stop = f"infrastructure error: {exc}"
        else:
            result.reason, result.error = type(exc).__name__, f"{path.name}: {type(exc).__name__}: {exc}"[:500]
    return False


class _Run:
    """One run's bookkeeping in the parent: commits, counts, failures and poison."""

    def __init__(self, cfg, dr: DataRoot, summary: Summary, fails: failures.Failures, db):
        self.cfg, self.dr, self.summary, self.fails, self.db = cfg, dr, summary, fails, db
        self.stopped = False

    def lock(self):
        return lock.shared(self.dr, self.cfg.pipeline.lock_timeout)

    def collect(self, results: list[ReportResult]) -> None:
        for r in results:
            self.one(r)

    def one(self, r: ReportResult) -> None:
        path = Path(r.source)
        if r.unconvertible:
            with self.lock():
                quarantine_one(self.dr, path, r.unconvertible, self.summary)
        if r.postprocessed or r.imported:
            with self.lock():
                for tx in (r.postprocessed, r.imported):
                    if tx is not None:
                        journal.run(self.dr, tx)
        if r.postprocessed:
            self.fails.clear(self.dr.relative(path))
            self.summary.count("postprocessed")
            self.summary.bytes_in += r.size
            path = self.dr.state("reports") / path.name
        if r.imported:
            self.fails.clear(self.dr.relative(path))
            self.summary.count("imported")
            flag(self.dr, path, r.flags, self.summary)
        if r.reason:
            self.fail(path, r.reason, r.error)
        if r.stop:
            self.summary.errors.append(r.stop)
            self.stopped = True

    def fail(self, path: Path, reason: str, error: str) -> None:
        """This report failed: tried again next run; the second time for the same reason it is poison, and
        what it had written to the database is removed."""
        waiting = path.parent == self.dr.state("reports")

        def set_aside(previous):
            # A staged report's worker imports it too: what it wrote before dying is removed as well.
            key = _report_key(path.with_suffix(".jsonl")) if waiting else postprocess.staged_key(path)
            with self.lock():
                quarantine_poison(self.dr, path, failures.details(STAGE, previous, reason, error), self.summary)
            if self.db is not None:
                try:
                    forget_partial(self.db, key)
                except pymongo.errors.PyMongoError as exc:
                    self.summary.errors.append(f"database error: {exc}")
                    self.stopped = True
        failures.handle(self.fails, self.summary, self.dr.relative(path), reason, error, set_aside)

    def died(self, group: tuple[str, ...]) -> None:
        """A worker process died on this group even alone: each of its reports still in place fails."""
        for p in map(Path, group):
            if not p.exists():
                p = self.dr.state("reports") / p.name
            self.fail(p, "WorkerDied", f"{p.name}: the worker process died on this report")


def groups(dr: DataRoot, paths: list[Path]) -> list[tuple[str, ...]]:
    """The reports as the workers' items: one group per report key (usually one report; reports that share
    a key, in order, so that one worker writes their documents). The largest groups come first, so that the
    run does not end with one worker busy on a large report while the other core idles. A report whose key
    cannot be read is a group of its own (it fails in its worker)."""
    by_key: dict[str, list[Path]] = {}
    for p in paths:
        if p.parent == dr.state("reports"):
            key = _report_key(p.with_suffix(".jsonl"))
        else:
            key = postprocess.staged_key(p)
        by_key.setdefault(key or f"?{p}", []).append(p)
    ordered = sorted(by_key.values(), key=lambda group: -sum(_size(p) for p in group))
    return [tuple(map(str, group)) for group in ordered]


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def _workers(cfg) -> int:
    return cfg.pipeline.workers or os.cpu_count() or 1


def _usable_database(cfg, summary: Summary):
    """(client, db) after checking that the collections are there, or (None, None) with the error in the
    summary: the database's failure stops the import, not the post-processing."""
    try:
        client, db = connect(cfg)
    except (SecretError, ConfigError) as exc:
        summary.errors.append(str(exc))
        return None, None
    try:
        schema.check(db)
    except (pymongo.errors.PyMongoError, schema.SchemaMissing) as exc:
        summary.errors.append(_database_error(cfg, exc))
        client.close()
        return None, None
    return client, db


def _database_error(cfg, exc: Exception) -> str:
    """The stage's error line for the database's failure: the refusal naming our role, or the error."""
    refused = dbconn.refusal(exc, dbconn.role_of(cfg.db))
    return str(refused) if refused else f"database error: {exc}"


def _waiting(cfg, dr: DataRoot, summary: Summary, state: str) -> list[Path]:
    """The reports waiting in a state directory; what is there but not a regular file is quarantined."""
    todo, others = _inputs(dr, state)
    for path, kind in others:
        with lock.shared(dr, cfg.pipeline.lock_timeout):
            quarantine.node(dr, STAGE, path, kind, summary)
    return todo


def process_all(cfg, dr: DataRoot, summary: Summary, fails: failures.Failures) -> None:
    """Every report in reports/ (waiting since an earlier run) and staging/, in worker processes."""
    waiting, staged = _waiting(cfg, dr, summary, "reports"), _waiting(cfg, dr, summary, "staging")
    if not waiting and not staged:
        return
    client, db = _usable_database(cfg, summary)
    try:
        items = groups(dr, waiting + staged) if db is not None else [(str(p),) for p in staged]
        state = _Run(cfg, dr, summary, fails, db)
        if items:
            pool.run_isolated(work, items, (str(dr.root), Target.from_config(cfg), db is not None), min(_workers(cfg), len(items)),
                              state.collect, state.died, lambda: state.stopped)
    finally:
        if client is not None:
            client.close()


def run(cfg, dr: DataRoot) -> Summary:
    with stage.running(cfg, dr, STAGE, temp_dirs=("reports", "archive")) as summary:
        # The work (parsing, writing JSON lines, writing to the database) runs without the lock, in the
        # workers; only the moves hold it.
        fails = failures.Failures.load(dr, STAGE)
        try:
            process_all(cfg, dr, summary, fails)
        finally:
            fails.save()
        if summary.outcomes.get("imported") or not (dr.state("archive") / "index.json").exists():
            with lock.shared(dr, cfg.pipeline.lock_timeout):
                write_index(dr)
    return summary


# ---- catching up with the archive ----------------------------------------------------------------------

def archived_missing(dr: DataRoot, db) -> list[Path]:
    """The archived reports (their .jsonl) whose report document the database lacks: the database was
    restored from a set older than the archive (its own host lost: docs/runbook.md 12.2). A report
    document is written last (import_documents), so one that is there means its measurements are too."""
    archived = sorted(p for p in dr.files("archive") if p.name.endswith(".jsonl"))
    waiting = any(p.name.endswith(".jsonl") for p in dr.files("reports"))
    if not waiting and db.reports.count_documents({}) >= len(archived):
        # One report document per archived report and nothing else (a report waiting in reports/ may have
        # its document already, which would hide a missing one in the count): none is missing.
        return []
    have = {str(d["_id"]) for d in db.reports.find({}, {"_id": 1})}
    return [p for p in archived if (_report_key(p) or "") not in have]


def catch_up(cfg, dr: DataRoot) -> Summary:
    """`--catch-up`: import again the archived reports the database lacks (archived_missing); the archive
    is not touched. Imports replace by deterministic ids, so running it twice, or beside the importer,
    writes nothing twice."""
    with stage.running(cfg, dr, STAGE) as summary:
        client, db = _usable_database(cfg, summary)
        if db is None:
            return summary
        try:
            for jsonl in archived_missing(dr, db):
                try:
                    import_documents(db, jsonl, jsonl.with_suffix(".yaml").name)
                except (ImportMismatch, OSError, ValueError, InputError) as exc:
                    summary.fail(dr.relative(jsonl), "reimport", str(exc))
                    continue
                summary.count("reimported")
                summary.bytes_in += _size(jsonl)
        except pymongo.errors.PyMongoError as exc:
            summary.errors.append(_database_error(cfg, exc))
        finally:
            client.close()
    return summary


def waiting(dr: DataRoot) -> tuple:
    """What waits for the importer (`--follow`): staging/'s and reports/' entries."""
    return follow.names(dr, "staging", "reports")


def main(argv=None) -> int:
    return cli_main(STAGE, "post-process staging into reports, import into the database, archive", run, argv,
                    modes={"--catch-up": ("import again the archived reports the database lacks (after the "
                                          "database was restored from an older set), and only that", catch_up)},
                    waiting=waiting)


if __name__ == "__main__":
    sys.exit(main())
