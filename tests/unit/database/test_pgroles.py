"""The pure parts of the roles' passwords (database/pgroles.py) and of `invoke rotate-secrets`
(dr/jobs/rotate.py): PostgreSQL's SCRAM-SHA-256 verifier, checking a password against one, and the statements
that carry it. That PostgreSQL takes them (the new password logs in, the old one is refused, pg_authid holds
what scram_matches accepts) is tested on the real database in tests/integration/test_tls.py and
test_two_hosts.py."""

import base64
import hashlib
import hmac

from common.errors import CommandError
from database import pgroles
from dr.jobs import rotate


def test_the_verifier_has_postgresql_stored_form_and_depends_on_salt_and_password():
    salt = bytes(range(16))
    v = pgroles.scram_verifier("pencil", salt)
    method, rest = v.split("$", 1)
    params, keys = rest.split("$")
    iterations, salt_b64 = params.split(":")
    stored, server = keys.split(":")
    assert method == "SCRAM-SHA-256" and int(iterations) == pgroles.SCRAM_ITERATIONS == 4096
    assert base64.b64decode(salt_b64) == salt and len(base64.b64decode(stored)) == len(base64.b64decode(server)) == 32
    # RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key")), checked the long way round
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    assert base64.b64decode(stored) == hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    assert pgroles.scram_verifier("pencil", salt) == v
    assert pgroles.scram_verifier("pencil", bytes(16)) != v and pgroles.scram_verifier("pencil2", salt) != v


def test_a_new_salt_each_time_unless_given():
    assert pgroles.scram_verifier("pencil") != pgroles.scram_verifier("pencil")


def test_a_password_matches_its_verifier_only():
    v = pgroles.scram_verifier("pencil")
    assert pgroles.scram_matches("pencil", v)
    assert not pgroles.scram_matches("pencil2", v) and not pgroles.scram_matches("", v)
    other_iterations = pgroles.scram_verifier("pencil", bytes(16), iterations=1000)
    assert pgroles.scram_matches("pencil", other_iterations)


def test_anything_but_a_scram_verifier_matches_nothing():
    v = pgroles.scram_verifier("pencil", bytes(16))
    for stored in ("", "md5" + "0" * 32, v.replace("SCRAM-SHA-256", "SCRAM-SHA-1"), v[:-3], v.replace(":", "", 1),
                   "SCRAM-SHA-256$x:AAAA$AAAA:AAAA", "SCRAM-SHA-256$4096:!!$AAAA:AAAA"):
        assert not pgroles.scram_matches("pencil", stored), stored


def test_the_statements_quote_the_role_and_the_verifier():
    assert pgroles.alter_password_sql("reader", "SCRAM-SHA-256$4096:a$b:c") == \
        """ALTER ROLE "reader" PASSWORD 'SCRAM-SHA-256$4096:a$b:c'"""
    assert pgroles.alter_own_password_sql("SCRAM-SHA-256$4096:a$b:c") == \
        """ALTER ROLE CURRENT_USER PASSWORD 'SCRAM-SHA-256$4096:a$b:c'"""
    assert pgroles.verifiers_sql(["owner", "it's"]) == ("SELECT rolname, coalesce(rolpassword, '') FROM pg_authid "
                                                         "WHERE rolname IN ('owner', 'it''s') ORDER BY rolname")


def test_only_a_refused_password_counts_as_a_refused_login():
    said = 'psql: error: connection to server at "db" failed: FATAL:  password authentication failed for user "x"'
    assert pgroles.refused_login(CommandError(["psql"], 2, said))
    assert not pgroles.refused_login(CommandError(["psql"], 2, "psql: error: could not translate host name"))
    assert not pgroles.refused_login(CommandError(["psql"], 2, ""))


def test_the_database_host_names_every_role_whose_password_is_not_postgresqls():
    stored = {"owner": pgroles.scram_verifier("o"), "reader": pgroles.scram_verifier("r")}
    assert rotate.kit_mismatches(stored, {"owner": "o", "reader": "r"}) == []
    assert rotate.kit_mismatches(stored, {"owner": "old", "reader": "r", "backup": "b"}) == ["owner", "backup"]
