"""Journal transactions: a crash at any step is finished (or abandoned with its inputs kept) by recover."""

from common import atomic, digest
from stages import journal
from stages.layout import DataRoot


def setup(tmp_path):
    dr = DataRoot(tmp_path / "data").ensure()
    src = dr.state("raw") / "c" / "r.yaml"
    src.parent.mkdir(parents=True)
    src.write_text("raw report")
    out = dr.state("staging") / "R.yaml"
    tmp = atomic.temp_path(out)
    tmp.write_text("sanitized")
    tx = journal.Transaction("sanitize", "sanitized", "raw/c/r.yaml")
    tx.rename(tmp, out, digest.sha256_file(tmp), tmp.stat().st_size).remove(src)
    return dr, src, tmp, out, tx


def test_run_applies_every_step(tmp_path):
    dr, src, tmp, out, tx = setup(tmp_path)
    journal.run(dr, tx)
    assert out.read_text() == "sanitized" and not src.exists() and not tmp.exists()
    assert [e["op"] for _, e in journal.read(dr)] == ["begin", "commit"]


def test_crash_after_begin_is_finished(tmp_path):
    dr, src, tmp, out, tx = setup(tmp_path)
    journal.append(dr, journal._entry(dr, tx, "begin"))  # then the process dies
    assert len(journal.pending(dr, "sanitize")[0]) == 1
    done = journal.recover(dr, "sanitize")
    assert done == ["finished interrupted sanitize of raw/c/r.yaml"]
    assert out.read_text() == "sanitized" and not src.exists()
    assert journal.pending(dr, "sanitize")[0] == []


def test_crash_after_rename_before_remove_is_finished(tmp_path):
    dr, src, tmp, out, tx = setup(tmp_path)
    journal.append(dr, journal._entry(dr, tx, "begin"))
    atomic.move(tmp, out)  # first step done, then the process dies
    journal.recover(dr, "sanitize")
    assert out.exists() and not src.exists()


def test_lost_temporary_abandons_and_keeps_the_input(tmp_path):
    dr, src, tmp, out, tx = setup(tmp_path)
    journal.append(dr, journal._entry(dr, tx, "begin"))
    tmp.unlink()
    assert journal.recover(dr, "sanitize") == ["abandoned interrupted sanitize of raw/c/r.yaml (inputs kept)"]
    assert src.read_text() == "raw report" and not out.exists()
    assert journal.pending(dr)[0] == []


def test_recover_only_touches_its_own_stage_and_torn_lines_are_ignored(tmp_path):
    dr, src, tmp, out, tx = setup(tmp_path)
    journal.append(dr, journal._entry(dr, tx, "begin"))
    with open(dr.journal, "ab") as fh:
        fh.write(b'{"op": "begin", "trunc')  # a crash in the middle of an append
    assert journal.recover(dr, "importer") == []
    assert src.exists()
    assert len(journal.recover(dr, "sanitize")) == 1


def test_temporaries_of_dead_processes_are_cleaned(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    dead = d / ".x.yaml.tmp-999999999-1"
    dead.write_text("half")
    mine = atomic.temp_path(d / "y.yaml")
    mine.write_text("in progress")
    assert atomic.clean_temporaries(d) == [dead]
    assert mine.exists()


def test_one_stage_is_read_alone_and_its_committed_transactions_are_paired(tmp_path):
    dr = DataRoot(tmp_path)
    dr.journal.parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "a").write_text("a")
    journal.run(dr, journal.Transaction("sync", "pulled", "x", info={"note": '"stage":"sync" inside a text'})
                .move(tmp_path / "a", tmp_path / "b"))
    journal.append(dr, {"op": "note", "stage": "sanitize", "event": "e", "text": '"stage":"sync"'})
    journal.append(dr, {"op": "note", "stage": "sync", "event": "f"})
    journal.append(dr, {"op": "begin", "txid": "t2", "stage": "sync", "outcome": "pulled", "report": "y",
                        "steps": []})  # never committed
    every = [e for _, e in journal.read(dr)]
    assert [e["stage"] for _, e in journal.read(dr, stage="sync")] == ["sync", "sync", "sync", "sync"]
    assert len(every) == 5
    assert [(e["op"], e.get("report", e.get("event"))) for _, e in journal.committed(dr, stage="sync")] == [
        ("begin", "x"), ("note", "f")]
