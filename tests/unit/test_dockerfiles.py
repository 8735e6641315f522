"""No Dockerfile may name an image we did not build: every FROM is our base image (through the BASE_IMAGE
build argument, whose default names our base image) or an earlier stage of the same Dockerfile."""

import re
from pathlib import Path

from dr.machine import images

ROOT = Path(__file__).resolve().parents[2]
FROM_RE = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE | re.MULTILINE)
ARG_RE = re.compile(r"^\s*ARG\s+(\w+)(?:=(\S+))?", re.IGNORECASE | re.MULTILINE)


def dockerfiles():
    return sorted((ROOT / "dockerfiles").glob("*/Dockerfile"))


def test_every_component_and_tool_has_a_dockerfile_and_nothing_else_hides_there():
    names = {p.parent.name for p in dockerfiles()}
    assert names == set(images.COMPONENTS) | set(images.TOOLS)


def test_no_dockerfile_names_an_image_we_did_not_build():
    for path in dockerfiles():
        text = path.read_text()
        args = {m.group(1): m.group(2) for m in ARG_RE.finditer(text)}
        stages = set()
        froms = FROM_RE.findall(text)
        assert froms, f"{path}: no FROM"
        for ref, alias in froms:
            if ref in stages:
                pass
            elif ref in ("${BASE_IMAGE}", "$BASE_IMAGE"):
                assert args.get("BASE_IMAGE", "").startswith("aggregator-dr/base:"), path
            else:
                raise AssertionError(f"{path}: FROM {ref} is not our base image")
            if alias:
                stages.add(alias)


def test_scan_catches_a_foreign_image(tmp_path):
    text = "ARG BASE_IMAGE=aggregator-dr/base:trixie\nFROM debian:trixie\n"
    refs = [ref for ref, _ in FROM_RE.findall(text)]
    assert refs == ["debian:trixie"]


def test_no_dockerfile_pulls_or_downloads():
    for path in dockerfiles():
        text = path.read_text()
        for bad in ("docker pull", "curl ", "wget ", "ADD http"):
            assert bad not in text, f"{path} contains {bad!r}"
