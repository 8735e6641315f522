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
