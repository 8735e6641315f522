"""Snapshot sets with real restic (in the backup image), real dumps and the real pipeline."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from pathlib import Path

import docker
import pytest
from conftest import copy_repository, database_pair, free_port, running_instance

from common import config, secrets
from database import db
from dr.engine import containers
from dr.jobs import backup, history
from dr.machine import configfile, images
from dr.services import offsite, stack
from snapshots import results

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def live(built, tmp_path_factory):
    """An instance of its own with the sample reports pulled through the pipeline, and a repository."""
    with running_instance(tmp_path_factory.mktemp("snap"), "aggr-snap", sample=True) as cfg:
        yield cfg


@pytest.fixture(scope="module")
def first_set(live):
    """live's repository made (init twice: the second finds it) and one set taken, before anything else writes
    to it: (first init's result, second init's result, the set's manifest). Every test that reads or writes
    live's repository requests it; a test that would remove or damage sets works on a copy of the repository."""
    created = backup.run(live, "init")
    again = backup.run(live, "init")
    code, m = backup.run(live, "take")
    assert code == 0, m
    return created, again, m


def newest_complete(cfg) -> results.SetRow:
    return backup.run(cfg, "list")[1].complete[0]


def repo_snapshot_count(cfg) -> int:
    repo = cfg.backup.repository
    return len(os.listdir(os.path.join(repo, "snapshots"))) if os.path.isdir(os.path.join(repo, "snapshots")) else 0


def restic_script(cfg, script: str, label: str, network=None, volumes=None) -> tuple[int, str]:
    """Run a bash script with restic on cfg's repository (read-only at /repo) in the backup image."""
    volumes = {cfg.backup.repository: {"bind": "/repo", "mode": "ro"},
               str(secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD)): {"bind": "/run/secrets/restic-password",
                                                                             "mode": "ro"}, **(volumes or {})}
    return containers.run_tool(cfg, "backup", ["bash", "-o", "pipefail", "-c", script], volumes, network, label,
                               environment={"RESTIC_REPOSITORY": "/repo",
                                            "RESTIC_PASSWORD_FILE": "/run/secrets/restic-password"})


def flip_a_byte(pack: Path) -> None:
    """Damage a pack file the way a failing disk does: one byte in its middle flipped."""
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))


