"""Documents larger than the database stores keep their shape, with their largest values replaced by
references into the archived report (stages/postprocess.fit)."""

from stages import postprocess


def test_oversized_header_values_are_replaced_too():
    doc = {"_id": "k", "header": {"note": "n" * (9 << 20), "small": "s"}}
    assert postprocess.fit(doc, "archive/x.yaml")
    assert doc["header"]["note"]["omitted"]["bytes"] == 9 << 20 and doc["header"]["small"] == "s"
    assert doc["omitted"] == {"archive": "archive/x.yaml", "document": 1, "paths": ["header/note"]}
    many = {"_id": "m", "index": 0, "entry": {f"k{i}": "v" * 200 for i in range(60_000)}}
    assert postprocess.fit(many, "archive/y.yaml")
    assert set(many["entry"]) == {"omitted"} and many["omitted"]["paths"] == ["entry"]
    assert postprocess.stored_size(many) < postprocess.MAX_STORED_BYTES
