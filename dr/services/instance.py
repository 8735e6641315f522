"""What an instance's containers are called: `<instance>-<service>`. Below both dr/services/stack.py (which starts
them) and dr/services/certs.py (whose server certificates name them), so that neither imports the other for it."""

from __future__ import annotations

from common.config import Config


def container_name(cfg: Config, service: str) -> str:
    return f"{cfg.instance}-{service}"
