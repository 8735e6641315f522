"""A report's path on a collector (common/paths.py): what sync pulls, the publisher announces, a claim names."""

from __future__ import annotations

import pytest

from common.paths import MAX_DEPTH, safe_name


@pytest.mark.parametrize("name", ["r.yaml", "a/b.json", "x@y=z,1:2+3_4", "a/b/c/d/e/f", "x" * 255,
                                  "2026-12-08/report-1.yaml.gz"])
def test_plain_names_up_to_the_depth_are_taken(name):
    assert safe_name(name)


@pytest.mark.parametrize("name", ["", "-x", ".x", "a/.b", "a//b", "/a", "a/../b", "a/./b", "a b", "é.yaml",
                                  "a/b/c/d/e/f/g", "x" * 256, "/".join(["x" * 200] * 6), "a\nb", "a\\b"])
def test_anything_else_is_refused(name):
    assert not safe_name(name)


def test_the_depth_is_six():
    assert MAX_DEPTH == 6 and safe_name("/".join("a" * MAX_DEPTH)) and not safe_name("/".join("a" * (MAX_DEPTH + 1)))
