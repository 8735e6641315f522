"""The layers only point down: common <- collector <- database <- stages <- snapshots <- campaign <- dr <- tasks.py, inside dr/ its
rooms too (engine <- machine <- services <- jobs <- drills <- watch), and images copy only what they run. Walks every
module's imports (top-level and inside functions) with ast, so a lazy import cannot hide an upward edge, an
import cycle between two modules, or the product reaching into tests/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# campaign/: the hostile-input campaign (hypothesis strategies, invariants), run by dr/drills/fuzz.py and the tests;
# it runs the stages and reads the data root and the database, so it sits above them and below dr/.
# collector/: the publisher a collector runs (its image has common/ and collector/ only), so just above common/.
LAYERS = ["common", "collector", "database", "stages", "snapshots", "campaign", "dr", "tasks"]
# dr/'s rooms (its sub-packages), bottom first: a module of a room imports modules of its own room or of a room
# below it, never above (docs/architecture.md, "Layers"). Every module of dr/ sits in one of them.
ROOMS = ["engine", "machine", "services", "jobs", "drills", "watch"]
# Host-only libraries: none of them may be imported below dr/ (they are not in the images).
HOST_ONLY = {"docker", "testcontainers", "invoke", "prometheus_client", "tomli_w", "hypothesis"}
# What each image runs (its entrypoint package) -> the packages its Dockerfile must copy, no more.
IMAGE_RUNS = {"sanitizer": "stages", "sync": "stages", "importer": "stages", "backup": "snapshots",
              "collector": "collector"}
# Packages no image may copy: the host's, and the campaign (run on the host, against a database it is given).
HOST_PACKAGES = {"dr", "campaign"}
TESTS = ROOT / "tests"
# The test tree as the product could import it: `tests` itself, and what tests/conftest.py puts on sys.path
# (tests/*.py: pipeline_helpers, conftest, instances, dbdump_samples, sanitize_workers, ...; its packages).
TEST_ONLY = ({"tests"} | {p.stem for p in TESTS.glob("*.py")}
             | {p.parent.name for p in TESTS.glob("*/__init__.py")})


def import_statements(path: Path) -> list[tuple[str, list[str]]]:
    """Every absolute import statement of path, anywhere in it (functions included), as (module, names):
    `import a.b` is ("a.b", []), `from a.b import c, d` is ("a.b", ["c", "d"])."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def imports_of(path: Path) -> set[str]:
    """The top-level packages (or modules) path imports."""
    return {module.split(".")[0] for module, _ in import_statements(path)}


