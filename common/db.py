"""Connecting to the database (FerretDB, MongoDB wire protocol) with credentials from the secrets directory."""

from __future__ import annotations

import pymongo


def client(host: str, port: int, user: str, password: str, database: str, timeout_s: float = 10.0,
           **kwargs) -> pymongo.MongoClient:
    return pymongo.MongoClient(
        host=host,
        port=port,
        username=user,
        password=password,
        authSource=database,
        authMechanism="SCRAM-SHA-256",
        serverSelectionTimeoutMS=int(timeout_s * 1000),
        connectTimeoutMS=int(timeout_s * 1000),
        directConnection=True,
        **kwargs,
    )


def count(database, name: str) -> int:
    """The documents stored in one collection, counted by the database: collStats' count. FerretDB 1.x on
    SQLite answers it from SQLite's own b-tree (one leaf cell per stored row) in seconds, where
    count_documents and the count command read and decode every document (4 s against 230 s for 443,312
    measurements, docs/benchmarks.md). A collection that does not exist counts 0."""
    if name not in database.list_collection_names():
        return 0
    n = database.command("collStats", name).get("count")
    return int(n) if n is not None else database[name].count_documents({})


def ping(c: pymongo.MongoClient, database: str) -> None:
    c[database].command("ping")
    # ping does not need authentication; a real read does.
    c[database].list_collection_names()


def wait_ready(host: str, port: int, user: str, password: str, database: str, timeout_s: float = 60.0) -> float:
    """Poll until the database accepts our credentials; returns the seconds waited. Raises poll.WaitTimeout
    naming the database and the last error (refused, authentication failed, ...)."""
    import time

    from common import poll

    def accepts() -> bool:
        c = client(host, port, user, password, database, timeout_s=2.0)
        try:
            ping(c, database)
            return True
        finally:
            c.close()

    start = time.monotonic()
    poll.until(accepts, f"the database {database} at {host}:{port} to accept our credentials", timeout_s,
               retry=(pymongo.errors.PyMongoError, OSError))
    return time.monotonic() - start
