"""The importer's work split over worker processes (issue 11, item 5), with no database to reach: reports of one
key go to one worker, a staged report is post-processed by a worker and its move committed by the parent,
and the faster construction of documents gives exactly what the generic constructor gave."""

from __future__ import annotations

import io
import json

import yaml

from pipeline_helpers import HEADER, data_root, make_cfg, put_raw, report
from stages import importer, journal, postprocess, sanitize


def staged(tmp_path, reports: dict[str, str]):
    """A data root with these raw reports sanitized into staging/; returns (cfg, dr, staged paths)."""
    dr = data_root(tmp_path)
    for name, text in reports.items():
        put_raw(dr, name, text)
    cfg = make_cfg(dr.root)
    assert sanitize.run(cfg, dr).exit_code == 0
    return cfg, dr, sorted(dr.state("staging").glob("*.yaml"))


def small(rid: str, n: int = 2) -> str:
    return report({**HEADER, "report_id": rid}, [{"input": f"http://e{i}.example/", "n": i} for i in range(n)])


# ---- groups: one key, one worker ---------------------------------------------------------------------

def test_reports_of_one_key_form_one_group_in_order_and_others_their_own(tmp_path):
    cfg, dr, paths = staged(tmp_path, {"a.yaml": small("same"), "b.yaml": small("other")})
    same, other = sorted(paths, key=lambda p: "-same-" not in p.name)
    # Post-processed in an earlier run, waiting in reports/.
    tx, _ = importer.postprocess_prepare(dr, same)
    journal.run(dr, tx)
    waiting = dr.state("reports") / same.name
    again = dr.state("staging") / same.name.replace("-probe.yaml", "-probe-2.yaml")
    again.write_text(small("same"))  # a suffixed name: key "same~2", a group of its own
    dup = dr.state("staging") / same.name.replace("T", "T9", 1)
    dup.write_text(small("same"))    # another name, the same report id: the same key as `waiting`
    broken = dr.state("staging") / "broken.yaml"
    broken.write_text("- not a header\n")
    groups = importer.groups(dr, [waiting, other, again, dup, broken])
    assert sorted(groups) == sorted([(str(waiting), str(dup)), (str(other),), (str(again),), (str(broken),)])
    assert groups[0] == (str(waiting), str(dup))  # the largest first: two reports
    assert groups[-1] == (str(broken),)           # the smallest last


def test_the_largest_reports_go_first(tmp_path):
    cfg, dr, paths = staged(tmp_path, {"a.yaml": small("a", 1), "b.yaml": small("b", 50), "c.yaml": small("c", 5)})
    order = [p.split("-")[-3] for (p,) in importer.groups(dr, paths)]
    assert order == ["b", "c", "a"]


def test_the_staged_key_is_the_key_post_processing_gives(tmp_path):
    cfg, dr, paths = staged(tmp_path, {"a.yaml": small("keyed"),
                                       "b.yaml": report({k: v for k, v in HEADER.items()}, [{"n": 1}])})
    for p in paths:
        out = io.BytesIO()
        assert postprocess.staged_key(p) == postprocess.write_jsonl(p, out)["_id"]


# ---- a worker post-processes, the parent commits -----------------------------------------------------