def modules(layer: str) -> list[Path]:
    if layer == "tasks":
        return [ROOT / "tasks.py"]
    return sorted(p for p in (ROOT / layer).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    """dr/services/certs.py -> dr.services.certs; dr/jobs/__init__.py -> dr.jobs; tasks.py -> tasks."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(paths: list[Path], name_of=module_name) -> dict[str, set[str]]:
    """{module: the modules of paths it imports}. `import a.b` is an edge to a.b; `from a import b` one to a.b
    when a.b is a module (a submodule is imported, whatever a's __init__ holds), else to a (b is a name in
    it). An import of something not among paths (the standard library, a library) is no edge."""
    known = {name_of(p): p for p in paths}
    graph = {}
    for name, path in known.items():
        edges = set()
        for module, names in import_statements(path):
            targets = [f"{module}.{n}" if f"{module}.{n}" in known else module for n in names] or [module]
            edges.update(t for t in targets if t in known and t != name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (each sorted), found with Tarjan's algorithm
    (iteratively: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def product_modules() -> list[Path]:
    return [p for layer in LAYERS for p in modules(layer)]


def upward_edges(layer: str) -> list[str]:
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    above = set(LAYERS) - allowed
    return [f"{path.relative_to(ROOT)} imports {name}"
            for path in modules(layer) for name in sorted(imports_of(path) & above)]


@pytest.mark.parametrize("layer", LAYERS)
def test_no_upward_import(layer):
    assert upward_edges(layer) == []


def test_the_walk_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from dr.drills import drill\n    import tasks\n")
    assert imports_of(module) == {"dr", "tasks"}


def test_no_import_cycle():
    """No module imports, directly or through others, one that imports it back: lazy imports inside functions
    count (they only hide a cycle until both modules are loaded in the other order)."""
    found = cycles(import_graph(product_modules()))
    assert found == [], "import cycles (break each by moving what one needs from the other below both): " + \
        "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_check_sees_lazy_and_indirect_cycles(tmp_path):
    files = {"a.py": "from b import thing\n", "b.py": "def f():\n    import c\n",
             "c.py": "from a import x\n", "d.py": "import a\n", "e.py": "import d\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    graph = import_graph([tmp_path / n for n in files], name_of=lambda p: p.stem)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"d"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_graph_resolves_modules_of_packages(tmp_path):
    (tmp_path / "p").mkdir()
    files = {"p/__init__.py": "", "p/m.py": "from p import n\n", "p/n.py": "from p.m import name\n",
             "q.py": "import p\nfrom p import CONSTANT\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    graph = import_graph([tmp_path / n for n in files],
                         name_of=lambda p: ".".join(p.relative_to(tmp_path).with_suffix("").parts).removesuffix(
                             ".__init__"))
    assert graph == {"p": set(), "p.m": {"p.n"}, "p.n": {"p.m"}, "q": {"p"}}  # p.m: no edge to p's __init__
    assert cycles(graph) == [["p.m", "p.n"]]


def test_no_product_module_imports_the_tests():
    assert {"tests", "conftest", "pipeline_helpers", "instances", "dbdump_samples", "sanitize_workers"} <= TEST_ONLY
    found = [f"{path.relative_to(ROOT)} imports {name}"
             for path in product_modules() for name in sorted(imports_of(path) & TEST_ONLY)]
    assert found == []


@pytest.mark.parametrize("layer", ["common", "collector", "stages", "snapshots"])
def test_image_layers_import_no_host_library(layer):
    found = [f"{path.relative_to(ROOT)} imports {name}"
             for path in modules(layer) for name in sorted(imports_of(path) & HOST_ONLY)]
    assert found == []


def closure(package: str) -> set[str]:
    """Our packages that `package` needs, itself included."""
    needed, todo = set(), [package]
    while todo:
        layer = todo.pop()
        if layer in needed:
            continue
        needed.add(layer)
        for path in modules(layer):
            todo.extend(imports_of(path) & (set(LAYERS) - {"tasks"}))
    return needed


@pytest.mark.parametrize("image,package", sorted(IMAGE_RUNS.items()))
def test_images_copy_only_what_they_run(image, package):
    dockerfile = (ROOT / "dockerfiles" / image / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) /opt/aggregator-dr/\1$", dockerfile, re.MULTILINE))
    assert copied == closure(package)
    assert not copied & HOST_PACKAGES
    # The build context holds only what .dockerignore lets through: each package copied must be let through.
    allowed = set(re.findall(r"^!(\w+)$", (ROOT / ".dockerignore").read_text(), re.MULTILINE))
    assert copied <= allowed, f".dockerignore keeps {', '.join(sorted(copied - allowed))} out of the build context"


def test_no_module_imports_tasks():
    users = [str(p.relative_to(ROOT)) for layer in LAYERS[:-1] for p in modules(layer) if "tasks" in imports_of(p)]
    assert users == []


def rooms_imported(path: Path) -> set[str]:
    """The rooms of dr/ that path imports: `from dr.jobs import backup` and `import dr.jobs.backup` import jobs,
    `from dr import jobs` too; a name that is not a room (`from dr import x`, `import dr.x`) is returned as is."""
    found = set()
    for module, names in import_statements(path):
        if module == "dr":
            found.update(names)
        elif module.startswith("dr."):
            found.add(module.split(".")[1])
    return found


def room_edges_upward(room: str, dr_root: Path = ROOT / "dr") -> list[str]:
    """Each import of a module of dr/<room>/ that reaches a room above room, or something of dr/ in no room."""
    allowed = set(ROOMS[: ROOMS.index(room) + 1])
    return [f"{path.relative_to(dr_root.parent)} imports dr.{name}"
            for path in sorted((dr_root / room).rglob("*.py")) if "__pycache__" not in path.parts
            for name in sorted(rooms_imported(path) - allowed)]


def test_every_dr_module_is_in_a_room():
    """dr/ holds its rooms and its __init__.py, nothing else; each room is a package listed in ROOMS."""
    dr = ROOT / "dr"
    loose = sorted(str(p.relative_to(ROOT)) for p in dr.glob("*.py") if p.name != "__init__.py")
    assert loose == [], "every module of dr/ goes into a room (ROOMS): " + ", ".join(loose)
    rooms = sorted(p.parent.name for p in dr.glob("*/__init__.py"))
    assert rooms == sorted(ROOMS)
    folders = sorted(p.name for p in dr.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted(ROOMS), "a folder of dr/ that is no room of ROOMS"


def test_dr_and_its_rooms_init_import_nothing():
    """dr/__init__.py and each room's __init__.py hold a docstring only: no re-export hides where a name lives."""
    found = [f"{p.relative_to(ROOT)} imports {m}" for p in [ROOT / "dr" / "__init__.py",
                                                           *(ROOT / "dr" / r / "__init__.py" for r in ROOMS)]
             for m, _ in import_statements(p)]
    assert found == []


@pytest.mark.parametrize("room", ROOMS)
def test_no_room_imports_a_room_above(room):
    assert room_edges_upward(room) == []


def test_the_room_check_sees_upward_and_lazy_imports(tmp_path):
    dr = tmp_path / "dr"
    files = {"engine/a.py": "from dr.engine import b\n", "machine/m.py": "def f():\n    from dr.jobs import j\n",
             "services/s.py": "import dr.drills.d\nfrom dr.machine import m\n", "jobs/j.py": "from dr import drills\n",
             "drills/d.py": "from dr.jobs import j\nfrom dr.engine import a\n", "jobs/k.py": "from dr import helpers\n",
             "drills/e.py": "def f():\n    from dr.watch import w\n", "watch/w.py": "from dr.drills import d\n"}
    for name, text in files.items():
        (dr / name).parent.mkdir(parents=True, exist_ok=True)
        (dr / name).write_text(text)
    found = {room: room_edges_upward(room, dr) for room in ROOMS}
    assert found == {"engine": [], "machine": ["dr/machine/m.py imports dr.jobs"],
                     "services": ["dr/services/s.py imports dr.drills"],
                     "jobs": ["dr/jobs/j.py imports dr.drills", "dr/jobs/k.py imports dr.helpers"],
                     "drills": ["dr/drills/e.py imports dr.watch"], "watch": []}


def test_common_needs_the_standard_library_alone():
    """common/ is in every Python image, the sanitizer's included (python3 and python3-yaml only): what needs a
    library, such as the database client (pymongo), lives above it, in database/."""
    import sys

    outside = [f"{path.relative_to(ROOT)} imports {name}" for path in modules("common")
               for name in sorted(imports_of(path) - set(LAYERS) - set(sys.stdlib_module_names))]
    assert outside == []


def test_the_collector_package_needs_the_standard_library_pika_and_common_alone():
    """collector/ runs on collectors, which install python3 and python3-pika (Debian's) and copy common/ and
    collector/: nothing else."""
    import sys

    outside = [f"{path.relative_to(ROOT)} imports {name}" for path in modules("collector")
               for name in sorted(imports_of(path) - {"common", "collector", "pika"} - set(sys.stdlib_module_names))]
    assert outside == []
