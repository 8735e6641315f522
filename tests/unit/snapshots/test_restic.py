"""The command lines and the environment that snapshots/restic.py gives restic: the program and the caller's
arguments in order, --json where the output is read as JSON, `backup --json` first for every backup, each of
restic's commands the actions run (listing, dump, restore, check, forget, prune, init) argument by argument,
listings and manifests read without a lock, and the repository and every password only in the environment
(files, never values, except the rest-server's, which restic takes only from RESTIC_REST_PASSWORD). Also the
sentence each of restic's exit codes becomes. What one action adds (a set's parts, the artifacts, the off-site
copy) is tested beside it: test_set_commands.py, test_artifacts.py, test_offsite.py. Real restic runs in
tests/integration (test_snapshots.py and the drills)."""

from pathlib import Path

import pytest

from common.errors import CommandError
from snapshots import restic
from snapshots.restic import Restic, ResticError

SNAP = "4f" * 32


def full(tmp_path) -> Restic:
    """A Restic with every option: an off-site rest-server over HTTPS with its own CA and credentials."""
    (tmp_path / "http-password").write_text("s3cr3t-http\nsecond line ignored\n")
    return Restic("rest:https://offsite.example:8000/aggr", str(tmp_path / "restic-password"),
                  cache_dir=str(tmp_path / "cache"), rest_user="aggregator",
                  rest_password_file=str(tmp_path / "http-password"), cacert=str(tmp_path / "ca.crt"))


def test_a_command_line_is_restic_and_the_callers_arguments_in_order():
    assert restic.command() == ["restic"]
    assert restic.command("init") == ["restic", "init"]
    assert restic.command("restore", SNAP, "--target", "/data/.restore-x") == [
        "restic", "restore", SNAP, "--target", "/data/.restore-x"]
    assert restic.command("dump", "--archive", "tar", SNAP, "/data") == [
        "restic", "dump", "--archive", "tar", SNAP, "/data"]
    assert restic.command("forget", "a" * 64, "b" * 64) == ["restic", "forget", "a" * 64, "b" * 64]
    assert restic.command("check", "--read-data-subset", "5%") == ["restic", "check", "--read-data-subset", "5%"]


def test_output_read_as_json_asks_for_json_last():
    assert restic.json_args("snapshots", "--no-lock") == ["snapshots", "--no-lock", "--json"]
    assert restic.json_args("snapshots", "--no-lock", "--tag", "kind:artifacts") == [
        "snapshots", "--no-lock", "--tag", "kind:artifacts", "--json"]
    assert restic.command(*restic.json_args("snapshots")) == ["restic", "snapshots", "--json"]


def test_a_backup_of_folders_streams_json_status_then_host_tags_and_paths():
    args = restic.backup_args("--host", "aggregator-dr-backup", "--tag", "set:20260101T000000Z", "--tag",
                              "kind:files", "--exclude", "/data/.tmp", "/data")
    assert args == ["backup", "--json", "--host", "aggregator-dr-backup", "--tag", "set:20260101T000000Z",
                    "--tag", "kind:files", "--exclude", "/data/.tmp", "/data"]
    assert restic.command(*args)[:3] == ["restic", "backup", "--json"]


def test_a_backup_from_a_command_keeps_the_command_after_the_double_dash():
    """--stdin-from-command: restic's own options all come before `--`, the command (and its --password-file,
    a path) after it, untouched."""
    producer = ["python3", "-m", "snapshots.dbdump", "dump", "--password-file", "/run/secrets/db-backup-password"]
    args = restic.backup_args("--host", "h", "--tag", "kind:db", "--stdin-filename", "database.dbdump",
                              "--stdin-from-command", "--", *producer)
    assert args[:2] == ["backup", "--json"]
    cut = args.index("--")
    assert args[cut + 1:] == producer
    assert {"--stdin-from-command", "--stdin-filename", "--json"} <= set(args[:cut])
    assert args[args.index("--stdin-filename") + 1] == "database.dbdump"


def test_tags_are_one_tag_option_each_in_order():
    assert restic.tag_args() == []
    assert restic.tag_args("kind:artifacts") == ["--tag", "kind:artifacts"]
    assert restic.tag_args("set:20260101T000000Z", "kind:pg", "version:0.1.0") == [
        "--tag", "set:20260101T000000Z", "--tag", "kind:pg", "--tag", "version:0.1.0"]


def test_a_stream_is_stored_under_its_file_name_with_the_command_after_the_double_dash():
    producer = ["python3", "-m", "snapshots.gate", "--file", "/tmp/set-x/manifest.json", "--stop", "/tmp/s"]
    assert restic.stdin_args("manifest.json", producer) == [
        "--stdin-filename", "manifest.json", "--stdin-from-command", "--", "python3", "-m", "snapshots.gate",
        "--file", "/tmp/set-x/manifest.json", "--stop", "/tmp/s"]
    assert restic.stdin_args("postgres.tar", []) == ["--stdin-filename", "postgres.tar", "--stdin-from-command", "--"]


