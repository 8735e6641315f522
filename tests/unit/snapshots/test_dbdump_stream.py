"""The database dump in mongodump's archive format, without a database: our writer (over a fake database),
the reader's checks (truncation at every cut, corruption, foreign bytes), CRC-64, a real mongodump archive,
interleaved blocks and the previous stream format. Real databases and the real mongo-tools are in
tests/integration/test_mongo_tools.py and tests/integration/test_backup_image.py."""

import base64
import io
import random
import struct

import bson
import pytest
from bson.raw_bson import RawBSONDocument
from bson.son import SON

from snapshots import dbdump

# ---------------------------------------------------------------------------------------------------------
# A fake database: what dbdump.dump_archive reads and dbdump.restore writes.


class FakeCollection:
    def __init__(self, name, docs=(), indexes=(), options=None):
        self.name = name
        self.docs = [bson.encode(d) if isinstance(d, dict) else d for d in docs]
        self.indexes = [SON([("v", 2), ("key", SON([("_id", 1)])), ("name", "_id_")])] + list(indexes)
        self.options = options or {}
        self.created_indexes = []

    def list_indexes(self):
        return [SON(ix) for ix in self.indexes]

    def find(self, query, batch_size=None):
        assert query == {}
        return (RawBSONDocument(raw) for raw in self.docs)

    def find_one(self, query, projection=None):
        return bson.decode(self.docs[0]) if self.docs else None

    def insert_many(self, docs, ordered=True):
        self.docs.extend(d.raw for d in docs)
        return type("Result", (), {"acknowledged": True})()

    @property
    def full_name(self):
        return f"db.{self.name}"

    def create_indexes(self, models):
        self.created_indexes.extend(m.document for m in models)
        self.indexes.extend(m.document for m in models)


class FakeDb:
    def __init__(self, name="aggregator", collections=()):
        self.name = name
        self.colls = {c.name: c for c in collections}
        self.client = type("Client", (), {"server_info": staticmethod(lambda: {"version": "7.0.42"})})()

    def list_collections(self):
        return [{"name": n, "type": "collection", "options": c.options} for n, c in self.colls.items()]

    def list_collection_names(self):
        return list(self.colls)

    def __getitem__(self, name):
        return self.colls[name]

    def get_collection(self, name, codec_options=None):
        return self.colls[name]

    def create_collection(self, name, **options):
        self.colls[name] = FakeCollection(name, options=options)
        self.colls[name].indexes = self.colls[name].indexes[:1]

    def drop_collection(self, name):
        del self.colls[name]



def source_db(measurements=30):
    reports = [{"_id": f"r{i}", "test_name": "web_connectivity", "probe_cc": "IT", "entries": 2} for i in range(4)]
    meas = [{"_id": i, "input": f"http://example.org/{i}", "pad": "x" * (i * 7)} for i in range(measurements)]
    return FakeDb(collections=[
        FakeCollection("reports", reports, [SON([("v", 2), ("key", SON([("test_name", 1), ("probe_cc", 1)])),
                                                  ("name", "tc"), ("ns", "aggregator.reports")])]),
        FakeCollection("measurements", meas, [SON([("v", 2), ("key", SON([("input", 1)])), ("name", "input_1"),
                                                    ("unique", True)])]),
        FakeCollection("empty"),
    ])


def archive(db=None) -> tuple[bytes, dbdump.Summary]:
    out = io.BytesIO()
    summary = dbdump.dump_archive(db or source_db(), out, {})
    return out.getvalue(), summary


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


# ---------------------------------------------------------------------------------------------------------
# CRC-64


def test_crc64_is_go_crc64_ecma():
    assert dbdump.crc64(b"123456789") == 0x995DC9BBDF1939FA  # CRC-64/XZ check value
    assert dbdump.crc64(b"") == 0


@pytest.mark.parametrize("size", [1, 7, 8, 127, 128, 129, 2047, 2048, 5000, dbdump.Crc64.BLOCK * 2 + 12345])
def test_crc64_lanes_equal_the_plain_loop(size):
    data = random.Random(size).randbytes(size)
    assert dbdump.crc64(data) == dbdump._crc_loop(dbdump._ONES, data) ^ dbdump._ONES


