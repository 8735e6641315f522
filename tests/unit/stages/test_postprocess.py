"""postprocess.normalize and flatten_entry: any constructed YAML value becomes plain JSON that the database
stores (no '.' or leading '$' in keys, no nested arrays, no NaN, no integers beyond 64 bits, no NUL)."""

from __future__ import annotations

import datetime as dt
import json
import math

import bson
from hypothesis import given
from hypothesis import strategies as st

from stages import postprocess


def test_keys_become_storable_strings():
    out = postprocess.normalize({"a.b": 1, "$where": 2, 3: 3, None: 4, True: 5, b"k\x00": 6,
                                 dt.date(2014, 1, 2): 7})
    assert out == {"a\uff0eb": 1, "\uff04where": 2, "3": 3, "null": 4, "true": 5, "k": 6, "2014-01-02": 7}


def test_nested_arrays_are_wrapped_and_sets_sorted():
    assert postprocess.normalize([[1, [2]], 3]) == [{"array": [1, {"array": [2]}]}, 3]
    assert postprocess.normalize({"s": {3, 1, 2}}) == {"s": [1, 2, 3]}


def test_values_the_database_refuses_become_strings():
    out = postprocess.normalize({"nan": math.nan, "inf": -math.inf, "big": 2 ** 64, "small": -(2 ** 63),
                                 "nul": "a\x00b", "bin": b"\xff\x00"})
    assert out == {"nan": "nan", "inf": "-inf", "big": str(2 ** 64), "small": -(2 ** 63), "nul": "ab",
                   "bin": {"format": "base64", "data": "/wA="}}


def test_times_are_utc_iso_strings():
    naive = dt.datetime(2014, 5, 1, 12, 0, 0)
    offset = dt.datetime(2014, 5, 1, 14, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert postprocess.normalize([naive, offset]) == ["2014-05-01T12:00:00.000000Z"] * 2


def test_a_2012_entry_is_flattened_without_overwriting_outer_fields():
    entry = {"input": "x", "report": {"input": "inner", "body": "b"}}
    assert postprocess.flatten_entry(entry) == {"input": "x", "body": "b"}
    assert postprocess.flatten_entry(["not", "a", "mapping"]) == {"value": ["not", "a", "mapping"]}


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(max_size=16)
    | st.datetimes() | st.dates(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text() | st.integers() | st.booleans() | st.none(), inner, max_size=4),
    max_leaves=20)


def _no_bad_keys_or_nested_arrays(value) -> bool:
    if isinstance(value, dict):
        return all("." not in k and not k.startswith("$") and "\x00" not in k and _no_bad_keys_or_nested_arrays(v)
                   for k, v in value.items())
    if isinstance(value, list):
        return all(not isinstance(v, list) and _no_bad_keys_or_nested_arrays(v) for v in value)
    return not (isinstance(value, str) and "\x00" in value)


@given(yaml_values)
def test_any_value_becomes_strict_json_that_bson_encodes(value):
    out = postprocess.normalize({"v": value})
    json.dumps(out, allow_nan=False)  # raises on NaN/inf
    bson.encode(out)  # raises on integers beyond 64 bits and on keys BSON refuses
    assert _no_bad_keys_or_nested_arrays(out)
