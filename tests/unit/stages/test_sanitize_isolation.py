"""No single raw file stops the sanitizer (issue 9): what is not a regular file is quarantined unread, a
file that fails twice for the same reason is poison, a worker that dies costs only the file it died on,
documents nested too deeply are dropped, and the probe IP is hidden in every textual form."""

from __future__ import annotations

import json
import os
import socket

import pytest

from pipeline_helpers import HEADER, data_root, make_cfg, put_raw, report
from sanitize_workers import FAIL_MARK, KILL_MARK, failing_worker
from stages import privacy, sanitize
from stages.cli import Failed


def run(dr, worker=None, **overrides):
    return sanitize.run(make_cfg(dr.root, **overrides), dr, worker=worker)


def good(rid: str) -> str:
    return report({**HEADER, "report_id": rid}, [{"input": "http://a.example/", "n": 1}])


def reason_files(dr, reason):
    return sorted((dr.state("quarantine") / reason).glob("*.reason.json"))


# ---- files, not links ----------------------------------------------------------------------------------

def test_links_fifos_sockets_and_hard_links_are_quarantined_without_being_read(tmp_path):
    dr = data_root(tmp_path)
    secret = tmp_path / "secret.yaml"
    secret.write_text(report({**HEADER, "report_id": "SECRET"}, [{"password": "hunter2"}]))
    raw = dr.state("raw") / "c1"
    raw.mkdir()
    (raw / "link.yaml").symlink_to(secret)
    (raw / "dangling.yaml").symlink_to(tmp_path / "nowhere")
    (raw / "linked-dir").symlink_to(tmp_path)
    os.mkfifo(raw / "fifo.yaml")  # opening it for reading would block the stage forever
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(raw / "socket.yaml"))
    os.link(secret, raw / "hard.yaml")
    put_raw(dr, "fine.yaml", good("fine"))
    s = run(dr, pipeline__workers=2)
    sock.close()
    assert s.exit_code == 0 and s.outcomes == {"sanitized": 1, "quarantined:not_a_regular_file": 6}
    kinds = {json.loads(p.read_text())["kind"] for p in reason_files(dr, "not_a_regular_file")}
    assert kinds == {"symbolic link", "FIFO", "socket", "hard link (2 names)"}
    assert {q.input for q in s.quarantined} == {f"raw/c1/{n}" for n in (
        "link.yaml", "dangling.yaml", "linked-dir", "fifo.yaml", "socket.yaml", "hard.yaml")}
    moved = dr.state("quarantine") / "not_a_regular_file"
    assert (moved / "link.yaml").is_symlink() and (moved / "linked-dir").is_symlink()
    assert secret.read_text().count("SECRET") == 1  # still there, never moved
    for p in dr.state("staging").iterdir():
        assert "SECRET" not in p.read_text() and "hunter2" not in p.read_text()
    assert not any(dr.state("originals").rglob("link*")) and not any(dr.state("originals").rglob("hard*"))
    assert dr.entries("raw") == []


def test_a_state_directory_that_is_a_link_stops_the_stage(tmp_path):
    dr = data_root(tmp_path)
    dr.state("raw").rmdir()
    dr.state("raw").symlink_to(tmp_path)
    with pytest.raises(Exception, match="symbolic link"):
        run(dr)


# ---- poison and dying workers ------------------------------------------------------------------------------

def test_a_file_that_fails_twice_for_the_same_reason_is_poison(tmp_path):
    dr = data_root(tmp_path)
    put_raw(dr, f"a-{FAIL_MARK}.yaml", good("bad"))
    put_raw(dr, "b.yaml", good("b"))
    first = run(dr, failing_worker)
    assert first.exit_code == 1 and first.outcomes == {"sanitized": 1, "failed": 1}
    assert first.failed == [Failed(f"raw/c1/a-{FAIL_MARK}.yaml", "RuntimeError",
                                   f"c1/a-{FAIL_MARK}.yaml: RuntimeError: injected failure")]
    assert (dr.state("raw") / "c1" / f"a-{FAIL_MARK}.yaml").exists()  # left for the next run
    second = run(dr, failing_worker)
    assert second.exit_code == 0 and second.outcomes == {"quarantined:poison": 1}
    (reason,) = reason_files(dr, "poison")
    body = json.loads(reason.read_text())
    assert body["stage"] == "sanitize" and [e["reason"] for e in body["errors"]] == ["RuntimeError"] * 2
    assert run(dr, failing_worker).outcomes == {}


def test_a_failure_then_a_success_starts_the_count_again(tmp_path):
    dr = data_root(tmp_path)
    put_raw(dr, f"a-{FAIL_MARK}.yaml", good("a"))
    assert run(dr, failing_worker).outcomes == {"failed": 1}
    assert run(dr).outcomes == {"sanitized": 1}
    assert json.loads((dr.root / ".failures-sanitize.json").read_text()) == {}