def test_crc64_is_the_same_whatever_the_pieces():
    rng = random.Random(7)
    data = rng.randbytes(dbdump.Crc64.BLOCK * 3 + 999)
    c = dbdump.Crc64()
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 5, 100, 4096, 70000, dbdump.Crc64.BLOCK])
        c.update(data[pos:pos + step])
        pos += step
    assert c.value() == dbdump.crc64(data)


# ---------------------------------------------------------------------------------------------------------
# What we write


def test_archive_layout_is_mongodumps():
    data, summary = archive()
    header, prelude, blocks = parse(data)
    assert header["version"] == "0.1" and header["server_version"] == "7.0.42"
    assert [p["collection"] for p in prelude] == ["empty", "measurements", "reports"]
    assert all(p["db"] == "aggregator" and p["type"] == "collection" for p in prelude)
    meta = {p["collection"]: bson.json_util.loads(p["metadata"]) for p in prelude}
    assert [ix["name"] for ix in meta["reports"]["indexes"]] == ["_id_", "tc"]
    assert all("ns" not in ix for m in meta.values() for ix in m["indexes"])
    assert "uuid" not in meta["reports"]
    # One data block per non-empty collection, then its EOF block with the CRC of its documents.
    assert [(h["collection"], h["EOF"], len(docs)) for h, docs in blocks] == [
        ("empty", True, 0), ("measurements", False, 30), ("measurements", True, 0),
        ("reports", False, 4), ("reports", True, 0)]
    for h, _ in blocks:
        assert isinstance(h["CRC"], int) and list(h) == ["db", "collection", "EOF", "CRC"]
    assert blocks[2][0]["CRC"] == dbdump._signed(dbdump.crc64(b"".join(blocks[1][1])))
    assert blocks[0][0]["CRC"] == 0
    assert summary.collections == {"empty": 0, "measurements": 30, "reports": 4}
    assert summary.bytes == len(data)


def test_documents_pass_byte_for_byte_in_natural_order():
    src = source_db()
    data, _ = archive(src)
    got = {}
    for ev in dbdump.events(io.BytesIO(data)):
        if ev[0] == "doc":
            got.setdefault(ev[1], []).append(ev[2])
    assert got == {"measurements": src["measurements"].docs, "reports": src["reports"].docs}


def test_scan_returns_counts_sha256_and_the_tally():
    data, written = archive()
    tally = {}
    summary = dbdump.scan(io.BytesIO(data), tally, expect_sha256=written.sha256)
    assert summary.collections == written.collections
    assert (summary.sha256, summary.bytes, summary.database) == (written.sha256, len(data), "aggregator")
    assert tally and sum(v[0] for v in tally.values()) == 4
    assert dbdump.verify(io.BytesIO(data)) == {"empty": 0, "measurements": 30, "reports": 4}


def test_round_trip_through_restore():
    src = source_db()
    data, _ = archive(src)
    dst = FakeDb("elsewhere")
    assert dbdump.restore(dst, io.BytesIO(data)) == {"empty": 0, "measurements": 30, "reports": 4}
    for name in ("measurements", "reports"):
        assert dst[name].docs == src[name].docs
    assert "empty" in dst.colls
    assert [ix["name"] for ix in dst["reports"].created_indexes] == ["tc"]
    assert dst["measurements"].created_indexes[0]["unique"] is True
    assert all("ns" not in ix and "v" not in ix for c in dst.colls.values() for ix in c.created_indexes)


def test_restore_refuses_a_filled_collection_before_writing_anything():
    data, _ = archive()
    dst = FakeDb(collections=[FakeCollection("reports", [{"_id": "old"}])])
    with pytest.raises(dbdump.DumpError, match="not empty; restore with --drop"):
        dbdump.restore(dst, io.BytesIO(data))
    assert list(dst.colls) == ["reports"] and len(dst["reports"].docs) == 1
    assert dbdump.restore(dst, io.BytesIO(data), drop=True)["reports"] == 4
    assert len(dst["reports"].docs) == 4


