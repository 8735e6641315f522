"""The collections the importer writes and their indexes. They are made by the database's owner role
(`ensure`, from dr/services/stack.prepare_db at every start and by restores), never by the importer, whose role
may write documents but not create a collection (dockerfiles/postgres/roles.sql); the importer only checks
that they are there (`check`)."""

from __future__ import annotations

import pymongo

INDEXES = {
    "measurements": ["report_key", "test_name", "probe_cc", "probe_asn", "start_time"],
    "reports": ["report_id", "test_name", "probe_cc", "probe_asn", "start_time"],
}
COLLECTIONS = tuple(INDEXES)


class SchemaMissing(Exception):
    """A collection the importer writes does not exist: the owner has not prepared the database."""


def ensure(db) -> list[str]:
    """Create what is missing (as owner); returns what was created, as "collection" or "collection.field"."""
    made = []
    existing = set(db.list_collection_names())
    for coll, fields in INDEXES.items():
        if coll not in existing:
            db.create_collection(coll)
            made.append(coll)
        indexes = {ix["name"] for ix in db[coll].list_indexes()}
        for field in fields:
            if f"{field}_1" not in indexes:
                db[coll].create_index([(field, pymongo.ASCENDING)])
                made.append(f"{coll}.{field}")
    return made


def check(db) -> None:
    missing = sorted(set(COLLECTIONS) - set(db.list_collection_names()))
    if missing:
        raise SchemaMissing(f"the database {db.name} has no collection {', '.join(missing)}: its owner makes "
                            "them (`invoke rebuild` or `invoke up` on the host); the importer's role may not")
