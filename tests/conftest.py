"""Settings every test run needs on this machine (no registry for Ryuk; containers reached over loopback),
and fixtures shared by unit and integration tests."""

import http.server
import os
import sys
import threading
from pathlib import Path

import pytest

# Shared helpers (tests/pipeline_helpers.py, ...) are importable from every test folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hypothesis import settings  # noqa: E402

from campaign import register_profiles  # noqa: E402

# Hypothesis profiles of the hostile-input campaign (the product's campaign/ package): `ci` unless
# --hypothesis-profile (or $HYPOTHESIS_PROFILE) names another, such as `fuzz` (see campaign/__init__.py).
register_profiles()
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Hermetic: tests never read the host's /etc/aggregator-dr/config.toml or an operator's
# $AGGREGATOR_DR_CONFIG; a test that wants a file passes it, or sets the variable itself.
os.environ["AGGREGATOR_DR_CONFIG"] = str(Path(__file__).resolve().parent / "defaults.toml")

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TC_HOST", "127.0.0.1")


# Two lanes (pyproject: -n 2 --dist loadgroup), each running its modules in their usual order: the runbook
# drills (minutes each, mostly waiting for their servers to install and build) with the snapshot-consistency
# tests and the host-loss drill's slice, beside every other test. Each lane is about half of the suite's time (24 and 20 minutes in CI with
# the hostile-input campaign in this lane too).
SECOND_LANE = ("test_bare_host.py", "test_two_host_drill.py", "test_snapshot_consistency.py", "test_host_loss.py")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        lane = "second" if Path(str(item.fspath)).name in SECOND_LANE else "main"
        item.add_marker(pytest.mark.xdist_group(lane))


@pytest.fixture
def pings():
    """A healthcheck receiver on loopback: (base URL, list of the paths it was pinged on)."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
