"""The bottom layer: what every image and the host share.

Configuration, errors, logging, the command runner, digests, atomic writes, secrets and the database
client. It depends only on the standard library and pymongo, and imports nothing of stages/, snapshots/
or dr/ (tests/unit/test_layers.py fails on an upward import).
"""

__version__ = "0.1.0"