def test_restore_keeps_indexes_the_target_has_and_refuses_different_ones():
    """A restore after the owner made the schema: an index already there with the same key is left alone
    (creating it again would make FerretDB 1.24 drop the connection), one with another key is refused."""
    data, _ = archive()
    same = SON([("v", 2), ("key", SON([("test_name", 1), ("probe_cc", 1)])), ("name", "tc")])
    dst = FakeDb("target", [FakeCollection("reports", indexes=[same]), FakeCollection("measurements")])
    dbdump.restore(dst, io.BytesIO(data))
    assert dst["reports"].created_indexes == []
    assert [ix["name"] for ix in dst["measurements"].created_indexes] == ["input_1"]
    other = SON([("v", 2), ("key", SON([("test_name", -1)])), ("name", "tc")])
    dst = FakeDb("target", [FakeCollection("reports", indexes=[other])])
    with pytest.raises(dbdump.DumpError, match="already has an index tc unlike the dump's"):
        dbdump.restore(dst, io.BytesIO(data))


# ---------------------------------------------------------------------------------------------------------
# What we refuse


def test_a_stream_cut_anywhere_is_refused_as_truncated():
    data, _ = archive(source_db(measurements=6))
    for cut in range(len(data)):
        with pytest.raises(dbdump.DumpError, match="truncated|empty"):
            dbdump.scan(io.BytesIO(data[:cut]))


def test_restore_of_a_cut_stream_creates_no_index():
    data, _ = archive()
    dst = FakeDb("target")
    with pytest.raises(dbdump.DumpError, match="truncated"):
        dbdump.restore(dst, io.BytesIO(data[:-9]))
    assert all(not c.created_indexes for c in dst.colls.values())


def test_a_flipped_byte_in_any_document_fails_its_crc():
    data, _ = archive(source_db(measurements=5))
    _, _, blocks = parse(data)
    docs = [d for _, ds in blocks for d in ds]
    for d in docs:
        start = data.index(d)
        for pos in range(start + 4, start + len(d) - 1):  # the length and the final null are framing
            bad = bytearray(data)
            bad[pos] ^= 0x01
            with pytest.raises(dbdump.DumpError, match="corrupt"):
                dbdump.scan(io.BytesIO(bytes(bad)))


def test_any_flipped_byte_is_refused_against_the_recorded_sha256():
    data, written = archive(source_db(measurements=3))
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x40
        with pytest.raises(dbdump.DumpError):
            dbdump.scan(io.BytesIO(bytes(bad)), expect_sha256=written.sha256)


def test_a_flipped_byte_anywhere_raises_nothing_but_dump_error():
    """Without the recorded sha256, a flip in what the CRCs do not cover (the header, the metadata's index
    specifications: the sha256 protects those) may pass, as long as every collection, document and count
    read is unchanged; any other damage is refused as a DumpError, never with another exception."""
    data, _ = archive(source_db(measurements=3))

    def content(stream):
        return [ev[1].name if ev[0] == "collection" else ev for ev in dbdump.events(io.BytesIO(stream))
                if ev[0] != "summary"]

    original = content(data)
    for pos in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[pos] ^= mask
            try:
                assert content(bytes(bad)) == original, pos
            except dbdump.DumpError:
                pass


def test_garbage_after_the_end_is_refused():
    data, _ = archive()
    for tail in (b"\x00", b"\xff\xff\xff\xff", bson.encode({"db": "aggregator", "collection": "reports"})):
        with pytest.raises(dbdump.DumpError, match="corrupt|truncated"):
            dbdump.scan(io.BytesIO(data + tail))


@pytest.mark.parametrize("foreign", [
    b"not a dump at all", b"\x1f\x8b\x08\x00\x00\x00\x00\x00", b'{"collections": {}}',
    bson.encode({"format": "something"}), b"H\x05\x00\x00\x00\x00", random.Random(64).randbytes(64) + b"x",
])
def test_foreign_bytes_are_refused(foreign):
    with pytest.raises(dbdump.DumpError, match="not a database dump|corrupt|truncated"):
        dbdump.scan(io.BytesIO(foreign))


def test_a_block_for_a_collection_the_prelude_does_not_list_is_refused():
    data, _ = archive()
    prelude_end = data.index(dbdump.TERMINATOR) + 4
    renamed = data[:prelude_end] + data[prelude_end:].replace(b"measurements", b"measurementz")
    with pytest.raises(dbdump.DumpError, match="does not list"):
        dbdump.scan(io.BytesIO(renamed))


# ---------------------------------------------------------------------------------------------------------
# What others write: a real mongodump archive, interleaved blocks, our previous format

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


