"""One report rewritten for publication (stages/rewrite.py), from a byte stream, without a data root."""

from __future__ import annotations

import io

import pytest
import yaml

from pipeline_helpers import HEADER, report
from stages import privacy, rewrite

PROBE = "203.0.113.7"
LIMIT = 1 << 20


def sanitize(tmp_path, text: str, bridges=None) -> rewrite.Output:
    return rewrite.sanitize_stream(io.BytesIO(text.encode()), "/c1/r.yaml", tmp_path / "out", LIMIT,
                                   bridges or privacy.BridgeDB(None))


def docs(path):
    with open(path, "rb") as fh:
        return list(yaml.load_all(fh, Loader=yaml.CSafeLoader))


def test_the_header_is_rewritten_and_the_probe_ip_removed_from_entries(tmp_path):
    header = {**HEADER, "probe_ip": PROBE, "report_id": "R1", "sanitizer_version": "forged",
              "report_file": "/forged"}
    out = sanitize(tmp_path, report(header, [{"client": PROBE, "log": f"from {PROBE}:80"}, {"n": 2}]))
    assert out.outcome == "sanitized" and out.tmp == tmp_path / "out"
    assert out.info == {"report_id": "R1", "test_name": "http_requests", "entries": 2, "dropped": 0}
    text = out.tmp.read_text()
    assert PROBE not in text
    head, *entries = docs(out.tmp)
    assert head["probe_ip"] == privacy.SANITIZED_PROBE_IP
    assert head["report_file"] == "/c1/r.yaml" and head["sanitizer_version"] == rewrite.SANITIZER_VERSION
    assert "sanitizer_dropped" not in head
    assert entries[1] == {"n": 2}
    assert out.size == out.tmp.stat().st_size


def test_the_content_digest_leaves_report_file_out(tmp_path):
    text = report({**HEADER, "report_id": "R1"}, [{"n": 1}])
    a = rewrite.sanitize_stream(io.BytesIO(text.encode()), "/c1/a.yaml", tmp_path / "a", LIMIT,
                                privacy.BridgeDB(None))
    b = rewrite.sanitize_stream(io.BytesIO(text.encode()), "/c2/b.yaml", tmp_path / "b", LIMIT,
                                privacy.BridgeDB(None))
    assert a.sha256 != b.sha256
    assert a.content_sha256 == b.content_sha256 == rewrite.content_digest(a.tmp) == rewrite.content_digest(b.tmp)


def test_an_unparseable_entry_is_dropped_and_listed(tmp_path):
    text = report(HEADER, [{"n": 1}]) + "---\n[unclosed\n...\n"
    out = sanitize(tmp_path, text)
    head, *entries = docs(out.tmp)
    assert entries == [{"n": 1}]
    assert out.info["dropped"] == 1 and len(head["sanitizer_dropped"]) == 1
    assert not (tmp_path / "out-entries").exists()


@pytest.mark.parametrize("text,reason", [
    ("", "empty"),
    ("--- [1, 2]\n...\n", "not_a_report"),
    (report({"probe_cc": "IT"}, []), "invalid_header"),
    (report({**HEADER, "start_time": "never"}, []), "invalid_header"),
])
def test_a_report_without_a_usable_header_raises_quarantine(tmp_path, text, reason):
    with pytest.raises(rewrite.Quarantine) as exc:
        sanitize(tmp_path, text)
    assert exc.value.reason == reason


def test_an_unsafe_tag_in_an_entry_quarantines_the_report(tmp_path):
    text = report(HEADER, []) + "---\nx: !!python/object/apply:os.system ['true']\n...\n"
    with pytest.raises(rewrite.Quarantine) as exc:
        sanitize(tmp_path, text)
    assert exc.value.reason == "unsafe_tag" and exc.value.line > 0
