"""The layers only point down: common <- stages <- snapshots <- dr <- tasks.py, and images copy only what
they run. Walks every module's imports (top-level and inside functions) with ast, so a lazy import cannot
hide an upward edge."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["common", "stages", "snapshots", "dr", "tasks"]
# Host-only libraries: none of them may be imported below dr/ (they are not in the images).
HOST_ONLY = {"docker", "testcontainers", "invoke", "prometheus_client", "tomli_w"}
# What each image runs (its entrypoint package) -> the packages its Dockerfile must copy, no more.
IMAGE_RUNS = {"sanitizer": "stages", "sync": "stages", "importer": "stages", "backup": "snapshots"}


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


def modules(layer: str) -> list[Path]:
    if layer == "tasks":
        return [ROOT / "tasks.py"]
    return sorted((ROOT / layer).glob("*.py"))


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
    module.write_text("def f():\n    from dr import drill\n    import tasks\n")
    assert imports_of(module) == {"dr", "tasks"}


@pytest.mark.parametrize("layer", ["common", "stages", "snapshots"])
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
    assert "dr" not in copied


def test_no_module_imports_tasks():
    users = [str(p.relative_to(ROOT)) for layer in LAYERS[:-1] for p in modules(layer) if "tasks" in imports_of(p)]
    assert users == []
