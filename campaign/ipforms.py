"""Every textual form of a probe IP, and a matcher that finds them without false hits inside longer numbers.

ip_forms("1.2.3.4") -> 1.2.3.4, ::ffff:1.2.3.4, ::ffff:102:304, 0000:...:ffff:0102:0304, 4.3.2.1.in-addr.arpa,
and the dashed forms of ISP host names 1-2-3-4 and 4-3-2-1 (and the upper-case variants); an IPv6 address
gives its compressed and expanded forms and its ip6.arpa nibble name (and an IPv4-mapped one also every
form of its IPv4 address). The matcher is case-insensitive.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket


def ip_forms(ip: str) -> list[str]:
    """The textual forms of an address that must never be published, lower and upper case."""
    addr = ipaddress.ip_address(ip.strip())
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.version == 4:
        b = addr.packed
        mapped = ipaddress.IPv6Address(f"::ffff:{addr}")
        forms = [str(addr), f"::ffff:{addr}", f"::ffff:{b[0] << 8 | b[1]:x}:{b[2] << 8 | b[3]:x}",
                 mapped.exploded, addr.reverse_pointer, "-".join(map(str, b)), "-".join(map(str, b[::-1]))]
    else:
        forms = [str(addr), addr.exploded, addr.reverse_pointer]
    forms += [f.upper() for f in forms]
    return list(dict.fromkeys(forms))


def packed_forms(ip: str) -> list[bytes]:
    """The address as packed bytes (4 for IPv4, 16 for IPv6; an IPv4-mapped address also as its 4 bytes)."""
    addr = ipaddress.ip_address(ip.strip())
    out = [addr.packed]
    if addr.version == 6 and addr.ipv4_mapped is not None:
        out.append(addr.ipv4_mapped.packed)
    return out


def _bounded(form: str) -> str:
    """One form with the boundaries that make it a whole address, not part of a longer token."""
    body = re.escape(form)
    if form.lower().endswith(".arpa"):  # a DNS name: not inside a longer label
        return rf"(?<![0-9A-Za-z-]){body}(?![0-9A-Za-z-])"
    if ":" in form:  # IPv6: no hex digit (or ':hex', or '.digit' after a dotted quad) on either side
        after = r"(?!\.[0-9])" if "." in form else ""
        return rf"(?<![0-9A-Fa-f])(?<![0-9A-Fa-f]:){body}(?![0-9A-Fa-f])(?!:[0-9A-Fa-f]){after}"
    # dotted (or dashed) IPv4: 1.2.3.4 is not in 11.2.3.45, 0.1.2.3.4 or 1.2.3.4.5
    sep = re.escape(form[len(form.split(".")[0].split("-")[0])])
    return rf"(?<![0-9])(?<![0-9]{sep}){body}(?![0-9])(?!{sep}[0-9])"


@functools.lru_cache(maxsize=64)
def matcher(ip: str) -> re.Pattern:
    """A case-insensitive pattern finding any form of ip in text."""
    forms = sorted({f.lower() for f in ip_forms(ip)}, key=len, reverse=True)
    return re.compile("|".join(_bounded(f) for f in forms), re.IGNORECASE)


def find_ip(ip: str, value) -> str | None:
    """The first form of ip found in a str or bytes value (bytes: as latin-1 text, and packed), else None.
    NUL characters are ignored in text ("1.2\\0.3.4" is found): post-processing strips them."""
    pattern = matcher(ip)
    if isinstance(value, (bytes, bytearray)):
        for packed in packed_forms(ip):
            if packed in value:
                return f"packed {socket.inet_ntop(socket.AF_INET6 if len(packed) == 16 else socket.AF_INET, packed)}"
        value = bytes(value).decode("latin-1")
    m = pattern.search(value.replace("\0", ""))
    return m.group(0) if m else None
