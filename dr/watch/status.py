"""`invoke status`: the stall and risk findings first, then the status model in short text, then this host's
images, its services' containers and the TLS certificates with their findings, in one record (`Status`).
Its exit status is 1 while any finding holds, so cron, a healthcheck or a shell can act on it."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import Config
from common.records import Record
from common.text import table
from dr.machine import images
from dr.machine.images import ImageRow
from dr.services import certs, stack
from dr.services.certs import CertRow
from dr.services.stack import ServiceRow
from dr.watch.model import StatusModel, compute
from dr.watch.rules import Finding, evaluate

IMAGE_COLUMNS = ["image", "present", "created", "version", "revision", "size_mb"]
SERVICE_COLUMNS = ["service", "container", "state", "health", "image", "ports", "started"]
ALL_CLEAR = "no stall, no risk"


@dataclass
class Status(Record):
    """The images, the services, the certificates present and what is wrong with them; db_tls: whether the
    database takes TLS (without it, no certificate is needed); the status model and the findings of the
    rules on it."""
    images: list[ImageRow]
    services: list[ServiceRow]
    certificates: list[CertRow]
    certificate_warnings: list[certs.Finding]
    db_tls: bool
    model: StatusModel
    findings: list[Finding]

    def tables(self) -> str:
        """The images, the services and the certificates (what `invoke status` said before the model)."""
        lines = [table([r.to_dict() for r in self.images], IMAGE_COLUMNS), "",
                 table([r.to_dict() for r in self.services], SERVICE_COLUMNS), ""]
        if self.certificates:
            lines.append(table([r.to_dict() for r in self.certificates], certs.COLUMNS))
        elif not self.db_tls:
            lines.append("no TLS certificates (db.tls is off)")
        return "\n".join(lines + [f.line() for f in self.certificate_warnings])

    def render(self) -> str:
        found = [line for f in self.findings for line in f.lines()] or [ALL_CLEAR]
        return "\n".join(found + ["", self.model.render(), "", self.tables()])

    def exit_status(self) -> int:
        return 1 if self.findings else 0

    def failure(self) -> str:
        if not self.findings:
            return ""
        return "stall or risk: " + ", ".join(dict.fromkeys(f.rule for f in self.findings))


def status(cfg: Config) -> Status:
    """What `invoke status` shows: the model (the database probed, the certificates read) and its findings,
    then Docker's images and containers asked now."""
    m = compute(cfg)
    return Status(images.describe(cfg), stack.status(cfg), m.database.certificates,
                  m.database.certificate_warnings, cfg.db.tls, m, evaluate(m, cfg))
