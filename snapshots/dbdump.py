"""Streaming logical dump and restore of one database, over the MongoDB wire protocol (pymongo).

Why this exists: mongo-tools (mongodump/mongorestore) cannot be had here: the Go module proxy refuses
github.com/mongodb/mongo-tools for every tag, pseudo-version and commit, and Debian does not package it.
This tool does the same job for our needs: one stream on stdout (so it can go straight into
`restic backup --stdin-from-command`, no temporary file), and a restore that reads the stream from stdin.

Stream format (version 1), a sequence of records; each record is one type byte followed by one BSON
document (BSON documents carry their own length):
  H  header       {format, version, database, created, tool}
  C  collection   {name, options, indexes: [index specs other than _id_]}
  D  document     the document itself, byte for byte as the server returned it
  E  end of a collection {name, count}
  Z  end of dump  {collections: {name: count}, sha256: hex digest of every byte before this record}
A stream without its Z record, or whose digest or counts do not match, is refused as truncated or corrupt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import struct
import sys
from typing import BinaryIO, Iterator

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from common import db as dbconn
from snapshots import manifest

FORMAT = "aggregator-dr-dbdump"
VERSION = 1
BATCH_DOCS = 1000
BATCH_BYTES = 8 << 20
RAW = CodecOptions(document_class=RawBSONDocument)


class DumpError(Exception):
    """The stream is not a complete, intact dump, or the target is not fit for a restore."""


class _Writer:
    def __init__(self, out: BinaryIO):
        self.out = out
        self.digest = hashlib.sha256()

    def record(self, kind: bytes, doc_bytes: bytes) -> None:
        self.digest.update(kind)
        self.digest.update(doc_bytes)
        self.out.write(kind)
        self.out.write(doc_bytes)


def dump(db, out: BinaryIO, tally: dict | None = None) -> dict[str, int]:
    """Write the whole database to `out`; returns the count per collection. tally, when given, receives the
    reports per test_name/country (snapshots.manifest.tally_report) as they pass."""
    from common import __version__

    w = _Writer(out)
    w.record(b"H", bson.encode({
        "format": FORMAT, "version": VERSION, "database": db.name,
        "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "tool": __version__,
    }))
    counts: dict[str, int] = {}
    for info in sorted(db.list_collections(), key=lambda i: i["name"]):
        name = info["name"]
        if name.startswith("system."):
            continue
        indexes = [dict(ix) for ix in db[name].list_indexes() if ix["name"] != "_id_"]
        for ix in indexes:
            ix.pop("ns", None)
        w.record(b"C", bson.encode({"name": name, "options": dict(info.get("options", {})), "indexes": indexes}))
        n = 0
        coll = db.get_collection(name, codec_options=RAW)
        # Natural order, no sort: FerretDB 1.x sorts in memory (a 3.9 GB database made it grow to 14 GB and
        # spend minutes); restore does not need an order.
        for doc in coll.find({}, batch_size=BATCH_DOCS):
            w.record(b"D", doc.raw)
            n += 1
            if tally is not None and name == manifest.REPORTS:
                manifest.tally_report(tally, doc)
        w.record(b"E", bson.encode({"name": name, "count": n}))
        counts[name] = n
    digest = w.digest.hexdigest()
    out.write(b"Z")
    out.write(bson.encode({"collections": counts, "sha256": digest}))
    out.flush()
    return counts


def _read_exact(inp: BinaryIO, n: int) -> bytes:
    buf = inp.read(n)
    while len(buf) < n:
        more = inp.read(n - len(buf))
        if not more:
            raise DumpError("the dump stream ends early: it is truncated")
        buf += more
    return buf


def records(inp: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """Yield (type, BSON bytes) records until and including Z; validates framing."""
    while True:
        kind = inp.read(1)
        if not kind:
            raise DumpError("the dump stream ends without its end record: it is truncated")
        if kind not in b"HCDEZ":
            raise DumpError(f"the dump stream is corrupt (unknown record type {kind!r})")
        size_bytes = _read_exact(inp, 4)
        (size,) = struct.unpack("<i", size_bytes)
        if size < 5 or size > 48 << 20:
            raise DumpError(f"the dump stream is corrupt (record of {size} bytes)")
        yield kind, size_bytes + _read_exact(inp, size - 4)
        if kind == b"Z":
            return


def checked(inp: BinaryIO) -> Iterator[tuple[bytes, bytes, dict | None]]:
    """Yield (type, BSON bytes, decoded metadata or None for documents) for every record after the header,
    checking as it goes: our format and version, collection counts, and at the end record the stream's
    sha256 and totals. Anything wrong raises DumpError; the end record is yielded only when all is well."""
    digest = hashlib.sha256()
    it = records(inp)
    kind, first = next(it)
    header = bson.decode(first)
    if kind != b"H" or header.get("format") != FORMAT:
        raise DumpError("this is not an aggregator-dr database dump")
    if header.get("version") != VERSION:
        raise DumpError(f"dump format version {header.get('version')} is not supported (want {VERSION})")
    digest.update(kind + first)
    counts: dict[str, int] = {}
    current = None
    for kind, raw in it:
        if kind == b"D":
            if current is None:
                raise DumpError("the dump stream is corrupt (document before its collection)")
            counts[current] += 1
            digest.update(kind + raw)
            yield kind, raw, None
            continue
        meta = bson.decode(raw)
        if kind == b"Z":
            if meta["sha256"] != digest.hexdigest():
                raise DumpError("the dump stream is corrupt: its sha256 does not match its content")
            if meta["collections"] != counts:
                raise DumpError(f"the dump's counts {meta['collections']} do not match what it holds {counts}")
            yield kind, raw, meta
            return
        digest.update(kind + raw)
        if kind == b"C":
            current = meta["name"]
            counts[current] = 0
        elif kind == b"E":
            if meta["count"] != counts.get(meta["name"]):
                raise DumpError(f"collection {meta['name']}: dump says {meta['count']} documents, "
                                f"stream held {counts.get(meta['name'])}")
        else:
            raise DumpError("the dump stream is corrupt (a second header)")
        yield kind, raw, meta
    raise DumpError("the dump stream ends without its end record: it is truncated")


def verify(inp: BinaryIO, tally: dict | None = None) -> dict[str, int]:
    """Read a whole dump stream without a database; returns its count per collection if it is intact.
    tally, when given, receives the reports per test_name/country as they pass."""
    current = None
    for kind, raw, meta in checked(inp):
        if kind == b"C":
            current = meta["name"]
        elif kind == b"D" and tally is not None and current == manifest.REPORTS:
            manifest.tally_report(tally, bson.decode(raw))
        elif kind == b"Z":
            return dict(meta["collections"])
    raise DumpError("the dump stream ends without its end record: it is truncated")  # unreachable: checked raises


def restore(db, inp: BinaryIO, drop: bool = False) -> dict[str, int]:
    """Restore a dump stream into db. Refuses non-empty collections unless drop=True. Returns the documents
    per collection whose writes the database acknowledged (the caller compares them with what it expects;
    the stream's own counts are checked by `checked`)."""
    coll = None
    batch: list[RawBSONDocument] = []
    batch_bytes = 0
    pending_indexes: list[tuple[str, list]] = []
    written: dict[str, int] = {}

    def flush():
        nonlocal batch, batch_bytes
        if batch:
            # Ordered: any failed write raises; acknowledged means every document of the batch is stored.
            # (inserted_ids lists no RawBSONDocument ids, so count the batch.)
            if coll.insert_many(batch, ordered=True).acknowledged:
                written[coll.name] += len(batch)
            batch, batch_bytes = [], 0

    for kind, raw, meta in checked(inp):
        if kind == b"D":
            batch.append(RawBSONDocument(raw))
            batch_bytes += len(raw)
            if len(batch) >= BATCH_DOCS or batch_bytes >= BATCH_BYTES:
                flush()
        elif kind == b"C":
            flush()
            name = meta["name"]
            if name in db.list_collection_names():
                if drop:
                    db.drop_collection(name)
                elif dbconn.count(db, name) > 0:
                    raise DumpError(f"collection {db.name}.{name} is not empty; restore with --drop to replace it")
            coll = db.get_collection(name, codec_options=RAW)
            written[name] = 0
            pending_indexes.append((name, meta.get("indexes", [])))
        elif kind == b"E":
            flush()
        elif kind == b"Z":
            for name, indexes in pending_indexes:
                _create_indexes(db[name], indexes)
            return written
    raise DumpError("the dump stream ends without its end record: it is truncated")  # unreachable: checked raises


def _create_indexes(coll, indexes: list) -> None:
    from pymongo import IndexModel

    models = []
    for ix in indexes:
        spec = dict(ix)
        key = list(spec.pop("key").items())
        spec.pop("v", None)
        models.append(IndexModel(key, **spec))
    if models:
        coll.create_indexes(models)


def _connect(args):
    from common import db as dbconn

    with open(args.password_file, encoding="utf-8") as fh:
        password = fh.readline().strip()
    client = dbconn.client(args.host, args.port, args.user, password, args.database)
    return client, client[args.database]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m snapshots.dbdump", description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=("dump", "restore", "verify"),
                   help="dump to stdout, restore from stdin, or verify a stream on stdin (no database needed)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=27017)
    p.add_argument("--database", default="aggregator")
    p.add_argument("--user", default="aggregator")
    p.add_argument("--password-file", help="file holding the database password (dump, restore)")
    p.add_argument("--drop", action="store_true", help="restore: replace collections that hold documents")
    p.add_argument("--counts-file", help="write the count per collection (JSON) here after a complete run")
    args = p.parse_args(argv)
    if args.action == "verify":
        try:
            counts = verify(sys.stdin.buffer)
        except DumpError as exc:
            print(f"dbdump: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"collections": counts}))
        return 0
    if not args.password_file:
        p.error("--password-file is required for dump and restore")
    try:
        client, db = _connect(args)
    except OSError as exc:
        print(f"dbdump: cannot read the password file: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "dump":
            if sys.stdout.isatty():
                print("dbdump: refusing to write a binary dump to a terminal; redirect stdout", file=sys.stderr)
                return 2
            tally: dict = {}
            counts = dump(db, sys.stdout.buffer, tally)
        else:
            counts = restore(db, sys.stdin.buffer, drop=args.drop)
    except DumpError as exc:
        print(f"dbdump: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # pymongo errors: connection, authentication
        print(f"dbdump: database error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if args.counts_file:
        summary = {"database": args.database, "collections": counts}
        if args.action == "dump":
            summary["reports_by_test_country"] = tally
        with open(args.counts_file, "w") as fh:
            json.dump(summary, fh)
    total = sum(counts.values())
    print(f"dbdump: {args.action} of {args.database}: {len(counts)} collections, {total} documents "
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
