"""snapshots/actions.py's table ties an action together: every row's function is what snapshots.cli runs
for it and builds the row's result type, the CLI offers exactly the table's actions and holds the lock of
our restic runs for the actions on a repository only, dr/jobs/contract.py makes a container of every row with
the mounts, secrets and networks its flags ask for, and a sample result of every action round-trips
through JSON into its type. Pure: nothing runs restic, PostgreSQL or Docker."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import json
import typing

import pytest

from common import config
from common.records import Record
from dr.jobs import contract
from snapshots import cli, results
from snapshots.actions import ACTIONS

from .test_results import EXAMPLES

ROWS = sorted(ACTIONS)
# (action, role) for every row: a row asking the caller to name a role gets each one
NAMED = [(a, r) for a in ROWS for r in contract.roles_to_name(a)]


@pytest.fixture
def cfg(tmp_path):
    return config.load(overrides={
        "instance": "inst", "data_root": str(tmp_path / "data"), "secrets_dir": str(tmp_path / "secrets"),
        "cache_dir": str(tmp_path / "cache"), "backup.repository": str(tmp_path / "repo"),
        "offsite.repository": "rest:http://offsite:8000/aggr", "offsite.network": "inst-offsite"})


@pytest.mark.parametrize("action", ROWS)
def test_every_row_runs_a_function_of_args_and_cfg_that_returns_the_rows_type(action):
    row = ACTIONS[action]
    assert callable(row.run) and list(inspect.signature(row.run).parameters) == ["args", "cfg"]
    assert isinstance(row.result, type) and issubclass(row.result, Record)
    returns = typing.get_type_hints(row.run)["return"]
    assert returns == row.result


def test_the_clis_choices_are_the_tables_actions():
    parser = cli.parser()
    choices = next(a.choices for a in parser._actions if a.dest == "action")
    assert tuple(choices) == tuple(ACTIONS)
    assert [parser.parse_args([a]).action for a in ACTIONS] == list(ACTIONS)


@pytest.fixture
def dispatched(monkeypatch):
    """Every row's function replaced by one that records it ran (and whether under our lock), the lock and
    the stale-lock clearing recorded instead of done."""
    ran: list[tuple[str, bool]] = []
    locked = []

    @contextlib.contextmanager
    def lock(cfg):
        locked.append(True)
        yield
        locked.pop()

    def fake(name):
        def run(args, cfg):
            ran.append((name, bool(locked)))
            return results.InitResult(created=False, repository=name)
        return run

    for name, row in list(ACTIONS.items()):
        monkeypatch.setitem(ACTIONS, name, dataclasses.replace(row, run=fake(name)))
    monkeypatch.setattr(cli, "repo_lock", lock)
    monkeypatch.setattr(cli, "_clear_stale", lambda args, cfg: None)
    return ran


def test_the_cli_dispatches_every_row_to_its_function_under_the_lock_when_it_uses_a_repository(dispatched, cfg):
    for name in ACTIONS:
        result = cli.run(cli.parser().parse_args([name]), cfg)
        assert result == results.InitResult(created=False, repository=name)
    assert [name for name, _ in dispatched] == list(ACTIONS)
    unlocked = {name for name, locked in dispatched if not locked}
    assert unlocked == {name for name, row in ACTIONS.items() if not row.repository}
    assert unlocked == {"db-counts", "db-indexes", "db-password", "pg-undo"}  # PostgreSQL only


def test_the_cli_prints_the_result_as_json_and_exits_1_on_a_failed_check(monkeypatch, capsys, cfg):
    monkeypatch.setattr(cli, "repo_lock", lambda cfg: contextlib.nullcontext())
    monkeypatch.setattr(cli, "_clear_stale", lambda args, cfg: None)
    failed = next(data for a, data in EXAMPLES if a == "check" and not data["ok"])
    monkeypatch.setitem(ACTIONS, "check", dataclasses.replace(
        ACTIONS["check"], run=lambda args, cfg: results.CheckResult.from_dict(copy.deepcopy(failed))))
    assert cli.main(["check"]) == 1
    assert json.loads(capsys.readouterr().out) == failed
    monkeypatch.setitem(ACTIONS, "list", dataclasses.replace(ACTIONS["list"],
                                                             run=lambda args, cfg: results.SetList(sets=[])))
    assert cli.main(["list"]) == 0 and json.loads(capsys.readouterr().out) == {"sets": []}


@pytest.mark.parametrize("argv, repositories", [
    (["list"], ["primary"]), (["list", "--offsite"], ["offsite"]), (["copy"], ["primary", "offsite"]),
    (["copy", "--offsite"], ["primary", "offsite"]), (["take"], ["primary"])])
def test_stale_locks_are_cleared_in_the_repositories_the_action_works_on(argv, repositories):
    assert cli.repositories(cli.parser().parse_args(argv)) == repositories


@pytest.mark.parametrize("action, role", NAMED)
def test_the_contract_makes_a_container_of_every_row(cfg, action, role, tmp_path):
    row = ACTIONS[action]
    spec = contract.backup_spec(cfg, action, "h", role=role, artifacts=True)
    assert spec.component == "backup" and spec.runs_as_root and spec.command[3] == action
    assert bool(role) == (row.db_role == "any")  # the caller names a role where the row asks for one
    path = tmp_path / "c.toml"
    path.write_text(contract.container_config(cfg, spec))
    assert config.load(path).db.role == ((role or row.db_role) if row.db_role else "")


def expected(cfg, row, role):
    """The mounts ({target: (source, mode)}), secret targets and networks a row's flags ask for (the
    defaults of backup_spec: the primary repository, files and database, artifacts present)."""
    mounts, secrets, networks = {}, set(), []
    if row.data and row.cut:  # backup.cut (the default): the cut where the data root was, the data root beside
        mounts["/data"] = (f"{cfg.data_root}/.cut/tree", "rw")
        mounts["/data-live"] = (cfg.data_root, "rw")
    elif row.data:
        mounts["/data"] = (cfg.data_root, "rw")
    if row.pg_volume:
        mounts["/pgvolume"] = ("inst-pgdata", "rw")  # PostgreSQL's volume
    if row.artifacts:
        mounts["/artifacts"] = (f"{cfg.cache_dir}/go", "rw" if row.artifacts == "rw" else "ro")
    if row.repository:
        mounts["/cache/restic"] = (f"{cfg.cache_dir}/restic", "rw")
        mounts["/repo"] = (cfg.backup.repository, "rw")
        secrets.add("/run/secrets/restic-password")
    if row.both_repositories:
        secrets |= {"/run/secrets/offsite-restic-password", "/run/secrets/offsite-http-password"}
    if row.db_role:
        secrets.add(f"/run/secrets/db-{role or row.db_role}-password")
        networks.append("inst")
    if row.pending:
        secrets.add(f"/run/secrets/db-{role}-password.rotating")
    if row.both_repositories:
        networks.append("inst-offsite")
    return mounts, secrets, tuple(networks)


@pytest.mark.parametrize("action, role", NAMED)
def test_every_rows_needs_are_its_containers_mounts_secrets_and_networks(cfg, action, role):
    spec = contract.backup_spec(cfg, action, "h", role=role, artifacts=True)
    got = ({m.target: (m.source, m.mode) for m in spec.mounts}, {s.target for s in spec.secrets}, spec.networks)
    assert got == expected(cfg, ACTIONS[action], role)


def test_the_flags_say_what_the_rows_need():
    """The table as the contract's tests know it (tests/unit/dr/jobs/test_contract.py)."""
    assert {a for a, r in ACTIONS.items() if r.pg_volume} == {"pg-restore", "pg-undo"}
    assert {a for a, r in ACTIONS.items() if r.data} == {"take", "restore", "copy"}
    assert {a for a, r in ACTIONS.items() if r.cut} == {"take"}
    assert {a: r.db_role for a, r in ACTIONS.items() if r.db_role} == {
        "take": "backup", "restore": "owner", "db-counts": "reader", "db-indexes": "owner", "db-password": "any"}


def test_every_action_has_an_example_result():
    assert {a for a, _ in EXAMPLES} == set(ACTIONS)


@pytest.mark.parametrize("action,data", EXAMPLES, ids=[f"{a}-{i}" for i, (a, _) in enumerate(EXAMPLES)])
def test_every_result_round_trips_through_its_json_into_its_type(action, data):
    row = ACTIONS[action]
    result = row.result.from_dict(copy.deepcopy(data))
    assert isinstance(result, row.result)
    text = result.to_json()
    assert json.loads(text) == data  # the shape operators read with --json is the one printed before
    assert row.result.from_json(text) == result
