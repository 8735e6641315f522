"""MongoDB's own bsondump reads every document of an archive our writer makes (each collection's documents as
the .bson file mongodump would have written), and what it reads is what went in. (Our dump of the real database
read by the real mongorestore: tests/integration/test_mongo_tools.py.) Needs the real mongo-tools
binaries (../shared/tools/mongo-tools, see its README); skipped without them."""

import datetime as dt
import io
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import bson
import pytest
from bson import json_util
from bson.binary import Binary
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.son import SON

from snapshots import dbdump

# ../shared beside the project root (tests/unit/snapshots/<this file> -> parents[4] is the root's parent)
BSONDUMP = Path(__file__).resolve().parents[4] / "shared" / "tools" / "mongo-tools" / "bsondump"

pytestmark = pytest.mark.skipif(not BSONDUMP.is_file(),
                                reason=f"the real mongo-tools are not installed ({BSONDUMP} is missing)")


def varied_docs(n):
    for i in range(n):
        yield SON([
            ("_id", ObjectId()), ("i32", i), ("i64", Int64(i << 40)), ("double", i / 3), ("text", f"città {i} ✓"),
            ("when", dt.datetime(2026, 11, 29, 1, 2, 3, 4000)), ("dec", Decimal128(Decimal(f"{i}.10"))),
            ("bin", Binary(bytes(range(i % 256)), 0)), ("uuid", Binary(uuid.UUID(int=i).bytes, 4)),
            ("nested", {"list": [1, "two", {"three": None}], "flag": bool(i % 2)}), ("pad", "p" * (i * 13)),
        ])


def bsondump(path: Path) -> tuple[list[str], str]:
    r = subprocess.run([str(BSONDUMP), "--objcheck", f"--bsonFile={path}"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines(), r.stderr


def test_bsondump_reads_every_document_we_write(tmp_path):
    docs = {"measurements": [bson.encode(d) for d in varied_docs(300)],
            "reports": [bson.encode({"_id": f"r{i}", "test_name": "x", "probe_cc": "IT", "entries": i})
                        for i in range(20)],
            "empty": []}
    colls = [dbdump.Collection("aggregator", name, {}, []) for name in docs]
    out = io.BytesIO()
    written = dbdump.write_archive(out, "aggregator", "7.0.42", colls, docs.__getitem__, {})
    per_collection: dict[str, list[bytes]] = {name: [] for name in written.collections}
    for ev in dbdump.events(io.BytesIO(out.getvalue())):
        if ev[0] == "doc":
            per_collection[ev[1]].append(ev[2])
    assert per_collection == docs
    for name, raws in per_collection.items():
        path = tmp_path / f"{name}.bson"
        path.write_bytes(b"".join(raws))
        lines, log = bsondump(path)
        assert f"{len(raws)} objects found" in log
        assert len(lines) == len(raws) == written.collections[name]
        for line, raw in zip(lines, raws):
            # bsondump prints canonical Extended JSON: encoded again it gives the very bytes we wrote.
            back = json_util.loads(line, json_options=json_util.CANONICAL_JSON_OPTIONS)
            assert bson.encode(back) == raw
