"""The pipeline against the real database: sanitize then importer, on the real samples and generated
reports; reruns converge; no probe IP reaches the database or the published files."""

from __future__ import annotations

import json
import random

import pytest

from common import config, secrets
from database import db
from pipeline_helpers import HEADER, binaries, copy_samples, hidden_ip_report, ip_pattern, load_docs, report, walk
from stages import importer, journal, sanitize


def run_pipeline(cfg, dr):
    s1 = sanitize.run(cfg, dr)
    s2 = importer.run(cfg, dr)
    assert s1.exit_code == 0 and s2.exit_code == 0, (s1.errors, s2.errors)
    return s1, s2


def jsonl_counts(dr):
    counts = {}
    for p in dr.state("archive").rglob("*.jsonl"):
        lines = [json.loads(line) for line in p.read_bytes().split(b"\n") if line]
        report = lines[-1]["d"]
        counts[report["_id"]] = report["entries"]
    return counts


def test_all_samples_end_in_archive_or_quarantine_and_in_the_database(env):
    cfg, dr, db = env
    copy_samples(dr)
    s1, s2 = run_pipeline(cfg, dr)
    assert s2.outcomes == {"postprocessed": 18, "imported": 18}
    for state in ("raw", "staging", "reports"):
        assert dr.files(state) == [], state
    published = [p for p in dr.files("archive") if p.name.endswith(".yaml")]
    assert len(published) == 18
    assert [p.name for p in dr.files("quarantine") if not p.name.endswith(".json")] == \
        ["real-probe2012-prototype-marco-1.yamlooni"]
    counts = jsonl_counts(dr)
    assert db.reports.count_documents({}) == 18 == len(counts)
    assert db.measurements.count_documents({}) == sum(counts.values())
    for key, n in counts.items():
        assert db.measurements.count_documents({"report_key": key}) == n
    index = json.loads((dr.state("archive") / "index.json").read_text())
    assert index["count"] == 18
    assert {e["name"] for e in index["reports"]} == {p.relative_to(dr.state("archive")).as_posix() for p in published}
    assert {e["test_name"] for e in index["reports"]} >= {"dns_consistency", "http_requests", "bridge_reachability"}
    # Legacy shapes were normalized: 2012 `report:` nesting flattened, nested arrays wrapped, test names mapped.
    dns = db.measurements.find_one({"test_name": "dns_consistency"})
    assert "report" not in dns["entry"] and "queries" in dns["entry"]
    assert db.reports.find_one({"test_name": "dns_consistency"})["original_test_name"] == "DNS tamper"
    assert set(db.measurements.index_information()) >= {"report_key_1", "test_name_1", "probe_cc_1",
                                                         "probe_asn_1", "start_time_1"}


def test_every_report_is_in_exactly_one_state_and_its_history_is_journalled(env):
    cfg, dr, _ = env
    raws = copy_samples(dr)
    run_pipeline(cfg, dr)
    for raw in raws:
        rel = dr.relative(raw)
        hist = journal.history(dr, rel)
        assert hist and hist[0]["stage"] == "sanitize", rel
        final = [s["dst"] for h in hist for s in h["steps"] if s["op"] == "rename"
                 and s["dst"].startswith(("archive/", "quarantine/")) and not s["dst"].endswith(".json")]
        if "duplicate" in json.dumps(hist[0]["info"]):
            continue
        living = [d for d in final if (dr.root / d).exists() and d.endswith((".yaml", ".yamloo", ".yamlooni"))]
        assert len(living) == 1, (rel, final)


def test_rerun_and_duplicates_change_nothing(env):
    cfg, dr, db = env
    copy_samples(dr)
    run_pipeline(cfg, dr)
    before = (db.reports.count_documents({}), db.measurements.count_documents({}))
    s1, s2 = run_pipeline(cfg, dr)
    assert s1.outcomes == {} and s2.outcomes == {}
    copy_samples(dr, collector="again")  # the same reports pulled a second time
    s1, s2 = run_pipeline(cfg, dr)
    assert s1.outcomes == {"duplicate": 19, "quarantined:unsafe_tag": 1}
    assert (db.reports.count_documents({}), db.measurements.count_documents({})) == before
    assert len([p for p in dr.files("archive") if p.name.endswith(".yaml")]) == 18


