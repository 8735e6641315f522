"""Helpers for pipeline tests: a data root in a temporary folder, raw files, running a stage in-process."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from dr import config
from stages.layout import DataRoot

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "ooni-legacy"
BRIDGE_DB = SAMPLES / "aux-pipeline2014-bridge_db-path_to_ip_port_based_mapping.json"


def make_cfg(root: Path, **overrides):
    values = {"data_root": str(root), "pipeline.workers": 1}
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return config.load(overrides=values)


def data_root(tmp_path: Path) -> DataRoot:
    return DataRoot(tmp_path / "data").ensure()


def put_raw(dr: DataRoot, name: str, content: bytes | str, collector: str = "c1") -> Path:
    p = dr.state("raw") / collector / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return p


def copy_samples(dr: DataRoot, collector: str = "sample") -> list[Path]:
    out = []
    for f in sorted(SAMPLES.iterdir()):
        if f.name.endswith((".md", ".json")):
            continue
        dst = dr.state("raw") / collector / f.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dst)
        out.append(dst)
    return out


def load_docs(path: Path) -> list:
    with open(path, "rb") as fh:
        return list(yaml.load_all(fh, Loader=yaml.CSafeLoader))


def report(header: dict, entries: list, flow: bool = False) -> str:
    parts = ["---\n" + yaml.safe_dump(header, default_flow_style=False) + "...\n"]
    for e in entries:
        parts.append("---\n" + yaml.safe_dump(e, default_flow_style=flow) + "...\n")
    return "".join(parts)


HEADER = {"probe_asn": "AS3269", "probe_cc": "IT", "probe_ip": "127.0.0.1", "software_name": "ooniprobe",
          "software_version": "1.3.1", "start_time": 1407420650.5, "test_name": "http_requests",
          "test_version": "0.2.4"}
