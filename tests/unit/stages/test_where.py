"""`invoke where`: a report's moves from the journal and the files it is in now, as a Whereabouts record that
reads back from its JSON and says what the task printed; exit 1 when no report matches."""

from common import atomic, digest
from stages import journal, where
from stages.layout import DataRoot


def sanitize_then_import(tmp_path) -> DataRoot:
    """raw/c/r.yaml sanitized into staging/R.yaml, then imported into archive/R.yaml (report id R-1)."""
    dr = DataRoot(tmp_path / "data").ensure()
    src = dr.state("raw") / "c" / "r.yaml"
    src.parent.mkdir(parents=True)
    src.write_text("raw report")
    staged = dr.state("staging") / "R.yaml"
    tmp = atomic.temp_path(staged)
    tmp.write_text("sanitized")
    tx = journal.Transaction("sanitize", "sanitized", "raw/c/r.yaml")
    journal.run(dr, tx.rename(tmp, staged, digest.sha256_file(tmp), tmp.stat().st_size).remove(src))
    archived = dr.state("archive") / "R.yaml"
    archived.parent.mkdir(parents=True, exist_ok=True)
    journal.run(dr, journal.Transaction("importer", "imported", "R.yaml", info={"report_id": "R-1"})
                .move(staged, archived))
    return dr


def test_a_report_found_says_where_it_is_and_how_it_got_there(tmp_path):
    dr = sanitize_then_import(tmp_path)
    found = where.locate(dr, "raw/c/r.yaml")
    assert found.found and found.exit_status() == 0
    assert found.now == ["archive/R.yaml"]
    assert [(m.stage, m.outcome, m.report, m.to, m.report_id) for m in found.history] == [
        ("sanitize", "sanitized", "raw/c/r.yaml", ["staging/R.yaml"], None),
        ("importer", "imported", "R.yaml", ["archive/R.yaml"], "R-1")]
    assert where.locate(dr, "R-1").now == ["archive/R.yaml"]  # by report id

    data = found.to_dict()
    assert set(data) == {"query", "data_root", "found", "now", "history"}
    assert "report_id" not in data["history"][0] and data["history"][1]["report_id"] == "R-1"
    assert where.Whereabouts.from_json(found.to_json()) == found

    lines = found.render().splitlines()
    assert lines[0] == "now: archive/R.yaml"
    t0, t1 = (m.time for m in found.history)
    assert lines[1:] == [f"  {t0}  sanitize  sanitized     raw/c/r.yaml -> staging/R.yaml",
                         f"  {t1}  importer  imported      R.yaml -> archive/R.yaml"]


def test_a_report_nowhere_now_is_a_duplicate(tmp_path):
    dr = sanitize_then_import(tmp_path)
    (dr.state("archive") / "R.yaml").unlink()
    assert where.locate(dr, "R.yaml").render().splitlines()[0] == "now: nowhere (duplicate of another report)"


def test_no_match_names_the_query_and_the_data_root_and_exits_1(tmp_path):
    dr = sanitize_then_import(tmp_path)
    missing = where.locate(dr, "nosuch.yaml")
    assert not missing.found and missing.now == [] and missing.history == []
    assert missing.render() == f"no report matches 'nosuch.yaml' in the journal of {dr.root}"
    assert missing.exit_status() == 1
    assert where.Whereabouts.from_dict(missing.to_dict()) == missing
