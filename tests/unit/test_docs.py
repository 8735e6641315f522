"""docs/architecture.md's module tables name exactly the modules there are: one table per package (common,
collector, database, stages, snapshots, campaign, dr) and one for bench/'s scripts, under a heading `` ### `package/` ``, the module's name
in backticks in the first column. A module of a sub-package is `sub/module` or `sub.module` in its package's
table, or `module` in a table under `` ### `package/sub/` ``. Reads files only: no import, no subprocess."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
FOLDERS = ["common", "collector", "database", "stages", "snapshots", "campaign", "dr", "bench"]

HEADING = re.compile(r"^#{1,6}\s+`([\w./-]+?)/?`\s*$")
ROW = re.compile(r"^\|\s*`([^`|]+)`\s*\|(.*)\|\s*$")


def documented(text: str) -> dict[str, list[tuple[str, str, str]]]:
    """{folder: [(module path such as "sub/module", the row's name as written, its heading)]} from every table
    under a heading that names one of FOLDERS (or a folder inside one)."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    where: tuple[str, str, str] | None = None  # (top folder, path of the heading's folder inside it, heading)
    for line in text.splitlines():
        if line.startswith("#"):
            where = None
            m = HEADING.match(line)
            if m:
                top, _, inner = m.group(1).strip("/").partition("/")
                if top in FOLDERS:
                    where = (top, inner, line.strip())
                    found.setdefault(top, [])
            continue
        if where is None:
            continue
        m = ROW.match(line)
        if not m:
            continue
        name = m.group(1).strip()
        assert m.group(2).split("|")[0].strip(), f"docs/architecture.md: the row of `{name}` under {where[2]} says " \
                                                 "nothing about it"
        path = name.removesuffix(".py").strip("/").replace(".", "/")
        found[where[0]].append(("/".join(p for p in (where[1], path) if p), name, where[2]))
    return found


def actual(folder: str) -> set[str]:
    """Every module of a package, sub-packages' included ("sub/module"), without the __init__ files; for
    bench/, its scripts."""
    base = ROOT / folder
    modules = set()
    for path in base.rglob("*.py"):
        rel = path.relative_to(base)
        if path.name == "__init__.py" or any(p == "__pycache__" or p.startswith(".") for p in rel.parts):
            continue
        modules.add(rel.with_suffix("").as_posix())
    return modules


def names_a_module(folder: str, path: str) -> bool:
    """A row may name a module, or a sub-package as a whole."""
    target = ROOT / folder / path
    return target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()


DOCUMENTED = documented(DOC.read_text())


def test_every_package_has_its_table():
    missing = [f for f in FOLDERS if not DOCUMENTED.get(f)]
    assert not missing, f"docs/architecture.md has no module table for {', '.join(f + '/' for f in missing)} " \
                        "(a heading ### `folder/` and a table with one row per module)"


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_module_is_in_the_doc(folder):
    listed = {path for path, _, _ in DOCUMENTED.get(folder, [])}
    missing = sorted(actual(folder) - listed)
    assert not missing, "docs/architecture.md lacks " + ", ".join(f"{folder}/{m}.py" for m in missing) + \
        f": add a row to the table under ### `{folder}/`"


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_row_of_the_doc_names_a_module(folder):
    rows = DOCUMENTED.get(folder, [])
    stale = [f"`{name}` (under {heading})" for path, name, heading in rows if not names_a_module(folder, path)]
    assert not stale, f"docs/architecture.md names modules {folder}/ does not have: " + ", ".join(stale)
    paths = [path for path, _, _ in rows]
    twice = sorted({p for p in paths if paths.count(p) > 1})
    assert not twice, f"docs/architecture.md lists these {folder}/ modules twice: {', '.join(twice)}"


def test_the_parser_reads_nested_packages_in_either_form():
    """dr/ has sub-packages (its rooms): `sub/module` and `sub.module` rows, and a sub-package's own
    table, all read as the same path."""
    text = "\n".join([
        "### `dr/`", "| module | what |", "|---|---|", "| `host` | h |", "| `drills/bare_host` | b |",
        "| `drills.two_hosts` | t |", "", "A paragraph between, then a sub-package's own table:",
        "### `dr/restore/`", "| module | what |", "|---|---|", "| `files` | f |",
        "## Layers", "| `common/` | not a module row: no module heading above |",
        "### `bench/`", "| script | what |", "|---|---|", "| `dr_bench.py` | d |",
    ])
    got = {folder: [path for path, _, _ in rows] for folder, rows in documented(text).items()}
    assert got == {"dr": ["host", "drills/bare_host", "drills/two_hosts", "restore/files"],
                   "bench": ["dr_bench"]}
