"""A stage following its inputs (stages/follow.py): when it runs, and the run loop with a real stage function."""

from __future__ import annotations

import threading

import pytest

from common import config
from dr.jobs import contract, subscriber
from dr.services import stack
from stages import follow
from stages.cli import Summary
from stages.layout import DataRoot


def test_nothing_waiting_never_runs():
    assert not follow.Due().now((), 0.0)


def test_a_new_input_runs_at_once_and_leftovers_back_off_doubling():
    due = follow.Due()
    assert due.now(("a",), 0.0)
    due.ran(("a",), 0.0)  # a failed and stays
    assert not due.now(("a",), 0.5) and due.now(("a",), 1.0)
    due.ran(("a",), 1.0)  # the same leftovers again: the wait doubles
    assert not due.now(("a",), 2.9) and due.now(("a",), 3.0)
    assert due.now(("a", "b"), 1.1)  # something new arrived: at once
    due.ran((), 3.0)
    assert not due.now((), 100.0)


def test_the_backoff_is_capped():
    due = follow.Due()
    for t in range(20):
        due.ran(("stuck",), float(t))
    assert due.retry_at - 19.0 == follow.MAX_BACKOFF


def test_follow_runs_the_stage_when_inputs_wait_and_stops_on_request(tmp_path, capsys):
    cfg = config.load(overrides={"data_root": str(tmp_path / "data")})
    dr = DataRoot(cfg.data_root).ensure()
    stop = threading.Event()
    runs = []

    def run(cfg, dr):  # a stage that takes what waits in raw/
        for p in dr.files("raw"):
            p.unlink()
        runs.append(1)
        if len(runs) == 2:
            stop.set()
        return Summary("sanitize")

    (dr.state("raw") / "one.yaml").write_text("x")
    writer = threading.Timer(0.3, lambda: (dr.state("raw") / "two.yaml").write_text("y"))
    writer.start()
    assert follow.follow(cfg, dr, run, lambda d: follow.names(d, "raw"), interval=0.05, stop=stop) == 0
    writer.join()
    assert len(runs) == 2
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert [Summary.from_json(line).stage for line in lines] == ["sanitize", "sanitize"]


@pytest.mark.parametrize("stage", contract.FOLLOWERS)
def test_a_follower_is_its_stages_container_with_follow(tmp_path, stage):
    cfg = config.load(overrides={"data_root": str(tmp_path / "data"), "secrets_dir": str(tmp_path / "s"),
                                 "instance": "inst"})
    plain, followed = contract.stage_spec(cfg, stage), contract.follower_spec(cfg, stage)
    assert followed.command == ("python3", "-m", f"stages.{stage}", "--follow", "--config", contract.CONFIG_PATH)
    assert (followed.mounts, followed.secrets, followed.networks, followed.isolated, followed.component) == \
        (plain.mounts, plain.secrets, plain.networks, plain.isolated, plain.component)
    with pytest.raises(Exception, match="no follow mode"):
        contract.follower_spec(cfg, "sync")


def test_down_stops_every_arrival_service():
    assert set(subscriber.services()) == {stack.SUBSCRIBER, *stack.FOLLOWERS}
    assert subscriber.services()[-1] == stack.SUBSCRIBER  # started last: it feeds the others


def test_follow_and_another_mode_are_refused(capsys):
    from stages import importer
    with pytest.raises(SystemExit):
        importer.main(["--follow", "--catch-up"])
    assert "pick one of" in capsys.readouterr().err
