"""snapshots/dbdump.py against the real database (PostgreSQL + FerretDB of our images, through pymongo): what
dump_archive reads from it, and what restore writes into it, from our archives, a real mongodump archive,
interleaved blocks and the previous stream format. The format on bytes alone is in
tests/unit/snapshots/test_dbdump_stream.py. Each test works in databases of its own in the session database."""

from __future__ import annotations

import io

import bson
import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from dbdump_samples import REAL_MONGODUMP, archive, interleaved_archive, legacy_stream, parse, source
from snapshots import dbdump

RAW = CodecOptions(document_class=RawBSONDocument)


def fresh(client, name: str):
    """An empty database of this name (what an earlier test left there dropped)."""
    client.drop_database(name)
    return client[name]


def filled(client, name: str):
    """A fresh database holding source()'s collections: their documents and their indexes."""
    db = fresh(client, name)
    colls, docs = source()
    for coll in colls:
        db.create_collection(coll.name)
        for ix in coll.indexes[1:]:  # the first is _id_, which every collection has
            db[coll.name].create_index(list(ix["key"].items()), name=ix["name"], unique=bool(ix.get("unique")))
        if docs[coll.name]:
            db.get_collection(coll.name, codec_options=RAW).insert_many([RawBSONDocument(d) for d in docs[coll.name]])
    return db


def raw_docs(db, name: str) -> list[bytes]:
    """A collection's documents as raw BSON, in _id order."""
    return [d.raw for d in db.get_collection(name, codec_options=RAW).find({}).sort("_id", 1)]


def index_names(db) -> dict[str, list[str]]:
    return {name: sorted(ix["name"] for ix in db[name].list_indexes()) for name in sorted(db.list_collection_names())}


def dumped(db) -> tuple[bytes, dbdump.Summary, dict]:
    out, tally = io.BytesIO(), {}
    summary = dbdump.dump_archive(db, out, tally)
    return out.getvalue(), summary, tally


def test_a_dump_of_the_database_has_mongodumps_layout_and_its_documents(database):
    _, client = database
    db = filled(client, "dbdump_source")
    data, summary, tally = dumped(db)
    header, prelude, blocks = parse(data)
    assert header["server_version"] == client.server_info()["version"]
    assert [p["collection"] for p in prelude] == ["empty", "measurements", "reports"]  # in name order
    assert all(p["db"] == "dbdump_source" and p["type"] == "collection" for p in prelude)
    meta = {p["collection"]: bson.json_util.loads(p["metadata"]) for p in prelude}
    assert [ix["name"] for ix in meta["reports"]["indexes"]] == ["_id_", "tc"]
    assert [ix.get("unique") for ix in meta["measurements"]["indexes"]] == [None, True]
    assert all("ns" not in ix for m in meta.values() for ix in m["indexes"]) and "uuid" not in meta["reports"]
    assert [(h["collection"], h["EOF"], len(docs)) for h, docs in blocks] == [
        ("empty", True, 0), ("measurements", False, 30), ("measurements", True, 0),
        ("reports", False, 4), ("reports", True, 0)]
    # Byte for byte, in the order the database gives them (natural order), and all that went in.
    natural = [d.raw for d in db.get_collection("measurements", codec_options=RAW).find({})]
    assert blocks[1][1] == natural and sorted(natural) == sorted(source()[1]["measurements"])
    assert summary.collections == {"empty": 0, "measurements": 30, "reports": 4} and summary.bytes == len(data)
    assert tally == {"web_connectivity IT": [4, 8]}
    assert dbdump.scan(io.BytesIO(data), expect_sha256=summary.sha256).collections == summary.collections