def test_without_the_database_staged_reports_are_post_processed_and_committed_by_the_parent(tmp_path):
    cfg, dr, paths = staged(tmp_path, {"a.yaml": small("one", 3), "b.yaml": small("two", 1)})
    (result,) = importer.work((str(paths[0]),), str(dr.root), importer.Target.from_config(cfg), False)
    assert result.postprocessed is not None and result.imported is None and not (result.reason or result.stop)
    assert paths[0].exists() and not (dr.state("reports") / paths[0].name).exists()  # nothing moved yet
    summary = importer.Summary("importer")
    importer._Run(cfg, dr, summary, importer.failures.Failures.load(dr, "importer"), None).one(result)
    moved = dr.state("reports") / paths[0].name
    assert moved.exists() and moved.with_suffix(".jsonl").exists() and not paths[0].exists()
    assert summary.outcomes == {"postprocessed": 1} and summary.bytes_in == result.size
    lines = moved.with_suffix(".jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["d"]["entries"] == 3


def test_a_database_that_cannot_be_used_still_lets_every_staged_report_be_post_processed(tmp_path):
    """Unusable here: its password is not in the secrets folder. (The real database refusing the importer's
    password: tests/integration/test_pipeline.py.)"""
    cfg, dr, paths = staged(tmp_path, {f"r{i}.yaml": small(f"r{i}") for i in range(3)})
    cfg = make_cfg(dr.root, pipeline__workers=2, secrets_dir=str(tmp_path / "no-secrets"))
    s = importer.run(cfg, dr)
    assert s.exit_code == 1 and s.outcomes == {"postprocessed": 3}
    assert len(s.errors) == 1 and "db-importer-password" in s.errors[0]
    assert sorted(p.name for p in dr.state("reports").glob("*.yaml")) == [p.name for p in paths]
    assert not (dr.root / ".failures-importer.json").exists()


def test_a_report_that_cannot_be_post_processed_is_quarantined(tmp_path):
    cfg, dr, _ = staged(tmp_path, {})
    bad = dr.state("staging") / "20140807T141050Z-IT-AS3269-http_requests-x-0.2.0-probe.yaml"
    bad.write_text("- a list, not a header\n")
    cfg = make_cfg(dr.root, secrets_dir=str(tmp_path / "no-secrets"))  # no database: post-processing only
    s = importer.run(cfg, dr)
    assert s.outcomes == {"quarantined:postprocess": 1} and not bad.exists()


# ---- faster construction, same documents -------------------------------------------------------------

class GenericLoader(postprocess.ReportLoader):
    """The generic constructor, as post-processing used it before the faster one."""

    def construct_document(self, node):
        return yaml.constructor.BaseConstructor.construct_document(self, node)


TRICKY = """---
report_id: tricky
test_name: http_requests
start_time: 1407420650.5
probe_cc: IT
...
---
base: &b {a: 1, "x.y": [1, [2, 3]], $k: v}
merged: {<<: *b, c: 2}
again: *b
? [list, key]
: 1
? {map: key}
: 2
set: !!set {p, q}
omap: !!omap [{one: 1}, {two: 2}]
pairs: !!pairs [{one: 1}, {one: 2}]
bin: !!binary aGVsbG8=
when: 2014-01-02 03:04:05
day: 2014-01-02
ints: [0x1F, 0o17, 1_000, -0, 123456789012345678901234567890]
floats: [.inf, -.inf, .nan, 1.5e3]
bools: [yes, No, true, off, ~, null, '']
py: !!python/unicode text
nul: "a\\0b"
report: {input: inner, extra: 1}
input: outer
...
---
plain scalar
...
---
[[1, 2], {k: [[3]]}]
...
"""


def test_the_faster_construction_gives_the_generic_constructors_documents(tmp_path, monkeypatch):
    path = tmp_path / "20140807T141050Z-IT-AS3269-http_requests-tricky-0.2.0-probe.yaml"
    path.write_text(TRICKY)
    fast = io.BytesIO()
    postprocess.write_jsonl(path, fast)
    monkeypatch.setattr(postprocess, "ReportLoader", GenericLoader)
    generic = io.BytesIO()
    postprocess.write_jsonl(path, generic)
    assert fast.getvalue() == generic.getvalue()
    docs = [json.loads(line)["d"] for line in fast.getvalue().splitlines()]
    assert [d.get("refused") for d in docs[:-1]] == [None] * 3
    entry = docs[0]["entry"]
    assert entry["merged"] == {"a": 1, "x\uff0ey": [1, {"array": [2, 3]}], "\uff04k": "v", "c": 2}
    assert entry["set"] == ["p", "q"] and entry["input"] == "outer" and entry["extra"] == 1


def test_the_normalize_fast_paths_give_what_the_general_tests_give():
    class Str(str):
        pass

    class Dict(dict):
        pass

    value = {"a.b": Str("x\x00"), "$c": Dict({"k": [["n"]]}), "\x00$d": ("t", ["u"]), Str("e.f"): 1}
    assert postprocess.normalize(value) == {"a\uff0eb": "x", "\uff04c": {"k": [{"array": ["n"]}]},
                                            "\uff04d": ["t", {"array": ["u"]}], "e\uff0ef": 1}
