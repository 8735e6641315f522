"""The sanitizer on real legacy samples and on crafted inputs (no Docker: the stage runs in-process)."""

from __future__ import annotations

import gzip
import io
import json
import socket
import tarfile

import pytest
import yaml

from common import digest
from pipeline_helpers import (
    BRIDGE_DB,
    HEADER,
    copy_samples,
    data_root,
    hidden_ip_report,
    ip_pattern,
    load_docs,
    make_cfg,
    put_raw,
    report,
    walk,
)
from stages import journal, rewrite, sanitize


def run(dr, **overrides):
    return sanitize.run(make_cfg(dr.root, **overrides), dr)


def staged(dr):
    return sorted(dr.state("staging").iterdir())


def quarantined(dr):
    return sorted(p.relative_to(dr.state("quarantine")).as_posix()
                  for p in dr.files("quarantine"))


# ---- real samples ---------------------------------------------------------------------------------------

def test_every_real_sample_ends_in_staging_or_quarantine(tmp_path):
    dr = data_root(tmp_path)
    raws = copy_samples(dr)
    s = run(dr)
    assert s.exit_code == 0, s.errors
    assert dr.files("raw") == []
    assert quarantined(dr) == ["unsafe_tag/real-probe2012-prototype-marco-1.yamlooni"]
    # The misnamed .gz is a tar holding the same raw bridge report: recorded as a duplicate, not doubled.
    assert s.outcomes == {"sanitized": len(raws) - 2, "duplicate": 1, "quarantined:unsafe_tag": 1}
    assert len(staged(dr)) == len(raws) - 2
    assert len(dr.files("originals")) == len(raws)
    reason = json.loads((dr.state("quarantine") / "unsafe_tag" /
                         "real-probe2012-prototype-marco-1.yamlooni.reason.json").read_text())
    assert reason["reason"] == "unsafe_tag" and "python/object/apply" in reason["error"] and reason["line"] == 8
    for p in staged(dr):
        docs = load_docs(p)  # every output parses with a plain safe loader
        assert docs[0]["probe_ip"] == "127.0.0.1"
        assert docs[0]["sanitizer_version"].startswith("aggregator-dr")
        assert docs[0]["report_file"].startswith("/sample/")


def test_canonical_names_of_real_samples(tmp_path):
    dr = data_root(tmp_path)
    copy_samples(dr)
    run(dr)
    names = {p.name for p in staged(dr)}
    assert "20121129T101719Z-ZZ-AS0-dns_consistency-no_report_id-0.1.0-probe.yaml" in names
    assert ("20160712T172708Z-US-AS7922-web_connectivity-20160712T172644Z_AS7922_obPihyuYvZu6JmCKxb7NLCJgjJu7B1"
            "Zqbs6QuFxeJK1iPxJH0y-0.2.0-probe.yaml") in names
    assert "20140102T155410Z-ZZ-AS0-multi_protocol_traceroute-no_report_id-0.1.0-probe.yaml" in names


def test_bridge_pair_reproduces_the_legacy_sanitiser(tmp_path):
    dr = data_root(tmp_path)
    raw = (BRIDGE_DB.parent / "real-pipeline2014-raw-bridge_reachability-IT-2012-01-01T120000Z_AS3.yamloo")
    put_raw(dr, raw.name, raw.read_bytes(), collector="IT")
    run(dr, pipeline__bridge_db=str(BRIDGE_DB))
    [out] = staged(dr)
    ours = load_docs(out)
    legacy = load_docs(BRIDGE_DB.parent / "real-pipeline2014-sanitised-bridge_reachability-2012-01-01T120000Z_AS3.yamloo")
    ignore = {"report_file", "sanitizer_version", "sanitizer_dropped"}
    assert {k: v for k, v in ours[0].items() if k not in ignore} == \
           {k: v for k, v in legacy[0].items() if k not in ignore}
    assert ours[0]["report_file"] == f"/IT/{raw.name}"
    assert len(ours) == len(legacy) == 12
    for mine, theirs in zip(ours[1:], legacy[1:]):
        assert mine == theirs  # same fields, same values, same hashes
    assert ours[1]["input"] == "a491b59b16b6fdb59f0b67efcfc95a7b52ac8fcd"


def test_without_bridge_db_every_bridge_is_private(tmp_path):
    dr = data_root(tmp_path)
    raw = (BRIDGE_DB.parent / "real-pipeline2014-raw-bridge_reachability-IT-2012-01-01T120000Z_AS3.yamloo")
    put_raw(dr, raw.name, raw.read_bytes())
    run(dr)
    [out] = staged(dr)
    text = out.read_text()
    for address in ("1.2.3.6", "169.229.59.75", "83.212.101.2", "128.31.0.34", "1.2.3.4"):
        assert address not in text
    entries = load_docs(out)[1:]
    assert all(e["bridge_address"] is None and len(e["input"]) == 40 for e in entries)
    assert entries[0]["bridge_hashed_fingerprint"] == entries[0]["input"]


