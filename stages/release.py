"""Release lists: the pulled reports a verified snapshot set holds, for sync's `--release` to delete from the
collectors' .pulled/ folders ([sync] release; docs/pipeline.md). Pure parts: what a list says, which lists a
release mode accepts, which files of a list are done; the SSH is in stages/sync.py.

A list is a JSON file, written atomically as `<data_root>/releases/<set id>-<repository>.json`:
  {"format": 1, "set": "<set id>", "repository": "local" | "offsite", "written": "<UTC time>",
   "reports": [{"collector": "<name>", "remote": "<its name under the collector's .pulled/>",
                "sha256": "<sha256 of the report's bytes as pulled>"}, ...]}
It is deleted once every collector it names was reached and none of its files is left in .pulled/.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from stages.layout import DataRoot

FORMAT = 1
FOLDER = "releases"
REPOSITORIES = ("local", "offsite")
# Which lists each release mode accepts ("pulled": none, sync deletes at pull time).
ACCEPTS = {"pulled": (), "set": ("local", "offsite"), "offsite": ("offsite",)}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Held:
    """One report held on a collector: its name under .pulled/ and the sha256 of its bytes."""
    collector: str
    remote: str
    sha256: str

    @property
    def file(self) -> tuple[str, str]:
        return self.remote, self.sha256


@dataclass(frozen=True)
class ReleaseList:
    path: Path
    set_id: str
    repository: str
    reports: tuple[Held, ...]

    @property
    def collectors(self) -> list[str]:
        return sorted({h.collector for h in self.reports})


def folder(dr: DataRoot) -> Path:
    return dr.root / FOLDER


def path(dr: DataRoot, set_id: str, repository: str) -> Path:
    return folder(dr) / f"{set_id}-{repository}.json"


def parse(where: Path, data: bytes) -> ReleaseList:
    """A list from its bytes; ValueError naming what is wrong with it."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"{where}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{where}: not a release list of format {FORMAT}")
    if doc.get("repository") not in REPOSITORIES:
        raise ValueError(f"{where}: repository must be one of {', '.join(REPOSITORIES)}, got {doc.get('repository')!r}")
    if not isinstance(doc.get("set"), str) or not doc["set"] or not isinstance(doc.get("reports"), list):
        raise ValueError(f"{where}: needs a set id and a list of reports")
    reports = []
    for n, r in enumerate(doc["reports"]):
        if not (isinstance(r, dict) and all(isinstance(r.get(k), str) and r[k] for k in ("collector", "remote"))
                and isinstance(r.get("sha256"), str) and _SHA256.match(r["sha256"])):
            raise ValueError(f"{where}: reports[{n}] needs a collector, a remote name and a sha256 (64 hex digits)")
        reports.append(Held(r["collector"], r["remote"], r["sha256"]))
    return ReleaseList(where, doc["set"], doc["repository"], tuple(reports))


def accepted(repository: str, mode: str) -> bool:
    """A list of this repository releases reports in this (resolved) release mode."""
    return repository in ACCEPTS[mode]


def read(dr: DataRoot, mode: str) -> tuple[list[ReleaseList], list[str]]:
    """The lists the mode accepts, oldest set first, and one problem per list that cannot be read (kept)."""
    lists, problems = [], []
    base = folder(dr)
    for p in sorted(base.glob("*.json")) if base.is_dir() else []:
        if p.name.startswith("."):  # a list being written
            continue
        try:
            lst = parse(p, p.read_bytes())
        except (OSError, ValueError) as exc:
            problems.append(f"release list {exc}" if isinstance(exc, ValueError) else f"release list {p}: {exc}")
            continue
        if accepted(lst.repository, mode):
            lists.append(lst)
    return lists, problems


def wanted(lists: list[ReleaseList]) -> dict[str, list[tuple[str, str]]]:
    """collector -> the (name under .pulled/, sha256) the lists name there, each once, sorted."""
    out: dict[str, set[tuple[str, str]]] = {}
    for lst in lists:
        for h in lst.reports:
            out.setdefault(h.collector, set()).add(h.file)
    return {c: sorted(files) for c, files in sorted(out.items())}


def released(lst: ReleaseList, collector: str, removed: set[tuple[str, str]]) -> list[str]:
    """The names of the list's files on collector that were deleted (in `removed`)."""
    return sorted(h.remote for h in lst.reports if h.collector == collector and h.file in removed)


def done(lst: ReleaseList, gone: dict[str, set[tuple[str, str]]]) -> bool:
    """Every collector the list names was reached (a key of gone) and none of its files is left in .pulled/
    (each in gone: deleted now or before)."""
    return all(h.collector in gone and h.file in gone[h.collector] for h in lst.reports)
