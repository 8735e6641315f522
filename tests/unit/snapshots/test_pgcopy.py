"""The physical copy's pure parts (snapshots/pgcopy.py): the pg_basebackup command, unpacking a stream into
the volume with every check (sha256, the files of a base backup, nothing outside the folder), reading one
back, the major-version rule, and the swap of data directories. The real pg_basebackup and PostgreSQL run in
tests/integration/test_physical_copy.py."""

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from snapshots import pgcopy


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


BASE = {"PG_VERSION": b"17\n", "backup_label": b"START WAL LOCATION: 0/2000028\n", "backup_manifest": b"{}",
        "base/5/16384": b"\x00" * 8192, "global/pg_control": b"\x01" * 100}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_pg_basebackup_writes_one_tar_with_its_wal_to_stdout_at_once():
    argv = pgcopy.basebackup_argv("inst-postgres", 5432, "backup", "aggregator-dr set X")
    assert argv[0] == "pg_basebackup"
    assert {"--pgdata=-", "--format=tar", "--wal-method=fetch", "--checkpoint=fast", "--no-password",
            "--username=backup"} <= set(argv)
    assert not any("password=" in a for a in argv)


def test_a_whole_copy_unpacks_with_its_sha256(tmp_path):
    data = tar_bytes(BASE)
    got = pgcopy.unpack(io.BytesIO(data), tmp_path / "restore-1", sha(data))
    assert got == {"sha256": sha(data), "bytes": len(data)}
    assert (tmp_path / "restore-1" / "base" / "5" / "16384").read_bytes() == BASE["base/5/16384"]
    assert oct((tmp_path / "restore-1").stat().st_mode & 0o777) == "0o700"


def test_a_copy_without_a_recorded_sha256_unpacks_unhashed(tmp_path):
    """Copies taken since 2026-11-29 record no stream sha256 (restic checks every chunk; pg_verifybackup every
    file): they unpack with the same structural checks, and read back clean."""
    data = tar_bytes(BASE)
    assert pgcopy.unpack(io.BytesIO(data), tmp_path / "restore-1", None) == {"sha256": None, "bytes": len(data)}
    assert (tmp_path / "restore-1" / "PG_VERSION").read_bytes() == b"17\n"
    assert pgcopy.read_back(io.BytesIO(data), None) == []
    assert "no backup_manifest" in pgcopy.read_back(io.BytesIO(tar_bytes(
        {k: v for k, v in BASE.items() if k != "backup_manifest"})), None)[0]


