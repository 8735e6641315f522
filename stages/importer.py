"""importer: staging/ -> reports/ -> archive/, and the database. The only stage given the database
credentials.

1. post-process (staging -> reports): each sanitized report gets its database documents as JSON lines
   (see postprocess); the pair <name>.yaml + <name>.jsonl moves to reports/ in one transaction.
2. import (reports -> archive): bulk upserts keyed by the deterministic ids; then the database's counts
   for the report are checked against the file, and only then does the pair move to
   archive/<YYYY-MM-DD>/<CC>/. Re-running after a crash anywhere converges: upserts overwrite, never add.
3. publication: archive/index.json (name, size, sha256, test_name, CC, date of every published report) is
   rewritten atomically after each run that changed the archive.

    python -m stages.importer --data-root DIR [--config FILE] [--set db.host=HOST] [--json]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pymongo
import yaml

from dr import db as dbconn
from dr import secrets
from stages import atomic, journal, lock, naming, postprocess, quarantine, stage
from stages.cli import Summary, main as cli_main
from stages.layout import DataRoot

STAGE = "importer"
BATCH = 500
BATCH_BYTES = 4 << 20
INDEXES = {
    "measurements": ["report_key", "test_name", "probe_cc", "probe_asn", "start_time"],
    "reports": ["report_id", "test_name", "probe_cc", "probe_asn", "start_time"],
}


class ImportMismatch(Exception):
    pass


def connect(cfg):
    password = secrets.read(cfg.secrets_dir, secrets.DB_PASSWORD)
    # A socket timeout: a database that stops answering fails the run (exit 1) instead of hanging it.
    client = dbconn.client(cfg.db.host, cfg.db.port, cfg.db.user, password, cfg.db.database, timeout_s=30,
                           socketTimeoutMS=600_000)
    return client, client[cfg.db.database]


def ensure_indexes(db) -> None:
    for coll, fields in INDEXES.items():
        existing = {ix["name"] for ix in db[coll].list_indexes()} if coll in db.list_collection_names() else set()
        for f in fields:
            if f"{f}_1" not in existing:
                db[coll].create_index([(f, pymongo.ASCENDING)])


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
    tx.rename(tmp, jsonl_final, journal.sha256_file(tmp), tmp.stat().st_size)
    tx.rename(yaml_path, reports / name, journal.sha256_file(yaml_path), size)
    return tx, size


def quarantine_one(dr: DataRoot, yaml_path: Path, error: str, summary: Summary) -> None:
    """A staged report that cannot be post-processed (it should not happen: the sanitizer validated it)."""
    tx = journal.Transaction(STAGE, "quarantined", dr.relative(yaml_path))
    quarantine.add(tx, dr, yaml_path, yaml_path.name, journal.sha256_file(yaml_path), yaml_path.stat().st_size,
                   "postprocess", {"error": error, "source": dr.relative(yaml_path)})
    journal.run(dr, tx)
    summary.count("quarantined:postprocess")


# ---- 2. import ------------------------------------------------------------------------------------------

def upsert(db, collection: str, docs: list[dict]) -> int:
    """Replace-or-insert by _id with the `update` command itself (pymongo's bulk_write cannot read
    FerretDB's reply when a write fails, and we want the server's error text). Returns the server's count
    of documents matched or inserted."""
    reply = db.command({"update": collection, "ordered": False,
                        "updates": [{"q": {"_id": d["_id"]}, "u": d, "upsert": True} for d in docs]})
    errors = reply.get("writeErrors") or []
    if errors:
        first = errors[0]
        raise ImportMismatch(f"{collection}: {len(errors)} document(s) refused, first "
                             f"{docs[first['index']]['_id']}: {first.get('errmsg', '')[:300]}")
    return int(reply.get("n", 0))


DUPLICATE_KEY = 11000


def _store(db, docs: list[dict]) -> int:
    """Insert; documents already there (a rerun after a crash) are replaced instead. Returns how many
    documents the server says it wrote. No query first: FerretDB 1.x pushes only `_id` equality down to
    SQLite, and even that costs a scan per lookup, so reading back every id is quadratic."""
    reply = db.command({"insert": "measurements", "ordered": False, "documents": docs})
    errors = reply.get("writeErrors") or []
    other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
    if other:
        raise ImportMismatch(f"measurements: {len(other)} document(s) refused, first: "
                             f"{other[0].get('errmsg', '')[:300]}")
    written = int(reply.get("n", 0))
    if errors:
        written += upsert(db, "measurements", [docs[e["index"]] for e in errors])
    return written


def import_prepare(dr: DataRoot, db, yaml_path: Path) -> journal.Transaction:
    """Store the report's documents and check the database's own count of what it wrote against the file,
    then read back its first and last measurement and the report (no lock needed: ids are deterministic,
    so a rerun replaces instead of adding); return the transaction that moves the pair to the archive."""
    jsonl = yaml_path.with_suffix(".jsonl")
    report = None
    ids: list[str] = []
    written = 0
    batch: list[dict] = []
    batch_bytes = 0
    for coll, doc in postprocess.read_jsonl(jsonl):
        if coll == "reports":
            report = doc
            continue
        ids.append(doc["_id"])
        batch.append(doc)
        batch_bytes += len(json.dumps(doc))
        if len(batch) >= BATCH or batch_bytes >= BATCH_BYTES:
            written += _store(db, batch)
            batch, batch_bytes = [], 0
    if batch:
        written += _store(db, batch)
    if report is None:
        raise ImportMismatch(f"{jsonl.name}: no report document (truncated file?)")
    upsert(db, "reports", [report])
    probes = [("measurements", i) for i in ids[:1] + ids[-1:]] + [("reports", report["_id"])]
    missing = [i for coll, i in probes if db[coll].find_one({"_id": i}, {"_id": 1}) is None]
    if written != report["entries"] or len(ids) != report["entries"] or missing:
        raise ImportMismatch(f"{yaml_path.name}: the database wrote {written} measurements, the file has "
                             f"{report['entries']}" + (f"; not found: {missing}" if missing else ""))
    target = dr.state("archive") / naming.archive_subdir(yaml_path.name)
    tx = journal.Transaction(STAGE, "imported", dr.relative(yaml_path),
                             info={"report_id": report.get("report_id"), "report_key": report["_id"],
                                   "entries": report["entries"]})
    for p in (jsonl, yaml_path):
        tx.rename(p, target / p.name, journal.sha256_file(p), p.stat().st_size)
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
        sha = sha or journal.sha256_file(p)
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

def _yaml_files(dr: DataRoot, state: str) -> list[Path]:
    return [p for p in dr.files(state) if p.name.endswith(".yaml") and p.parent == dr.state(state)]


def run(cfg, dr: DataRoot) -> Summary:
    with stage.running(cfg, dr, STAGE, temp_dirs=("reports", "archive")) as summary:
        # The work (parsing, writing JSON lines, upserting) runs without the lock; only the moves hold it.
        for p in _yaml_files(dr, "staging"):
            try:
                tx, size = postprocess_prepare(dr, p)
            except (ValueError, UnicodeDecodeError, yaml.YAMLError) as exc:
                with lock.shared(dr, cfg.pipeline.lock_timeout):
                    quarantine_one(dr, p, f"cannot post-process: {exc}"[:500], summary)
                continue
            with lock.shared(dr, cfg.pipeline.lock_timeout):
                journal.run(dr, tx)
            summary.count("postprocessed")
            summary.bytes_in += size
        todo = _yaml_files(dr, "reports")
        if todo:
            client, db = connect(cfg)
            try:
                ensure_indexes(db)
                for p in todo:
                    try:
                        tx = import_prepare(dr, db, p)
                    except ImportMismatch as exc:
                        summary.errors.append(str(exc))
                        continue
                    with lock.shared(dr, cfg.pipeline.lock_timeout):
                        journal.run(dr, tx)
                    summary.count("imported")
            except pymongo.errors.PyMongoError as exc:
                summary.errors.append(f"database error: {exc}")
            finally:
                client.close()
        if summary.outcomes.get("imported") or not (dr.state("archive") / "index.json").exists():
            with lock.shared(dr, cfg.pipeline.lock_timeout):
                write_index(dr)
    return summary


def main(argv=None) -> int:
    return cli_main(STAGE, "post-process staging into reports, import into the database, archive", run, argv)


if __name__ == "__main__":
    sys.exit(main())
