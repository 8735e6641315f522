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


def ip_forms(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    """The textual forms of an address that are searched for literally (case-insensitively): the usual
    form, the reverse-DNS name, and for IPv4 the dashed forms ISPs put in host names (1-2-3-4, 4-3-2-1);
    for IPv6 the expanded form. Other IPv6 spellings (upper case, other zero compressions, IPv4-mapped)
    are found by parsing every IPv6-looking token (see Redactor)."""
    forms = [str(ip), ip.reverse_pointer]
    if ip.version == 4:
        octets = str(ip).split(".")
        forms += ["-".join(octets), "-".join(reversed(octets))]
    else:
        forms.append(ip.exploded)
    return forms


_V6_TOKEN = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")


class Redactor:
    """Replaces a set of addresses in strings and bytes, in every textual form (see ip_forms), respecting
    digit boundaries (1.2.3.4 is not found inside 11.2.3.45). Bytes are searched as Latin-1 text (one
    character per byte) and for the packed 4- or 16-byte address."""

    def __init__(self, addresses):
        self.addresses = [a for a in dict.fromkeys(addresses) if a]
        self._ips = []
        forms = []
        for a in self.addresses:
            forms.append(a)
            try:
                ip = ipaddress.ip_address(a)
            except ValueError:
                continue
            same = [ip] + ([ip.ipv4_mapped] if ip.version == 6 and ip.ipv4_mapped else [])
            for one in same:  # an IPv4-mapped probe address is also hidden as the IPv4 address it maps
                self._ips.append(one)
                forms += ip_forms(one)
        self._forms = [f.lower() for f in dict.fromkeys(forms)]
        # What a string must contain for any form to be there (digits have no case; the first label of a
        # reverse-DNS name is enough to look closer).
        self._clues = list(dict.fromkeys(f.split(".in-addr")[0].split(".ip6")[0] for f in self._forms))
        self._v6 = any(ip.version == 6 for ip in self._ips)
        self._mapped = any(ip.version == 4 for ip in self._ips)
        if self.addresses:
            alt = "|".join(re.escape(f) for f in sorted(self._forms, key=len, reverse=True))
            self._text = re.compile(rf"(?<![0-9A-Za-z])(?:{alt})(?![0-9])", re.IGNORECASE)
            self._packed = [ip.packed for ip in self._ips]

    def __bool__(self):
        return bool(self.addresses)

    def _has_clue(self, s: str) -> bool:
        """A cheap first look (most strings hold no address): IPv4 forms are digits, dots and dashes, which
        have no case; IPv6 forms are looked for in lower case, and any IPv6-looking token is parsed."""
        if any(c in s for c in self._clues):
            return True
        if ":" in s and (self._v6 or (self._mapped and "ffff" in s.lower())):
            return True
        return self._v6 and any(c in s.lower() for c in self._clues)

    def text(self, s: str) -> str:
        if not self.addresses:
            return s
        if "\x00" in s:  # post-processing strips NUL bytes: an address split by them must be found now
            s = s.replace("\x00", "")
        if not self._has_clue(s):
            return s
        s = self._text.sub(REDACTED, s)
        if ":" in s and (self._v6 or self._mapped):
            s = _V6_TOKEN.sub(self._v6_token, s)
        return s

    def _v6_token(self, m: re.Match) -> str:
        """An IPv6-looking token, or its start up to a '.' (a host name may follow: ...:807.dyn.example)."""
        token = m.group(0)
        cuts = [i for i, ch in enumerate(token) if ch == "."]
        candidates = [token, token.rstrip(".:")] + [token[:i] for i in reversed(cuts)]
        for candidate in candidates:
            try:
                ip = ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            if ip in self._ips or (ip.ipv4_mapped is not None and ip.ipv4_mapped in self._ips):
                return token.replace(candidate, REDACTED, 1)
            return token
        return token

    def data(self, b: bytes) -> bytes:
        if not self.addresses:
            return b
        b = self.text(b.decode("latin-1")).encode("latin-1")
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
