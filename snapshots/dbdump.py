"""Streaming logical dump and restore of one database in mongodump's archive format, over the MongoDB wire
protocol (pymongo).

Why this exists: mongo-tools cannot be had on a fresh machine here (the Go module proxy refuses
github.com/mongodb/mongo-tools, Debian does not package it), so the backup image carries this tool. It
writes what `mongorestore --archive` reads and reads what `mongodump --archive` writes, so an operator
with mongo-tools can use either side. One stream on stdout (so it can go straight into
`restic backup --stdin-from-command`, no temporary file); restore and verify read a stream from stdin.

The archive format (mongo-tools common/archive, format version "0.1"), all integers little-endian:
  magic number      the int32 0x8199e26d (bytes 6d e2 99 81)
  prelude           a header document {concurrent_collections, version: "0.1", server_version,
                    tool_version}, one document per collection {db, collection, metadata, size, type}
                    (metadata: canonical Extended JSON of {options, indexes, collectionName, type}),
                    then the terminator ff ff ff ff
  blocks            each a namespace header {db, collection, EOF, CRC}, then documents, then the
                    terminator. A collection's documents follow headers with EOF false (any number of
                    blocks, interleaved with other collections'); its last block is a header with EOF true
                    and CRC the CRC-64 (ECMA-182 polynomial as Go's hash/crc64 computes it) of the bytes
                    of all its documents, with no documents.
A stream is complete when every collection of the prelude has had its EOF block. Documents pass byte for
byte (raw BSON, never decoded, except the reports for the tally).

What we write: every collection of the database (system.* aside) in name order, one after the other, in
natural order; one data block per collection (none when it is empty), then its EOF block. Index
specifications as the server lists them without "ns" (FerretDB refuses it); the `_id_` index is listed
like mongodump does and never created on restore (the collection has it). No collection UUID (it would make
mongorestore --preserveUUID use applyOps, which FerretDB lacks).

Integrity: reading refuses a stream that does not begin with the magic number (foreign), whose framing is
broken (corrupt), that ends before every collection had its EOF block (truncated), or whose CRC of a
collection does not match its documents (corrupt). The counts per collection go to the counts file (the
set's manifest), which snapshot checks and restores compare. A dump also reports the sha256 and size of
the whole stream (stderr; `verify` prints them); given that sha256 (`--sha256`, `expect_sha256`), a read
also refuses damage to the prelude and headers, which the CRCs do not cover.

Streams written by version 1 of this tool (records H/C/D/E/Z, a sha256 in the end record) are still read
(verify, restore), so older snapshot sets stay restorable.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import struct
import sys
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import bson
from bson import json_util
from bson.codec_options import CodecOptions
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument
from bson.son import SON

from database import db as dbconn
from snapshots import manifest

FORMAT = "mongodump-archive"
ARCHIVE_VERSION = "0.1"
MAGIC = struct.pack("<I", 0x8199E26D)
TERMINATOR = b"\xff\xff\xff\xff"
MAX_BSON = 16 * 1024 * 1024  # mongo-tools' db.MaxBSONSize: a larger length is corrupt
BATCH_DOCS = 1000
BATCH_BYTES = 8 << 20
RAW = CodecOptions(document_class=RawBSONDocument)
LEGACY_FORMAT = "aggregator-dr-dbdump"  # version 1 of this tool's own stream format


class DumpError(Exception):
    """The stream is not a complete, intact dump, or the target is not fit for a restore."""


# ---------------------------------------------------------------------------------------------------------
# CRC-64 as mongo-tools computes it: Go's crc64.New(crc64.MakeTable(crc64.ECMA)), i.e. CRC-64/XZ (reflected
# ECMA-182 polynomial, initial value and final xor all ones; check value of "123456789": 0x995dc9bbdf1939fa).
# The standard library has no CRC-64 and a byte-at-a-time loop in Python runs at 4 MB/s, so large inputs are
# computed in lanes: a block of K*S bytes is cut into K segments of S bytes, the K segment registers advance
# together one byte per step (bytes.translate does the table lookups of all lanes at once, int XORs the
# planes), then the lanes are combined pairwise (a segment's register advanced over its neighbour's length,
# also a table lookup per byte plane). About 40 MB/s.

_POLY = 0xC96C5795D7870F42
_ONES = (1 << 64) - 1
_LANE = 128  # S: bytes per segment
_LEVELS = 13  # K = 2**13 segments: blocks of 1 MiB
_SMALL = 2048  # below this many bytes the plain loop is cheaper


@functools.cache
def _tables():
    byte_table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        byte_table.append(c)
    planes = [bytes((byte_table[b] >> (8 * o)) & 0xFF for b in range(256)) for o in range(8)]

    def apply(images, v):
        r, j = 0, 0
        while v:
            if v & 1:
                r ^= images[j]
            v >>= 1
            j += 1
        return r

    images = []  # the register's 64 basis vectors advanced over _LANE zero bytes
    for j in range(64):
        r = 1 << j
        for _ in range(_LANE):
            r = byte_table[r & 0xFF] ^ (r >> 8)
        images.append(r)
    levels = []  # per level l: advance over _LANE * 2**l zero bytes, as translate tables [plane in][plane out]
    for _ in range(_LEVELS):
        per_plane = []
        for i in range(8):
            vals = [0] * 256
            for b in range(1, 256):
                low = b & -b
                vals[b] = vals[b ^ low] ^ images[8 * i + low.bit_length() - 1]
            per_plane.append([bytes((v >> (8 * o)) & 0xFF for v in vals) for o in range(8)])
        levels.append(per_plane)
        images = [apply(images, x) for x in images]
    return byte_table, planes, levels


def _crc_loop(register: int, data) -> int:
    table = _tables()[0]
    for b in data:
        register = table[(register ^ b) & 0xFF] ^ (register >> 8)
    return register


def _crc_lanes(block: bytes, k: int) -> int:
    """The register after `block` (k * _LANE bytes, k a power of two) from a zero register."""
    _, planes_table, levels = _tables()
    fb = int.from_bytes
    p = [0] * 8
    for s in range(_LANE):
        idx = (p[0] ^ fb(block[s::_LANE], "little")).to_bytes(k, "little")
        p = [fb(idx.translate(planes_table[o]), "little") ^ p[o + 1] for o in range(7)] + [
            fb(idx.translate(planes_table[7]), "little")]
    planes = [x.to_bytes(k, "little") for x in p]
    level = 0
    while k > 1:
        tabs = levels[level]
        k //= 2
        out = [fb(x[1::2], "little") for x in planes]
        for i in range(8):
            left = planes[i][0::2]
            for o in range(8):
                out[o] ^= fb(left.translate(tabs[i][o]), "little")
        planes = [x.to_bytes(k, "little") for x in out]
        level += 1
    return fb(b"".join(planes), "little")


class Crc64:
    """Incremental CRC-64 (ECMA, as Go's hash/crc64 and mongo-tools compute it)."""

    BLOCK = _LANE << _LEVELS

    def __init__(self):
        self._register = _ONES
        self._pending = bytearray()

    def update(self, data) -> None:
        self._pending += data
        if len(self._pending) >= 2 * self.BLOCK:
            whole = len(self._pending) - len(self._pending) % self.BLOCK
            for pos in range(0, whole, self.BLOCK):
                self._register = self._block(self._pending[pos:pos + self.BLOCK], self.BLOCK // _LANE)
            del self._pending[:whole]

    def _block(self, block: bytearray, k: int) -> int:
        block[:8] = (int.from_bytes(block[:8], "little") ^ self._register).to_bytes(8, "little")
        return _crc_lanes(bytes(block), k)

    def value(self) -> int:
        data, pos = self._pending, 0
        while len(data) - pos >= _SMALL:
            k = 1 << min(_LEVELS, ((len(data) - pos) // _LANE).bit_length() - 1)
            self._register = self._block(data[pos:pos + k * _LANE], k)
            pos += k * _LANE
        self._register = _crc_loop(self._register, data[pos:])
        self._pending = bytearray()
        return self._register ^ _ONES


class ThreadedCrc64:
    """Crc64 computed in a thread of its own, fed in pieces of a block or more: while the main thread waits
    for the database (pymongo releases the GIL on its socket), the CRC costs no wall time."""

    def __init__(self):
        import queue
        import threading

        self._crc = Crc64()
        self._gather = bytearray()
        self._queue: queue.Queue = queue.Queue(maxsize=16)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="crc64", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._crc.update(data)
                except BaseException as exc:  # handed to the caller by value()
                    self._error = exc

    def update(self, data) -> None:
        self._gather += data
        if len(self._gather) >= Crc64.BLOCK:
            self._queue.put(self._gather)
            self._gather = bytearray()

    def close(self) -> None:
        """Stop the thread without a value (the caller failed)."""
        self._error = self._error or RuntimeError("closed")
        self._queue.put(None)

    def value(self) -> int:
        self._queue.put(self._gather)
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._crc.value()


def crc64(data) -> int:
    c = Crc64()
    c.update(data)
    return c.value()


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


# ---------------------------------------------------------------------------------------------------------
# Writing


@dataclass
class Summary:
    """What a dump wrote or a read found: database name, documents per collection, sha256 and bytes of the
    whole stream."""
    database: str
    collections: dict[str, int] = field(default_factory=dict)
    sha256: str = ""
    bytes: int = 0
    format: str = FORMAT


@dataclass
class Collection:
    """One collection of a stream's prelude: its name, creation options and index specifications."""
    database: str
    name: str
    options: dict
    indexes: list


class _Out:
    def __init__(self, out: BinaryIO):
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.out.write(data)


def _index_spec(ix) -> dict:
    spec = dict(ix)
    spec.pop("ns", None)
    return spec


def _metadata_json(name: str, options: dict, indexes: list) -> str:
    meta = SON()
    if options:
        meta["options"] = options
    meta["indexes"] = indexes
    meta["collectionName"] = name
    meta["type"] = "collection"
    return json_util.dumps(meta, json_options=json_util.CANONICAL_JSON_OPTIONS, separators=(",", ":"))


def _ns_header(database: str, name: str, eof: bool, crc: int = 0) -> bytes:
    return bson.encode(SON([("db", database), ("collection", name), ("EOF", eof), ("CRC", Int64(_signed(crc)))]))


def dump_archive(db, out: BinaryIO, tally: dict | None = None) -> Summary:
    """Write the whole database to `out` as a mongodump archive; returns what was written. tally, when given,
    receives the reports per test_name/country (snapshots.manifest.tally_report) as they pass."""
    server_version = str(db.client.server_info().get("version", "0.0.0"))
    return write_archive(out, db.name, server_version, collections(db), lambda name: raw_documents(db, name),
                         tally)


def collections(db) -> list[Collection]:
    """The database's collections as a dump lists them (system.* aside): options and index specifications as
    the server gives them. A view is refused: only collections can be dumped."""
    found = []
    for info in db.list_collections():
        if info["name"].startswith("system."):
            continue
        if info.get("type", "collection") != "collection":
            raise DumpError(f"{db.name}.{info['name']} is a {info.get('type')}: only collections can be dumped")
        found.append(Collection(db.name, info["name"], dict(info.get("options", {})),
                                list(db[info["name"]].list_indexes())))
    return found


def raw_documents(db, name: str) -> Iterator[bytes]:
    """A collection's documents as raw BSON, in natural order. No sort: FerretDB 1.x sorts in memory (a 3.9 GB
    database made it grow to 14 GB and spend minutes); restore does not need an order."""
    for doc in db.get_collection(name, codec_options=RAW).find({}, batch_size=BATCH_DOCS):
        yield doc.raw


def write_archive(out: BinaryIO, database: str, server_version: str, colls: list[Collection],
                  documents, tally: dict | None = None) -> Summary:
    """The archive of these collections (written in name order; index specifications without "ns") to `out`;
    documents(name) gives a collection's raw BSON documents. Reads no database, so that the format is tested
    apart from one; returns what was written."""
    from common import __version__

    colls = sorted(colls, key=lambda c: c.name)
    w = _Out(out)
    w.write(MAGIC)
    w.write(bson.encode(SON([
        ("concurrent_collections", 1), ("version", ARCHIVE_VERSION), ("server_version", server_version),
        ("tool_version", f"aggregator-dr {__version__} snapshots.dbdump"),
    ])))
    for coll in colls:
        indexes = [_index_spec(ix) for ix in coll.indexes]
        w.write(bson.encode(SON([
            ("db", database), ("collection", coll.name),
            ("metadata", _metadata_json(coll.name, coll.options, indexes)),
            ("size", 0), ("type", "collection"),
        ])))
    w.write(TERMINATOR)
    summary = Summary(database=database)
    for coll in colls:
        summary.collections[coll.name] = _write_collection(database, coll.name, documents(coll.name), w, tally)
    out.flush()
    summary.sha256, summary.bytes = w.digest.hexdigest(), w.size
    return summary


def _write_collection(database: str, name: str, docs, w: _Out, tally: dict | None) -> int:
    """One collection's blocks: a data block (none when it is empty), then its EOF block. Returns its count."""
    crc = ThreadedCrc64()
    n = 0
    batch: list[bytes] = []
    batch_bytes = 0

    def flush():
        nonlocal batch, batch_bytes
        if batch:
            data = b"".join(batch)
            w.write(data)
            crc.update(data)
            batch, batch_bytes = [], 0

    try:
        for raw in docs:
            if n == 0:
                w.write(_ns_header(database, name, False))
            batch.append(raw)
            batch_bytes += len(raw)
            n += 1
            if tally is not None and name == manifest.REPORTS:
                manifest.tally_report(tally, RawBSONDocument(raw))
            if len(batch) >= BATCH_DOCS or batch_bytes >= BATCH_BYTES:
                flush()
        flush()
    except BaseException:
        crc.close()
        raise
    if n:
        w.write(TERMINATOR)
    w.write(_ns_header(database, name, True, crc.value()))
    w.write(TERMINATOR)
    return n


def dump(db, out: BinaryIO, tally: dict | None = None) -> dict[str, int]:
    """Write the whole database to `out`; returns the count per collection (dump_archive says more)."""
    return dump_archive(db, out, tally).collections


# ---------------------------------------------------------------------------------------------------------
# Reading


class _In:
    """The input, read exactly, hashed and counted as it passes (bytes given back with unread are not
    counted twice)."""

    def __init__(self, inp: BinaryIO):
        self.inp = inp
        self.digest = hashlib.sha256()
        self.size = 0
        self.head = b""

    def unread(self, data: bytes) -> None:
        self.head = data + self.head

    def read(self, n: int) -> bytes:
        buf, self.head = self.head[:n], self.head[n:]
        while len(buf) < n:
            more = self.inp.read(n - len(buf))
            if not more:
                break
            self.digest.update(more)
            self.size += len(more)
            buf += more
        return buf

    def exact(self, n: int, what: str) -> bytes:
        buf = self.read(n)
        if len(buf) < n:
            raise DumpError(f"the dump stream ends inside {what}: it is truncated")
        return buf


def _doc_or_terminator(src: _In, what: str, at_boundary: bool = False) -> bytes | None:
    """The next BSON document's bytes, None for a terminator, b"" at a clean end (only if at_boundary)."""
    head = src.read(4)
    if not head and at_boundary:
        return b""
    if len(head) < 4:
        raise DumpError(f"the dump stream ends inside {what}: it is truncated")
    if head == TERMINATOR:
        return None
    (size,) = struct.unpack("<i", head)
    if size < 5 or size > MAX_BSON:
        raise DumpError(f"the dump stream is corrupt: {size} is neither a BSON length nor a terminator ({what})")
    doc = head + src.exact(size - 4, what)
    if doc[-1] != 0:
        raise DumpError(f"the dump stream is corrupt: a BSON document of {what} does not end with a null byte")
    return doc


def _decode(raw: bytes, what: str) -> dict:
    try:
        return bson.decode(raw)
    except Exception as exc:  # bson.errors.InvalidBSON and friends
        raise DumpError(f"the dump stream is corrupt: {what} is not valid BSON ({exc})") from None


def _prelude_entry(raw: bytes) -> tuple[Collection, str]:
    cm = _decode(raw, "a collection's metadata")
    if not isinstance(cm.get("collection"), str) or not isinstance(cm.get("db", ""), str):
        raise DumpError("the dump stream is corrupt: a collection's metadata names no collection")
    kind = cm.get("type") or "collection"
    options, indexes = {}, []
    if cm.get("metadata"):
        try:
            meta = json_util.loads(cm["metadata"])
            options, indexes = dict(meta.get("options") or {}), list(meta["indexes"])
        except Exception as exc:  # not JSON, not Extended JSON, not an object
            raise DumpError(f"the dump stream is corrupt: metadata of {cm['collection']} is not a JSON object "
                            f"({type(exc).__name__}: {exc})") from None
        kind = meta.get("type") or kind
    return Collection(cm.get("db", ""), cm["collection"], options, indexes), kind


def _archive_events(src: _In) -> Iterator[tuple]:
    """Events of a mongodump archive whose magic number was read: ("collection", Collection) for every
    collection of the prelude, then ("doc", name, raw bytes) and ("end", name, count) once a collection's
    EOF block passed its CRC check. Returns normally only for a complete, intact stream."""
    raw = _doc_or_terminator(src, "the archive header")
    if raw is None:
        raise DumpError("the dump stream is corrupt: the archive has no header")
    header = _decode(raw, "the archive header")
    if header.get("version") != ARCHIVE_VERSION:
        raise DumpError(f"archive format version {header.get('version')!r} is not supported "
                        f"(want {ARCHIVE_VERSION!r})")
    prelude: list[Collection] = []
    while (raw := _doc_or_terminator(src, "the archive prelude")) is not None:
        coll, kind = _prelude_entry(raw)
        if kind != "collection":
            raise DumpError(f"{coll.database}.{coll.name} is a {kind}: only collections can be restored")
        if coll.name.startswith("system."):
            raise DumpError(f"{coll.database}.{coll.name}: system collections cannot be restored")
        prelude.append(coll)
    databases = {c.database for c in prelude}
    if len(databases) > 1:
        raise DumpError(f"the archive holds several databases ({', '.join(sorted(databases))}); "
                        "restore one database's archive")
    names = {c.name for c in prelude}
    if len(names) != len(prelude):
        raise DumpError("the dump stream is corrupt: its prelude names a collection twice")
    for coll in prelude:
        yield "collection", coll
    crcs: dict[str, Crc64] = {}
    counts: dict[str, int] = {}
    closed: set[str] = set()
    while True:
        raw = _doc_or_terminator(src, "a block header", at_boundary=True)
        if raw == b"":
            break
        if raw is None:
            raise DumpError("the dump stream is corrupt: a block without a header (two terminators)")
        h = _decode(raw, "a block header")
        name, database = h.get("collection"), h.get("db", "")
        if not isinstance(name, str) or not isinstance(database, str) or database not in databases \
                or name not in names:
            raise DumpError(f"the dump stream is corrupt: a block for {h.get('db')}.{name}, which its prelude "
                            "does not list")
        if name in closed:
            raise DumpError(f"the dump stream is corrupt: a block for {name} after its end")
        crc = crcs.setdefault(name, Crc64())
        counts.setdefault(name, 0)
        if h.get("EOF"):
            if _doc_or_terminator(src, f"the end block of {name}") is not None:
                raise DumpError(f"the dump stream is corrupt: documents in the end block of {name}")
            want = h.get("CRC")
            have = _signed(crc.value())
            if not isinstance(want, int):
                raise DumpError(f"the dump stream is corrupt: the end block of {name} has no CRC")
            if want != have:
                raise DumpError(f"the dump stream is corrupt: collection {name} fails its CRC check "
                                f"(the archive says {want}, its documents give {have})")
            closed.add(name)
            yield "end", name, counts[name]
            continue
        while (doc := _doc_or_terminator(src, f"documents of {name}")) is not None:
            crc.update(doc)
            counts[name] += 1
            yield "doc", name, doc
    missing = sorted(names - closed)
    if missing:
        raise DumpError(f"the dump stream ends before the end of {', '.join(missing)}: it is truncated")


def _legacy_events(src: _In, first: bytes) -> Iterator[tuple]:
    """The same events from a version 1 stream (records H/C/D/E/Z, see the module docstring)."""
    digest = hashlib.sha256()

    def record(kind: bytes | None = None) -> tuple[bytes, bytes]:
        if kind is None:
            kind = src.read(1)
            if not kind:
                raise DumpError("the dump stream ends without its end record: it is truncated")
        if kind not in b"HCDEZ":
            raise DumpError(f"the dump stream is corrupt (unknown record type {kind!r})")
        size_bytes = src.exact(4, "a record")
        (size,) = struct.unpack("<i", size_bytes)
        if size < 5 or size > 48 << 20:
            raise DumpError(f"the dump stream is corrupt (record of {size} bytes)")
        return kind, size_bytes + src.exact(size - 4, "a record")

    kind, raw = record(first)
    header = _decode(raw, "the header")
    if header.get("format") != LEGACY_FORMAT or header.get("version") != 1:
        raise DumpError("this is not a database dump (neither a mongodump archive nor an aggregator-dr dump)")
    digest.update(kind + raw)
    counts: dict[str, int] = {}
    current = None
    while True:
        kind, raw = record()
        if kind == b"D":
            if current is None:
                raise DumpError("the dump stream is corrupt (document before its collection)")
            counts[current] += 1
            digest.update(kind + raw)
            yield "doc", current, raw
            continue
        meta = _decode(raw, "a record")
        if kind == b"Z":
            if meta.get("sha256") != digest.hexdigest():
                raise DumpError("the dump stream is corrupt: its sha256 does not match its content")
            if meta.get("collections") != counts:
                raise DumpError(f"the dump's counts {meta.get('collections')} do not match what it holds {counts}")
            return
        digest.update(kind + raw)
        if kind == b"C":
            current = meta["name"]
            counts[current] = 0
            yield "collection", Collection(header.get("database", ""), current, dict(meta.get("options", {})),
                                           list(meta.get("indexes", [])))
        elif kind == b"E":
            if meta["count"] != counts.get(meta["name"]):
                raise DumpError(f"collection {meta['name']}: dump says {meta['count']} documents, "
                                f"stream held {counts.get(meta['name'])}")
            yield "end", meta["name"], meta["count"]
        else:
            raise DumpError("the dump stream is corrupt (a second header)")


def events(inp: BinaryIO, expect_sha256: str | None = None) -> Iterator[tuple]:
    """Events of a whole stream (see _archive_events), the last one ("summary", Summary) after every check
    passed, including the stream's sha256 against expect_sha256 when given. Anything wrong raises DumpError."""
    src = _In(inp)
    first = src.read(4)
    if first == MAGIC:
        it, fmt = _archive_events(src), FORMAT
    elif first[:1] == b"H":
        src.unread(first[1:])  # the record reader reads the size itself
        it, fmt = _legacy_events(src, b"H"), LEGACY_FORMAT
    elif not first:
        raise DumpError("the dump stream is empty")
    elif len(first) < 4 and MAGIC.startswith(first):
        raise DumpError("the dump stream ends inside its magic number: it is truncated")
    else:
        raise DumpError("this is not a database dump: it does not begin with the mongodump archive magic number")
    summary = Summary(database="", format=fmt)
    for ev in it:
        if ev[0] == "collection":
            summary.database = summary.database or ev[1].database
            summary.collections[ev[1].name] = 0
        elif ev[0] == "end":
            summary.collections[ev[1]] = ev[2]
        yield ev
    summary.sha256, summary.bytes = src.digest.hexdigest(), src.size
    if expect_sha256 and summary.sha256 != expect_sha256:
        raise DumpError(f"the dump stream is corrupt: its sha256 {summary.sha256} is not the one recorded when it "
                        f"was written ({expect_sha256})")
    yield "summary", summary


def scan(inp: BinaryIO, tally: dict | None = None, expect_sha256: str | None = None) -> Summary:
    """Read a whole stream without a database; returns its Summary if it is complete and intact. tally, when
    given, receives the reports per test_name/country as they pass."""
    for ev in events(inp, expect_sha256):
        if ev[0] == "doc" and tally is not None and ev[1] == manifest.REPORTS:
            manifest.tally_report(tally, bson.decode(ev[2]))
        elif ev[0] == "summary":
            return ev[1]
    raise DumpError("the dump stream ends early: it is truncated")  # unreachable: events raises


def verify(inp: BinaryIO, tally: dict | None = None, expect_sha256: str | None = None) -> dict[str, int]:
    """Read a whole dump stream without a database; returns its count per collection if it is intact."""
    return scan(inp, tally, expect_sha256).collections


def restore(db, inp: BinaryIO, drop: bool = False, expect_sha256: str | None = None) -> dict[str, int]:
    """Restore a dump stream (ours or a real mongodump archive of one database) into db, whatever the
    archive's database was called. Refuses a collection holding documents unless drop=True (checked for all
    collections before the first write, for an archive); inserts with one writer; checks each collection's
    acknowledged writes against the archive's count; creates the indexes once the whole stream passed its
    checks. Returns the documents per collection whose writes the database acknowledged."""
    batch: list[RawBSONDocument] = []
    batch_bytes = 0
    batch_name: str | None = None
    pending: list[Collection] = []
    collections: list[Collection] = []
    written: dict[str, int] = {}
    existing = set(db.list_collection_names())

    def prepare():
        """The collections announced so far: every one checked before any is dropped or created."""
        for coll in pending:
            if coll.name in existing and not drop and db[coll.name].find_one({}, {"_id": 1}) is not None:
                raise DumpError(f"collection {db.name}.{coll.name} is not empty; restore with --drop to replace it")
        for coll in pending:
            if coll.name in existing and drop:
                db.drop_collection(coll.name)
                existing.discard(coll.name)
            if coll.name not in existing:
                db.create_collection(coll.name, **coll.options)
                existing.add(coll.name)
            collections.append(coll)
            written[coll.name] = 0
        pending.clear()

    def flush():
        nonlocal batch, batch_bytes
        if batch:
            # Ordered: any failed write raises; acknowledged means every document of the batch is stored.
            # (inserted_ids lists no RawBSONDocument ids, so count the batch.)
            if db.get_collection(batch_name, codec_options=RAW).insert_many(batch, ordered=True).acknowledged:
                written[batch_name] += len(batch)
            batch, batch_bytes = [], 0

    for ev in events(inp, expect_sha256):
        kind = ev[0]
        if kind == "collection":
            pending.append(ev[1])
            continue
        if pending:
            prepare()
        if kind == "doc":
            if ev[1] != batch_name:
                flush()
                batch_name = ev[1]
            batch.append(RawBSONDocument(ev[2]))
            batch_bytes += len(ev[2])
            if len(batch) >= BATCH_DOCS or batch_bytes >= BATCH_BYTES:
                flush()
        elif kind == "end":
            if ev[1] == batch_name:
                flush()
            if written.get(ev[1], 0) != ev[2]:
                raise DumpError(f"collection {db.name}.{ev[1]}: the database acknowledged {written.get(ev[1], 0)} "
                                f"documents, the dump holds {ev[2]}")
        elif kind == "summary":
            for coll in collections:
                _create_indexes(db[coll.name], coll.indexes)
            return written
    raise DumpError("the dump stream ends early: it is truncated")  # unreachable: events raises


def _create_indexes(coll, indexes: list) -> None:
    """Create the indexes the collection lacks, one at a time. One the collection has already (the schema's,
    made by the owner before a restore) is left alone if its key is the same, refused otherwise. (FerretDB
    1.24 drops the connection when one createIndexes names two indexes that exist.)"""
    from pymongo import IndexModel

    have = {ix["name"]: ix for ix in coll.list_indexes()}
    for ix in indexes:
        spec = dict(ix)
        name = spec.get("name")
        if name == "_id_":
            continue  # every collection has it
        key = list(spec.pop("key").items())
        if name in have:
            if list(have[name]["key"].items()) != key or bool(have[name].get("unique")) != bool(spec.get("unique")):
                raise DumpError(f"collection {coll.full_name} already has an index {name} unlike the dump's "
                                f"({dict(have[name])} against {ix}); restore with --drop to replace the collection")
            continue
        for unwanted in ("v", "ns"):
            spec.pop(unwanted, None)
        coll.create_indexes([IndexModel(key, **spec)])


# ---------------------------------------------------------------------------------------------------------
# Command line


def _connect(args):
    with open(args.password_file, encoding="utf-8") as fh:
        password = fh.readline().strip()
    client = dbconn.client(args.host, args.port, args.user, password, tls_ca_file=args.tls_ca_file)
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
    p.add_argument("--tls-ca-file", help="connect over TLS, verifying the server against this CA certificate")
    p.add_argument("--drop", action="store_true", help="restore: replace collections that hold documents")
    p.add_argument("--counts-file", help="write the count per collection (JSON) here after a complete run")
    p.add_argument("--sha256", help="verify, restore: the stream's sha256 as its dump recorded it")
    args = p.parse_args(argv)
    if args.action == "verify":
        try:
            summary = scan(sys.stdin.buffer, expect_sha256=args.sha256)
        except DumpError as exc:
            print(f"dbdump: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"database": summary.database, "collections": summary.collections,
                          "sha256": summary.sha256, "bytes": summary.bytes, "format": summary.format}))
        return 0
    if not args.password_file:
        p.error("--password-file is required for dump and restore")
    try:
        client, db = _connect(args)
    except OSError as exc:
        print(f"dbdump: cannot read the password file: {exc}", file=sys.stderr)
        return 2
    extra: dict = {}
    try:
        if args.action == "dump":
            if sys.stdout.isatty():
                print("dbdump: refusing to write a binary dump to a terminal; redirect stdout", file=sys.stderr)
                return 2
            tally: dict = {}
            summary = dump_archive(db, sys.stdout.buffer, tally)
            counts = summary.collections
            # The counts file is the manifest's database part (snapshots/results.py DatabaseContent): checks
            # and restores refuse a stream whose sha256 differs (damage the CRCs do not cover).
            extra = {"reports_by_test_country": tally, "sha256": summary.sha256}
            print(f"dbdump: {summary.bytes} bytes, sha256 {summary.sha256}", file=sys.stderr)
        else:
            counts = restore(db, sys.stdin.buffer, drop=args.drop, expect_sha256=args.sha256)
    except DumpError as exc:
        print(f"dbdump: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # pymongo errors: connection, authentication
        print(f"dbdump: database error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if args.counts_file:
        with open(args.counts_file, "w") as fh:
            json.dump({"database": args.database, "collections": counts, **extra}, fh)
    total = sum(counts.values())
    print(f"dbdump: {args.action} of {args.database}: {len(counts)} collections, {total} documents "
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
