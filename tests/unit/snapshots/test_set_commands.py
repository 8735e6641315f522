"""The restic command lines of a set's parts (snapshots/sets.py), argument by argument: each part's host and
tags (set, kind, version; the manifest's parts), the files part's excludes and data root, the physical copy and
the portable dump streamed with --stdin-from-command (the producer's own arguments after `--`: the container's
role, its password file, TLS only with db.tls), the manifest handed over by its gate. The copy's command is run
once too, stopped at its gate, so pgcopy's own parser is what accepts it. Pure otherwise: no restic, no database."""

import subprocess
import sys
from pathlib import Path

import pytest

from common import __version__, config
from snapshots import gate, sets
from snapshots.restic import backup_args, command

ROOT = Path(__file__).resolve().parents[3]
SET = "20260101T000000Z"
HOST = "aggregator-dr-backup"


def tags(kind: str) -> list[str]:
    return ["--tag", f"set:{SET}", "--tag", f"kind:{kind}", "--tag", f"version:{__version__}"]


@pytest.fixture
def secrets(tmp_path) -> Path:
    return tmp_path / "secrets"


def backup_cfg(secrets: Path, **db):
    """A backup container's configuration (dr/jobs/contract.py writes db.role), db keys as given."""
    return config.load(overrides={"secrets_dir": str(secrets), "db.role": "backup", "db.host": "aggr-ferretdb",
                                  "db.port": 27018, "db.postgres_host": "aggr-postgres", "db.postgres_port": 5433,
                                  **{f"db.{k}": v for k, v in db.items()}})


def test_a_parts_tags_are_its_set_its_kind_and_the_version():
    assert sets.set_tags(SET, "files") == ["--tag", f"set:{SET}", "--tag", "kind:files", "--tag",
                                           f"version:{__version__}"]
    assert sets.set_tags(SET, "manifest") == tags("manifest")


def test_the_files_part_is_the_data_root_less_the_excludes():
    assert sets.files_part_args(HOST, SET, Path("/data")) == [
        "--host", HOST, *tags("files"), "--ignore-ctime", "--exclude", ".*.tmp-*", "--exclude", "/data/raw/.incoming",
        "--exclude", "/data/.lock", "--exclude", "/data/.lock-*", "--exclude", "/data/releases",
        "--exclude", "/data/.cut", "/data"]
    assert sets.files_part_args(HOST, SET, "/srv/aggr")[-3:] == ["--exclude", "/srv/aggr/.cut", "/srv/aggr"]
    assert command(*backup_args(*sets.files_part_args(HOST, SET, Path("/data"))))[:5] == [
        "restic", "backup", "--json", "--host", HOST]


def test_the_dump_is_streamed_from_dbdump_as_the_containers_role(secrets, tmp_path):
    counts = tmp_path / "set-x" / "counts.json"
    producer = ["python3", "-m", "snapshots.dbdump", "dump", "--host", "aggr-ferretdb", "--port", "27018",
                "--database", "aggregator", "--user", "backup", "--password-file", f"{secrets}/db-backup-password",
                "--counts-file", str(counts)]
    assert sets.dump_command(backup_cfg(secrets), counts) == producer
    assert sets.dump_part_args(backup_cfg(secrets), HOST, SET, counts) == [
        "--host", HOST, *tags("db"), "--stdin-filename", "database.dbdump", "--stdin-from-command", "--", *producer]


def test_the_dump_verifies_the_database_with_its_ca_only_over_tls(secrets, tmp_path):
    counts = tmp_path / "counts.json"
    assert sets.dump_command(backup_cfg(secrets, tls=True), counts)[-2:] == ["--tls-ca-file",
                                                                            f"{secrets}/tls/ca.crt"]
    own_ca = backup_cfg(secrets, tls=True, ca_file="/etc/aggregator-dr/db-ca.crt")
    assert sets.dump_part_args(own_ca, HOST, SET, counts)[-4:] == [
        "--counts-file", str(counts), "--tls-ca-file", "/etc/aggregator-dr/db-ca.crt"]
    assert "--tls-ca-file" not in sets.dump_command(backup_cfg(secrets, ca_file="/etc/aggregator-dr/db-ca.crt"),
                                                    counts)


def test_the_copy_is_streamed_from_pgcopy_waiting_at_its_gate(secrets, tmp_path):
    g = gate.Gate(tmp_path / "copy.go", tmp_path / "copy.stop")
    info = tmp_path / "copy.json"
    producer = ["python3", "-m", "snapshots.pgcopy", "copy", "--host", "aggr-postgres", "--port", "5433",
                "--user", "backup", "--password-file", f"{secrets}/db-backup-password",
                "--label", f"aggregator-dr set {SET}", "--info-file", str(info),
                "--wait-for", str(tmp_path / "copy.go"), "--stop-file", str(tmp_path / "copy.stop")]
    assert sets.copy_command(backup_cfg(secrets), SET, info, g) == producer
    assert sets.copy_part_args(backup_cfg(secrets), HOST, SET, info, g) == [
        "--host", HOST, *tags("pg"), "--stdin-filename", "postgres.tar", "--stdin-from-command", "--", *producer]
    assert sets.copy_command(backup_cfg(secrets, tls=True), SET, info, g) == [*producer, "--ca-file",
                                                                             f"{secrets}/tls/ca.crt"]


def test_the_manifest_names_its_parts_and_comes_from_its_gate(tmp_path):
    g = gate.Gate(tmp_path / "manifest.json", tmp_path / "manifest.stop")
    handed = ["python3", "-m", "snapshots.gate", "--file", str(tmp_path / "manifest.json"), "--stop",
              str(tmp_path / "manifest.stop")]
    assert sets.manifest_part_args(HOST, SET, ["files", "pg", "db"], g) == [
        "backup", "--quiet", "--host", HOST, *tags("manifest"), "--tag", "parts:files+pg+db",
        "--stdin-filename", "manifest.json", "--stdin-from-command", "--", *handed]
    assert sets.manifest_part_args(HOST, SET, ["files", "pg"], g)[10:12] == ["--tag", "parts:files+pg"]


def test_the_copys_command_is_one_pgcopy_accepts(secrets, tmp_path):
    """Run as restic would (another interpreter: this one), stopped at its gate: pgcopy parsed every argument,
    waited, and copied nothing."""
    g = gate.Gate(tmp_path / "copy.go", tmp_path / "copy.stop")
    cfg = backup_cfg(secrets, postgres_host="nowhere.invalid", tls=True)
    argv = sets.copy_command(cfg, SET, tmp_path / "copy.json", g)
    proc = subprocess.Popen([sys.executable, *argv[1:]], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    g.stop()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == b"" and b"nothing was copied" in err, err
    assert not (tmp_path / "copy.json").exists()
