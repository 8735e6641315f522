"""No single input stops the importer (issue 9), against the real database: a measurement larger than the
database's document limit, documents the database refuses, a report that fails twice (poison), links where
reports wait, and a database that is down (the only thing that stops the stage, before it changes anything)."""

from __future__ import annotations

import hashlib
import json

from common import config
from pipeline_helpers import HEADER, load_docs, put_raw, report
from stages import importer, journal, sanitize


def small_report(rid: str, entries: int = 3) -> str:
    return report({**HEADER, "report_id": rid}, [{"input": f"http://e{i}.example/", "n": i} for i in range(entries)])


def to_reports(cfg, dr, name: str, text: str) -> tuple:
    """Sanitize and post-process one report; returns its (yaml, jsonl) in reports/."""
    put_raw(dr, name, text)
    assert sanitize.run(cfg, dr).exit_code == 0
    (staged,) = [p for p in dr.state("staging").glob("*.yaml")]
    tx, _ = importer.postprocess_prepare(dr, staged)
    journal.run(dr, tx)
    y = dr.state("reports") / staged.name
    return y, y.with_suffix(".jsonl")


def rewrite_jsonl(path, change) -> None:
    lines = [json.loads(line) for line in path.read_bytes().split(b"\n") if line]
    lines = change(lines)
    path.write_text("".join(json.dumps(line, allow_nan=True) + "\n" for line in lines))


def test_a_measurement_over_the_document_limit_is_stored_with_a_reference_and_the_queue_moves_on(env):
    cfg, dr, db = env
    body = "b" * (17 << 20)
    entries = [{"input": "http://a.example/", "n": 0}, {"input": "http://big.example/", "body": body, "n": 1},
               {"input": "http://c.example/", "n": 2}]
    put_raw(dr, "big.yaml", report({**HEADER, "report_id": "big"}, entries))
    put_raw(dr, "after.yaml", small_report("after"))
    assert sanitize.run(cfg, dr).exit_code == 0
    s = importer.run(cfg, dr)
    assert s.exit_code == 0, (s.errors, s.failed)
    assert s.outcomes == {"postprocessed": 2, "imported": 2}
    assert [f.omitted_entries for f in s.flagged] == [1]
    big = db.measurements.find_one({"_id": "big:000001"})
    assert big["entry"]["body"]["omitted"] == {"bytes": len(body), "sha256": hashlib.sha256(body.encode()).hexdigest()}
    assert big["omitted"]["paths"] == ["entry/body"] and big["omitted"]["document"] == 3
    assert db.measurements.find_one({"_id": "big:000002"})["entry"]["n"] == 2
    assert db.reports.find_one({"_id": "big"})["omitted_entries"] == [1]
    assert db.reports.find_one({"_id": "after"})["entries"] == 3
    archived = dr.root / big["omitted"]["archive"]
    assert load_docs(archived)[2]["body"] == body  # the archive keeps everything


def test_documents_the_database_refuses_are_stored_as_stubs_and_listed(env):
    cfg, dr, db = env
    y, jsonl = to_reports(cfg, dr, "refused.yaml", small_report("refused", entries=4))

    def hostile(lines):
        lines[1]["d"]["entry"]["$where"] = "refused key"
        lines[2]["d"]["entry"]["n"] = float("nan")  # FerretDB 1.x closes the connection on NaN
        return lines
    rewrite_jsonl(jsonl, hostile)
    s = importer.run(cfg, dr)
    assert s.exit_code == 0 and s.outcomes == {"imported": 1}, (s.errors, s.failed)
    assert s.flagged[0].refused_entries == 2
    for i in (1, 2):
        doc = db.measurements.find_one({"_id": f"refused:{i:06d}"})
        assert "entry" not in doc and doc["refused"]["document"] == i + 2, doc
        assert doc["refused"]["archive"].startswith("archive/")
    assert "$" in db.measurements.find_one({"_id": "refused:000001"})["refused"]["error"]
    assert db.measurements.find_one({"_id": "refused:000003"})["entry"]["n"] == 3
    assert db.reports.find_one({"_id": "refused"})["refused_entries"] == [1, 2]
    assert db.measurements.count_documents({"report_key": "refused"}) == 4


def test_a_report_that_fails_twice_for_the_same_reason_is_quarantined_as_poison(env):
    cfg, dr, db = env
    y, jsonl = to_reports(cfg, dr, "poison.yaml", small_report("poison"))
    rewrite_jsonl(jsonl, lambda lines: lines[:-1])  # the report document is gone: counts cannot add up
    put_raw(dr, "fine.yaml", small_report("fine"))
    assert sanitize.run(cfg, dr).exit_code == 0

    first = importer.run(cfg, dr)
    assert first.exit_code == 1 and first.outcomes == {"postprocessed": 1, "imported": 1, "failed": 1}
    assert first.failed[0].input == f"reports/{y.name}" and first.failed[0].reason == "ImportMismatch"
    assert y.exists() and db.measurements.count_documents({"report_key": "poison"}) == 3  # partly written

    second = importer.run(cfg, dr)
    assert second.exit_code == 0 and second.outcomes == {"quarantined:poison": 1}
    assert second.quarantined[0].reason == "poison"
    reason = json.loads((dr.state("quarantine") / "poison" / (y.name + ".reason.json")).read_text())
    assert reason["stage"] == "importer" and len(reason["errors"]) == 2
    assert all("no report document" in e["error"] for e in reason["errors"])
    assert (dr.state("quarantine") / "poison" / jsonl.name).exists() and not y.exists()
    assert db.measurements.count_documents({"report_key": "poison"}) == 0  # what it left is removed
    assert db.reports.find_one({"_id": "fine"})["entries"] == 3
    assert importer.run(cfg, dr).outcomes == {}  # nothing left to fail on


def test_links_where_reports_wait_are_quarantined_unread(env, tmp_path):
    cfg, dr, db = env
    secret = tmp_path / "outside.yaml"
    secret.write_text(small_report("outside"))
    (dr.state("staging") / "20140807T141050Z-IT-AS3269-http_requests-x-0.2.0-probe.yaml").symlink_to(secret)
    (dr.state("reports") / "20140807T141050Z-IT-AS3269-http_requests-y-0.2.0-probe.yaml").symlink_to(secret)
    s = importer.run(cfg, dr)
    assert s.exit_code == 0 and s.outcomes == {"quarantined:not_a_regular_file": 2}
    assert db.reports.count_documents({}) == 0
    moved = sorted((dr.state("quarantine") / "not_a_regular_file").glob("*-probe.yaml"))
    assert len(moved) == 2 and all(p.is_symlink() for p in moved) and secret.exists()


def test_a_database_that_is_down_stops_the_importer_before_it_changes_anything(env):
    cfg, dr, db = env
    y, _ = to_reports(cfg, dr, "waits.yaml", small_report("waits"))
    down = config.load(overrides={"data_root": cfg.data_root, "secrets_dir": cfg.secrets_dir,
                                  "db.host": "127.0.0.1", "db.port": 9, "db.role": "importer"})  # nothing listens there
    s = importer.run(down, dr)
    assert s.exit_code == 1 and s.errors and "database" in s.errors[0] and not s.failed
    assert y.exists() and not (dr.root / ".failures-importer.json").exists()
    assert importer.run(cfg, dr).outcomes == {"imported": 1}
