"""Reports of a runbook drill's own: a few small legacy-format reports that no repository can hold yet (their
report ids and contents carry a token made for one drill run), put into raw/ of a drill's server right
before a runbook block that runs the pipeline (the `feed` marker, dr/drills/runbook.py). They give the block new
reports to move whatever the user's repository holds, and the drill checks at its end that they reached the
restored database. Nothing of this is in the runbook's text: an operator's reports come from collectors.
"""

from __future__ import annotations

import io
import os
import tarfile
import time

import yaml

COLLECTOR = "drill-feed"  # the folder under raw/ (a collector's name there)
HEADER = {"probe_asn": "AS64496", "probe_cc": "ZZ", "probe_ip": "127.0.0.1", "software_name": "ooniprobe",
          "software_version": "1.3.1", "test_name": "http_requests", "test_version": "0.2.4"}


def token() -> str:
    """A new token for one drill run: its time and 48 random bits."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.urandom(6).hex()}"


def report_id(tok: str, n: int) -> str:
    return f"drill-{tok}-{n}"


def report_ids(tok: str, count: int) -> list[str]:
    """The ids of the first count reports of the token (every feed of a drill numbers on)."""
    return [report_id(tok, n) for n in range(count)]


def report_text(tok: str, n: int) -> str:
    """One report: a header and three entries, in the legacy multi-document YAML of ooniprobe."""
    header = {**HEADER, "report_id": report_id(tok, n), "start_time": 1.4e9 + n}
    docs = [header] + [{"input": f"http://drill-{n}-{i}.example.org/", "drill_token": tok,
                        "requests": [{"request": {"url": f"http://drill-{n}-{i}.example.org/", "method": "GET"},
                                      "response": {"code": 200, "body": f"entry {i} of report {n}"}}]}
                       for i in range(3)]
    return "".join("---\n" + yaml.safe_dump(d, default_flow_style=False) + "...\n" for d in docs)


def files(tok: str, count: int, first: int = 0) -> dict[str, bytes]:
    """{file name: content} of count reports of the token, numbered from first."""
    return {f"report-{tok}-{n}.yaml": report_text(tok, n).encode() for n in range(first, first + count)}


def archive(tok: str, count: int, first: int = 0) -> bytes:
    """The reports as a tar stream of COLLECTOR/<name> entries (regular files, mode 0644), for Docker's
    put_archive into a server's raw/ folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folder = tarfile.TarInfo(COLLECTOR)
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        tar.addfile(folder)
        for name, content in files(tok, count, first).items():
            info = tarfile.TarInfo(f"{COLLECTOR}/{name}")
            info.size, info.mode, info.mtime = len(content), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()