def test_a_worker_that_dies_costs_only_the_file_it_died_on(tmp_path):
    dr = data_root(tmp_path)
    for i in range(6):
        put_raw(dr, f"r{i}.yaml", good(f"r{i}"))
    put_raw(dr, f"r3-{KILL_MARK}.yaml", good("killer"))
    first = run(dr, failing_worker, pipeline__workers=2)
    assert first.outcomes == {"sanitized": 6, "failed": 1}, first.failed
    assert first.failed[0].input == f"raw/c1/r3-{KILL_MARK}.yaml" and first.failed[0].reason == "WorkerDied"
    second = run(dr, failing_worker, pipeline__workers=2)
    assert second.outcomes == {"quarantined:poison": 1}


# ---- depth -------------------------------------------------------------------------------------------------

def test_documents_nested_too_deeply_are_dropped_and_a_deep_header_quarantines(tmp_path):
    dr = data_root(tmp_path)
    deep = "x: " + "[" * 40 + "1" + "]" * 40
    chain = "a: &a [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]\nb: &b [[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]\n"
    text = good("deep").replace("...\n", f"...\n---\n{deep}\n...\n---\n{chain}...\n", 1)
    put_raw(dr, "deep.yaml", text)
    put_raw(dr, "deephead.yaml", f"---\n{deep}\n" + good("x").split("---\n", 1)[1])
    s = run(dr)
    assert s.outcomes == {"sanitized": 1, "quarantined:invalid_header": 1}
    (out,) = dr.state("staging").iterdir()
    dropped = out.read_text().split("sanitizer_dropped:", 1)[1].split("sanitizer_version", 1)[0]
    assert dropped.count("nested deeper than 32 levels") == 2


# ---- every form of the probe IP ----------------------------------------------------------------------------

@pytest.mark.parametrize("ip, forms", [
    ("198.51.100.7", ["198.51.100.7", "7.100.51.198.in-addr.arpa", "7.100.51.198.IN-ADDR.ARPA.", "198-51-100-7",
                      "host-7-100-51-198.isp.example", "::ffff:198.51.100.7", "::FFFF:C633:6407",
                      "0:0:0:0:0:ffff:c633:6407"]),
    ("2001:db8::42", ["2001:db8::42", "2001:DB8::42", "2001:0db8:0000:0000:0000:0000:0000:0042",
                      "2001:db8:0:0:0::42", "[2001:db8::42]:443",
                      "2.4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"]),
])
def test_the_probe_ip_is_hidden_in_every_textual_form(tmp_path, ip, forms):
    dr = data_root(tmp_path)
    entries = [{"text": f"seen {form} here", form: "as a key"} for form in forms]
    entries.append({"decoys": ["198.51.100.70", "2001:db8::420", "11.98.51.100.7"]})
    put_raw(dr, "forms.yaml", report({**HEADER, "probe_ip": ip, "report_id": "forms"}, entries))
    assert run(dr).outcomes == {"sanitized": 1}
    (out,) = dr.state("staging").iterdir()
    text = out.read_text()
    decoys = ("198.51.100.70", "2001:db8::420", "11.98.51.100.7")
    for decoy in decoys:
        assert decoy in text
        text = text.replace(decoy, "")
    for form in forms:
        assert form.lower() not in text.lower(), form
    assert privacy.Redactor([ip]).text(text) == text  # nothing left that the redactor would still find


# ---- found by the campaign, outside its invariants -------------------------------------------------------

def test_a_start_time_with_an_offset_names_the_file_in_utc(tmp_path):
    dr = data_root(tmp_path)
    header = {k: v for k, v in HEADER.items() if k != "start_time"}
    text = report({**header, "report_id": "tz"}, [{"n": 1}]).replace(
        "report_id: tz", "report_id: tz\nstart_time: !!timestamp 2001-12-14t21:59:43.10-05:00")
    put_raw(dr, "tz.yaml", text)
    assert run(dr).outcomes == {"sanitized": 1}
    (out,) = dr.state("staging").iterdir()
    assert out.name.startswith("20011215T025943Z-"), out.name


def test_a_byte_order_mark_before_a_comment_banner_is_not_content(tmp_path):
    dr = data_root(tmp_path)
    put_raw(dr, "bom.yaml", "\ufeff# ooniprobe report\n" + good("bom"))
    assert run(dr).outcomes == {"sanitized": 1}


def test_a_reports_own_sanitizer_fields_are_not_published(tmp_path):
    dr = data_root(tmp_path)
    forged = good("forged").replace("report_id: forged", "report_id: forged\nsanitizer_dropped: [{line: 1, "
                                    "error: forged}]\nsanitizer_version: evil\nreport_file: /etc/passwd")
    put_raw(dr, "forged.yaml", forged)
    assert run(dr).outcomes == {"sanitized": 1}
    (out,) = dr.state("staging").iterdir()
    text = out.read_text()
    assert "forged}" not in text and "error: forged" not in text and "evil" not in text
    assert "/etc/passwd" not in text and "report_file: /c1/forged.yaml" in text
