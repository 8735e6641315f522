import os
import stat

import pytest

from common import secrets
from common.errors import SecretError


def test_ensure_creates_a_private_secret_once(tmp_path):
    d = tmp_path / "secrets"
    p, created = secrets.ensure(d, "db-password")
    assert created
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    first = secrets.read(d, "db-password")
    assert len(first) >= 32
    p2, created2 = secrets.ensure(d, "db-password")
    assert not created2 and secrets.read(d, "db-password") == first


@pytest.mark.parametrize("content, mode, message", [
    (None, None, "does not exist"),
    ("", 0o600, "is empty"),
    ("pw\n", 0o644, "must not be readable by group or others"),
])
def test_bad_secret_files_give_one_clear_error(tmp_path, content, mode, message):
    if content is not None:
        p = tmp_path / "db-password"
        p.write_text(content)
        os.chmod(p, mode)
    with pytest.raises(SecretError, match=message):
        secrets.read(tmp_path, "db-password")
