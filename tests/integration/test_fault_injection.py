"""Kill each stage with SIGKILL at random moments (several seeds), rerun, and check the invariants: every
report in exactly one place, nothing lost, nothing doubled, no half-written file, no open transaction."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import reset_database

from common import atomic, config, digest
from dr.machine import configfile
from pipeline_helpers import generate, journal_lines
from stages import journal
from stages.layout import DataRoot

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path, cfg_values: dict) -> Path:
    cfg = config.load(overrides=cfg_values)
    path = tmp_path / "config.toml"
    path.write_text(configfile.to_toml(cfg.as_dict()))
    return path


def run_with_kills(stage: str, cfg_file: Path, dr: DataRoot, rng: random.Random, kills: int) -> list[str]:
    """Start the stage and SIGKILL its whole process group, `kills` times: either after a random number of
    new journal lines (so kills land inside transactions, between `begin` and `commit`) or after a random
    short delay (while workers are busy); then run it to completion. Returns where each kill landed."""
    cmd = [sys.executable, "-m", f"stages.{stage}", "--config", str(cfg_file)]
    landed = []
    for _ in range(kills):
        proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        by_lines = rng.random() < 0.7
        target = journal_lines(dr) + rng.randint(1, 5)
        deadline = time.monotonic() + rng.uniform(0.05, 0.5)
        while proc.poll() is None:
            if (by_lines and journal_lines(dr) >= target) or (not by_lines and time.monotonic() >= deadline):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                landed.append(f"after journal line {journal_lines(dr)}" if by_lines else "mid-work")
                break
            time.sleep(0.002)
    final = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout + final.stderr
    return landed


def temporaries(dr: DataRoot) -> list[Path]:
    return [p for p in dr.root.rglob("*") if p.is_file() and atomic.is_temporary(p)]


@pytest.mark.parametrize("seed", range(6))
def test_killed_sanitize_and_importer_converge(seed, tmp_path, built, database):
    port, client = database
    reset_database(client, built.db.database)
    rng = random.Random(seed)
    dr = DataRoot(tmp_path / "data").ensure()
    ids = generate(dr, rng, n_good=40, n_bad=2)
    cfg_file = write_config(tmp_path, {"data_root": str(dr.root), "secrets_dir": built.secrets_dir,
                                       "db.host": "127.0.0.1", "db.port": port, "pipeline.workers": 2,
                                       "pipeline.batch_size": 3, "db.role": "importer"})
    killed = {stage: run_with_kills(stage, cfg_file, dr, rng, rng.randint(1, 3)) for stage in ("sanitize", "importer")}
    assert all(killed.values()), f"a stage finished before any kill: {killed}"

    for state in ("raw", "staging", "reports"):
        assert dr.files(state) == [], (state, killed)
    assert temporaries(dr) == []
    assert journal.pending(dr)[0] == []
    published = [p for p in dr.files("archive") if p.suffix == ".yaml"]
    assert sorted(p.name.split("-")[4] for p in published) == sorted(ids.values())  # each report exactly once
    assert len([p for p in dr.files("quarantine") if p.suffix == ".yaml"]) == 2
    db = client[built.db.database]
    assert db.reports.count_documents({}) == len(ids)
    expected = sum(int(p.with_suffix(".jsonl").read_text().splitlines()[-1].split('"entries":')[1].split(",")[0])
                   for p in published)
    assert db.measurements.count_documents({}) == expected
    for p in published:
        assert "10.9.8.7" not in p.read_text()


@pytest.mark.parametrize("seed", range(4))
def test_killed_sync_converges(seed, tmp_path, sample_collector):
    entry, container = sample_collector
    # 80 reports on the collector: the 20 samples and 60 copies under other names.
    r = container.exec_run(["sh", "-c", "cd /srv/collector/archive && for i in $(seq 60); do "
                            "cp extracted-spec-captiveportal-2014.yaml copy-$i.yaml && echo \"# $i\" >> copy-$i.yaml; done"],
                           user="collector")
    assert r.exit_code == 0
    rng = random.Random(100 + seed)
    dr = DataRoot(tmp_path / "data").ensure()
    cfg_file = write_config(tmp_path, {"data_root": str(dr.root), "collectors": [entry]})
    assert run_with_kills("sync", cfg_file, dr, rng, rng.randint(1, 3)), "sync finished before any kill"
    pulled = dr.files("raw")
    assert len(pulled) == 80 and len({digest.sha256_file(p) for p in pulled}) == 80
    def count(find: str) -> str:
        return container.exec_run(["sh", "-c", f"cd /srv/collector/archive && find {find} | wc -l"]).output.decode().strip()

    # each report pulled once, and held once on the collector until a release ([sync] release: set by default)
    assert count(". -path ./.pulled -prune -o -type f -print") == "0"
    assert count(".pulled -type f") == "80"
    assert temporaries(dr) == [] and journal.pending(dr)[0] == []
    incoming = dr.state("raw") / ".incoming" / "sample"
    assert [p for p in incoming.rglob("*") if p.is_file()] == []


def test_a_sandbox_starts_over_what_a_killed_one_left(built, tmp_path):
    """A drill killed before its teardown leaves its containers (stopped or not) and its database volume
    behind; the next sandbox of that name removes them instead of failing on the names or reading the old
    volume."""
    from dr.drills import sandbox
    from dr.engine import docker_api
    from dr.services import stack

    cfg = config.derive(built, {"drill.work_dir": str(tmp_path / "drill")})
    left = sandbox.sandbox_config(cfg, f"{cfg.instance}-killed", tmp_path, tmp_path / "secrets")
    volume = stack.pg_volume_name(left)
    docker = docker_api.client()
    docker.containers.run(cfg.image("backup"), ["sh", "-c", "mkdir -p /v/data && echo old > /v/data/LEFT"],
                          remove=True, volumes={volume: {"bind": "/v", "mode": "rw"}})
    for name in ("postgres", "db"):
        docker.containers.create(cfg.image("backup"), ["sleep", "600"], name=stack.container_name(left, name),
                                 labels={docker_api.INSTANCE_LABEL: left.instance})
    docker.containers.get(stack.container_name(left, "db")).start()
    with sandbox.throwaway(cfg, "killed") as sb:
        assert sb.db.command("ping")["ok"] == 1
        probe = docker.containers.run(cfg.image("backup"), ["ls", "/v/data"], remove=True,
                                      volumes={volume: {"bind": "/v", "mode": "ro"}}).decode()
        assert "LEFT" not in probe and "PG_VERSION" in probe
    assert docker.containers.list(all=True, filters={"label": f"{docker_api.INSTANCE_LABEL}={left.instance}"}) == []


def test_the_two_host_drill_starts_over_a_network_a_killed_one_left(built):
    """A two-host drill killed before its teardown leaves its servers attached to its network (running or
    stopped); Docker refuses to remove a network with endpoints. The next drill's network removes the
    servers of its instance and only disconnects a container that is not the instance's."""
    from dr.drills import two_hosts
    from dr.engine import docker_api

    cfg = config.derive(built, {"instance": f"{built.instance}-net"})
    docker = docker_api.client()
    two_hosts.make_network(cfg)
    name = two_hosts.network_name(cfg)
    ours = [docker.containers.create(cfg.image("backup"), ["sleep", "600"], name=f"{name}-left-{i}",
                                     network=name, labels={docker_api.INSTANCE_LABEL: cfg.instance})
            for i in range(2)]
    ours[0].start()
    foreign = docker.containers.run(cfg.image("backup"), ["sleep", "600"], name=f"{name}-foreign", network=name,
                                    detach=True, labels={docker_api.INSTANCE_LABEL: "someone-else"})
    try:
        subnet = two_hosts.make_network(cfg)
        assert subnet.prefixlen == 24
        for c in ours:
            assert docker_api.container_or_none(c.name) is None
        foreign.reload()
        assert foreign.status == "running" and name not in foreign.attrs["NetworkSettings"]["Networks"]
        network = docker.networks.get(name)
        network.reload()
        assert network.containers == []
    finally:
        foreign.remove(force=True)
        for c in ours:
            if docker_api.container_or_none(c.name) is not None:
                c.remove(force=True)
        docker_api.remove_network(name)
