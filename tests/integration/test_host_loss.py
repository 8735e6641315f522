"""The host-loss drill (dr/drills/host_loss.py, issue 22): two collectors written to all through it, the
Aggregator's host destroyed at moments over the whole flow and rebuilt each time by the runbook's section from
the off-site copy alone, with the Go module proxy out of reach. A short, fixed-seed slice: the long run is
`invoke drill --host-loss --rounds 20` (docs/benchmarks.md has its figures).

Seed 591 aims, in the flow's second cycle, at mid-import (the reports pulled since the newest off-site set are in no set: the collectors
must give them again) and right after an off-site copy, before its release (the restored set holds them: the
release after the rebuild must still let them go)."""

from __future__ import annotations

import json
from pathlib import Path

from common import config
from dr.drills import host_loss
from dr.engine import docker_api

SEED = 591
ROUNDS = 2


def test_no_report_is_lost_or_doubled_when_the_host_is_lost_and_the_collectors_end_empty(built, tmp_path):
    cfg = config.derive(built, {"drill.work_dir": str(tmp_path / "work"), "drill.history_dir": str(tmp_path / "drills")})
    assert host_loss.plan(SEED, ROUNDS) == ["mid-import", "after-copy"]
    report = host_loss.run(cfg, rounds=ROUNDS, seed=SEED, interval=0.5)
    assert report.verdict == "pass" and report.problems == [], report.render()
    assert len(report.rounds) == ROUNDS and report.lost == 0 and report.doubled == 0
    assert report.reports >= 20 and report.back_seconds_max is not None
    for r in report.rounds:
        assert r.lost_at and r.written > 0 and r.left_on_collectors == 0, r
        assert r.back_seconds is not None and r.rebuild_seconds is not None and r.back_seconds >= r.rebuild_seconds
        assert [s.exit_code for s in r.steps] == [0, 0, 0]
        assert any("from the off-site repository" in line for line in r.steps[0].output_tail), r.steps[0].output_tail
    first = report.rounds[0]
    assert first.lost_at.startswith(("cycle 2, during importer", "cycle 2, right after importer")), first.lost_at
    assert first.caught_up > 0  # what the second cycle pulled was in no off-site set: the collectors gave it again
    second = report.rounds[1]  # the restored set holds every report pulled: none is pulled again
    assert second.lost_at == "cycle 2, after copy, before the next step" and second.caught_up == 0

    saved = sorted((tmp_path / "drills" / "host-loss").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["lost"] == 0
    # everything of the drill went with it: containers, volumes, its work folder
    instance = f"{cfg.instance}-loss"
    assert not docker_api.client().containers.list(all=True, filters={"label": f"{docker_api.INSTANCE_LABEL}={instance}"})
    assert not [v for v in docker_api.client().volumes.list() if v.name.startswith(instance + "-")]
    assert not list(Path(tmp_path / "work").glob("host-loss-*"))
