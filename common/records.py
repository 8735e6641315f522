"""Typed records that cross a process boundary as JSON: a container prints one, the host reads it back into
the same type.

A record is a dataclass deriving from `Record`. `to_dict()` gives the JSON object (nested records, lists and
dicts of them included); `from_dict()` checks a decoded JSON value against the field types and builds the
record, or raises RecordError naming the first field that does not fit. Field metadata:

- `key("set")`: the JSON key when it differs from the attribute name (`set_id`);
- `optional()`: a field that is None is left out of the JSON (today's results have no such key then), and
  a missing key reads back as None;
- `local()`: a field kept on this side of the boundary only (a start time): never written, never read.

A class may name properties in `DERIVED`: figures computed from its fields (a total) that its JSON carries too,
so a reader of the JSON finds every figure the record shows; read back, their keys are accepted and dropped
(the property computes them again).

A job's result (what an `invoke` task prints) is a record too: `render()` is its text for people, `to_json()`
what `--json` prints, and `exit_status()` the exit code the result itself calls for (0 unless it reports a
failure, like a repository check that failed).

Unknown keys are refused, unless the class names a dict field in `EXTRA` (a stored format written by a newer
version, such as a set's manifest): they are kept there and written back out.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import Any, ClassVar, TypeVar

from common.errors import DrError

R = TypeVar("R", bound="Record")


class RecordError(DrError):
    """A JSON value does not fit the record it should be."""


def key(name: str, **kwargs) -> Any:
    """A field whose JSON key is `name`."""
    return dataclasses.field(metadata={"key": name}, **kwargs)


def optional(json_key: str | None = None) -> Any:
    """A field that defaults to None and is left out of the JSON when None."""
    meta = {"omit_none": True} | ({"key": json_key} if json_key else {})
    return dataclasses.field(default=None, metadata=meta)


def local(**kwargs) -> Any:
    """A field that never crosses the boundary (it needs a default or default_factory)."""
    return dataclasses.field(metadata={"local": True}, repr=False, compare=False, **kwargs)


def _crosses(f: dataclasses.Field) -> bool:
    return not f.metadata.get("local")


def _json_key(f: dataclasses.Field) -> str:
    return f.metadata.get("key", f.name)


def _dump(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _load(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"{where}: only `X | None` unions are supported")
        return _load(kinds[0], value, where)
    if origin is list or tp is list:
        if not isinstance(value, list):
            raise RecordError(f"{where}: expected a list, got {type(value).__name__}")
        return [_load(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
        return {k: _load(args[1], v, f"{where}.{k}") for k, v in value.items()} if args else value
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_dict(value, where)
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)  # JSON writes 2.0 as 2.0, 2 as 2
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp in (bool, str):
        ok = isinstance(value, tp)
    else:
        raise TypeError(f"{where}: unsupported field type {tp!r}")
    if not ok:
        raise RecordError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r:.80}")
    return value


@functools.cache
def _shape(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    """A record class's field types and its fields by JSON key (those that cross), worked out once per class:
    resolving the annotations is most of the cost of reading a record back."""
    fields = {_json_key(f): f for f in dataclasses.fields(cls) if f.name != cls.EXTRA and _crosses(f)}
    return typing.get_type_hints(cls), fields


@dataclasses.dataclass
class Record:
    """Base of the records; see the module's docstring."""

    EXTRA: ClassVar[str | None] = None  # the dict field that keeps unknown keys, if any
    DERIVED: ClassVar[tuple[str, ...]] = ()  # properties written to the JSON too, dropped when read back

    def __init_subclass__(cls, **kwargs):
        """A field may not take the name of a method of every record (a field `exit_status` would hide
        exit_status() and become its default): refused when the class is made."""
        super().__init_subclass__(**kwargs)
        clash = set(cls.__dict__.get("__annotations__", {})) & set(vars(Record)) - {"EXTRA", "DERIVED"}
        if clash:
            raise TypeError(f"{cls.__name__}: a field may not be named {', '.join(sorted(clash))} "
                            "(a method of every record)")

    def to_dict(self) -> dict:
        out: dict = {}
        for f in filter(_crosses, dataclasses.fields(self)):
            value = getattr(self, f.name)
            if f.name == self.EXTRA:
                out.update(value)
            elif not (value is None and f.metadata.get("omit_none")):
                out[_json_key(f)] = _dump(value)
        for name in self.DERIVED:
            out[name] = _dump(getattr(self, name))
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def render(self) -> str:
        """The result as text for people (a job's result type says it its own way; this is the JSON)."""
        return self.to_json()

    def exit_status(self) -> int:
        """The exit code this result calls for when it is a job's: 0 unless it reports a failure."""
        return 0

    def failure(self) -> str:
        """One sentence naming what failed, for stderr, when exit_status() is not 0 ("" when render() says it
        all)."""
        return ""

    @classmethod
    def from_dict(cls: type[R], data: Any, where: str | None = None) -> R:
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise RecordError(f"{where}: expected an object, got {type(data).__name__}")
        hints, fields = _shape(cls)
        kwargs: dict = {}
        unknown = {k: v for k, v in data.items() if k not in fields and k not in cls.DERIVED}
        if unknown and cls.EXTRA is None:
            raise RecordError(f"{where}: unexpected key(s) {', '.join(sorted(unknown))}")
        if cls.EXTRA is not None:
            kwargs[cls.EXTRA] = unknown
        for name, f in fields.items():
            if name in data:
                kwargs[f.name] = _load(hints[f.name], data[name], f"{where}.{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(f"{where}: missing key {name}")
        return cls(**kwargs)

    @classmethod
    def from_json(cls: type[R], text: str) -> R:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RecordError(f"{cls.__name__}: not JSON: {exc}") from None
        return cls.from_dict(data)
