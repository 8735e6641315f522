"""The dump stream's framing refuses truncated and foreign input (no database needed here; the
round trip against the real database is in tests/integration/test_backup_image.py)."""

import io

import bson
import pytest

from snapshots import dbdump


def stream(*records):
    return io.BytesIO(b"".join(kind + bson.encode(doc) for kind, doc in records))


def test_records_stop_at_end_record():
    s = stream((b"H", {"format": dbdump.FORMAT}), (b"Z", {"collections": {}, "sha256": "x"}),
               (b"H", {"after": "end"}))
    kinds = [k for k, _ in dbdump.records(s)]
    assert kinds == [b"H", b"Z"]


def test_truncated_stream_is_refused():
    data = stream((b"H", {"format": dbdump.FORMAT}), (b"D", {"_id": 1, "x": "y" * 100})).getvalue()
    for cut in (len(data), len(data) - 1, 3):
        with pytest.raises(dbdump.DumpError, match="truncated"):
            list(dbdump.records(io.BytesIO(data[:cut])))


def test_garbage_is_refused():
    with pytest.raises(dbdump.DumpError, match="corrupt"):
        list(dbdump.records(io.BytesIO(b"not a dump at all")))


def valid_stream(docs=3) -> bytes:
    out = io.BytesIO()
    w = dbdump._Writer(out)
    w.record(b"H", bson.encode({"format": dbdump.FORMAT, "version": dbdump.VERSION}))
    w.record(b"C", bson.encode({"name": "measurements", "options": {}, "indexes": []}))
    for i in range(docs):
        w.record(b"D", bson.encode({"_id": i, "input": f"http://example.org/{i}"}))
    w.record(b"E", bson.encode({"name": "measurements", "count": docs}))
    out.write(b"Z" + bson.encode({"collections": {"measurements": docs}, "sha256": w.digest.hexdigest()}))
    return out.getvalue()


def test_verify_returns_the_counts_of_an_intact_stream():
    assert dbdump.verify(io.BytesIO(valid_stream(3))) == {"measurements": 3}


def test_verify_refuses_a_flipped_byte_anywhere_in_a_document():
    data = bytearray(valid_stream(3))
    where = data.index(b"example.org/1")
    data[where] ^= 0x20
    with pytest.raises(dbdump.DumpError, match="sha256"):
        dbdump.verify(io.BytesIO(bytes(data)))


def test_verify_refuses_a_stream_cut_before_its_end():
    data = valid_stream(3)
    end_record = 1 + len(bson.encode({"collections": {"measurements": 3}, "sha256": "0" * 64}))
    assert data[-end_record : -end_record + 1] == b"Z"
    for cut in (len(data) - end_record, len(data) - 1):
        with pytest.raises(dbdump.DumpError, match="truncated"):
            dbdump.verify(io.BytesIO(data[:cut]))