def test_a_repository_is_made_once_and_asked_for_by_its_config():
    assert restic.init_args() == ["init"]
    assert restic.cat_config_args() == ["cat", "config"]


def test_the_listing_takes_no_lock_and_filters_by_tag():
    assert restic.snapshots_args() == ["snapshots", "--no-lock"]
    assert restic.snapshots_args("kind:artifacts") == ["snapshots", "--no-lock", "--tag", "kind:artifacts"]
    assert restic.command(*restic.json_args(*restic.snapshots_args())) == ["restic", "snapshots", "--no-lock", "--json"]
    assert restic.json_args(*restic.snapshots_args("kind:artifacts")) == [
        "snapshots", "--no-lock", "--tag", "kind:artifacts", "--json"]


def test_a_snapshots_files_are_listed_without_a_lock_all_or_under_folders_recursively():
    assert restic.ls_args(SNAP) == ["ls", "--no-lock", SNAP]
    assert restic.json_args(*restic.ls_args(SNAP, "/data/raw", "/data/originals")) == [
        "ls", "--no-lock", SNAP, "/data/raw", "/data/originals", "--recursive", "--json"]


def test_a_snapshot_is_read_back_as_a_file_a_tar_or_a_manifest():
    assert restic.dump_args(SNAP, "/postgres.tar") == ["dump", SNAP, "/postgres.tar"]
    assert restic.dump_args(SNAP, "/database.dbdump") == ["dump", SNAP, "/database.dbdump"]
    assert restic.dump_tar_args(SNAP, "/data") == ["dump", "--archive", "tar", SNAP, "/data"]
    assert restic.read_file_args(SNAP, "/manifest.json") == ["dump", "--no-lock", "--quiet", SNAP, "/manifest.json"]


def test_a_snapshot_is_restored_under_its_target():
    assert restic.restore_args(SNAP, "/data/.restore-20260101T000000Z") == [
        "restore", SNAP, "--target", "/data/.restore-20260101T000000Z"]
    assert restic.restore_args(SNAP, Path("/artifacts/.restore-artifacts")) == [
        "restore", SNAP, "--target", "/artifacts/.restore-artifacts"]


def test_check_reads_data_back_only_when_asked():
    assert restic.check_args() == ["check"]
    assert restic.check_args(None) == ["check"] and restic.check_args("") == ["check"]
    assert restic.check_args("5%") == ["check", "--read-data-subset", "5%"]
    assert restic.check_args("1/10") == ["check", "--read-data-subset", "1/10"]


def test_forget_names_the_snapshots_and_prune_takes_nothing():
    assert restic.forget_args(["a" * 64, "b" * 64]) == ["forget", "a" * 64, "b" * 64]
    assert restic.forget_args([SNAP]) == ["forget", SNAP]
    assert restic.prune_args() == ["prune"]


def test_the_stale_lock_commands():
    assert restic.list_locks_args() == ["--no-lock", "list", "locks"]
    assert restic.cat_lock_args("0123abcd") == ["--no-lock", "cat", "lock", "0123abcd"]
    assert restic.unlock_args(remove_all=True) == ["unlock", "--remove-all"]
    assert restic.unlock_args(remove_all=False) == ["unlock"]


def test_the_repository_and_its_password_file_are_in_the_environment():
    env = Restic("/srv/repo", "/etc/aggregator-dr/secrets/restic-password").env()
    assert env == {"RESTIC_REPOSITORY": "/srv/repo",
                   "RESTIC_PASSWORD_FILE": "/etc/aggregator-dr/secrets/restic-password",
                   "RESTIC_PROGRESS_FPS": "0.5"}


def test_the_cache_dir_and_the_ca_go_in_the_environment_when_given():
    env = Restic("/repo", "/run/secrets/restic-password", cache_dir="/cache/restic", cacert="/run/ca.crt").env()
    assert env["RESTIC_CACHE_DIR"] == "/cache/restic" and env["RESTIC_CACERT"] == "/run/ca.crt"
    assert "RESTIC_CACHE_DIR" not in Restic("/repo", "p", cache_dir="").env()
    assert "RESTIC_CACERT" not in Restic("/repo", "p").env()