def test_a_dump_restores_into_another_database_with_its_indexes(database):
    _, client = database
    src = filled(client, "dbdump_source")
    data, _, _ = dumped(src)
    dst = fresh(client, "dbdump_target")
    assert dbdump.restore(dst, io.BytesIO(data)) == {"empty": 0, "measurements": 30, "reports": 4}
    for name in ("measurements", "reports"):
        assert raw_docs(dst, name) == raw_docs(src, name)
    assert index_names(dst) == {"empty": ["_id_"], "measurements": ["_id_", "input_1"], "reports": ["_id_", "tc"]}
    unique = {ix["name"]: ix.get("unique") for ix in dst["measurements"].list_indexes()}
    assert unique["input_1"] is True


def test_restore_refuses_a_filled_collection_before_writing_anything(database):
    _, client = database
    data, _, _ = archive()
    dst = fresh(client, "dbdump_target")
    dst.reports.insert_one({"_id": "old"})
    with pytest.raises(dbdump.DumpError, match="not empty; restore with --drop"):
        dbdump.restore(dst, io.BytesIO(data))
    assert dst.list_collection_names() == ["reports"] and dst.reports.count_documents({}) == 1
    assert dbdump.restore(dst, io.BytesIO(data), drop=True)["reports"] == 4
    assert dst.reports.count_documents({}) == 4 and dst.reports.find_one({"_id": "old"}) is None


def test_restore_keeps_indexes_the_target_has_and_refuses_different_ones(database):
    """A restore after the owner made the schema: an index already there with the same key is left alone
    (creating it again would make FerretDB 1.24 drop the connection), one with another key is refused."""
    _, client = database
    data, _, _ = archive()
    dst = fresh(client, "dbdump_target")
    dst.reports.create_index([("test_name", 1), ("probe_cc", 1)], name="tc")
    dst.create_collection("measurements")
    assert dbdump.restore(dst, io.BytesIO(data)) == {"empty": 0, "measurements": 30, "reports": 4}
    assert index_names(dst) == {"empty": ["_id_"], "measurements": ["_id_", "input_1"], "reports": ["_id_", "tc"]}
    dst = fresh(client, "dbdump_target")
    dst.reports.create_index([("test_name", -1)], name="tc")
    with pytest.raises(dbdump.DumpError, match="already has an index tc unlike the dump's"):
        dbdump.restore(dst, io.BytesIO(data))


def test_restore_of_a_cut_stream_creates_no_index(database):
    _, client = database
    data, _, _ = archive()
    dst = fresh(client, "dbdump_target")
    with pytest.raises(dbdump.DumpError, match="truncated"):
        dbdump.restore(dst, io.BytesIO(data[:-9]))
    assert dst.list_collection_names() and all(names == ["_id_"] for names in index_names(dst).values())


def test_a_real_mongodump_archive_is_restored(database):
    _, client = database
    dst = fresh(client, "dbdump_target")
    assert dbdump.restore(dst, io.BytesIO(REAL_MONGODUMP)) == {"measurements": 7, "reports": 5, "empty": 0}
    assert index_names(dst)["measurements"] == ["_id_", "x_1"]
    assert [bson.decode(d)["x"] for d in raw_docs(dst, "measurements")] == list(range(7))


def test_interleaved_blocks_restore_each_collection_whole_without_ns_in_its_indexes(database):
    """The archive's index specification carries v and ns (FerretDB refuses ns): restore creates the index
    without them."""
    _, client = database
    data, docs = interleaved_archive()
    dst = fresh(client, "dbdump_target")
    assert dbdump.restore(dst, io.BytesIO(data)) == {"a": 5, "b": 3}
    assert raw_docs(dst, "a") == docs["a"] and raw_docs(dst, "b") == docs["b"]
    assert index_names(dst) == {"a": ["_id_", "c_1"], "b": ["_id_"]}


def test_a_stream_of_the_previous_format_is_restored(database):
    _, client = database
    dst = fresh(client, "dbdump_target")
    assert dbdump.restore(dst, io.BytesIO(legacy_stream(3))) == {"measurements": 3}
    assert index_names(dst) == {"measurements": ["_id_", "input_1"]}
    assert [bson.decode(d)["_id"] for d in raw_docs(dst, "measurements")] == [0, 1, 2]