def test_binary_and_set_survive_and_probe_ip_is_gone(tmp_path):
    dr = data_root(tmp_path)
    src = BRIDGE_DB.parent / "real-fastpath-testdata-binary_city.yaml"
    put_raw(dr, src.name, src.read_bytes())
    run(dr)
    [out] = staged(dr)
    assert "46.22.105.39" not in out.read_text()
    header, entry = load_docs(out)
    assert header["probe_city"] == "Reykjavík".encode("latin-1")
    assert entry["headers_diff"] == set()
    assert header["probe_ip"] == "127.0.0.1"


def test_output_is_block_style(tmp_path):
    dr = data_root(tmp_path)
    src = BRIDGE_DB.parent / "extracted-spec-tcp_connect-2013.yaml"
    put_raw(dr, src.name, src.read_bytes())
    run(dr)
    [out] = staged(dr)
    events = yaml.parse(out.read_text(), Loader=yaml.CSafeLoader)
    starts = [e for e in events if isinstance(e, yaml.CollectionStartEvent)]
    assert starts and not any(e.flow_style for e in starts)


# ---- tolerance and limits ------------------------------------------------------------------------------

def test_one_bad_document_does_not_lose_the_rest(tmp_path):
    dr = data_root(tmp_path)
    text = report(HEADER, [{"input": "a", "n": 1}]) + "---\ninput: [unclosed\n  n: 2\n...\n" + \
        report(HEADER, [{"input": "c", "n": 3}]).split("...\n", 1)[1]
    put_raw(dr, "r.yaml", text)
    s = run(dr)
    assert s.outcomes == {"sanitized": 1}
    [out] = staged(dr)
    docs = load_docs(out)
    assert [d["n"] for d in docs[1:]] == [1, 3]
    [bad] = docs[0]["sanitizer_dropped"]
    assert bad["line"] in (16, 17, 18)  # the broken document's lines in the raw file


@pytest.mark.parametrize("name, content, reason", [
    ("empty.yaml", b"", "empty"),
    ("comments.yaml", b"# only a banner\n#####\n", "empty"),
    ("list.yaml", b"- a\n- b\n", "not_a_report"),
    ("noname.yaml", b"---\nprobe_cc: IT\nstart_time: 1.0\n...\n", "invalid_header"),
    ("notime.yaml", b"---\ntest_name: x\n...\n", "invalid_header"),
    ("broken.yaml", b"---\ntest_name: [x\n...\n", "invalid_header"),
    ("tag.yaml", b"---\ntest_name: x\nstart_time: 1.0\n...\n---\na: !!python/object:os.system [1]\n...\n",
     "unsafe_tag"),
    ("custom.yaml", b"---\ntest_name: x\nstart_time: 1.0\n...\n---\na: !mytag 1\n...\n", "unsafe_tag"),
    ("badgz.yaml.gz", b"\x1f\x8b\x08\x00garbage", "unparseable"),
])
def test_bad_input_is_quarantined_with_its_reason(tmp_path, name, content, reason):
    dr = data_root(tmp_path)
    put_raw(dr, name, content)
    s = run(dr)
    assert s.exit_code == 0
    assert s.outcomes == {f"quarantined:{reason}": 1}
    assert quarantined(dr) == [f"{reason}/{name}"]
    assert (dr.state("quarantine") / reason / name).read_bytes() == content  # kept byte for byte
    assert dr.files("staging") == [] and dr.files("raw") == []


def test_python_string_tags_are_kept_as_plain_strings(tmp_path):
    dr = data_root(tmp_path)
    put_raw(dr, "r.yaml", "---\ntest_name: !!python/unicode 'http_requests'\nstart_time: 1.0\n...\n"
                          "---\nbody: !!python/str '123'\n...\n")
    assert run(dr).outcomes == {"sanitized": 1}
    header, entry = load_docs(staged(dr)[0])
    assert header["test_name"] == "http_requests" and entry["body"] == "123"