def test_the_stream_passes_through_a_pipe_unchanged_and_counted(tmp_path):
    """pg_basebackup's stdout to restic's stdin: spliced from pipe to pipe, every byte, in order."""
    import os
    import subprocess
    import threading

    data = os.urandom(3 * pgcopy.CHUNK + 12345)
    src = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    sink = subprocess.Popen(["sha256sum"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    feeder = threading.Thread(target=lambda: (src.stdin.write(data), src.stdin.close()))
    feeder.start()
    got = pgcopy._pass_through(src.stdout, sink.stdin)
    sink.stdin.close()
    feeder.join()
    assert got == {"bytes": len(data)}
    assert sink.stdout.read().split()[0].decode() == sha(data)
    src.wait(), sink.wait()
    # not a pipe or file descriptor at all (an in-memory stream): copied the plain way
    out = io.BytesIO()
    assert pgcopy._pass_through(io.BytesIO(data), out) == {"bytes": len(data)} and out.getvalue() == data


def test_a_copy_that_is_not_the_manifests_is_refused_and_nothing_stays(tmp_path):
    data = tar_bytes(BASE)
    with pytest.raises(pgcopy.CopyError, match="damaged"):
        pgcopy.unpack(io.BytesIO(data), tmp_path / "restore-1", sha(data + b"x"))
    assert not (tmp_path / "restore-1").exists()


@pytest.mark.parametrize("members,why", [
    ({k: v for k, v in BASE.items() if k != "backup_label"}, "no backup_label"),
    ({k: v for k, v in BASE.items() if k != "PG_VERSION"}, "no PG_VERSION"),
    (BASE | {"../outside": b"x"}, "cannot be unpacked"),
])
def test_a_copy_that_is_not_a_base_backup_or_leaves_its_folder_is_refused(tmp_path, members, why):
    data = tar_bytes(members)
    with pytest.raises(pgcopy.CopyError, match=why):
        pgcopy.unpack(io.BytesIO(data), tmp_path / "vol" / "restore-1", None)
    assert not (tmp_path / "vol" / "restore-1").exists()
    assert not (tmp_path / "outside").exists() and not (tmp_path / "vol" / "outside").exists()


def test_an_absolute_member_lands_inside_the_folder(tmp_path):
    data = tar_bytes(BASE | {"/tmp-aggr-evil/x": b"x"})
    pgcopy.unpack(io.BytesIO(data), tmp_path / "restore-1", sha(data))
    assert (tmp_path / "restore-1" / "tmp-aggr-evil" / "x").exists() and not Path("/tmp-aggr-evil").exists()


def test_a_truncated_copy_is_refused(tmp_path):
    data = tar_bytes(BASE)
    with pytest.raises(pgcopy.CopyError):
        pgcopy.unpack(io.BytesIO(data[:len(data) // 2]), tmp_path / "restore-1", sha(data))
    assert not (tmp_path / "restore-1").exists()


def test_reading_a_copy_back_finds_damage_without_unpacking():
    data = tar_bytes(BASE)
    assert pgcopy.read_back(io.BytesIO(data), sha(data)) == []
    assert "sha256" in pgcopy.read_back(io.BytesIO(data), sha(b"other"))[0]
    partial = tar_bytes({k: v for k, v in BASE.items() if k != "backup_manifest"})
    assert pgcopy.read_back(io.BytesIO(partial), sha(partial)) == ["the physical copy has no backup_manifest"]
    assert "not a readable tar" in pgcopy.read_back(io.BytesIO(b"\x00garbage" * 100), sha(b""))[0]


def test_a_copy_restores_only_into_its_own_major_version(tmp_path):
    pgcopy.check_major(17, 17)
    with pytest.raises(pgcopy.CopyError, match="PostgreSQL 16, this host runs PostgreSQL 17.*portable dump"):
        pgcopy.check_major(16, 17)
    (tmp_path / "PG_VERSION").write_text("18\n")
    with pytest.raises(pgcopy.CopyError, match="PostgreSQL 18"):
        pgcopy.verify(tmp_path, 17)  # refused before pg_verifybackup runs
    assert pgcopy.major_of(170012) == 17 and pgcopy.major_of(160004) == 16


def make_volume(tmp_path: Path, with_data: bool = True) -> Path:
    volume = tmp_path / "volume"
    if with_data:
        (volume / "data").mkdir(parents=True)
        (volume / "data" / "PG_VERSION").write_text("17\n")
    (volume / "restore-S").mkdir(parents=True)
    (volume / "restore-S" / "PG_VERSION").write_text("17\n")
    (volume / "restore-S" / "restored").write_text("yes")
    return volume


def test_the_copy_takes_the_data_directorys_place_and_the_old_one_is_kept(tmp_path):
    volume = make_volume(tmp_path)
    aside = pgcopy.swap_in(volume, "S")
    assert aside.startswith("replaced-S-") and (volume / aside / "PG_VERSION").exists()
    assert (volume / "data" / "restored").exists() and not (volume / "restore-S").exists()
    pgcopy.swap_back(volume, aside, "S")
    assert not (volume / "data" / "restored").exists() and (volume / "data" / "PG_VERSION").exists()
    assert (volume / "failed-S" / "restored").exists() and not (volume / aside).exists()


def test_a_fresh_volume_takes_the_copy_as_its_data_directory(tmp_path):
    volume = make_volume(tmp_path, with_data=False)
    assert pgcopy.swap_in(volume, "S") is None
    assert (volume / "data" / "restored").exists()


def test_a_running_postgresql_is_never_swapped_out(tmp_path):
    volume = make_volume(tmp_path)
    (volume / "data" / "postmaster.pid").write_text("1\n")
    with pytest.raises(pgcopy.CopyError, match="postmaster.pid"):
        pgcopy.swap_in(volume, "S")
    assert (volume / "restore-S" / "restored").exists() and (volume / "data" / "postmaster.pid").exists()
