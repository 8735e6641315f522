"""Dump streams for the tests of snapshots/dbdump.py, made without a database: the archive our writer makes of
known content, a real mongodump archive, interleaved blocks, a stream of the previous format. The unit tests
read them (tests/unit/snapshots/test_dbdump_stream.py); the integration tests restore them into the real
database (tests/integration/test_dbdump_db.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import struct

import bson
from bson.son import SON

from snapshots import dbdump

# The content a dump writes, as the database would give it: collections (options, index specifications as the
# server lists them) and each one's documents as raw BSON. The writer reads no database; dump_archive over the
# real one is in tests/integration/test_dbdump_db.py.

ID_INDEX = SON([("v", 2), ("key", SON([("_id", 1)])), ("name", "_id_")])


def source(measurements=30) -> tuple[list[dbdump.Collection], dict[str, list[bytes]]]:
    reports = [{"_id": f"r{i}", "test_name": "web_connectivity", "probe_cc": "IT", "entries": 2} for i in range(4)]
    meas = [{"_id": i, "input": f"http://example.org/{i}", "pad": "x" * (i * 7)} for i in range(measurements)]
    colls = [
        dbdump.Collection("aggregator", "reports", {}, [ID_INDEX, SON([
            ("v", 2), ("key", SON([("test_name", 1), ("probe_cc", 1)])), ("name", "tc"), ("ns", "aggregator.reports")])]),
        dbdump.Collection("aggregator", "measurements", {}, [ID_INDEX, SON([
            ("v", 2), ("key", SON([("input", 1)])), ("name", "input_1"), ("unique", True)])]),
        dbdump.Collection("aggregator", "empty", {}, [ID_INDEX]),
    ]
    docs = {"reports": [bson.encode(d) for d in reports], "measurements": [bson.encode(d) for d in meas],
            "empty": []}
    return colls, docs


def archive(measurements=30) -> tuple[bytes, dbdump.Summary, dict[str, list[bytes]]]:
    """(the archive of source(measurements), what the writer said it wrote, the documents that went in)."""
    colls, docs = source(measurements)
    out = io.BytesIO()
    summary = dbdump.write_archive(out, "aggregator", "7.0.42", colls, docs.__getitem__, {})
    return out.getvalue(), summary, docs


def parse(data: bytes):
    """Our own independent walk of the archive layout: (header, prelude entries, blocks)."""
    assert data[:4] == bytes.fromhex("6de29981")
    pos = 4

    def doc():
        nonlocal pos
        (n,) = struct.unpack_from("<i", data, pos)
        if n == -1:
            pos += 4
            return None
        d = data[pos:pos + n]
        pos += n
        return d

    header = bson.decode(doc())
    prelude = []
    while (d := doc()) is not None:
        prelude.append(bson.decode(d))
    blocks = []
    while pos < len(data):
        h = bson.decode(doc())
        docs = []
        while (d := doc()) is not None:
            docs.append(d)
        blocks.append((h, docs))
    return header, prelude, blocks


# `mongodump --archive` (mongo-tools 8fa3cfc, 2026-08-21) of a FerretDB 1.24 database: measurements (7
# documents, a unique index), reports (5, a compound index), empty; 4 collections dumped concurrently, a
# data block before each EOF block, also for the empty collection, and UUIDs in the metadata.
REAL_MONGODUMP = base64.b64decode(
    "beKZgXwAAAAQY29uY3VycmVudF9jb2xsZWN0aW9ucwAEAAAAAnZlcnNpb24ABAAAADAuMQACc2VydmVyX3ZlcnNpb24ABwAAADcu"
    "MC40MgACdG9vbF92ZXJzaW9uAB0AAABidWlsdC13aXRob3V0LXZlcnNpb24tc3RyaW5nAABpAQAAAmRiAAsAAABhZ2dyZWdhdG9y"
    "AAJjb2xsZWN0aW9uAA0AAABtZWFzdXJlbWVudHMAAm1ldGFkYXRhAAcBAAB7ImluZGV4ZXMiOlt7InYiOnsiJG51bWJlckludCI6"
    "IjIifSwia2V5Ijp7Il9pZCI6eyIkbnVtYmVySW50IjoiMSJ9fSwibmFtZSI6Il9pZF8ifSx7InYiOnsiJG51bWJlckludCI6IjIi"
    "fSwia2V5Ijp7IngiOnsiJG51bWJlckludCI6IjEifX0sIm5hbWUiOiJ4XzEiLCJ1bmlxdWUiOnRydWV9XSwidXVpZCI6IjYzNGYz"
    "ZDJiMWExOTRlMzk5YjFkYThmNmYzNTJhZmM5IiwiY29sbGVjdGlvbk5hbWUiOiJtZWFzdXJlbWVudHMiLCJ0eXBlIjoiY29sbGVj"
    "dGlvbiJ9ABBzaXplAAAAAAACdHlwZQALAAAAY29sbGVjdGlvbgAAdQEAAAJkYgALAAAAYWdncmVnYXRvcgACY29sbGVjdGlvbgAI"
    "AAAAcmVwb3J0cwACbWV0YWRhdGEAGAEAAHsiaW5kZXhlcyI6W3sidiI6eyIkbnVtYmVySW50IjoiMiJ9LCJrZXkiOnsiX2lkIjp7"
    "IiRudW1iZXJJbnQiOiIxIn19LCJuYW1lIjoiX2lkXyJ9LHsidiI6eyIkbnVtYmVySW50IjoiMiJ9LCJrZXkiOnsidGVzdF9uYW1l"
    "Ijp7IiRudW1iZXJJbnQiOiIxIn0sImNvdW50cnkiOnsiJG51bWJlckludCI6IjEifX0sIm5hbWUiOiJ0YyJ9XSwidXVpZCI6Ijg4"
    "NWJmMTVhZTdlMjQ3ZTlhM2E0ZDM1ODc0MzVkMTM4IiwiY29sbGVjdGlvbk5hbWUiOiJyZXBvcnRzIiwidHlwZSI6ImNvbGxlY3Rp"
    "b24ifQAQc2l6ZQAAAAAAAnR5cGUACwAAAGNvbGxlY3Rpb24AAAgBAAACZGIACwAAAGFnZ3JlZ2F0b3IAAmNvbGxlY3Rpb24ABgAA"
    "AGVtcHR5AAJtZXRhZGF0YQCtAAAAeyJpbmRleGVzIjpbeyJ2Ijp7IiRudW1iZXJJbnQiOiIyIn0sImtleSI6eyJfaWQiOnsiJG51"
    "bWJlckludCI6IjEifX0sIm5hbWUiOiJfaWRfIn1dLCJ1dWlkIjoiMjFkNjhlYTVlYjZmNDQ2YWI3MzI4OTViOTVhMTY3ZTQiLCJj"
    "b2xsZWN0aW9uTmFtZSI6ImVtcHR5IiwidHlwZSI6ImNvbGxlY3Rpb24ifQAQc2l6ZQAAAAAAAnR5cGUACwAAAGNvbGxlY3Rpb24A"
    "AP////9DAAAAAmRiAAsAAABhZ2dyZWdhdG9yAAJjb2xsZWN0aW9uAAgAAAByZXBvcnRzAAhFT0YAABJDUkMAAAAAAAAAAAAAOwAA"
    "AAJfaWQAAwAAAHIwAAJ0ZXN0X25hbWUABAAAAHdlYgACY291bnRyeQADAAAASVQAEG4AAAAAAAA7AAAAAl9pZAADAAAAcjEAAnRl"
    "c3RfbmFtZQAEAAAAd2ViAAJjb3VudHJ5AAMAAABJVAAQbgABAAAAADsAAAACX2lkAAMAAAByMgACdGVzdF9uYW1lAAQAAAB3ZWIA"
    "AmNvdW50cnkAAwAAAElUABBuAAIAAAAAOwAAAAJfaWQAAwAAAHIzAAJ0ZXN0X25hbWUABAAAAHdlYgACY291bnRyeQADAAAASVQA"
    "EG4AAwAAAAA7AAAAAl9pZAADAAAAcjQAAnRlc3RfbmFtZQAEAAAAd2ViAAJjb3VudHJ5AAMAAABJVAAQbgAEAAAAAP////9DAAAA"
    "AmRiAAsAAABhZ2dyZWdhdG9yAAJjb2xsZWN0aW9uAAgAAAByZXBvcnRzAAhFT0YAARJDUkMATnZdza99iIkA/////0gAAAACZGIA"
    "CwAAAGFnZ3JlZ2F0b3IAAmNvbGxlY3Rpb24ADQAAAG1lYXN1cmVtZW50cwAIRU9GAAASQ1JDAAAAAAAAAAAAACUAAAAHX2lkAGsL"
    "hcmpSVNjypBWZhB4AAAAAAACcwABAAAAAAAmAAAAB19pZABrC4XJqUlTY8qQVmcQeAABAAAAAnMAAgAAAHkAACcAAAAHX2lkAGsL"
    "hcmpSVNjypBWaBB4AAIAAAACcwADAAAAeXkAACgAAAAHX2lkAGsLhcmpSVNjypBWaRB4AAMAAAACcwAEAAAAeXl5AAApAAAAB19p"
    "ZABrC4XJqUlTY8qQVmoQeAAEAAAAAnMABQAAAHl5eXkAACoAAAAHX2lkAGsLhcmpSVNjypBWaxB4AAUAAAACcwAGAAAAeXl5eXkA"
    "ACsAAAAHX2lkAGsLhcmpSVNjypBWbBB4AAYAAAACcwAHAAAAeXl5eXl5AAD/////SAAAAAJkYgALAAAAYWdncmVnYXRvcgACY29s"
    "bGVjdGlvbgANAAAAbWVhc3VyZW1lbnRzAAhFT0YAARJDUkMA1DmxQ20h8fEA/////0EAAAACZGIACwAAAGFnZ3JlZ2F0b3IAAmNv"
    "bGxlY3Rpb24ABgAAAGVtcHR5AAhFT0YAABJDUkMAAAAAAAAAAAAA/////0EAAAACZGIACwAAAGFnZ3JlZ2F0b3IAAmNvbGxlY3Rp"
    "b24ABgAAAGVtcHR5AAhFT0YAARJDUkMAAAAAAAAAAAAA/////w=="
)


def interleaved_archive() -> tuple[bytes, dict[str, list[bytes]]]:
    """An archive of database x as mongodump writes the collections it dumps in parallel: interleaved blocks
    of a (5 documents, an index c_1) and b (3); returns it and the documents of each collection."""
    docs = {"a": [bson.encode({"_id": i, "c": "a"}) for i in range(5)],
            "b": [bson.encode({"_id": i, "c": "b"}) for i in range(3)]}
    term = dbdump.TERMINATOR
    # a's metadata lists its index as an older server does (with v and ns, which FerretDB refuses on creation);
    # b has none at all.
    indexes = {"a": dbdump._metadata_json("a", {}, [SON([("v", 2), ("key", SON([("c", 1)])), ("name", "c_1"),
                                                         ("ns", "x.a")])]), "b": ""}
    meta = [bson.encode(SON([("db", "x"), ("collection", n), ("metadata", indexes[n]), ("size", 0),
                             ("type", "collection")])) for n in docs]
    out = dbdump.MAGIC + bson.encode({"version": "0.1", "server_version": "7.0.0"}) + b"".join(meta) + term
    for name, part in (("a", docs["a"][:2]), ("b", docs["b"][:1]), ("a", docs["a"][2:]), ("b", docs["b"][1:])):
        out += dbdump._ns_header("x", name, False) + b"".join(part) + term
    for name in docs:
        out += dbdump._ns_header("x", name, True, dbdump.crc64(b"".join(docs[name]))) + term
    return out, docs


def legacy_stream(docs=3) -> bytes:
    """A stream of version 1 of this tool (records H/C/D/E/Z)."""
    body = b"H" + bson.encode({"format": dbdump.LEGACY_FORMAT, "version": 1, "database": "aggregator"})
    body += b"C" + bson.encode({"name": "measurements", "options": {}, "indexes": [
        {"v": 2, "key": {"input": 1}, "name": "input_1"}]})
    for i in range(docs):
        body += b"D" + bson.encode({"_id": i, "input": f"http://example.org/{i}"})
    body += b"E" + bson.encode({"name": "measurements", "count": docs})
    return body + b"Z" + bson.encode({"collections": {"measurements": docs},
                                      "sha256": hashlib.sha256(body).hexdigest()})
