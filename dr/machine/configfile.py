"""Writing the configuration as TOML (host only: tomli-w comes from PyPI; the images only read, with tomllib).

`to_toml(values)` is what `common.config.load` reads back: validated values (Config.as_dict(), the defaults,
or a derived container's config) restricted to the keys of SCHEMA. `docs=True` puts each key's help above it.
`invoke config` shows the effective configuration, or the defaults as a commented file (`ConfigShown`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import tomli_w

from common.config import SCHEMA, Config, defaults
from common.records import Record


def _known(values: dict, schema: dict) -> dict:
    """values without keys the schema does not know, nested tables and [[arrays]] of tables included."""
    out = {}
    for key, spec in schema.items():
        if key not in values:
            continue
        if isinstance(spec, dict):
            out[key] = _known(values[key], spec)
        elif isinstance(spec, list):
            out[key] = [_known(item, spec[0]) for item in values[key]]
        else:
            out[key] = values[key]
    return out


def to_toml(values: dict, docs: bool = False) -> str:
    """Validated values as TOML that `common.config.load` reads back; with docs, every key's help as a comment."""
    values = _known(values, SCHEMA)
    if not docs:
        return tomli_w.dumps(values)
    lines: list[str] = []

    def emit(vals: dict, schema: dict, header: str | None, array: bool = False) -> None:
        if header:
            lines.append(f"\n[[{header}]]" if array else f"\n[{header}]")
        for key, spec in schema.items():
            if key in vals and not isinstance(spec, (dict, list)):
                if spec.doc:
                    lines.append(f"# {spec.doc}")
                lines.append(tomli_w.dumps({key: vals[key]}).rstrip("\n"))
        for key, spec in schema.items():
            if isinstance(spec, dict):
                emit(vals.get(key, {}), spec, f"{header}.{key}" if header else key)
            elif isinstance(spec, list):
                for item in vals.get(key, []):
                    emit(item, spec[0], key, array=True)

    emit(values, SCHEMA, None)
    return "\n".join(lines).lstrip() + "\n"


def defaults_as_toml() -> str:
    """The default configuration as a commented TOML file (for `invoke config --defaults`)."""
    return to_toml(defaults(), docs=True)


@dataclass
class ConfigShown(Record):
    """What `invoke config` shows: the validated values and where they come from; built_in: the built-in
    defaults, shown as a commented TOML file."""
    source: str
    values: dict[str, Any]
    built_in: bool = False

    def render(self) -> str:
        if self.built_in:
            return to_toml(self.values, docs=True).removesuffix("\n")
        return f"# from {self.source}\n{json.dumps(self.values, indent=2)}"


def show(cfg: Config) -> ConfigShown:
    """The effective configuration (`invoke config`)."""
    return ConfigShown(cfg.source, cfg.as_dict())


def show_defaults() -> ConfigShown:
    """The default configuration (`invoke config --defaults`)."""
    return ConfigShown("built-in defaults", defaults(), built_in=True)
