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

import json
import os
import sys
from pathlib import Path

import bson
import pymongo
import yaml

from common import atomic, digest
from common import db as dbconn
from common.errors import SecretError
from stages import failures, journal, lock, naming, postprocess, quarantine, schema, stage
from stages.cli import Summary
from stages.cli import main as cli_main
from stages.inputs import InputError
from stages.layout import DataRoot

STAGE = "importer"
BATCH = 500
BATCH_BYTES = 4 << 20
ROLE = "importer"


class ImportMismatch(Exception):
    pass


def connect(cfg):
    # A socket timeout: a database that stops answering fails the run (exit 1) instead of hanging it.
    client = dbconn.client_as(cfg.db, cfg.secrets_dir, ROLE, timeout_s=30, socketTimeoutMS=600_000)
    return client, client[cfg.db.database]


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
        return exc.code not in AUTH_CODES and dbconn.refusal(exc, ROLE) is None
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


def _upsert(db, collection: str, docs: list[dict]) -> tuple[int, list[tuple[dict, str]]]:
    """Replace-or-insert by _id with the `update` command itself (pymongo's bulk_write cannot read
    FerretDB's reply when a write fails). Returns (documents matched or inserted, refused)."""
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


def import_prepare(dr: DataRoot, db, yaml_path: Path, summary: Summary | None = None) -> journal.Transaction:
    """Store the report's documents and check the database's own count of what it wrote against the file,
    then read back its first and last measurement and the report (no lock needed: ids are deterministic,
    so a rerun replaces instead of adding); return the transaction that moves the pair to the archive."""
    jsonl = yaml_path.with_suffix(".jsonl")
    where = naming.archive_path(yaml_path.name)
    report = None
    ids: list[str] = []
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
        ids.append(doc["_id"])
        if doc.get("refused"):  # post-processing could not convert it (see postprocess.documents)
            refused.append(doc["index"])
        batch.append(doc)
        batch_bytes += size  # its JSON line's: about its BSON size, without encoding it again
        if len(batch) >= BATCH or batch_bytes >= BATCH_BYTES:
            flush()
    if batch:
        flush()
    if report is None:
        raise ImportMismatch(f"{jsonl.name}: no report document (truncated file?)")
    if refused:
        report["refused_entries"] = refused[:postprocess.MAX_LISTED]
        report["refused_entries_count"] = len(refused)
    _, report_stub = store(db, "reports", [report], where)
    probes = [("measurements", i) for i in ids[:1] + ids[-1:]] + [("reports", report["_id"])]
    missing = [i for coll, i in probes if db[coll].find_one({"_id": i}, {"_id": 1}) is None]
    if written != report["entries"] or len(ids) != report["entries"] or missing:
        raise ImportMismatch(f"{yaml_path.name}: the database wrote {written} measurements, the file has "
                             f"{report['entries']}" + (f"; not found: {missing}" if missing else ""))
    flags = {"omitted_entries": report.get("omitted_entries_count", 0), "refused_entries": len(refused),
             "report_refused": bool(report_stub)}
    target = dr.state("archive") / naming.archive_subdir(yaml_path.name)
    tx = journal.Transaction(STAGE, "imported", dr.relative(yaml_path),
                             info={"report_id": report.get("report_id"), "report_key": report["_id"],
                                   "entries": report["entries"], **{k: v for k, v in flags.items() if v}})
    if summary is not None and any(flags.values()):
        summary.flagged.append({"input": dr.relative(yaml_path), "to": f"{where}", **flags})
    for p in (jsonl, yaml_path):
        tx.rename(p, target / p.name, digest.sha256_file(p), p.stat().st_size)
    return tx


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


def _reason(exc: BaseException, client=None) -> str:
    """The kind of a report's failure; raises DatabaseDown when the failure is the database's, not the
    report's (a connection drop with the database still answering counts as the report's: FerretDB 1.x
    closes the connection on some documents)."""
    if isinstance(exc, DatabaseDown):
        raise exc
    if isinstance(exc, pymongo.errors.OperationFailure) and exc.code in AUTH_CODES:
        raise DatabaseDown(f"the database refuses our credentials: {exc}")
    refused = dbconn.refusal(exc, ROLE)
    if refused is not None:
        raise DatabaseDown(str(refused))
    if isinstance(exc, pymongo.errors.ConnectionFailure):
        if client is None or not _alive(client):
            raise DatabaseDown(f"database unreachable: {exc}")
        return "connection_lost"
    return type(exc).__name__