def test_import_crash_before_archive_converges(env):
    cfg, dr, db = env
    copy_samples(dr)
    sanitize.run(cfg, dr)
    # Post-process and import, but "crash" before any report moves to the archive.
    for p in sorted(dr.state("staging").glob("*.yaml")):
        tx, _ = importer.postprocess_prepare(dr, p)
        journal.run(dr, tx)
    client, raw_db = importer.connect(cfg)
    for p in sorted(dr.state("reports").glob("*.yaml"))[:5]:
        importer.import_prepare(dr, raw_db, p)  # upserted and verified, but never moved
    client.close()
    s = importer.run(cfg, dr)
    assert s.exit_code == 0 and s.outcomes == {"imported": 18}
    counts = jsonl_counts(dr)
    assert db.measurements.count_documents({}) == sum(counts.values())
    assert db.reports.count_documents({}) == 18


def test_catch_up_imports_again_what_a_database_restored_from_an_older_set_lacks(env):
    """The database's own host restored from a set older than the Aggregator's archive (runbook 12.2): the
    archived reports it lacks (their report document, and with it their measurements) are imported again
    from the archive, whole; what it has is not written again; the archive is not touched."""
    cfg, dr, db = env
    copy_samples(dr)
    run_pipeline(cfg, dr)
    counts = jsonl_counts(dr)
    archive = {p: p.stat().st_mtime_ns for p in dr.files("archive")}
    lost = sorted(counts)[:5]
    for key in lost:
        db.measurements.delete_many({"report_key": key})
        db.reports.delete_one({"_id": key})
    db.measurements.delete_many({"report_key": sorted(counts)[5]})  # a report whose document stayed
    s = importer.catch_up(cfg, dr)
    assert s.exit_code == 0 and s.outcomes == {"reimported": 5}, s.errors
    for key in lost:
        assert db.reports.count_documents({"_id": key}) == 1
        assert db.measurements.count_documents({"report_key": key}) == counts[key]
    assert db.reports.count_documents({}) == 18
    assert importer.catch_up(cfg, dr).outcomes == {}
    assert {p: p.stat().st_mtime_ns for p in dr.files("archive")} == archive


def test_a_database_that_refuses_the_importer_still_lets_every_staged_report_be_post_processed(env, tmp_path):
    """The real database refuses the importer's password (a wrong one in its secrets folder): the import stops
    with that one error, every staged report is post-processed all the same, and no report counts as failed."""
    cfg, dr, database = env
    wrong = tmp_path / "wrong-secrets"
    secrets.put(wrong, db.password_name("importer"), "not the password")
    cfg = config.derive(cfg, {"secrets_dir": str(wrong)})
    for i in range(3):
        raw = dr.state("raw") / "gen" / f"r{i}.yaml"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(report({**HEADER, "report_id": f"r{i}"}, [{"input": "http://e.example/", "n": i}]))
    assert sanitize.run(cfg, dr).exit_code == 0
    staged = sorted(p.name for p in dr.state("staging").glob("*.yaml"))
    s = importer.run(cfg, dr)
    assert s.exit_code == 1 and s.outcomes == {"postprocessed": 3}
    assert len(s.errors) == 1 and "wrong password" in s.errors[0], s.errors
    assert sorted(p.name for p in dr.state("reports").glob("*.yaml")) == staged and len(staged) == 3
    assert not (dr.root / ".failures-importer.json").exists()
    assert database.reports.count_documents({}) == 0


@pytest.mark.parametrize("seed", range(4))
def test_probe_ip_reaches_neither_database_nor_published_files(env, seed):
    cfg, dr, db = env
    rng = random.Random(1000 + seed)
    ips = []
    for i in range(5):
        ip = rng.choice(["1.2.3.4", "203.0.113.77", "2001:db8::42", "198.51.100.9"])
        ips.append(ip)
        text, _ = hidden_ip_report(rng, ip)
        text = text.replace("test_name: http_requests", f"test_name: http_requests\nreport_id: r{seed}x{i}")
        p = dr.state("raw") / "gen" / f"r{i}.yaml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    run_pipeline(cfg, dr)
    assert db.reports.count_documents({}) == 5
    for ip in set(ips):
        pattern = ip_pattern(ip)
        for coll in ("reports", "measurements"):
            for doc in db[coll].find({}):
                for value in walk(doc):
                    assert not (isinstance(value, str) and pattern.search(value)), (coll, value)
                for data in binaries(doc):
                    assert not pattern.search(data.decode("latin-1")), (coll, data)
        for p in dr.files("archive"):
            assert not pattern.search(p.read_text()), p
    for p in dr.files("archive"):
        if p.suffix == ".yaml":
            assert load_docs(p)[0]["probe_ip"] == "127.0.0.1"
