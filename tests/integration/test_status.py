"""`invoke status` on a real instance (`rebuild`, no sample: a new Aggregator), its rules caused for real: a report
stuck in raw/ with nothing moved for hours is a stall (exit 1) until the pipeline moves it; the database's
FerretDB stopped leaves every role unable to log in. The instance is this module's own (its history in its
own folder); the database is started again at the end."""

import datetime as dt
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import invoke_status, running_instance

from common.config import DB_ROLES
from dr.engine import docker_api
from dr.jobs import pipeline
from dr.services import stack
from dr.watch import model, rules
from stages import journal
from stages.layout import DataRoot

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "ooni-legacy" / "extracted-probedocs-http_requests-2012.yaml"
HOURS_AGO = 3


@pytest.fixture(scope="module")
def watched(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("status")
    with running_instance(root, "aggr-status", **{"history.dir": str(root / "history"),
                                                  "status.page_dir": str(root / "status")}) as cfg:
        yield cfg


def rules_of(status: dict) -> list[str]:
    return [f["rule"] for f in status["findings"]]


def test_a_report_stuck_in_raw_is_a_stall_until_the_pipeline_moves_it(watched, tmp_path):
    cfg = watched
    dr = DataRoot(cfg.data_root).ensure()
    assert not dr.journal.exists()  # a new Aggregator: nothing has moved yet
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=HOURS_AGO)
    journal.append(dr, {"time": long_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "op": "commit", "txid": "status-test",
                        "stage": "sync"})  # the last move, hours ago
    stuck = dr.state("raw") / "status-test" / SAMPLE.name
    stuck.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE, stuck)
    os.utime(stuck, (long_ago.timestamp(),) * 2)

    code, status = invoke_status(cfg, tmp_path)
    assert code == 1 and "stalled" in rules_of(status)
    stalled = next(f for f in status["findings"] if f["rule"] == "stalled")
    assert stalled["severity"] == "stall"
    assert stalled["what"].startswith("1 input(s) waiting (raw/ 1), the oldest for 3 h; no report moved for 3 h")
    assert stalled["todo"] == next(r.todo for r in rules.RULES if r.name == "stalled")
    backlog = {b["state"]: b for b in status["model"]["pipeline"]["backlog"]}
    assert backlog["raw"]["count"] == 1 and backlog["raw"]["oldest_age_seconds"] >= HOURS_AGO * 3600
    assert status["model"]["pipeline"]["last_move_age_seconds"] >= HOURS_AGO * 3600

    run = pipeline.run(cfg)
    assert [s.stage for s in run.stages] == ["sanitize", "importer"]  # no collector configured: no sync
    code, status = invoke_status(cfg, tmp_path)
    assert "stalled" not in rules_of(status)
    assert [b["count"] for b in status["model"]["pipeline"]["backlog"]] == [0, 0, 0]
    assert status["model"]["pipeline"]["last_move_age_seconds"] < 600
    # a new host: no set, no check and no drill yet, so the status still exits 1 (for those, not for a stall)
    assert code == 1 and set(rules_of(status)) <= {"recovery_point_old", "no_passing_check", "no_passing_drill"}


def test_the_database_stopped_is_unreachable_for_every_role(watched, tmp_path):
    cfg = watched
    m = model.compute(cfg)
    assert m.database.probed and [r.role for r in m.database.roles if r.reachable] == list(DB_ROLES)
    assert "database_unreachable" not in [f.rule for f in rules.evaluate(m, cfg)]

    db = docker_api.container_or_none(stack.container_name(cfg, "db"))
    db.stop(timeout=10)
    try:
        t0 = time.monotonic()
        m = model.compute(cfg)
        assert time.monotonic() - t0 < 4 * model.PROBE_SECONDS  # the roles are tried at once
        assert [r.role for r in m.database.unreachable] == list(DB_ROLES)
        found = [f for f in rules.evaluate(m, cfg) if f.rule == "database_unreachable"]
        assert found and all(f.severity == "stall" for f in found)
        named = " ".join(f.what for f in found)
        assert all(role in named for role in DB_ROLES) and m.database.address in named

        code, status = invoke_status(cfg, tmp_path)
        assert code == 1 and "database_unreachable" in rules_of(status)
        assert {s["service"]: s["state"] for s in status["services"]}["db"] == "exited"
    finally:
        stack.start(cfg)
        stack.wait_healthy(cfg)
    m = model.compute(cfg)
    assert m.database.unreachable == []
