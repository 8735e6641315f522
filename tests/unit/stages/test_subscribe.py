"""stages/subscribe.py without a broker: which messages are claim checks of a configured collector on its own
routing key, a batch grouped by collector, duplicates found from the journal's lines, what becomes of each
message after its pull, the backoff, and sync's Asked (the files a caller names instead of the listing)."""

import json

from common import broker
from stages import journal, subscribe, sync
from stages.layout import DataRoot
from stages.subscribe import ACK, REJECT, REQUEUE, Delivery

SHA = "a" * 64


def claim(collector="c1", path="r1.yaml", size=10, sha=SHA) -> broker.ClaimCheck:
    return broker.ClaimCheck(collector, path, size, sha, "2026-12-08T03:04:05Z")


def delivery(c: broker.ClaimCheck, key: str | None = None, tag: int = 1) -> Delivery:
    return Delivery(tag, key or broker.routing_key(c.collector), c.to_json().encode())


def test_a_claim_check_of_a_configured_collector_on_its_own_key_is_taken():
    c = claim()
    assert subscribe.claim_of(delivery(c), {"c1"}) == c


def test_anything_else_is_rejected_with_its_reason():
    c = claim()
    assert "not JSON" in subscribe.claim_of(Delivery(1, "collector.c1", b"{nope"), {"c1"})
    assert "sha256" in subscribe.claim_of(delivery(claim(sha="XYZ")), {"c1"})
    assert subscribe.claim_of(delivery(c, key="collector.c2"), {"c1", "c2"}) == \
        "routing key 'collector.c2' is not collector 'c1''s"
    assert subscribe.claim_of(delivery(claim("c3")), {"c1"}) == "collector 'c3' is not configured"
    assert "path" in subscribe.claim_of(delivery(claim(path="../etc/passwd")), {"c1"})


def test_a_batch_is_grouped_by_collector_in_the_order_messages_came():
    items = [(delivery(claim(n, p), tag=i), claim(n, p)) for i, (n, p) in
             enumerate([("c2", "a"), ("c1", "b"), ("c2", "c"), ("c1", "d")])]
    grouped = subscribe.group(items)
    assert list(grouped) == ["c2", "c1"]
    assert [c.path for _, c in grouped["c2"]] == ["a", "c"] and [c.path for _, c in grouped["c1"]] == ["b", "d"]


def test_what_is_asked_of_sync_is_one_file_per_path_with_the_first_claims_bytes():
    asked = subscribe.asked_for([claim(path="a"), claim(path="b", size=3), claim(path="a", sha="b" * 64)])
    assert asked.files == {"a": (10, SHA), "b": (3, SHA)}


def lines(*entries):
    return [json.loads(json.dumps(e)) for e in entries]


def test_duplicates_are_found_from_committed_pulls_only():
    pulled = subscribe.Pulled()
    info = {"collector": "c1", "remote": "r1.yaml", "sha256": SHA, "size": 10, "mtime": 5, "held_as": "r1.yaml"}
    for e in lines({"op": "begin", "txid": "t1", "stage": "sync", "info": info},
                   {"op": "begin", "txid": "t2", "stage": "sync", "info": dict(info, remote="r2.yaml")},
                   {"op": "begin", "txid": "t3", "stage": "sync", "info": dict(info, remote="r3.yaml")},
                   {"op": "commit", "txid": "t1", "stage": "sync"},
                   {"op": "abort", "txid": "t2", "stage": "sync"},
                   {"op": "note", "stage": "sync", "event": "held_on_collector"}):
        pulled.add(e)
    assert pulled.has(claim(path="r1.yaml"))
    assert not pulled.has(claim(path="r1.yaml", sha="b" * 64))  # the same name with other bytes: a new report
    assert not pulled.has(claim(path="r2.yaml"))  # aborted
    assert not pulled.has(claim(path="r3.yaml"))  # begun, not committed (recovery decides)
    assert not pulled.has(claim("c2", "r1.yaml"))
    assert pulled.known == {("c1", "r1.yaml"): [(10, 5, SHA)]}  # sync's Known, as known_held reads it


def test_the_journal_is_read_incrementally_and_again_when_it_got_shorter(tmp_path):
    dr = DataRoot(tmp_path).ensure()
    tx = journal.Transaction("sync", "pulled", "c1:r1.yaml", info={"collector": "c1", "remote": "r1.yaml",
                                                                    "sha256": SHA})
    journal.run(dr, tx)
    journal.append(dr, {"op": "note", "stage": "subscribe", "event": "batch"})
    pulled = subscribe.Pulled().update(dr)
    assert pulled.has(claim()) and pulled.offset == journal.position(dr) - len(dr.journal.read_bytes().splitlines()[-1]) - 1
    journal.run(dr, journal.Transaction("sync", "pulled", "c1:r2.yaml", info={"collector": "c1", "remote": "r2.yaml",
                                                                                "sha256": SHA}))
    assert pulled.update(dr).has(claim(path="r2.yaml"))
    dr.journal.write_text("")  # a restored data root's journal
    assert not pulled.update(dr).has(claim())


def test_what_becomes_of_each_message_after_its_pull():
    c = claim()
    asked = sync.Asked({"r1.yaml": (10, SHA)})
    assert subscribe.decide(c, True, asked) == (ACK, "pulled")
    assert subscribe.decide(c, False, None)[0] == REQUEUE  # the collector not reached
    for outcome in sync.REFUSED:
        asked.tell("r1.yaml", outcome, "why")
        assert subscribe.decide(c, False, asked) == (REJECT, f"{outcome}: why")
    for outcome in sync.LATER:
        asked.tell("r1.yaml", outcome, "why")
        assert subscribe.decide(c, False, asked) == (REQUEUE, f"{outcome}: why")
    assert subscribe.decide(claim(sha="b" * 64), False, asked)[0] == REQUEUE  # another claim's bytes were asked
    assert subscribe.decide(c, False, sync.Asked({"r1.yaml": (10, SHA)}))[0] == REQUEUE  # nothing told: not reached


def test_the_backoff_grows_per_collector_and_starts_again_once_it_is_reached():
    b = subscribe.Backoff()
    assert [b.failed("c1") for _ in range(8)] == [1, 2, 5, 10, 30, 60, 60, 60]
    assert b.failed("c2") == 1
    b.reached("c1")
    assert b.failed("c1") == 1


def test_asked_narrows_the_listing_to_the_files_named_and_tells_what_is_missing():
    asked = sync.Asked({"a.yaml": (3, SHA), "b.yaml": (4, SHA), "gone.yaml": (1, SHA)})
    kept = asked.narrow([("a.yaml", 3), ("b.yaml", 5), ("other.yaml", 7)])
    assert kept == [("a.yaml", 3)]
    assert asked.outcome["b.yaml"] == ("other_bytes", "5 bytes on the collector, not 4")
    assert asked.outcome["gone.yaml"][0] == "missing"
    assert "a.yaml" not in asked.outcome
