"""Integration tests run the real components: our images on the real Docker Engine, PostgreSQL, FerretDB,
pymongo.

The session fixture bootstraps the host and builds the images (a cache hit when nothing changed), so
`./run pytest` works on its own on a fresh machine. Tests use their own instance name, data root, secrets
directory and loopback ports, so they never touch a live Aggregator on the same host.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import subprocess
import sys
from pathlib import Path

import pytest

from common import config
from database import db
from dr.machine import configfile, host, images
from instances import free_port, lane, remove_instance  # noqa: F401 - the test modules import them from here
from stages.layout import DataRoot

BUILD_LOCK = "/tmp/aggregator-dr-tests-build.lock"


def pytest_collection_modifyitems(items):
    """Every test in this folder needs Docker: mark it, so that `pytest -m "not docker"` runs only the unit
    tests (a module-level pytestmark in a conftest marks nothing)."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.docker)


@contextlib.contextmanager
def running_instance(root, name: str, sample: bool = False, reports: list | None = None, **overrides):
    """An Aggregator instance of its own (services up by `rebuild`, a repository folder configured) in root;
    everything it created in Docker is removed afterwards. reports, when given, receives rebuild's report."""
    from dr.jobs import rebuild

    values = {"instance": name, "data_root": str(root / "data"), "secrets_dir": str(root / "secrets"),
              "db.port": free_port(), "webmirror.port": free_port(), "backup.repository": str(root / "repo"),
              "host.min_free_gb": 1, "monitoring.textfile_dir": str(root / "metrics"),
              "drill.history_dir": str(root / "drills"), "history.dir": str(root / "history"),
              "status.page_dir": str(root / "status")}
    values.update(overrides)
    cfg = config.load(overrides=values)
    remove_instance(cfg)  # what a killed earlier run may have left: containers, database volume, network
    report = rebuild.rebuild(cfg, sample=sample)
    if reports is not None:
        reports.append(report)
    try:
        yield cfg
    finally:
        remove_instance(cfg)


@pytest.fixture(scope="session")
def cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp("instance")
    return config.load(overrides={
        "instance": "aggr-test" + (f"-{lane()}" if lane() not in ("", "gw0") else ""),  # one per xdist lane
        "data_root": str(root / "data"),
        "secrets_dir": str(root / "secrets"),
        "db.port": free_port(),
        "webmirror.port": free_port(),
        "host.min_free_gb": 1,
        "backup.repository": str(root / "repo"),
        "monitoring.textfile_dir": str(root / "metrics"),
        "drill.history_dir": str(root / "drills"),
        "history.dir": str(root / "history"),
        "status.page_dir": str(root / "status"),
    })


@pytest.fixture(scope="session")
def built(cfg):
    """Host bootstrapped, every image built (one lane at a time: the other then finds them built). Returns
    the configuration."""
    build_tagged(cfg)
    return cfg