def invoke(cfg, tmp_path, *args) -> subprocess.CompletedProcess:
    """`./run invoke TASK --config FILE ...` with cfg written to FILE, as an operator runs it."""
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(configfile.to_toml(cfg.as_dict()))
    return subprocess.run([str(ROOT / "run"), "invoke", args[0], "--config", str(cfg_file), *args[1:]],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_a_set_restores_to_its_manifest(live, first_set):
    cfg = live
    created, again, m = first_set
    assert created == (0, results.InitResult(created=True, repository=cfg.backup.repository))
    assert again[0] == 0 and again[1].created is False
    assert m.directories["archive"].reports == 18 + 1  # 18 reports and index.json
    assert m.directories["quarantine"].reports == 1
    assert m.database.collections["reports"] == 18
    assert m.paused_seconds > 0 and m.journal_position > 0
    assert m.artifacts.saved is True and m.artifacts.artifacts == ["ferretdb-v1.24.2/ferretdb"]
    code, listed = backup.run(cfg, "list")
    row = next(r for r in listed.sets if r.set_id == m.set_id)
    assert code == 0 and row.complete
    assert row.reports == m.reports

    # Restore both parts in the backup image and compare with the manifest: files by digest, the database
    # (into a fresh db container on the instance's network) by counts.
    owner_pw = secrets.path(cfg.secrets_dir, db.password_name("owner"))
    with database_pair(cfg, "aggr-snap-restore") as (_, restored):
        script = (
            f"restic --no-lock restore --quiet {m.snapshots['files']} --target /restore >&2 && "
            "python3 -c 'import json; from pathlib import Path; from snapshots import manifest; "
            "print(json.dumps(manifest.directories(Path(\"/restore/data\"))))' && "
            f"restic --no-lock dump --quiet {m.snapshots['db']} /database.dbdump | python3 -m snapshots.dbdump restore "
            "--host aggr-snap-restore-db --user owner --password-file /run/secrets/db-owner-password >&2")
        code, out = restic_script(cfg, script, "verify", "aggr-snap-restore",
                                  {str(owner_pw): {"bind": "/run/secrets/db-owner-password", "mode": "ro"}})
        assert code == 0, out
        assert json.loads(out) == {k: d.to_dict() for k, d in m.directories.items()}
        for coll, n in m.database.collections.items():
            assert restored[cfg.db.database][coll].count_documents({}) == n


def test_check_reads_every_set_back_and_names_a_damaged_one(live, first_set, tmp_path):
    import shutil

    code, result = backup.run(live, "check", extra=("--read-data-subset", "100%"))
    assert code == 0 and result.ok, result
    assert result.verified >= 1 and all(r.verdict == "ok" for r in result.sets)

    # Damage copies of the repository (the live one stays intact for the other tests): one byte flipped in
    # the middle of every pack (sets and the build artifacts share none), then every pack deleted.
    flipped = tmp_path / "flipped"
    shutil.copytree(live.backup.repository, flipped)
    for pack in (p for p in (flipped / "data").rglob("*") if p.is_file()):
        flip_a_byte(pack)
    code, result = backup.run(config.derive(live, {"backup.repository": str(flipped)}), "check")
    assert code == 1 and not result.ok
    assert result.failed_sets, result
    bad = [r for r in result.sets if r.verdict == "FAILED"]
    assert all(("cannot be read back" in " ".join(r.problems) or "manifest unreadable" in " ".join(r.problems))
               for r in bad), bad

    deleted = tmp_path / "deleted"
    shutil.copytree(live.backup.repository, deleted)
    for pack in (p for p in (deleted / "data").rglob("*") if p.is_file()):
        pack.unlink()
    code, result = backup.run(config.derive(live, {"backup.repository": str(deleted)}), "check")
    assert code == 1 and not result.restic_check.ok and result.failed_sets, result


def artifacts_data_packs(repository: Path, cfg) -> list[Path]:
    """The pack files of a local repository that hold file data of an artifacts snapshot, as restic finds them."""
    script = ("for p in $(restic --no-lock list packs); do "
              "restic --no-lock find --json --pack $p --tag kind:artifacts | grep -q '\"object_type\":\"blob\"' "
              "&& echo $p; done; true")
    code, out = restic_script(config.derive(cfg, {"backup.repository": str(repository)}), script, "find-packs")
    assert code == 0, out
    return [repository / "data" / p[:2] / p for p in out.split()]


def test_check_reads_the_build_artifacts_back_whole(live, first_set, tmp_path):
    """A damaged pack of the build artifacts passes restic's own check (it reads no data without
    --read-data-subset) and harms no set; `invoke check` reads the artifacts back in full and fails naming them."""
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(live.backup.repository, damaged)
    packs = artifacts_data_packs(damaged, live)
    assert packs and all(p.is_file() for p in packs), packs
    flip_a_byte(packs[0])

    cfg = config.derive(live, {"backup.repository": str(damaged), "monitoring.textfile_dir": str(tmp_path / "m")})
    out = invoke(cfg, tmp_path, "check")
    assert out.returncode == 1, out.stdout + out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "restic check: ok"
    assert all(line.endswith(": ok") for line in lines if line.startswith("set ")), out.stdout
    at = lines.index("artifacts: FAILED")
    assert re.match(r"    artifacts snapshot [0-9a-f]{8} cannot be read back: restic dump failed", lines[at + 1]), \
        out.stdout
    assert re.search(r"error: the repository failed its check; the build artifacts \(snapshot [0-9a-f]{8}\) are "
                     r"damaged", out.stderr), out.stderr[-2000:]
    prom = (tmp_path / "m" / "aggregator_dr_check.prom").read_text()
    assert 'aggregator_dr_check_artifacts_ok{dr_job="check"} 0' in prom


def test_check_of_a_repository_without_artifacts_says_none(built, tmp_path):
    cfg = config.derive(built, {"backup.repository": str(tmp_path / "repository"),
                                "secrets_dir": str(tmp_path / "secrets"), "monitoring.textfile_dir": ""})
    assert backup.run(cfg, "init")[0] == 0
    out = invoke(cfg, tmp_path, "check")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[-2:] == ["no snapshot sets in the repository", "artifacts: none in the repository"]


def test_tasks_print_results_write_metrics_and_ping(live, first_set, tmp_path, pings):
    url, seen = pings
    metrics = tmp_path / "metrics"
    cfg = config.derive(live, {"monitoring.textfile_dir": str(metrics), "monitoring.healthcheck_url": url + "/{job}",
                               "history.dir": str(tmp_path / "history"), "status.page_dir": str(tmp_path / "status")})

    snap = invoke(cfg, tmp_path, "snapshot")
    assert snap.returncode == 0, snap.stderr[-2000:]
    assert snap.stdout.startswith("set ") and " complete (files, pg" in snap.stdout and "pipeline paused" in snap.stdout
    prom = (metrics / "aggregator_dr_snapshot.prom").read_text()
    assert 'aggregator_dr_snapshot_set_complete{dr_job="snapshot"} 1' in prom
    assert 'aggregator_dr_last_run_success{dr_job="snapshot"} 1' in prom
    assert seen == ["/snapshot/start", "/snapshot"]

    listed = invoke(cfg, tmp_path, "snapshots", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)["sets"][0]["set"] == snap.stdout.split()[1]
    checked = invoke(cfg, tmp_path, "check")
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert checked.stdout.startswith("restic check: ok") and f"set {snap.stdout.split()[1]}: ok" in checked.stdout
    assert re.search(r"^artifacts: ok \(snapshot [0-9a-f]{8}: ferretdb-v1.24.2/ferretdb read back", checked.stdout, re.M)
    assert 'aggregator_dr_check_failed_sets{dr_job="check"} 0' in (metrics / "aggregator_dr_check.prom").read_text()
    assert 'aggregator_dr_check_artifacts_ok{dr_job="check"} 1' in (metrics / "aggregator_dr_check.prom").read_text()

    # The pipeline is a job too: the samples are through already, so a run has nothing to do and succeeds.
    piped = invoke(cfg, tmp_path, "pipeline")
    assert piped.returncode == 0, piped.stderr[-2000:]
    prom = (metrics / "aggregator_dr_pipeline.prom").read_text()
    assert 'aggregator_dr_last_run_success{dr_job="pipeline"} 1' in prom
    assert 'aggregator_dr_pipeline_errors{dr_job="pipeline"} 0' in prom
    assert 'aggregator_dr_pipeline_reports_imported{dr_job="pipeline"} 0' in prom
    assert seen[-2:] == ["/pipeline/start", "/pipeline"]
    # Every run is in the job history, with its result.
    runs = history.read(cfg)
    assert [(r.job, r.outcome, r.result_type) for r in runs] == [
        ("snapshot", "ok", "TakeResult"), ("check", "ok", "CheckResult"), ("pipeline", "ok", "PipelineRun")]
    assert runs[0].result["set"] == snap.stdout.split()[1] and runs[0].data_free_bytes > 0


def test_restore_refuses_to_overwrite_and_verifies(live, first_set, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="aggregator-dr")
    target = config.derive(live, {"data_root": str(tmp_path / "restored")})
    code, result = backup.run(target, "restore", db=False)
    assert code == 0, _errors(caplog)
    m = result.manifest
    assert result.files.directories == m.directories and result.files.moved_aside is None
    assert len(list((tmp_path / "restored" / "archive").rglob("*.yaml"))) == m.directories["archive"].reports - 1
    assert not any(p.name.startswith(".restore-") for p in (tmp_path / "restored").iterdir())

    caplog.clear()
    code, _ = backup.run(target, "restore", db=False)
    assert code == 1 and f"{tmp_path / 'restored'} is not empty (" in _errors(caplog)
    assert f"archive: {m.directories['archive'].files} files" in _errors(caplog)
    code, again = backup.run(target, "restore", extra=("--force",), db=False)
    assert code == 0 and again.files.moved_aside == str(tmp_path / "restored" / f".replaced-{m.set_id}")
    assert (tmp_path / "restored" / f".replaced-{m.set_id}" / "archive").is_dir()  # moved aside, not deleted

    caplog.clear()  # the live database holds documents: a restore of the dump into it needs --force
    code, _ = backup.run(live, "restore", extra=("--snapshot-set", first_set[2].set_id), files=False)
    assert code == 1 and f"database {live.db.database} is not empty" in _errors(caplog)
    caplog.clear()
    code, _ = backup.run(live, "restore", extra=("--snapshot-set", "20000101T000000Z"), files=False)
    assert code == 1 and "there is no set 20000101T000000Z" in _errors(caplog)


def test_drill_restores_into_a_sandbox_and_reports(live, first_set, tmp_path):
    from dr.drills import drill, drill_reports

    cfg = config.derive(live, {"drill.history_dir": str(tmp_path / "drills"), "drill.keep": 2})
    def ours():  # this instance's containers (tests in the other xdist lane make and remove their own)
        return {c.name for c in docker.from_env().containers.list(all=True) if c.name.startswith(live.instance)}

    before = ours()
    report = drill.run(cfg)
    assert report.verdict == "pass", report
    newest = newest_complete(live)
    assert report.set_id == newest.set_id and report.rpo_seconds >= 0
    assert report.documents_restored == newest.documents
    assert set(report.phases) == {"copy", "start", "restore", "queries", "pipeline"}
    assert report.queries.reports == 18
    assert ours() == before  # sandbox gone
    assert not docker.from_env().networks.list(names=[f"{live.instance}-drill"])
    for _ in range(2):
        drill.run(cfg)
    assert len(drill_reports.history(cfg).reports) == 2 and len(list((tmp_path / "drills").glob("*.md"))) == 2

    # A damaged repository fails the drill, and the failing report is kept.
    import shutil
    damaged = tmp_path / "damaged"
    shutil.copytree(live.backup.repository, damaged)
    for pack in (damaged / "data").rglob("*"):
        if pack.is_file():
            pack.unlink()
    from dr.drills.drill import DrillFailed
    with pytest.raises(DrillFailed, match="FAILED"):
        drill.run(config.derive(cfg, {"backup.repository": str(damaged)}))
    assert drill_reports.history(cfg).reports[0].verdict == "FAIL"


def test_rebuild_on_a_new_host_restores_the_latest_set(live, first_set, tmp_path):
    """A second instance with an empty data root and database, the same repository and a copy of its
    password: rebuild restores the newest complete set, verifies it, runs the pipeline, and times it all."""
    import urllib.request

    from dr.jobs import rebuild

    newest = newest_complete(live)
    secrets.put(tmp_path / "secrets", secrets.RESTIC_PASSWORD, secrets.read(live.secrets_dir, secrets.RESTIC_PASSWORD))
    reports = []
    with running_instance(tmp_path, "aggr-rebuilt", reports=reports, **{
            "backup.repository": live.backup.repository, "secrets_dir": str(tmp_path / "secrets"),
            "cache_dir": str(tmp_path / "cache")}) as cfg:  # an empty cache: no Go binary on this "host"
        phases = reports[0].notes()
        assert phases["artifacts"].startswith("restored ferretdb-v1.24.2/ferretdb from artifacts snapshot")
        n = len(images.COMPONENTS)  # the restored binary is byte-identical: the db image is a cache hit
        assert f"{n} images ({n} unchanged)" in phases["images"]
        assert phases["restore"].startswith(f"set {newest.set_id} ") and "verified" in phases["restore"]
        assert "reports 18" in phases["verify"] and "pipeline" in phases
        assert len(list((Path(cfg.data_root) / "archive").rglob("*.yaml"))) == 18
        with urllib.request.urlopen(f"http://127.0.0.1:{cfg.webmirror.port}/index.json", timeout=10) as resp:
            assert resp.status == 200
        client = stack.db_client(cfg)
        assert client[cfg.db.database]["reports"].count_documents({}) == 18
        client.close()
        again = rebuild.rebuild(cfg).notes()
        assert "already holds data" in again["restore"]  # a second rebuild keeps what is there


def _errors(caplog):
    return "\n".join(r.getMessage() for r in caplog.records)


def test_missing_repository_wrong_password_and_bad_secret_are_one_clear_error(live, first_set, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="aggregator-dr")
    missing = config.derive(live, {"backup.repository": str(tmp_path / "no-repo")})
    code, _ = backup.run(missing, "take")
    assert code == 1 and f"there is no restic repository at {tmp_path / 'no-repo'} " in _errors(caplog)
    assert not os.path.exists(tmp_path / "no-repo" / "config")

    before = repo_snapshot_count(live)
    other = tmp_path / "secrets"
    for role in db.ROLES:
        name = db.password_name(role)
        secrets.put(other, name, secrets.read(live.secrets_dir, name))
    secrets.put(other, secrets.RESTIC_PASSWORD, "not the password")
    wrong = config.derive(live, {"secrets_dir": str(other)})
    caplog.clear()
    code, _ = backup.run(wrong, "take")
    assert code == 1 and "does not open the repository" in _errors(caplog)
    assert repo_snapshot_count(live) == before

    os.chmod(other / secrets.RESTIC_PASSWORD, 0o644)
    from common.errors import SecretError
    with pytest.raises(SecretError, match="must not be readable by group or others"):
        backup.run(wrong, "take")
    assert repo_snapshot_count(live) == before


# A container path at the start of a path: /repo, /data, /cache, /artifacts or /run/secrets, not inside a longer one.
CONTAINER_PATH = re.compile(r"(?<![\w.-])/(repo|data|cache|artifacts|run/secrets)\b")


def test_errors_name_the_hosts_paths_not_the_containers(built, tmp_path):
    """What restic says in the backup container about its repository (/repo) and its password file
    (/run/secrets/restic-password) reaches the operator naming the host's folder and file."""
    cfg = config.derive(built, {"backup.repository": str(tmp_path / "restic-repository"),
                                "secrets_dir": str(tmp_path / "secrets"), "monitoring.textfile_dir": ""})
    assert backup.run(cfg, "init")[0] == 0  # the repository, and its password file
    folder = tmp_path / "not-a-repository"
    folder.mkdir()
    out = invoke(config.derive(cfg, {"backup.repository": str(folder)}), tmp_path, "snapshots")
    assert out.returncode == 1
    assert f"error: there is no restic repository at {folder} (run `invoke repo-init`)" in out.stderr, out.stderr
    assert not CONTAINER_PATH.search(out.stderr), out.stderr

    secrets.put(cfg.secrets_dir, secrets.RESTIC_PASSWORD, "not the password")
    out = invoke(cfg, tmp_path, "snapshots")
    assert out.returncode == 1
    password_file = secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD)
    assert (f"error: the password in {password_file} does not open the repository at {tmp_path / 'restic-repository'}"
            in out.stderr), out.stderr
    assert not CONTAINER_PATH.search(out.stderr), out.stderr


