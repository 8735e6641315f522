"""Settings every test run needs on this machine (no registry for Ryuk; containers reached over loopback)."""

import os
import sys
from pathlib import Path

# Shared helpers (tests/pipeline_helpers.py) are importable from every test folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TC_HOST", "127.0.0.1")
