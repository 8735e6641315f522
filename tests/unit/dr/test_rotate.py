"""The pure parts of `invoke rotate-secrets` (dr/rotate.py): PostgreSQL's SCRAM-SHA-256 verifier and the
statement that carries it. That PostgreSQL takes them (the new password logs in, the old one is refused)
is tested on the real database in tests/integration/test_tls.py."""

import base64
import hashlib
import hmac

from dr import rotate


def test_the_verifier_has_postgresql_stored_form_and_depends_on_salt_and_password():
    salt = bytes(range(16))
    v = rotate.scram_verifier("pencil", salt)
    method, rest = v.split("$", 1)
    params, keys = rest.split("$")
    iterations, salt_b64 = params.split(":")
    stored, server = keys.split(":")
    assert method == "SCRAM-SHA-256" and int(iterations) == rotate.SCRAM_ITERATIONS == 4096
    assert base64.b64decode(salt_b64) == salt and len(base64.b64decode(stored)) == len(base64.b64decode(server)) == 32
    # RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key")), checked the long way round
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    assert base64.b64decode(stored) == hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    assert rotate.scram_verifier("pencil", salt) == v
    assert rotate.scram_verifier("pencil", bytes(16)) != v and rotate.scram_verifier("pencil2", salt) != v


def test_the_statement_quotes_the_role_and_the_verifier():
    assert rotate.alter_password_sql("reader", "SCRAM-SHA-256$4096:a$b:c") == \
        """ALTER ROLE "reader" PASSWORD 'SCRAM-SHA-256$4096:a$b:c'"""