def test_the_rest_server_credentials_go_in_the_environment_from_their_file(tmp_path):
    env = full(tmp_path).env()
    assert env["RESTIC_REST_USERNAME"] == "aggregator"
    assert env["RESTIC_REST_PASSWORD"] == "s3cr3t-http"  # the first line, stripped
    assert env["RESTIC_REPOSITORY"] == "rest:https://offsite.example:8000/aggr"  # no credentials in the URL
    # a user without a password file (or the other way round): no credentials at all
    assert "RESTIC_REST_USERNAME" not in Restic("rest:http://h:8000/", "p", rest_user="aggregator").env()
    assert "RESTIC_REST_PASSWORD" not in Restic("rest:http://h:8000/", "p",
                                                rest_password_file=str(tmp_path / "http-password")).env()


def test_a_missing_rest_password_file_is_named(tmp_path):
    r = Restic("rest:http://h:8000/", "p", rest_user="aggregator", rest_password_file=str(tmp_path / "nope"))
    with pytest.raises(ResticError, match=f"rest-server password file {tmp_path / 'nope'} is missing"):
        r.env()


def test_the_repository_password_is_given_by_file_only(tmp_path):
    r = full(tmp_path)
    env = r.env()
    assert env["RESTIC_PASSWORD_FILE"] == r.password_file
    assert not {"RESTIC_PASSWORD", "RESTIC_PASSWORD_COMMAND"} & set(env)


@pytest.mark.parametrize("argv", [
    restic.command(*restic.init_args()),
    restic.command(*restic.cat_config_args()),
    restic.command(*restic.json_args(*restic.snapshots_args("kind:artifacts"))),
    restic.command(*restic.backup_args("--host", "h", *restic.tag_args("kind:files"), "/data")),
    restic.command(*restic.backup_args(*restic.stdin_args("database.dbdump", ["python3", "-m", "snapshots.dbdump"]))),
    restic.command(*restic.restore_args(SNAP, "/data/.restore")),
    restic.command(*restic.read_file_args(SNAP, "/manifest.json")),
    restic.command(*restic.dump_args(SNAP, "/postgres.tar")),
    restic.command(*restic.dump_tar_args(SNAP, "/data")),
    restic.command(*restic.forget_args([SNAP])),
    restic.command(*restic.prune_args()),
    restic.command(*restic.check_args("5%")),
    restic.command(*restic.list_locks_args()),
    restic.command(*restic.cat_lock_args("0123abcd")),
    restic.command(*restic.unlock_args(remove_all=True)),
])
def test_no_command_line_carries_the_repository_or_a_secret(tmp_path, argv):
    """Everything the environment holds (the repository, the password files, the rest-server's user and
    password, the CA, the cache) stays out of argv, which the runner logs."""
    for value in full(tmp_path).env().values():
        if value != "0.5":
            assert not any(value in a for a in argv), (value, argv)


def explain(r: Restic, returncode: int, tail: str = "", argv=("restic", "check")) -> ResticError:
    return r._explain(CommandError(list(argv), returncode, tail))


def test_each_exit_code_becomes_one_sentence():
    r = Restic("/srv/repo", "/secrets/restic-password")
    assert str(explain(r, restic.EXIT_NO_REPOSITORY)) == (
        "there is no restic repository at /srv/repo (run `invoke repo-init`)")
    offsite = Restic("rest:http://h:8000/", "/secrets/offsite-restic-password", rest_user="aggregator")
    assert "(run `invoke repo-init --offsite`)" in str(explain(offsite, restic.EXIT_NO_REPOSITORY))
    assert str(explain(r, restic.EXIT_WRONG_PASSWORD)) == (
        "the password in /secrets/restic-password does not open the repository at /srv/repo")
    assert str(explain(r, restic.EXIT_LOCKED)) == "the repository at /srv/repo is locked by another restic process"


def test_any_other_failure_names_the_command_and_keeps_restics_last_lines():
    r = Restic("/srv/repo", "p")
    tail = "load pack 1a2b3c\nerror: pack 1a2b3c: not found\n"
    err = explain(r, 1, tail)
    assert str(err) == "restic check failed (exit 1): error: pack 1a2b3c: not found"
    assert err.details == tail  # what check's report picks its findings from
    assert str(explain(r, 3, "", argv=("restic", "backup", "--json"))) == (
        "restic backup failed (exit 3): no message")


def test_a_snapshot_is_looked_up_in_a_local_repository_only(tmp_path):
    repo = tmp_path / "repo"
    (repo / "snapshots").mkdir(parents=True)
    (repo / "snapshots" / SNAP).write_bytes(b"x")
    r = Restic(str(repo), "p")
    assert r.has_snapshot(SNAP) is True and r.has_snapshot("5e" * 32) is False
    for not_an_id in (SNAP[:8], SNAP.upper(), "../" + SNAP[3:]):
        assert r.has_snapshot(not_an_id) is None  # only restic can tell
    assert Restic("rest:http://h:8000/", "p").has_snapshot(SNAP) is None
