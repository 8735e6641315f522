"""The reports a runbook drill feeds its servers (dr/drills/feed.py): new to any repository, and reports the real
sanitizer passes whole (no Docker: the stage runs in-process, as in tests/unit/stages)."""

from __future__ import annotations

import io
import tarfile

from dr.drills import feed
from pipeline_helpers import data_root, make_cfg
from stages import postprocess, sanitize


def test_two_drills_never_feed_the_same_report():
    a, b = feed.token(), feed.token()
    assert a != b
    assert not set(feed.files(a, 3).values()) & set(feed.files(b, 3).values())
    assert feed.report_ids(a, 2) == [feed.report_id(a, 0), feed.report_id(a, 1)]


def test_the_archive_holds_the_reports_numbered_on_as_plain_files_in_one_folder():
    tok = feed.token()
    with tarfile.open(fileobj=io.BytesIO(feed.archive(tok, 2, first=3))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [feed.COLLECTOR, f"{feed.COLLECTOR}/report-{tok}-3.yaml",
                                             f"{feed.COLLECTOR}/report-{tok}-4.yaml"]
        assert members[0].isdir() and all(m.isfile() and m.mode == 0o644 for m in members[1:])
        assert tar.extractfile(members[1]).read() == feed.files(tok, 1, first=3)[f"report-{tok}-3.yaml"]


def test_the_fed_reports_pass_the_sanitizer_whole_with_their_report_ids(tmp_path):
    tok = feed.token()
    dr = data_root(tmp_path)
    folder = dr.state("raw") / feed.COLLECTOR
    folder.mkdir(parents=True)
    for name, content in feed.files(tok, 3).items():
        (folder / name).write_bytes(content)
    s = sanitize.run(make_cfg(dr.root), dr)
    assert s.exit_code == 0 and s.outcomes == {"sanitized": 3}, (s.outcomes, s.errors)
    ids = set()
    for staged in sorted(dr.state("staging").glob("*.yaml")):
        with open(staged, "rb") as fh:
            docs = list(postprocess.documents(fh, staged.name))
        kinds = [kind for kind, _ in docs]
        assert kinds.count("reports") == 1 and kinds.count("measurements") == 3, kinds
        ids.add(next(d for kind, d in docs if kind == "reports")["report_id"])
    assert ids == set(feed.report_ids(tok, 3))