def postprocess_all(cfg, dr: DataRoot, summary: Summary, fails: failures.Failures) -> None:
    staged, others = _inputs(dr, "staging")
    for path, kind in others:
        with lock.shared(dr, cfg.pipeline.lock_timeout):
            quarantine.node(dr, STAGE, path, kind, summary)
    for p in staged:
        rel = dr.relative(p)
        try:
            tx, size = postprocess_prepare(dr, p)
        except (ValueError, UnicodeDecodeError, yaml.YAMLError) as exc:
            with lock.shared(dr, cfg.pipeline.lock_timeout):
                quarantine_one(dr, p, f"cannot post-process: {exc}"[:500], summary)
            continue
        except Exception as exc:  # noqa: BLE001 - one report's failure is that report's only
            if isinstance(exc, OSError) and exc.errno in failures.INFRA_ERRNOS:
                raise
            error = f"{p.name}: {type(exc).__name__}: {exc}"[:500]

            def set_aside(previous, p=p, exc=exc, error=error):
                with lock.shared(dr, cfg.pipeline.lock_timeout):
                    quarantine_poison(dr, p, failures.details(STAGE, previous, type(exc).__name__, error), summary)
            failures.handle(fails, summary, rel, type(exc).__name__, error, set_aside)
            continue
        fails.clear(rel)
        with lock.shared(dr, cfg.pipeline.lock_timeout):
            journal.run(dr, tx)
        summary.count("postprocessed")
        summary.bytes_in += size


def import_all(cfg, dr: DataRoot, summary: Summary, fails: failures.Failures) -> None:
    todo, others = _inputs(dr, "reports")
    for path, kind in others:
        with lock.shared(dr, cfg.pipeline.lock_timeout):
            quarantine.node(dr, STAGE, path, kind, summary)
    if not todo:
        return
    try:
        client, db = connect(cfg)
    except SecretError as exc:
        summary.errors.append(str(exc))
        return
    try:
        schema.check(db)
    except (pymongo.errors.PyMongoError, schema.SchemaMissing) as exc:
        refused = dbconn.refusal(exc, ROLE)
        summary.errors.append(str(refused) if refused else f"database error: {exc}")
        client.close()
        return
    try:
        for p in todo:
            rel = dr.relative(p)
            try:
                tx = import_prepare(dr, db, p, summary)
            except Exception as exc:  # noqa: BLE001 - sorted by _reason: the database's, or this report's
                if isinstance(exc, OSError) and exc.errno in failures.INFRA_ERRNOS:
                    raise
                reason = _reason(exc, client)
                error = f"{p.name}: {type(exc).__name__}: {exc}"[:500]

                def set_aside(previous, p=p, reason=reason, error=error):
                    key = _report_key(p.with_suffix(".jsonl"))
                    with lock.shared(dr, cfg.pipeline.lock_timeout):
                        quarantine_poison(dr, p, failures.details(STAGE, previous, reason, error), summary)
                    forget_partial(db, key)
                failures.handle(fails, summary, rel, reason, error, set_aside)
                continue
            fails.clear(rel)
            with lock.shared(dr, cfg.pipeline.lock_timeout):
                journal.run(dr, tx)
            summary.count("imported")
    except DatabaseDown as exc:
        summary.errors.append(str(exc))
    finally:
        client.close()


def run(cfg, dr: DataRoot) -> Summary:
    with stage.running(cfg, dr, STAGE, temp_dirs=("reports", "archive")) as summary:
        # The work (parsing, writing JSON lines, writing to the database) runs without the lock; only the
        # moves hold it.
        fails = failures.Failures.load(dr, STAGE)
        try:
            postprocess_all(cfg, dr, summary, fails)
            import_all(cfg, dr, summary, fails)
        finally:
            fails.save()
        if summary.outcomes.get("imported") or not (dr.state("archive") / "index.json").exists():
            with lock.shared(dr, cfg.pipeline.lock_timeout):
                write_index(dr)
    return summary


def main(argv=None) -> int:
    return cli_main(STAGE, "post-process staging into reports, import into the database, archive", run, argv)


if __name__ == "__main__":
    sys.exit(main())
