"""What must not be published: the probe's IP address, and private bridges.

- The header's `probe_ip` becomes 127.0.0.1; every other occurrence of the original probe IP anywhere in the
  report (values, keys, decoded `!!binary` payloads: as text, and as packed 4- or 16-byte addresses) is
  replaced by `[REDACTED]` (binary packed form: zero bytes of the same length).
- Bridges (bridge_reachability, tcp_connect): a bridge found in the private bridge database, or every
  bridge when no database is configured (fail closed), is replaced as the legacy pipeline did: `input` =
  sha1 of the binary fingerprint, `bridge_address` null, `bridge_hashed_fingerprint`, `distributor`; its
  address is `[REDACTED]` everywhere else in the entry (tor_log lines). Bridges not in a configured database
  are public and stay as they are.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path

REDACTED = "[REDACTED]"
SANITIZED_PROBE_IP = "127.0.0.1"
BRIDGE_TESTS = frozenset({"bridge_reachability", "tcp_connect"})


def _usable_ip(value) -> str | None:
    """The probe IP if it is a real address worth hiding (not empty, not loopback or unspecified)."""
    if not isinstance(value, str):
        return None
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if ip.is_loopback or ip.is_unspecified:
        return None
    return str(ip) if value.strip() == str(ip) else value.strip()


class Redactor:
    """Replaces a set of addresses in strings and bytes, respecting digit boundaries (1.2.3.4 is not
    found inside 11.2.3.45)."""

    def __init__(self, addresses):
        self.addresses = [a for a in dict.fromkeys(addresses) if a]
        if self.addresses:
            alt = "|".join(re.escape(a) for a in sorted(self.addresses, key=len, reverse=True))
            self._text = re.compile(rf"(?<![0-9A-Za-z])(?:{alt})(?![0-9])")
            self._bytes = re.compile(rf"(?<![0-9A-Za-z])(?:{alt})(?![0-9])".encode())
            self._packed = []
            for a in self.addresses:
                try:
                    fam = socket.AF_INET6 if ":" in a else socket.AF_INET
                    self._packed.append(socket.inet_pton(fam, a))
                except OSError:
                    pass

    def __bool__(self):
        return bool(self.addresses)

    def text(self, s: str) -> str:
        if not self.addresses or not any(a in s for a in self.addresses):
            return s
        return self._text.sub(REDACTED, s)

    def data(self, b: bytes) -> bytes:
        if not self.addresses:
            return b
        if any(a.encode() in b for a in self.addresses):
            b = self._bytes.sub(REDACTED.encode(), b)
        for packed in self._packed:
            if packed in b:
                b = b.replace(packed, b"\0" * len(packed))
        return b

    def obj(self, value):
        """Redact inside a constructed value (dicts, lists, sets, strings, bytes)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.data(value)
        if isinstance(value, dict):
            return {self.obj(k): self.obj(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.obj(v) for v in value]
        if isinstance(value, (set, frozenset)):
            return {self.obj(v) for v in value}
        return value

    def extended(self, more) -> "Redactor":
        return Redactor(list(self.addresses) + list(more))


def probe_redactor(header: dict) -> Redactor:
    return Redactor([_usable_ip(header.get("probe_ip"))])


# ---- bridges -------------------------------------------------------------------------------------------

_ADDR = re.compile(r"^\[?([0-9A-Fa-f:.]+)\]?:(\d{1,5})$")
_FPR = re.compile(r"^[0-9A-Fa-f]{40}$")


@dataclass(frozen=True)
class Bridge:
    transport: str | None
    address: str          # ip:port
    ip: str
    fingerprint: str | None


def parse_bridge(text) -> Bridge | None:
    """'obfs3 1.2.3.4:443 FINGERPRINT', '1.2.3.4:443 FINGERPRINT' or '1.2.3.4:443'; None if not a bridge."""
    if not isinstance(text, str):
        return None
    tokens = text.split()
    transport = address = ip = fingerprint = None
    for tok in tokens:
        m = _ADDR.match(tok)
        if m and address is None:
            try:
                ipaddress.ip_address(m.group(1))
            except ValueError:
                return None
            address, ip = tok, m.group(1)
        elif _FPR.match(tok) and fingerprint is None:
            fingerprint = tok.upper()
        elif address is None and transport is None and re.fullmatch(r"[A-Za-z0-9_]+", tok):
            transport = tok
    if address is None:
        return None
    return Bridge(transport, address, ip, fingerprint)


def hashed_fingerprint(fingerprint: str) -> str:
    return hashlib.sha1(bytes.fromhex(fingerprint)).hexdigest()


class BridgeDB:
    """The private bridge database: {"ip:port": {"distributor", "fingerprint", "transport"}}. Without a
    database every bridge is private."""

    def __init__(self, entries: dict | None):
        self.entries = entries

    @classmethod
    def load(cls, path: str | None) -> "BridgeDB":
        if not path:
            return cls(None)
        with open(Path(path), encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError(f"bridge database {path} must be a JSON object of 'ip:port' entries")
        return cls(data)

    @property
    def fail_closed(self) -> bool:
        return self.entries is None

    def private(self, bridge: Bridge) -> dict | None:
        """The replacement fields for a private bridge, or None for a public one."""
        if self.entries is None:
            fpr = bridge.fingerprint
            distributor = None
        else:
            known = self.entries.get(bridge.address)
            if known is None:
                return None
            fpr = known.get("fingerprint") or bridge.fingerprint
            distributor = known.get("distributor")
        hashed = hashed_fingerprint(fpr) if fpr and _FPR.match(fpr) else None
        return {
            "input": hashed if hashed else REDACTED,
            "bridge_address": None,
            "bridge_hashed_fingerprint": hashed,
            "distributor": distributor,
        }


PUBLIC_BRIDGE_FIELDS = {"bridge_hashed_fingerprint": None, "distributor": None}
