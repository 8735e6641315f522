"""Reports as they arrive (issue 24): `rebuild --sample` with `broker.enabled` runs the built-in reports through the
broker (the sample collector's publisher, the subscriber, sanitize and the importer following their inputs),
then a report completed on the collector afterwards reaches the archive and the database with no pipeline run,
and a scheduled run beside the followers waits for them and finds nothing left.

Real broker, collector, stage and database containers, built from this tree under a tag of their own (TAG) so
that they never replace the images other tests run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import build_tagged, running_instance

from common import config, poll
from dr.engine import docker_api
from dr.jobs import pipeline, subscriber
from dr.services import collector, stack
from stages.layout import DataRoot

TAG = "arrivals-tests"
REPO = Path(__file__).resolve().parents[2]
NEW = "2026-12-08-arrived.yaml"


def archived(cfg) -> set[str]:
    return {p.name for p in DataRoot(cfg.data_root).files("archive") if p.suffix == ".yaml"}


@pytest.fixture(scope="module")
def arriving(tmp_path_factory):
    build_tagged(config.load(overrides={"images.tag": TAG}))
    root = tmp_path_factory.mktemp("arrivals")
    reports: list = []
    with running_instance(root, "aggr-arrive", sample=True, reports=reports, **{
            "broker.enabled": True, "images.tag": TAG}) as cfg:
        yield cfg, reports[0]


def test_rebuild_sample_runs_the_built_in_reports_through_the_broker(arriving):
    cfg, report = arriving
    notes = report.notes()
    assert [p.name for p in report.phases][-5:] == ["broker", "collector", "subscribe", "arrivals", "pipeline"]
    assert "built-in reports announced by the sample collector and handled by the subscriber" in notes["arrivals"]
    assert "20 built-in reports" in notes["arrivals"], notes["arrivals"]
    # The scheduled run after it pulls nothing new: the subscriber pulled (and the collector holds) every one.
    sync_run = next(s for s in report.pipeline if s.stage == "sync")
    assert sync_run.outcomes.get("pulled", 0) == 0, sync_run.to_json()
    assert all(s.exit_code == 0 for s in report.pipeline)
    assert len(archived(cfg)) == 18  # as through the scheduled pull: 18 reports, 1 quarantined, 1 duplicate
    client = stack.db_client(cfg)
    assert client[cfg.db.database].reports.count_documents({}) == 18
    client.close()


def test_a_report_completed_later_reaches_the_archive_and_the_database_with_no_pipeline_run(arriving):
    cfg, _ = arriving
    before = archived(cfg)
    text = (REPO / "samples/ooni-legacy/extracted-probedocs-web_connectivity-2016.yaml").read_text()
    assert "report_id: 20160712T172644Z" in text
    collector.complete(cfg, NEW, text.replace("report_id: 20160712T172644Z", "report_id: 20161208T000000Z", 1).encode())
    poll.until(lambda: len(archived(cfg) - before) == 1, "the new report in the archive", 180, interval=0.5)
    client = stack.db_client(cfg)
    try:
        poll.until(lambda: client[cfg.db.database].reports.count_documents({}) == 19, "its documents", 60)
    finally:
        client.close()
    # Each follower ran as a service and printed its runs' summaries.
    for service in subscriber.services():
        logs = docker_api.client().containers.get(stack.container_name(cfg, service)).logs(stderr=False)
        assert any(line.startswith(b"{") and json.loads(line).get("stage") for line in logs.splitlines()), service


def test_a_scheduled_run_beside_the_followers_finds_nothing_left(arriving):
    cfg, _ = arriving
    ran = pipeline.run(cfg)
    assert all(s.exit_code == 0 for s in ran.stages), ran.render()
    assert not DataRoot(cfg.data_root).files("raw") and not DataRoot(cfg.data_root).files("staging")
