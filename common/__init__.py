"""The bottom layer: what every image and the host share.

Configuration, errors, logging, the command runner, digests, atomic writes, secrets, waiting, typed records
and their text. It depends only on the standard library, and imports nothing above it (database/, stages/,
snapshots/, dr/: tests/unit/test_layers.py fails on an upward import).
"""

__version__ = "0.1.0"
