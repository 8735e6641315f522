"""Helpers for pipeline tests: a data root in a temporary folder, raw files, running a stage in-process."""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

import yaml

from campaign.invariants import binaries, walk  # noqa: F401 - the tests import them from here
from common import config
from stages.layout import DataRoot

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "ooni-legacy"
BRIDGE_DB = SAMPLES / "aux-pipeline2014-bridge_db-path_to_ip_port_based_mapping.json"


def make_cfg(root: Path, **overrides):
    values = {"data_root": str(root), "pipeline.workers": 1, "db.role": "importer"}
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


def ip_pattern(ip: str) -> re.Pattern:
    """The address as a whole (not inside a longer one such as 1.2.3.44)."""
    return re.compile(r"(?<![0-9A-Fa-f:])" + re.escape(ip) + r"(?![0-9])")


def hidden_ip_report(rng, ip: str) -> tuple[str, list[str]]:
    decoys = ["11.2.3.45", "1.2.3.44"] if ip == "1.2.3.4" else []
    packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    places = [
        lambda: {"client": ip},
        lambda: {ip: "as a key"},
        lambda: {"log": f"connected from {ip}:4433 at noon\nsecond line {ip}"},
        lambda: {"nested": {"deep": [{"x": [f"{ip}"]}]}},
        lambda: {"raw": yaml.safe_dump(b"GET / HTTP/1.1\r\nX-Forwarded-For: " + ip.encode() + b"\r\n")},
        lambda: {"packet": yaml.safe_dump(b"\x45\x00" + packed + b"\x08\x08\x08\x08")},
        lambda: {"flow": f"{{a: {ip}, b: [{ip}, x]}}"},
        lambda: {"quoted": f"'{ip}'", "dq": f'"{ip} x"'},
        lambda: {"anchor": f"&id001 {ip}", "alias": "*id001"},
    ]
    lines = ["---", *yaml.safe_dump({**HEADER, "probe_ip": ip}).splitlines(), "..."]
    for _ in range(rng.randint(3, 8)):
        entry = rng.choice(places)()
        if decoys:
            entry["decoy"] = rng.choice(decoys)
        lines.append("---")
        simple, special = {}, []
        for k, v in entry.items():
            key = k if k != ip else f"'{k}'"
            if isinstance(v, str) and v.startswith(("!!binary", "{", "&", "*", "'", '"')):
                special.append(f"{key}: {v.strip()}")
            elif isinstance(v, str) and "\n" in v:
                special.append(f"{key}: |\n" + "\n".join("  " + line for line in v.splitlines()))
            else:
                simple[k] = v
        flow = not special and rng.random() < 0.5
        if simple:
            lines.append(yaml.safe_dump(simple, default_flow_style=flow).strip())
        lines += special
        lines.append("...")
    return "\n".join(lines) + "\n", decoys


def generate(dr: DataRoot, rng, n_good: int, n_bad: int, entries=(5, 40), body=(1000, 40000)) -> dict[str, str]:
    """Generated reports in raw/gen/ (by default a few hundred KB each, so that stages take long enough to
    be killed mid-way) and n_bad files that are not reports. Returns {raw file name: report id}."""
    ids = {}
    for i in range(n_good):
        rid = f"seed{rng.randint(0, 10**9)}r{i}"
        entry_list = [{"input": f"http://site{j}.example/", "body": "x" * rng.randint(*body), "n": j,
                       "headers": [["Server", ["nginx"]], ["X-Probe", ["10.9.8.7"]]]}
                      for j in range(rng.randint(*entries))]
        text = report({**HEADER, "report_id": rid, "probe_ip": "10.9.8.7", "start_time": 1.4e9 + i}, entry_list)
        p = dr.state("raw") / "gen" / f"report-{i:05d}.yaml"
        ids[p.name] = rid
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for i in range(n_bad):
        (dr.state("raw") / "gen" / f"bad-{i}.yaml").write_text("- not\n- a report\n")
    return ids


def journal_lines(dr: DataRoot) -> int:
    """How many lines the data root's journal has (a measure of the pipeline's progress)."""
    try:
        return dr.journal.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0
