"""What PostgreSQL refuses a role, as FerretDB 1.24.2 passes it on (code 1, InternalError, PostgreSQL's
message and SQLSTATE inside the errmsg; these are the messages the real database gave,
tests/integration/test_db_image.py), turned into one sentence naming the role."""

import pymongo.errors
import pytest

from common.errors import DatabaseRefused
from database import db


def failure(errmsg: str) -> pymongo.errors.OperationFailure:
    return pymongo.errors.OperationFailure(errmsg, 1, {"ok": 0.0, "errmsg": errmsg, "code": 1,
                                                       "codeName": "InternalError"})


@pytest.mark.parametrize("errmsg, sqlstate, says", [
    ("[msg_insert.go:168 handler.(*Handler).MsgInsert] [collection.go:163 postgresql.(*collection).InsertAll.func1]"
     " ERROR: permission denied for table reports_19b3cb48 (SQLSTATE 42501)", "42501",
     "the database role reader has no permission for this: PostgreSQL says: permission denied for table "
     "reports_19b3cb48"),
    ("[msg_drop.go:94 handler.(*Handler).MsgDrop] [registry.go:649 metadata.(*Registry).collectionDrop] "
     "ERROR: must be owner of table reports_19b3cb48 (SQLSTATE 42501)", "42501",
     "the database role reader has no permission for this: PostgreSQL says: must be owner of table "
     "reports_19b3cb48"),
    ("[pool.go:129 pool.(*Pool).Get] failed to connect to `user=reader database=ferretdb`:\n\t172.18.0.2:5432 "
     "(pg): failed SASL auth: FATAL: password authentication failed for user \"reader\" (SQLSTATE 28P01)",
     "28P01", "the database role reader was refused: wrong password: PostgreSQL says: password authentication "
     "failed for user \"reader\""),
    ("failed to connect to `user=reader database=ferretdb`: server error: FATAL: pg_hba.conf rejects "
     "connection for host \"172.18.0.3\", user \"reader\", database \"ferretdb\", no encryption (SQLSTATE 28000)",
     "28000", "the database role reader is not allowed to connect from here"),
])
def test_a_refusal_names_the_role_and_what_postgresql_said(errmsg, sqlstate, says):
    refused = db.refusal(failure(errmsg), "reader")
    assert isinstance(refused, DatabaseRefused) and refused.sqlstate == sqlstate and refused.role == "reader"
    assert str(refused).startswith(says)


def test_other_errors_are_not_refusals():
    assert db.refusal(failure("E11000 duplicate key error"), "importer") is None
    assert db.refusal(pymongo.errors.AutoReconnect("connection reset"), "importer") is None
    assert db.refusal(ValueError("nothing to do with the database"), "importer") is None


def test_password_files_are_named_after_known_roles_only():
    assert [db.password_name(r) for r in db.ROLES] == [
        "db-owner-password", "db-importer-password", "db-reader-password", "db-backup-password"]
    with pytest.raises(ValueError, match="unknown database role"):
        db.password_name("aggregator")
