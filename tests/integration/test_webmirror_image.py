"""The webmirror publishes the archive folder read-only and nothing outside it."""

import gzip
import http.client
import os

import pytest
from conftest import on_loopback
from testcontainers.core.container import DockerContainer


@pytest.fixture
def mirror(built, tmp_path):
    root = tmp_path / "data"
    archive = root / "archive"
    (archive / "2014-01-01" / "IT").mkdir(parents=True)
    report = archive / "2014-01-01" / "IT" / "20140101T000000Z-IT-AS3-http_requests-r1-0.1.0-probe.yaml"
    report.write_text("---\nprobe_cc: IT\n...\n" + "entry: 1\n" * 500)
    (archive / ".inflight.tmp").write_text("half a file")
    (root / "raw").mkdir()
    (root / "raw" / "private.yaml").write_text("probe_ip: 10.1.2.3\n")
    os.symlink("/etc/passwd", archive / "passwd-link")
    os.symlink(root / "raw", archive / "raw-link")
    container = on_loopback(DockerContainer(built.image("webmirror"))
                            .with_volume_mapping(str(archive), "/srv/archive", "ro"), 8080)
    with container:
        port = int(container.get_exposed_port(8080))
        wait_http(port)
        yield port, report


def wait_http(port, timeout=30):
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _, _ = get(port, "/healthz")
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("webmirror did not answer")
        time.sleep(0.3)


def get(port, path, method="GET", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


def test_serves_published_files_with_cors_and_gzip(mirror):
    port, report = mirror
    rel = "/" + "/".join(report.parts[-3:])
    status, headers, body = get(port, rel)
    assert status == 200 and body == report.read_bytes()
    assert headers.get("Access-Control-Allow-Origin") == "*"
    status, headers, body = get(port, rel, headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == report.read_bytes()
    status, _, listing = get(port, "/2014-01-01/IT/")
    assert status == 200 and report.name.encode() in listing


def test_refuses_everything_outside_the_archive(mirror):
    port, _ = mirror
    status, _, listing = get(port, "/")
    assert status == 200
    assert b".inflight.tmp" not in listing
    for path in ("/../raw/private.yaml", "/%2e%2e/raw/private.yaml", "/passwd-link", "/raw-link/private.yaml",
                 "/.inflight.tmp", "/../../etc/passwd", "/etc/passwd"):
        status, _, body = get(port, path)
        assert status in (400, 403, 404), (path, status)
        assert b"root:" not in body and b"10.1.2.3" not in body, path


def test_is_read_only(mirror):
    port, report = mirror
    rel = "/" + "/".join(report.parts[-3:])
    for method in ("PUT", "DELETE", "POST"):
        status, _, _ = get(port, rel, method=method)
        assert status in (403, 405), (method, status)
    assert report.exists()