def test_a_failing_dump_leaves_no_complete_set(live, first_set, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="aggregator-dr")
    cfg = copy_repository(live, tmp_path / "repository")  # the interrupted set stays out of live's repository
    dbc = docker.from_env().containers.get(stack.container_name(live, "db"))
    complete_before = [r.set_id for r in backup.run(cfg, "list")[1].complete]
    dbc.stop()
    try:
        code, _ = backup.run(cfg, "take")
    finally:
        dbc.start()
    assert code == 1
    assert "does not answer" in _errors(caplog) and "Traceback" not in _errors(caplog)
    rows = backup.run(cfg, "list")[1].sets
    assert [r.set_id for r in rows if r.complete] == complete_before
    assert any(not r.complete for r in rows)  # the interrupted set is listed, as incomplete
    stack.wait_healthy(live)


def test_offsite_copy_is_append_only_and_restores(live, first_set, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="aggregator-dr")
    cfg = copy_repository(live, tmp_path / "primary", **{
        "offsite.repository": offsite.repository_url(live), "offsite.network": offsite.network_name(live),
        "offsite.serve_port": free_port()})
    served = offsite.serve(cfg)
    assert served.state in ("started", "running") and served.container == stack.container_name(cfg, "offsite")
    # `invoke down` leaves it running (it stands for another host) and says so.
    assert stack.StillRunning(stack.container_name(cfg, "offsite"), stack.KEPT["offsite"]) in stack.still_running(cfg)
    assert backup.run(cfg, "init", offsite=True) == (0, results.InitResult(created=True,
                                                                            repository=cfg.offsite.repository))
    code, m = backup.run(cfg, "take")
    assert code == 0 and m.artifacts.saved is False  # the same binaries are kept only once
    primary = [r.set_id for r in backup.run(cfg, "list")[1].complete]
    assert len(primary) >= 2
    code, copied = backup.run(cfg, "copy")
    assert code == 0 and copied.copied == primary and copied.offsite_complete_sets == len(primary)
    code, again = backup.run(cfg, "copy")
    assert code == 0 and again.copied == [] and again.already_offsite == primary
    listed = backup.run(cfg, "list", offsite=True)[1]
    assert [r.set_id for r in listed.complete] == primary

    # From the Aggregator's side, deleting is refused: forget (keep one set) fails and nothing goes.
    keep_one = config.derive(cfg, {"retention.keep_last": 1, "retention.keep_hourly": 0, "retention.keep_daily": 0,
                                   "retention.keep_weekly": 0, "retention.keep_monthly": 0})
    code, _ = backup.run(keep_one, "forget", offsite=True)
    refused = re.search(r"the repository refused to delete (\d+) of (\d+) snapshots", _errors(caplog))
    assert code == 1 and refused and refused.group(1) == refused.group(2), _errors(caplog)[-2000:]
    assert [r.set_id for r in backup.run(cfg, "list", offsite=True)[1].complete] == primary

    # The copies read back whole and match their manifests (files by digest, the dump by its checks).
    code, result = backup.run(cfg, "check", offsite=True)
    assert code == 0 and result.ok and result.verified == len(primary), result

    # The primary damaged (a copy of it with every pack file deleted): its drill fails naming the newest
    # set; the off-site copy still restores that set, verified.
    import shutil

    from dr.drills import drill

    damaged = tmp_path / "damaged"
    shutil.copytree(cfg.backup.repository, damaged)
    for pack in (p for p in (damaged / "data").rglob("*") if p.is_file()):
        pack.unlink()
    dcfg = config.derive(cfg, {"backup.repository": str(damaged), "drill.history_dir": str(tmp_path / "drills")})
    with pytest.raises(drill.DrillFailed, match=f"set {primary[0]}, the newest, cannot be restored"):
        drill.run(dcfg)
    report = drill.run(dcfg, offsite=True)
    assert report.verdict == "pass" and report.set_id == primary[0]
    assert report.repository == cfg.offsite.repository


