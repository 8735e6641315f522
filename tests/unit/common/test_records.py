"""common/records.py: what a record writes, what it reads back, and what it refuses (naming the field)."""

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.records import Record, RecordError, key, local, optional


@dataclass
class Part(Record):
    name: str
    size: int


@dataclass
class Whole(Record):
    set_id: str = key("set")
    parts: list[Part] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    note: str | None = optional()
    inner: Part | None = optional()
    started: float = local(default=0.0)


@dataclass
class Stored(Record):
    EXTRA = "extra"
    version: int
    extra: dict[str, Any] = field(default_factory=dict)


def test_a_record_round_trips_with_its_json_keys():
    whole = Whole("S1", [Part("a", 1), Part("b", 2)], {"x": 3}, 1.5, note="n", inner=Part("c", 4), started=9.0)
    data = whole.to_dict()
    assert data == {"set": "S1", "parts": [{"name": "a", "size": 1}, {"name": "b", "size": 2}], "counts": {"x": 3},
                    "seconds": 1.5, "note": "n", "inner": {"name": "c", "size": 4}}
    back = Whole.from_json(whole.to_json())
    assert back == whole and back.started == 0.0  # a local field never crosses: it takes its default


def test_an_optional_field_that_is_none_has_no_key_and_reads_back_as_none():
    data = Whole("S2").to_dict()
    assert "note" not in data and "inner" not in data
    assert Whole.from_dict(data).note is None


@pytest.mark.parametrize("data,message", [
    ({"set": "S", "seconds": "1"}, "Whole.seconds: expected float, got str '1'"),
    ({"set": "S", "counts": {"x": True}}, "Whole.counts.x: expected int, got bool True"),
    ({"set": "S", "parts": [{"name": "a"}]}, "Whole.parts[0]: missing key size"),
    ({"set": "S", "parts": {"name": "a"}}, "Whole.parts: expected a list, got dict"),
    ({"set": "S", "colour": "red"}, "Whole: unexpected key(s) colour"),
    ({"seconds": 1.0}, "Whole: missing key set"),
    ([], "Whole: expected an object, got list"),
])
def test_what_does_not_fit_is_refused_naming_the_field(data, message):
    with pytest.raises(RecordError) as err:
        Whole.from_dict(data)
    assert str(err.value) == message


def test_a_whole_number_is_a_float_but_not_the_other_way_round():
    assert Whole.from_dict({"set": "S", "seconds": 2}).seconds == 2
    with pytest.raises(RecordError, match="Part.size: expected int, got float 2.0"):
        Part.from_dict({"name": "a", "size": 2.0})


def test_not_json_is_refused():
    with pytest.raises(RecordError, match="Part: not JSON"):
        Part.from_json("{nope")


def test_unknown_keys_of_a_stored_format_are_kept_and_written_back():
    stored = Stored.from_dict({"version": 2, "added_later": [1, 2]})
    assert stored.extra == {"added_later": [1, 2]}
    assert stored.to_dict() == {"version": 2, "added_later": [1, 2]}


def test_a_job_result_renders_as_json_and_exits_0_unless_it_says_otherwise():
    part = Part("a", 1)
    assert part.render() == part.to_json() and part.exit_status() == 0 and part.failure() == ""


def test_a_field_named_like_a_records_method_is_refused():
    with pytest.raises(TypeError, match="may not be named exit_status"):
        @dataclasses.dataclass
        class Run(Record):
            exit_status: int


@dataclasses.dataclass
class Totalled(Record):
    DERIVED = ("total",)
    parts: list[Part]

    @property
    def total(self) -> int:
        return sum(p.size for p in self.parts)


def test_a_derived_figure_is_in_the_json_and_computed_again_when_read_back():
    t = Totalled([Part("a", 1), Part("b", 2)])
    assert t.to_dict() == {"parts": [{"name": "a", "size": 1}, {"name": "b", "size": 2}], "total": 3}
    assert Totalled.from_json(t.to_json()) == t
    back = Totalled.from_dict({"parts": [{"name": "a", "size": 5}], "total": 3})  # stale: computed again
    assert back.total == 5