def build_tagged(cfg, components: tuple[str, ...] | None = None) -> None:
    """The images these tests need, built from this tree under cfg's images.tag (one build at a time, like
    `built`'s), so that they never replace the images other tests run: the components named (the base image
    when missing), or with None the host bootstrapped and every image."""
    from dr.machine import baseimage

    with open(BUILD_LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if components is None:
            host.bootstrap(cfg)
            images.build_all(cfg)
            return
        baseimage.ensure(cfg)
        revision = images.git_revision()
        for component in components:
            images.build_one(cfg, component, revision)


def on_loopback(container, port: int):
    """Publish a container port on an ephemeral port of 127.0.0.1 only (never on every interface)."""
    container.ports[f"{port}/tcp"] = ("127.0.0.1", None)
    return container


@contextlib.contextmanager
def database_pair(cfg, instance: str):
    """A database of our images (postgres + db, started as the drills' sandbox starts them) in a network
    of its own named instance, with the role passwords of cfg's secrets folder; yields (sandbox.Database,
    a pymongo client logged in as owner). Containers, volume and network are removed afterwards."""
    from dr.drills import sandbox
    from dr.engine import docker_api
    from dr.services import stack

    pcfg = config.derive(cfg, {"instance": instance})
    sandbox.clear_leftovers(pcfg)  # a killed run's containers of the same names, and its volume
    database = sandbox.start_database(pcfg)
    client = db.client_as(pcfg.db, pcfg.secrets_dir, "owner", host="127.0.0.1", port=database.port)
    try:
        yield database, client
    finally:
        client.close()
        sandbox.stop_database(database)
        docker_api.remove_network(stack.network_name(pcfg))


def copy_repository(cfg, to: Path, **overrides):
    """cfg with a copy of its repository at `to` (the tests that forget, damage or half-write sets use one)."""
    import shutil

    shutil.copytree(cfg.backup.repository, to)
    return config.derive(cfg, {"backup.repository": str(to), **overrides})


def role_client(cfg, port: int, role: str):
    """A client of the database on port as role (its password from cfg's secrets folder)."""
    return db.client_as(cfg.db, cfg.secrets_dir, role, host="127.0.0.1", port=port)


def reset_database(client, name: str) -> None:
    """An empty database with the importer's collections (as owner, which `rebuild` is): campaign.rounds.reset."""
    from campaign import rounds

    rounds.reset(client[name])


@pytest.fixture(scope="session")
def readme_flow(built, tmp_path_factory):
    """An instance after the README's first steps, as a new user's: `rebuild --sample` (the samples pulled
    through the pipeline), `repo-init`, `snapshot`: its latest set holds the samples. Shared by both runbook
    drills' tests (they only copy its repository and secrets). Yields (configuration, the set's manifest)."""
    from dr.jobs import backup

    with running_instance(tmp_path_factory.mktemp("readme"), "aggr-readme", sample=True) as cfg:
        assert backup.run(cfg, "init")[0] == 0
        code, manifest = backup.run(cfg, "take")
        assert code == 0 and manifest.directories["archive"].reports > 0
        yield cfg, manifest


def passed_every_block(cfg, report, manifest, drill: str, folder: str, title: str) -> list:
    """A runbook drill's report (dr/drills/drill_reports.RunbookDrillReport; drill: bare-host or two-host, saved
    in <history>/<folder>/ as `# <title> ...`) passed on the manifest's set, every block the runbook gives the
    drill ran, and the drill fed the reports its feed markers ask for. Returns the rows (StepRow) of the blocks
    that ran."""
    from dr.drills import runbook
    from dr.drills.drill_reports import RunbookDrillReport

    assert report.verdict == "pass", report.problems
    assert report.set_id == manifest.set_id and report.drill == folder
    steps = [s for s in runbook.parse(runbook.RUNBOOK.read_text(), drill) if not s.skip]
    ran = [r for r in report.steps if r.skipped is None]
    assert len(ran) == len(steps)
    assert report.fed_reports == sum(s.feed for s in steps) > 0
    saved = sorted((Path(cfg.drill.history_dir) / folder).glob("*.json"))
    assert RunbookDrillReport.from_json(saved[-1].read_text()) == report
    assert saved[-1].with_suffix(".md").read_text().startswith(f"# {title} {report.started}: pass")
    return ran


@pytest.fixture(scope="session")
def database(built):
    """One database for the session's pipeline tests: (published port, pymongo client as owner)."""
    with database_pair(built, f"{built.instance}-session") as (pair, client):
        yield pair.port, client


@pytest.fixture
def env(tmp_path, built, database):
    """A data root and a configuration pointing at the test database; the database starts empty."""
    port, client = database
    reset_database(client, built.db.database)
    cfg = config.load(overrides={"data_root": str(tmp_path / "data"), "secrets_dir": built.secrets_dir,
                                 "db.host": "127.0.0.1", "db.port": port, "pipeline.workers": 2,
                                 "db.role": "importer"})  # as the contract configures the importer
    return cfg, DataRoot(cfg.data_root).ensure(), client[built.db.database]


@pytest.fixture
def sample_collector(built, tmp_path):
    """A fresh sample collector published on a loopback port; yields (collector entry, container)."""
    import docker as docker_sdk

    from dr.services import collector

    cfg = config.load(overrides={"instance": built.instance, "secrets_dir": str(tmp_path / "collector-secrets")})
    entry = collector.start(cfg, port=free_port())
    yield entry, docker_sdk.from_env().containers.get(collector.container_name(cfg))
    collector.stop(cfg)


def invoke_status(cfg, folder: Path) -> tuple[int, dict]:
    """`invoke status --json` as an operator (or cron) runs it, with cfg written to folder/config.toml: its exit
    code and what it printed."""
    cfg_file = folder / "config.toml"
    cfg_file.write_text(configfile.to_toml(cfg.as_dict()))
    out = subprocess.run([sys.executable, "-m", "invoke", "status", "--config", str(cfg_file), "--json"],
                         cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, json.loads(out.stdout)
