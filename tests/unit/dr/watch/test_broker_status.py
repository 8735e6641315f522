"""The broker's section of the status model (dr/watch/model.broker_figures) from the subscriber's journal notes as
stages/subscribe.py writes them (read back from the journal's end: dr/watch/folders.subscriber_notes), its text,
and its gauges (dr/watch/publish.samples)."""

import datetime as dt
import json

from common import broker as names
from dr.jobs import history
from dr.watch import folders, model, publish, rules
from dr.watch.figures import BrokerSection
from stages import journal
from stages.layout import DataRoot

from .test_rules import CFG, healthy

NOW = history.parse_time("2026-12-07T12:00:00Z")


def note(dr: DataRoot, when: dt.datetime, **fields) -> None:
    journal.append(dr, {"time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "op": "note", "stage": "subscribe",
                        **fields})


def dead(dr: DataRoot, when: dt.datetime, path: str, reason: str) -> None:
    note(dr, when, event="dead_lettered", routing_key="collector.c1", reason=reason, collector="c1", path=path,
         size=3, sha256="0" * 64, completed="2026-12-07T00:00:00Z")


def batch(dr: DataRoot, when: dt.datetime, **outcomes) -> None:
    note(dr, when, event="batch", summary={"stage": "subscribe", "outcomes": outcomes})


def filled(tmp_path) -> DataRoot:
    """A journal with the subscriber's notes over two days, among sync's own entries."""
    dr = DataRoot(tmp_path / "data").ensure()
    dead(dr, NOW - dt.timedelta(hours=30), "old.yaml", "missing: not on the collector")  # out of the window
    batch(dr, NOW - dt.timedelta(hours=30), dead_lettered=1)
    journal.append(dr, {"time": journal.now(), "op": "commit", "txid": "t1", "stage": "sync"})
    for i in range(7):
        dead(dr, NOW - dt.timedelta(hours=7 - i), f"r{i}.yaml", f"other_bytes: sha256 {i}")
    batch(dr, NOW - dt.timedelta(minutes=3), **{"acked:pulled": 4, "dead_lettered": 1})
    return dr


def test_the_notes_of_the_window_newest_first(tmp_path):
    dr = filled(tmp_path)
    notes = folders.subscriber_notes(dr.journal, NOW - dt.timedelta(hours=24), 1 << 20)
    assert [n["event"] for n in notes] == ["batch"] + ["dead_lettered"] * 7
    assert [n["path"] for n in notes[1:]] == [f"r{i}.yaml" for i in range(6, -1, -1)]
    # A bounded read: only the journal's last bytes.
    assert len(folders.subscriber_notes(dr.journal, NOW - dt.timedelta(hours=24), 400)) < len(notes)
    assert folders.subscriber_notes(tmp_path / "none.jsonl", NOW, 1 << 20) == []


def test_a_torn_last_line_is_skipped(tmp_path):
    dr = filled(tmp_path)
    with open(dr.journal, "ab") as fh:
        fh.write(b'{"time":"2026-12-07T11:59:59.000000Z","op":"note","stage":"subscribe","event":"ba')
    assert folders.subscriber_notes(dr.journal, NOW - dt.timedelta(hours=24), 1 << 20)[0]["event"] == "batch"


def test_the_section_from_depths_and_notes(tmp_path):
    notes = folders.subscriber_notes(filled(tmp_path).journal, NOW - dt.timedelta(hours=24), 1 << 20)
    depths = {names.QUEUE: (12, 3), names.DEAD_QUEUE: (7, 0)}
    b = model.broker_figures(True, "healthy", depths, notes, NOW)
    assert (b.ready, b.unacknowledged, b.dead, b.error) == (12, 3, 7, None)
    assert b.dead_lettered == 7 and len(b.newest_dead) == model.NEWEST_DEAD
    newest = b.newest_dead[0]
    assert (newest.time, newest.collector, newest.path, newest.reason) == \
        ("2026-12-07T11:00:00Z", "c1", "r6.yaml", "other_bytes: sha256 6")
    assert (b.last_batch, b.last_batch_age_seconds) == ("2026-12-07T11:57:00Z", 180)
    assert b.last_batch_outcomes == {"acked:pulled": 4, "dead_lettered": 1}
    assert b.healthy
    assert BrokerSection.from_json(b.to_json()) == b
    lines = b.lines()
    assert lines[0] == "broker: healthy; reports 12 ready, 3 unacknowledged; reports.dead 7"
    assert lines[1] == ("  subscriber: last batch 3 min ago (acked:pulled 4, dead_lettered 1); 7 message(s) "
                        "dead-lettered in 24 h")
    assert lines[2] == "  dead-lettered 2026-12-07T11:00:00Z: c1 r6.yaml: other_bytes: sha256 6"


def test_a_broker_that_is_down_or_does_not_answer(tmp_path):
    down = model.broker_figures(True, "exited", "the broker is exited", [], NOW)
    assert (down.ready, down.dead, down.error, down.healthy) == (None, None, "the broker is exited", False)
    assert down.last_batch is None and down.dead_lettered == 0 and down.newest_dead == []
    assert "ready" not in json.loads(down.to_json())
    assert down.lines()[:2] == ["broker: exited; queues unknown (the broker is exited)",
                                "  subscriber: no batch; 0 message(s) dead-lettered in 24 h"]
    off = model.broker_figures(False, "healthy", {}, [], NOW)
    assert (off.ready, off.unacknowledged, off.dead) == (0, 0, 0)  # no queue yet: nothing in it
    assert off.lines()[0].startswith("broker: healthy (broker.enabled is off)")


def gauges(m) -> dict[str, float]:
    return {name: value for name, labels, value in publish.samples(m, rules.evaluate(m, CFG))
            if name.startswith(("broker_", "subscriber_"))}


def test_its_gauges():
    m = healthy()
    assert gauges(m) == {"broker_up": 1, "subscriber_dead_lettered_recent": 0, "broker_ready_messages": 3,
                         "broker_unacknowledged_messages": 2, "broker_dead_letter_messages": 0}
    m.broker = model.broker_figures(True, "unhealthy", "the broker is unhealthy", [], NOW)
    assert gauges(m) == {"broker_up": 0, "subscriber_dead_lettered_recent": 0}  # its queues not read: absent
    m.broker = None
    assert gauges(m) == {}