def test_the_offsite_copy_over_https_verifies_the_server_against_the_ca(live, first_set, tmp_path, caplog):
    """offsite.serve_tls: the rest-server serves HTTPS only (the `offsite` certificate of `invoke certs`);
    restic copies into it verifying that certificate against the CA (RESTIC_CACERT, the CA handed to the
    backup container); a CA that did not sign it is refused in seconds (not after restic's 15 minutes of
    retries), and the server answers plaintext HTTP with an error."""
    import shutil

    from dr.services import certs

    caplog.set_level(logging.INFO, logger="aggregator-dr")
    shutil.copytree(live.secrets_dir, tmp_path / "secrets")
    base = copy_repository(live, tmp_path / "primary", **{
        "instance": "aggr-snaptls", "secrets_dir": str(tmp_path / "secrets"), "offsite.serve_tls": True,
        "offsite.serve_port": free_port()})
    certs.make(base)
    cfg = config.derive(base, {"offsite.repository": offsite.repository_url(base),
                               "offsite.network": offsite.network_name(base)})
    assert cfg.offsite.repository.startswith("rest:https://aggr-snaptls-offsite:8000/")
    offsite.stop(cfg, remove_data=True)  # what a killed run left: its repository under another password
    offsite.serve(cfg)
    try:
        assert backup.run(cfg, "init", offsite=True)[0] == 0
        primary = [r.set_id for r in backup.run(cfg, "list")[1].complete]
        code, copied = backup.run(cfg, "copy")
        assert code == 0 and copied.copied == primary
        code, result = backup.run(cfg, "check", offsite=True)
        assert code == 0 and result.ok and result.verified == len(primary), result

        other = config.derive(base, {"instance": "aggr-othertls", "secrets_dir": str(tmp_path / "other")})
        certs.make(other)
        caplog.clear()
        code, _ = backup.run(config.derive(cfg, {"offsite.ca_file": str(certs.cert_path(other, certs.CA))}),
                             "list", offsite=True)
        assert code != 0 and "certificate verify failed" in _errors(caplog), _errors(caplog)[-2000:]
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError, match="400"):  # plain HTTP: "sent an HTTP request to an HTTPS server"
            urllib.request.urlopen(f"http://127.0.0.1:{cfg.offsite.serve_port}/", timeout=10)
    finally:
        offsite.stop(cfg, remove_data=True)


def test_forget_keeps_whole_sets_by_policy(live, first_set, tmp_path):
    cfg = copy_repository(live, tmp_path / "repository")  # forgetting leaves live's sets to the other tests
    for _ in range(2):
        assert backup.run(cfg, "take")[0] == 0
    rows = backup.run(cfg, "list")[1].sets
    newest = rows[0].set_id
    assert len([r for r in rows if r.complete]) >= 3
    one = config.derive(cfg, {"retention.keep_last": 1, "retention.keep_hourly": 0, "retention.keep_daily": 0,
                               "retention.keep_weekly": 0, "retention.keep_monthly": 0})
    code, plan = backup.run(one, "forget", dry_run=True)
    assert code == 0 and plan.keep == [newest] and len(plan.forget) == len(rows) - 1
    assert [r.set_id for r in backup.run(cfg, "list")[1].sets] == [r.set_id for r in rows]  # dry run: unchanged
    code, done = backup.run(one, "forget")
    assert code == 0 and done.forget == plan.forget
    after = backup.run(cfg, "list")[1].sets
    assert [(r.set_id, r.complete) for r in after] == [(newest, True)]  # never half a set

