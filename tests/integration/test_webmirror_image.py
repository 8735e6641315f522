"""The webmirror publishes the archive folder read-only and nothing outside it, and the status page's folder at
/status/ on the listener [webmirror] status says (started as dr/services/stack.webmirror_spec says)."""

import contextlib
import gzip
import http.client
import os

import pytest
from conftest import on_loopback
from testcontainers.core.container import DockerContainer

from common import config
from common.errors import ServiceError
from dr.services import stack


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


CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; " \
      "frame-ancestors 'none'"
PAGE = b"<!doctype html><title>aggregator status</title><p>no stall, no risk</p>\n"


def from_spec(cfg):
    """The webmirror's container as stack.webmirror_spec(cfg) makes it (mounts, read-only, tmpfs), each of its
    ports published on an ephemeral port of 127.0.0.1 instead of the configured one."""
    spec = stack.webmirror_spec(cfg)
    assert set(spec.kwargs) == {"volumes", "ports", "read_only", "tmpfs"}  # nothing here left out
    container = DockerContainer(spec.image).with_kwargs(read_only=spec.kwargs["read_only"])
    container.volumes.update(spec.kwargs["volumes"])
    container.tmpfs.update(spec.kwargs["tmpfs"])
    for port in spec.kwargs["ports"]:
        on_loopback(container, int(port.split("/")[0]))
    return container


@pytest.fixture
def status_cfg(built, tmp_path):
    """A page folder with a page, a dot-file and a symlink out of it; a private file beside it."""
    pages = tmp_path / "status"
    pages.mkdir()
    (pages / "index.html").write_bytes(PAGE)
    (pages / ".index.html.tmp").write_text("half a page")
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "private.yaml").write_text("probe_ip: 10.1.2.3\n")
    os.symlink("/etc/passwd", pages / "passwd-link")
    os.symlink(tmp_path / "data" / "raw", pages / "raw-link")
    return lambda **overrides: config.derive(built, {"data_root": str(tmp_path / "data"),
                                                      "status.page_dir": str(pages), **overrides})


@contextlib.contextmanager
def started(container, *ports):
    """The container running, and the host ports its ports are published on."""
    with container:
        published = [int(container.get_exposed_port(p)) for p in ports]
        wait_http(published[0])
        yield published


def assert_serves_the_page(port):
    status, headers, body = get(port, "/status/")
    assert status == 200 and body == PAGE
    assert headers["Content-Security-Policy"] == CSP and headers["Cache-Control"] == "no-store"
    assert headers["Content-Type"].startswith("text/html") and headers["X-Content-Type-Options"] == "nosniff"
    assert get(port, "/status/index.html")[2] == PAGE
    status, headers, _ = get(port, "/status")
    assert status == 301 and headers["Location"] == "/status/"
    for path in ("/status/.index.html.tmp", "/status/passwd-link", "/status/raw-link/private.yaml",
                 "/status/../raw/private.yaml", "/status/%2e%2e/raw/private.yaml", "/status/../../etc/passwd",
                 "/status/nothing.html"):
        status, _, body = get(port, path)
        assert status in (400, 403, 404), (path, status)
        assert b"root:" not in body and b"10.1.2.3" not in body and b"half a page" not in body, path
    assert get(port, "/status/.index.html.tmp")[0] == 404
    for method in ("POST", "PUT", "DELETE"):
        status, _, _ = get(port, "/status/", method=method)
        assert status in (403, 405), (method, status)


@pytest.mark.parametrize("overrides", [{}, {"webmirror.status": "public", "webmirror.bind": "0.0.0.0"}],
                         ids=["loopback-bind", "public"])
def test_serves_the_status_page_on_its_own_listener(status_cfg, overrides):
    """loopback with a loopback bind (the default), or public: the page at /status/ beside the archive."""
    cfg = status_cfg(**overrides)
    with started(from_spec(cfg), 8080) as (port,):
        assert_serves_the_page(port)
        assert get(port, "/healthz")[0] == 200 and get(port, "/")[0] == 200  # the archive, as before
        stack.check_webmirror(config.derive(cfg, {"webmirror.port": port}))  # what a start checks


def test_a_published_mirror_serves_the_page_on_its_second_listener_only(status_cfg):
    """loopback with a bind beyond loopback: the main listener answers 404 at /status/; the second one (which
    the stack publishes on 127.0.0.1 only) serves the page and nothing else."""
    cfg = status_cfg(**{"webmirror.bind": "0.0.0.0"})
    with started(from_spec(cfg), 8080, 8081) as (main, local):
        for path in ("/status/", "/status/index.html"):
            assert get(main, path)[0] == 404, path
        assert get(main, "/")[0] == 200
        assert_serves_the_page(local)
        for path in ("/", "/2014-01-01/", "/index.json"):
            assert get(local, path)[0] == 404, path
        assert get(local, "/healthz")[0] == 200
        stack.check_webmirror(config.derive(cfg, {"webmirror.port": main, "webmirror.status_port": local}))


def test_no_status_page_when_it_is_off(status_cfg):
    cfg = status_cfg(**{"webmirror.status": "off"})
    with started(from_spec(cfg), 8080) as (port,):
        assert get(port, "/status/")[0] == 404 and get(port, "/status/index.html")[0] == 404
        stack.check_webmirror(config.derive(cfg, {"webmirror.port": port}))
        # A start checks that the page it should serve answers: here the container does not serve it.
        with pytest.raises(ServiceError, match=f"webmirror answered 404 at http://127.0.0.1:{port}/status/"):
            stack.check_webmirror(config.derive(cfg, {"webmirror.port": port, "webmirror.status": "loopback"}))