def test_alias_bomb_is_refused_in_bounded_time(tmp_path):
    dr = data_root(tmp_path)
    lines = ["---", "test_name: x", "start_time: 1.0", "...", "---", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    put_raw(dr, "bomb.yaml", "\n".join(lines) + "\n...\n")
    s = run(dr)
    assert s.outcomes == {"quarantined:too_large": 1}
    assert "alias" in json.loads((dr.state("quarantine") / "too_large" / "bomb.yaml.reason.json").read_text())["error"]


def test_oversized_document_and_report_are_refused(tmp_path):
    dr = data_root(tmp_path)
    big = report(HEADER, [{"input": "x", "body": "y" * (2 << 20)}])
    put_raw(dr, "bigdoc.yaml", big)
    assert run(dr, pipeline__max_document_mb=1).outcomes == {"quarantined:too_large": 1}
    dr2 = data_root(tmp_path / "second")
    put_raw(dr2, "bigreport.yaml", report(HEADER, [{"input": "x", "body": "y" * (600 << 10)}] * 3))
    assert run(dr2, pipeline__max_report_mb=1).outcomes == {"quarantined:too_large": 1}


def test_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    dr = data_root(tmp_path)
    payload = report(HEADER, [{"input": "x"}]).encode() + b"#" * (64 << 20)
    put_raw(dr, "bomb.yaml.gz", gzip.compress(payload))
    assert run(dr, pipeline__max_report_mb=8).outcomes == {"quarantined:too_large": 1}


def test_gzip_and_tar_inputs_are_detected_by_content(tmp_path):
    dr = data_root(tmp_path)
    one = report({**HEADER, "report_id": "one"}, [{"input": "a"}]).encode()
    two = report({**HEADER, "report_id": "two"}, [{"input": "b"}]).encode()
    put_raw(dr, "plain-but-gzipped.yaml", gzip.compress(one))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, data in (("../../../etc/evil.yaml", two), ("ok/also.yaml", one)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    put_raw(dr, "archive.yaml.gz", buf.getvalue())
    s = run(dr)
    assert s.outcomes == {"sanitized": 2, "duplicate": 1}
    names = sorted(p.name for p in staged(dr))
    assert [n.split("-")[4] for n in names] == ["one", "two"]
    assert not (tmp_path / "etc").exists() and not (dr.root.parent / "etc").exists()
    reports = {load_docs(p)[0]["report_id"]: load_docs(p)[0]["report_file"] for p in staged(dr)}
    assert reports["two"] == "/c1/archive.yaml.gz--evil.yaml"


def test_same_name_different_content_gets_a_suffix_and_rerun_is_a_duplicate(tmp_path):
    dr = data_root(tmp_path)
    put_raw(dr, "a.yaml", report(HEADER, [{"input": "a"}]))
    put_raw(dr, "b.yaml", report(HEADER, [{"input": "b"}]))
    assert run(dr).outcomes == {"sanitized": 2}
    names = sorted(p.name for p in staged(dr))
    assert names[0].endswith("-probe-2.yaml") and names[1].endswith("-probe.yaml")
    put_raw(dr, "a-again.yaml", report(HEADER, [{"input": "a"}]))
    assert run(dr).outcomes == {"duplicate": 1}
    assert len(staged(dr)) == 2 and dr.files("raw") == []


def test_every_move_is_journalled(tmp_path):
    dr = data_root(tmp_path)
    put_raw(dr, "a.yaml", report(HEADER, [{"input": "a"}]))
    run(dr)
    entries = [e for _, e in journal.read(dr)]
    assert [e["op"] for e in entries] == ["begin", "commit"]
    begin = entries[0]
    assert begin["stage"] == "sanitize" and begin["report"] == "raw/c1/a.yaml"
    renames = [s for s in begin["steps"] if s["op"] == "rename"]
    assert {s["dst"].split("/")[0] for s in renames} == {"staging", "originals"}
    for s in renames:
        assert digest.sha256_file(dr.root / s["dst"]) == s["sha256"]
    assert journal.history(dr, "a.yaml")[0]["txid"] == begin["txid"]


def test_parallel_workers_give_the_same_result(tmp_path):
    one, two = data_root(tmp_path / "one"), data_root(tmp_path / "two")
    copy_samples(one)
    copy_samples(two)
    run(one)
    run(two, pipeline__workers=2)
    a = {p.name: rewrite.content_digest(p) for p in staged(one)}
    b = {p.name: rewrite.content_digest(p) for p in staged(two)}
    assert a == b and len(a) > 10


# ---- the probe IP, hidden everywhere (property test) -----------------------------------------------------

@pytest.mark.parametrize("seed", range(40))
def test_probe_ip_never_survives(tmp_path, seed):
    import random

    rng = random.Random(seed)
    ip = rng.choice(["1.2.3.4", "203.0.113.77", "2001:db8::42", "10.0.0.1"])
    text, decoys = hidden_ip_report(rng, ip)
    dr = data_root(tmp_path)
    put_raw(dr, "r.yaml", text)
    s = run(dr)
    assert s.outcomes == {"sanitized": 1}, (s.outcomes, text)
    [out] = staged(dr)
    body = out.read_bytes()
    assert "sanitizer_dropped" not in load_docs(out)[0], text  # every generated document was valid
    # The address as a whole (not inside a longer one such as the decoy 1.2.3.44).
    whole = ip_pattern(ip)
    assert not whole.search(body.decode())
    packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    for doc in load_docs(out):
        for value in walk(doc):
            if isinstance(value, bytes):
                assert not whole.search(value.decode("latin-1")) and packed not in value
            elif isinstance(value, str):
                assert not whole.search(value)
    for d in decoys:
        if d in text:
            assert d.encode() in body  # other addresses are left alone


def test_archive_folder_comes_from_the_canonical_name():
    from stages import naming

    assert naming.archive_subdir("20140807T141050Z-IT-AS3269-bridge_reachability-no_report_id-0.1.0-probe-2.yaml") \
        == "2014-08-07/IT"
