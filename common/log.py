"""One logger for the project; every step says what it does on stderr."""

import logging
import sys

NAME = "aggregator-dr"


def get(name: str | None = None) -> logging.Logger:
    return logging.getLogger(NAME if not name else f"{NAME}.{name}")


def setup(verbose: bool = False) -> None:
    """Plain, line-oriented log lines on stderr; idempotent."""
    root = logging.getLogger(NAME)
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
