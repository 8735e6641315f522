"""The database dump in mongodump's archive format, without a database: our writer (over known content, as
the database would give it), the reader's checks (truncation at every cut, corruption, foreign bytes), CRC-64,
a real mongodump archive, interleaved blocks and the previous stream format. Dumps of and restores into the
real database are in tests/integration/test_dbdump_db.py; the real mongo-tools in
tests/integration/test_mongo_tools.py and tests/integration/test_backup_image.py."""

import io
import random

import bson
import pytest

from dbdump_samples import REAL_MONGODUMP, archive, interleaved_archive, legacy_stream, parse, source
from snapshots import dbdump

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
    data, summary, _ = archive()
    header, prelude, blocks = parse(data)
    assert header["version"] == "0.1" and header["server_version"] == "7.0.42"
    assert [p["collection"] for p in prelude] == ["empty", "measurements", "reports"]  # in name order
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


def test_documents_pass_byte_for_byte_in_the_order_given():
    data, _, docs = archive()
    got = {}
    for ev in dbdump.events(io.BytesIO(data)):
        if ev[0] == "doc":
            got.setdefault(ev[1], []).append(ev[2])
    assert got == {"measurements": docs["measurements"], "reports": docs["reports"]}


def test_the_writer_tallies_the_reports_as_they_pass():
    colls, docs = source()
    tally: dict = {}
    dbdump.write_archive(io.BytesIO(), "aggregator", "7.0.42", colls, docs.__getitem__, tally)
    assert tally == {"web_connectivity IT": [4, 8]}


def test_scan_returns_counts_sha256_and_the_tally():
    data, written, _ = archive()
    tally = {}
    summary = dbdump.scan(io.BytesIO(data), tally, expect_sha256=written.sha256)
    assert summary.collections == written.collections
    assert (summary.sha256, summary.bytes, summary.database) == (written.sha256, len(data), "aggregator")
    assert tally == {"web_connectivity IT": [4, 8]}
    assert dbdump.verify(io.BytesIO(data)) == {"empty": 0, "measurements": 30, "reports": 4}


# ---------------------------------------------------------------------------------------------------------
# What we refuse


def test_a_stream_cut_anywhere_is_refused_as_truncated():
    data, _, _ = archive(measurements=6)
    for cut in range(len(data)):
        with pytest.raises(dbdump.DumpError, match="truncated|empty"):
            dbdump.scan(io.BytesIO(data[:cut]))


def test_a_flipped_byte_in_any_document_fails_its_crc():
    data, _, _ = archive(measurements=5)
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
    data, written, _ = archive(measurements=3)
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x40
        with pytest.raises(dbdump.DumpError):
            dbdump.scan(io.BytesIO(bytes(bad)), expect_sha256=written.sha256)


def test_a_flipped_byte_anywhere_raises_nothing_but_dump_error():
    """Without the recorded sha256, a flip in what the CRCs do not cover (the header, the metadata's index
    specifications: the sha256 protects those) may pass, as long as every collection, document and count
    read is unchanged; any other damage is refused as a DumpError, never with another exception."""
    data, _, _ = archive(measurements=3)

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
    data, _, _ = archive()
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
    data, _, _ = archive()
    prelude_end = data.index(dbdump.TERMINATOR) + 4
    renamed = data[:prelude_end] + data[prelude_end:].replace(b"measurements", b"measurementz")
    with pytest.raises(dbdump.DumpError, match="does not list"):
        dbdump.scan(io.BytesIO(renamed))


# ---------------------------------------------------------------------------------------------------------
# What others write: a real mongodump archive, interleaved blocks, our previous format

def test_a_real_mongodump_archive_is_read():
    assert dbdump.verify(io.BytesIO(REAL_MONGODUMP)) == {"measurements": 7, "reports": 5, "empty": 0}
    docs = [ev[2] for ev in dbdump.events(io.BytesIO(REAL_MONGODUMP)) if ev[0] == "doc" and ev[1] == "measurements"]
    assert [bson.decode(d)["x"] for d in docs] == list(range(7))
    prelude = {ev[1].name: ev[1] for ev in dbdump.events(io.BytesIO(REAL_MONGODUMP)) if ev[0] == "collection"}
    assert [ix["name"] for ix in prelude["measurements"].indexes] == ["_id_", "x_1"]
    assert prelude["measurements"].indexes[1]["unique"] is True


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
    out, docs = interleaved_archive()
    got: dict[str, list[bytes]] = {}
    for ev in dbdump.events(io.BytesIO(out)):
        if ev[0] == "doc":
            got.setdefault(ev[1], []).append(ev[2])
    assert got == docs and dbdump.verify(io.BytesIO(out)) == {"a": 5, "b": 3}
    prelude = {ev[1].name: ev[1] for ev in dbdump.events(io.BytesIO(out)) if ev[0] == "collection"}
    assert [ix["name"] for ix in prelude["a"].indexes] == ["c_1"] and prelude["b"].indexes == []
    with pytest.raises(dbdump.DumpError, match="after its end"):
        dbdump.scan(io.BytesIO(out + dbdump._ns_header("x", "a", False) + docs["a"][0] + dbdump.TERMINATOR))


def test_streams_of_the_previous_format_are_still_read():
    data = legacy_stream(3)
    summary = dbdump.scan(io.BytesIO(data))
    assert summary.collections == {"measurements": 3} and summary.format == dbdump.LEGACY_FORMAT
    assert summary.bytes == len(data)
    for cut in range(1, len(data)):
        with pytest.raises(dbdump.DumpError, match="truncated"):
            dbdump.scan(io.BytesIO(data[:cut]))
    bad = bytearray(data)
    bad[data.index(b"example.org/1")] ^= 0x20
    with pytest.raises(dbdump.DumpError, match="sha256"):
        dbdump.scan(io.BytesIO(bytes(bad)))
