"""`invoke status`: this host's images, its services' containers and the TLS certificates with their findings,
gathered in one record (`Status`)."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import Config
from common.records import Record
from common.text import table
from dr.machine import images
from dr.machine.images import ImageRow
from dr.services import certs, stack
from dr.services.certs import CertRow, Finding
from dr.services.stack import ServiceRow

IMAGE_COLUMNS = ["image", "present", "created", "version", "revision", "size_mb"]
SERVICE_COLUMNS = ["service", "container", "state", "health", "image", "ports", "started"]


@dataclass
class Status(Record):
    """The images, the services, the certificates present and what is wrong with them; db_tls: whether the
    database takes TLS (without it, no certificate is needed)."""
    images: list[ImageRow]
    services: list[ServiceRow]
    certificates: list[CertRow]
    certificate_warnings: list[Finding]
    db_tls: bool

    def render(self) -> str:
        lines = [table([r.to_dict() for r in self.images], IMAGE_COLUMNS), "",
                 table([r.to_dict() for r in self.services], SERVICE_COLUMNS), ""]
        if self.certificates:
            lines.append(table([r.to_dict() for r in self.certificates], certs.COLUMNS))
        elif not self.db_tls:
            lines.append("no TLS certificates (db.tls is off)")
        return "\n".join(lines + [f.line() for f in self.certificate_warnings])


def status(cfg: Config) -> Status:
    """What `invoke status` shows (Docker and openssl asked now)."""
    return Status(images.describe(cfg), stack.status(cfg), certs.describe(cfg), certs.warnings(cfg), cfg.db.tls)