def test_a_real_mongodump_archive_is_read_and_restored():
    assert dbdump.verify(io.BytesIO(REAL_MONGODUMP)) == {"measurements": 7, "reports": 5, "empty": 0}
    dst = FakeDb("aggregator")
    assert dbdump.restore(dst, io.BytesIO(REAL_MONGODUMP)) == {"measurements": 7, "reports": 5, "empty": 0}
    assert [ix["name"] for ix in dst["measurements"].created_indexes] == ["x_1"]
    assert [bson.decode(d)["x"] for d in dst["measurements"].docs] == list(range(7))


def test_a_real_mongodump_archive_cut_or_flipped_is_refused():
    for cut in range(0, len(REAL_MONGODUMP), 7):
        with pytest.raises(dbdump.DumpError):
            dbdump.scan(io.BytesIO(REAL_MONGODUMP[:cut]))
    where = REAL_MONGODUMP.index(b"yyyy")
    bad = bytearray(REAL_MONGODUMP)
    bad[where] ^= 0x01
    with pytest.raises(dbdump.DumpError, match="CRC"):
        dbdump.scan(io.BytesIO(bytes(bad)))


def test_interleaved_blocks_of_several_collections_are_read():
    """mongodump writes the collections it dumps in parallel as interleaved blocks."""
    docs = {"a": [bson.encode({"_id": i, "c": "a"}) for i in range(5)],
            "b": [bson.encode({"_id": i, "c": "b"}) for i in range(3)]}
    term = dbdump.TERMINATOR
    meta = [bson.encode(SON([("db", "x"), ("collection", n), ("metadata", ""), ("size", 0), ("type", "collection")]))
            for n in docs]
    out = dbdump.MAGIC + bson.encode({"version": "0.1", "server_version": "7.0.0"}) + b"".join(meta) + term
    for name, part in (("a", docs["a"][:2]), ("b", docs["b"][:1]), ("a", docs["a"][2:]), ("b", docs["b"][1:])):
        out += dbdump._ns_header("x", name, False) + b"".join(part) + term
    for name in docs:
        out += dbdump._ns_header("x", name, True, dbdump.crc64(b"".join(docs[name]))) + term
    dst = FakeDb("target")
    assert dbdump.restore(dst, io.BytesIO(out)) == {"a": 5, "b": 3}
    assert dst["a"].docs == docs["a"] and dst["b"].docs == docs["b"]
    with pytest.raises(dbdump.DumpError, match="after its end"):
        dbdump.scan(io.BytesIO(out + dbdump._ns_header("x", "a", False) + docs["a"][0] + term))


def legacy_stream(docs=3) -> bytes:
    """A stream of version 1 of this tool (records H/C/D/E/Z)."""
    import hashlib

    body = b"H" + bson.encode({"format": dbdump.LEGACY_FORMAT, "version": 1, "database": "aggregator"})
    body += b"C" + bson.encode({"name": "measurements", "options": {}, "indexes": [
        {"v": 2, "key": {"input": 1}, "name": "input_1"}]})
    for i in range(docs):
        body += b"D" + bson.encode({"_id": i, "input": f"http://example.org/{i}"})
    body += b"E" + bson.encode({"name": "measurements", "count": docs})
    return body + b"Z" + bson.encode({"collections": {"measurements": docs},
                                      "sha256": hashlib.sha256(body).hexdigest()})


def test_streams_of_the_previous_format_are_still_read():
    data = legacy_stream(3)
    summary = dbdump.scan(io.BytesIO(data))
    assert summary.collections == {"measurements": 3} and summary.format == dbdump.LEGACY_FORMAT
    assert summary.bytes == len(data)
    dst = FakeDb("target")
    assert dbdump.restore(dst, io.BytesIO(data)) == {"measurements": 3}
    assert [ix["name"] for ix in dst["measurements"].created_indexes] == ["input_1"]
    for cut in range(1, len(data)):
        with pytest.raises(dbdump.DumpError, match="truncated"):
            dbdump.scan(io.BytesIO(data[:cut]))
    bad = bytearray(data)
    bad[data.index(b"example.org/1")] ^= 0x20
    with pytest.raises(dbdump.DumpError, match="sha256"):
        dbdump.scan(io.BytesIO(bytes(bad)))
