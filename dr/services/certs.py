"""Our private CA and the TLS certificates it signs (`invoke certs`), and their expiry (`invoke status`).

One table, CERTS: the servers (FerretDB's TLS listener `db`, `postgres`, the off-site rest-server `offsite`, the
broker's AMQPS listener `broker`) and one client certificate, each with the names the configuration gives it (`names`). The files live in
the secrets directory:

    <secrets_dir>/tls/            0700
        ca.crt                    the CA certificate: every host and client that verifies gets a copy
        ca/ca.key                 the CA's key, in a folder of its own (0700) that no container mounts
        <name>.crt, <name>.key    each certificate and its key (0600)

Keys are ECDSA P-256, made by Debian's openssl. The functions ending in `_argv` and `extensions` build the
openssl command lines and configuration text and run nothing; the rest run them through common/runner.
Only paths go through argv, never a key. A certificate and its key are made in a temporary folder
(0700) beside their final place and renamed into it, the key first: a crash between the two renames
leaves a key that does not match its certificate, which the next `make` sees and re-issues.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import secrets as _random
import shutil
import stat
import tempfile
import urllib.parse
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Iterator

from common import atomic, records, runner
from common.config import Config
from common.errors import CommandError, CommandNotFound, ConfigError, DrError, SecretError
from common.records import Record
from common.text import table
from database import db as dbconn
from dr.services import instance

CA = "ca"
KEY_OPTIONS = ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
TMP_PREFIX = ".tmp-certs-"


@dataclass(frozen=True)
class Cert:
    name: str      # tls/<name>.crt and .key
    usage: str     # extendedKeyUsage: serverAuth or clientAuth
    used_by: str


CERTS = (
    Cert("db", "serverAuth", "FerretDB's TLS listener (--listen-tls-cert-file, --listen-tls-key-file)"),
    Cert("postgres", "serverAuth", "PostgreSQL (ssl_cert_file, ssl_key_file), for FerretDB's sslmode=verify-full"),
    Cert("offsite", "serverAuth", "the off-site rest-server (--tls --tls-cert --tls-key; restic --cacert)"),
    Cert("broker", "serverAuth", "the broker's AMQPS listener (ssl_options.certfile, keyfile; clients verify it "
                                 "with ca.crt)"),
    Cert("client", "clientAuth", "clients of FerretDB and PostgreSQL, when they ask for client certificates"),
)


# --- where the files are, and what each certificate names ----------------------------------------------------

def tls_dir(cfg: Config) -> Path:
    return cfg.secrets_path / "tls"


def ca_key_dir(cfg: Config) -> Path:
    return tls_dir(cfg) / "ca"


def cert_path(cfg: Config, name: str) -> Path:
    return tls_dir(cfg) / f"{name}.crt"


def key_path(cfg: Config, name: str) -> Path:
    return ca_key_dir(cfg) / "ca.key" if name == CA else tls_dir(cfg) / f"{name}.key"


def db_files(cfg: Config) -> tuple[Path, Path, Path]:
    """The database's CA certificate, certificate and key: [db] ca_file, cert_file, key_file, or ours."""
    return (Path(dbconn.ca_file_of(cfg.db, cfg.secrets_dir)), Path(cfg.db.cert_file or cert_path(cfg, "db")),
            Path(cfg.db.key_file or key_path(cfg, "db")))


def subject(cfg: Config, name: str) -> str:
    """openssl's -subj form."""
    return f"/O={cfg.instance}/CN={cfg.instance} private CA" if name == CA else f"/O={cfg.instance}/CN={cfg.instance}-{name}"


def _rfc2253(subj: str) -> str:
    """The -subj form as `openssl x509 -nameopt RFC2253` prints it (last component first)."""
    return ",".join(reversed(subj.strip("/").split("/")))


def _repository_host(repository: str) -> str:
    """The host of a rest: repository URL, else ""."""
    if not repository.startswith("rest:"):
        return ""
    return urllib.parse.urlsplit(repository.removeprefix("rest:")).hostname or ""


def names(cfg: Config, name: str) -> tuple[str, ...]:
    """The subjectAltNames (DNS names and IP addresses) of a certificate, from the configuration. A server's
    container name and loopback always; the database and PostgreSQL also where clients reach them and
    certs.db_names (a database on its own host); the off-site server its repository's host and
    certs.offsite_names; the broker broker.host and certs.broker_names. The client certificate names none."""
    if name == "client":
        return ()
    out = [instance.container_name(cfg, name), "localhost", "127.0.0.1"]
    if name == "db":
        out += [cfg.db.host, *cfg.certs.db_names]
    elif name == "postgres":
        out += [cfg.db.postgres_host, cfg.db.host, *cfg.certs.db_names]  # db.host: the database's own host
    elif name == "offsite":
        out += [_repository_host(cfg.offsite.repository), *cfg.certs.offsite_names]
    elif name == "broker":
        out += [cfg.broker.host, *cfg.certs.broker_names]
    return tuple(dict.fromkeys(_canonical(n) for n in out if n))


def _canonical(name: str) -> str:
    """An IP address as openssl prints it back (IPv6 in full), a DNS name as it is."""
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return name
    if ip.version == 4:
        return str(ip)
    return ":".join(f"{int(group, 16):X}" for group in ip.exploded.split(":"))


def _san_entry(name: str) -> str:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return f"DNS:{name}"
    return f"IP:{name}"


# --- openssl command lines (pure) ---------------------------------------------------------------------------

def extensions(usage: str | None, sans: tuple[str, ...] = ()) -> str:
    """The openssl configuration (section `ext`) of the CA (usage None) or of a certificate it signs."""
    lines = ["[req]", "distinguished_name = dn", "prompt = no", "[dn]", "CN = unused", "[ext]"]
    if usage is None:
        lines += ["basicConstraints = critical,CA:TRUE,pathlen:0", "keyUsage = critical,keyCertSign,cRLSign",
                  "subjectKeyIdentifier = hash"]
    else:
        lines += ["basicConstraints = critical,CA:FALSE", "keyUsage = critical,digitalSignature",
                  f"extendedKeyUsage = {usage}", "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"]
        if sans:
            lines.append("subjectAltName = " + ",".join(_san_entry(n) for n in sans))
    return "\n".join(lines) + "\n"


def genkey_argv(key: Path) -> list[str]:
    return ["openssl", "genpkey", *KEY_OPTIONS, "-out", str(key)]


def ca_argv(key: Path, crt: Path, conf: Path, subj: str, days: int) -> list[str]:
    return ["openssl", "req", "-new", "-x509", "-key", str(key), "-out", str(crt), "-days", str(days), "-sha256",
            "-subj", subj, "-config", str(conf), "-extensions", "ext"]


def leaf_argv(key: Path, crt: Path, conf: Path, subj: str, days: int, ca_crt: Path, ca_key: Path,
              serial: int) -> list[str]:
    return ["openssl", "req", "-new", "-x509", "-key", str(key), "-CA", str(ca_crt), "-CAkey", str(ca_key),
            "-set_serial", f"0x{serial:x}", "-out", str(crt), "-days", str(days), "-sha256", "-subj", subj,
            "-config", str(conf), "-extensions", "ext"]


def read_argv(crt: Path) -> list[str]:
    return ["openssl", "x509", "-noout", "-nameopt", "RFC2253", "-subject", "-enddate", "-serial",
            "-ext", "subjectAltName", "-in", str(crt)]


def verify_argv(ca_crt: Path, crt: Path) -> list[str]:
    """Signed by this CA, whatever the time (expiry is judged apart)."""
    return ["openssl", "verify", "-no_check_time", "-CAfile", str(ca_crt), str(crt)]


def pubkey_argv(path: Path, private: bool) -> list[str]:
    """The public key of a key file or of a certificate (never the private key)."""
    return ["openssl", "pkey", "-pubout", "-in", str(path)] if private else \
        ["openssl", "x509", "-noout", "-pubkey", "-in", str(path)]


# --- reading a certificate -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Info:
    subject: str                 # RFC 2253
    serial: str
    not_after: datetime
    names: tuple[str, ...]       # subjectAltNames, as openssl prints them back (DNS names, IP addresses)

    def days_left(self, now: datetime) -> int:
        return int((self.not_after - now).total_seconds() // 86400)


def parse(text: str) -> Info:
    """The output of read_argv."""
    fields: dict[str, str] = {}
    sans: tuple[str, ...] = ()
    lines = text.splitlines()
    for n, line in enumerate(lines):
        key, sep, value = line.partition("=")
        if sep and key in ("subject", "notAfter", "serial"):
            fields[key] = value.strip()
        elif line.startswith("X509v3 Subject Alternative Name") and n + 1 < len(lines):
            sans = tuple(_canonical(e.strip().split(":", 1)[1]) for e in lines[n + 1].split(","))
    if set(fields) != {"subject", "notAfter", "serial"}:
        raise DrError(f"cannot read openssl's description of a certificate:\n{text}")
    not_after = datetime.strptime(fields["notAfter"], "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)
    return Info(fields["subject"], fields["serial"], not_after, sans)


def read(crt: Path) -> Info:
    return parse(runner.run(read_argv(crt), capture=True, quiet=True))


def signed_by(ca_crt: Path, crt: Path) -> bool:
    try:
        runner.run(verify_argv(ca_crt, crt), capture=True, quiet=True)
    except CommandError as exc:
        if isinstance(exc, CommandNotFound):
            raise
        return False
    return True


def key_matches(crt: Path, key: Path) -> bool:
    return runner.run(pubkey_argv(crt, False), capture=True, quiet=True) == \
        runner.run(pubkey_argv(key, True), capture=True, quiet=True)


def _check_key_mode(key: Path) -> None:
    if key.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"key file {key} must not be readable by group or others (chmod 600 {key})")


# --- making them ------------------------------------------------------------------------------------------------

def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


@contextlib.contextmanager
def _locked(cfg: Config) -> Iterator[None]:
    """One `make` at a time; under the lock, temporary folders left by a killed one are removed."""
    with open(os.open(ca_key_dir(cfg) / ".lock", os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DrError(f"another `invoke certs` is making certificates in {tls_dir(cfg)}") from None
        for folder in (tls_dir(cfg), ca_key_dir(cfg)):
            for leftover in folder.glob(TMP_PREFIX + "*"):
                shutil.rmtree(leftover)
        yield


def _publish(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    atomic.publish(tmp, final)


def _issue(cfg: Config, name: str, days: int) -> None:
    """Make a key and its certificate in a temporary folder beside the key's place, then rename both in."""
    key, crt = key_path(cfg, name), cert_path(cfg, name)
    work = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=key.parent))  # mode 0700
    try:
        tmp_key, tmp_crt, conf = work / "key", work / "crt", work / "openssl.cnf"
        tmp_key.touch(mode=0o600)
        runner.run(genkey_argv(tmp_key), quiet=True)
        os.chmod(tmp_key, 0o600)
        if name == CA:
            conf.write_text(extensions(None))
            runner.run(ca_argv(tmp_key, tmp_crt, conf, subject(cfg, CA), days), quiet=True)
        else:
            cert = next(c for c in CERTS if c.name == name)
            conf.write_text(extensions(cert.usage, names(cfg, name)))
            runner.run(leaf_argv(tmp_key, tmp_crt, conf, subject(cfg, name), days, cert_path(cfg, CA),
                                 key_path(cfg, CA), 1 + _random.randbits(127)), quiet=True)
        _publish(tmp_key, key)  # the key first: see the module's docstring
        _publish(tmp_crt, crt)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ca_problem(cfg: Config, now: datetime) -> str | None:
    """Why the CA must be made (again), or None to keep it."""
    crt, key = cert_path(cfg, CA), key_path(cfg, CA)
    if not key.exists():
        if crt.exists():
            raise DrError(f"{crt} exists but not the CA's key {key}: this host did not make the CA. Make "
                          f"certificates on the host that did (docs/tls.md), or remove {crt} to start a new CA "
                          f"(every certificate is then re-issued and every copy of ca.crt must be replaced)")
        return "missing"
    _check_key_mode(key)
    if not crt.exists():
        return "its certificate is missing"
    if read(crt).not_after <= now:
        return "expired"
    if not key_matches(crt, key):
        return "its key does not match"
    return None


def _leaf_problem(cfg: Config, name: str, now: datetime) -> str | None:
    """Why a certificate must be issued (again), or None to keep it."""
    crt, key = cert_path(cfg, name), key_path(cfg, name)
    if not crt.exists() or not key.exists():
        return "missing"
    _check_key_mode(key)
    info = read(crt)
    if info.not_after <= now:
        return "expired"
    if info.subject != _rfc2253(subject(cfg, name)):
        return f"its subject {info.subject} is not {_rfc2253(subject(cfg, name))}"
    if set(info.names) != set(names(cfg, name)):
        return f"its names {', '.join(info.names) or 'none'} are not the configured {', '.join(names(cfg, name))}"
    if not signed_by(cert_path(cfg, CA), crt):
        return "not signed by the present CA"
    if not key_matches(crt, key):
        return "its key does not match"
    return None


@dataclass
class CertRow(Record):
    """One certificate present: its file, subject, names (comma-separated), serial, notAfter and days left."""
    certificate: str
    file: str
    subject: str
    names: str
    serial: str
    not_after: str
    days_left: int


# The columns `invoke status` shows of a certificate (`invoke certs` adds what it did).
COLUMNS = ["certificate", "days_left", "not_after", "names"]


@dataclass
class MadeCert(CertRow):
    """A certificate after `invoke certs`: made, kept, or re-issued (and why)."""
    action: str


@dataclass
class CertsMade(Record):
    """What `invoke certs` did, one row per certificate, and the folder they are in."""
    rows: list[MadeCert] = records.key("certificates")
    folder: str

    def render(self) -> str:
        rows = table([r.to_dict() for r in self.rows], ["certificate", "action", *COLUMNS[1:]])
        return f"{rows}\nin {self.folder}; the CA's key stays on this host (docs/tls.md says where its copy belongs)"


def make(cfg: Config, renew: bool = False, renew_ca: bool = False, now: datetime | None = None) -> CertsMade:
    """Make what is missing, keep what is valid and matches the configuration, re-issue the rest; renew:
    re-issue every certificate the CA signs; renew_ca: a new CA too (hence new certificates). One row per
    certificate: its name, what was done, its file, names, notAfter and days left."""
    if cfg.certs.leaf_days >= cfg.certs.ca_days:
        raise ConfigError(f"certs.leaf_days: must be less than certs.ca_days ({cfg.certs.ca_days}), "
                          f"got {cfg.certs.leaf_days}")
    now = now or datetime.now(UTC)
    for folder in (cfg.secrets_path, tls_dir(cfg), ca_key_dir(cfg)):
        _private_dir(folder)
    rows = []
    with _locked(cfg):
        for name in (CA, *(c.name for c in CERTS)):
            if name == CA:
                reason = "renewal asked" if renew_ca else _ca_problem(cfg, now)
            else:
                reason = "renewal asked" if renew or renew_ca else _leaf_problem(cfg, name, now)
            if reason:
                _issue(cfg, name, cfg.certs.ca_days if name == CA else cfg.certs.leaf_days)
            action = "kept" if reason is None else "made" if reason == "missing" else f"re-issued ({reason})"
            rows.append(MadeCert(**asdict(_row(cfg, name, read(cert_path(cfg, name)), now)), action=action))
    return CertsMade(rows, str(tls_dir(cfg)))


# --- expiry -----------------------------------------------------------------------------------------------------

def _row(cfg: Config, name: str, info: Info, now: datetime) -> CertRow:
    return CertRow(name, str(cert_path(cfg, name)), info.subject, ", ".join(info.names), info.serial,
                   info.not_after.strftime("%Y-%m-%d %H:%M UTC"), info.days_left(now))


def describe(cfg: Config, now: datetime | None = None) -> list[CertRow]:
    """Each certificate present: subject, names, serial, notAfter, days left."""
    now = now or datetime.now(UTC)
    return [_row(cfg, name, read(cert_path(cfg, name)), now)
            for name in (CA, *(c.name for c in CERTS)) if cert_path(cfg, name).exists()]


@dataclass
class Finding(Record):
    """What is wrong with a certificate (warnings)."""
    certificate: str
    level: str       # "warning" (expires soon) or "error" (expired, not signed by the CA, missing)
    message: str

    def line(self) -> str:
        return f"{self.level}: {self.certificate}: {self.message}"


def _checked(cfg: Config) -> list[tuple[str, Path, Path | None, Path]]:
    """What warnings looks at: (label, certificate, its key, the CA that must have signed it). Our files,
    and with db.tls on the database's files when [db] names others."""
    ca = cert_path(cfg, CA)
    out = [(CA, ca, None, ca)] + [(c.name, cert_path(cfg, c.name), key_path(cfg, c.name), ca) for c in CERTS]
    if cfg.db.tls:
        db_ca, db_crt, db_key = db_files(cfg)
        if db_ca != ca:
            out.append(("db.ca_file", db_ca, None, db_ca))
        if (db_crt, db_key) != (cert_path(cfg, "db"), key_path(cfg, "db")):
            out.append(("db.cert_file", db_crt, db_key, db_ca))
    return out


def warnings(cfg: Config, now: datetime | None = None, days: int | None = None) -> list[Finding]:
    """A warning for each certificate that expires within `days` (certs.warn_days), an error for an expired
    one, one its CA did not sign, or one whose key does not match; with db.tls on, an error for each of
    the database's files that is missing. Certificates that are not there, with TLS off, are no concern."""
    now = now or datetime.now(UTC)
    days = cfg.certs.warn_days if days is None else days
    needed = {CA, "db", "postgres", "db.ca_file", "db.cert_file"} if cfg.db.tls else set()
    out = []
    for label, crt, key, ca in _checked(cfg):
        if not crt.exists():
            if label in needed:
                out.append(Finding(label, "error", f"{crt} is missing (db.tls is on): `invoke certs` on the "
                                                   "host that keeps the CA makes it"))
            continue
        redo = "`invoke certs --renew-ca`" if label == CA else "`invoke certs --renew`"
        info = read(crt)
        left = info.days_left(now)
        when = info.not_after.strftime("%Y-%m-%d")
        if info.not_after <= now:
            out.append(Finding(label, "error", f"{crt} expired on {when}: {redo} makes a new one"))
        elif left < days:
            out.append(Finding(label, "warning", f"{crt} expires in {left} days ({when}): {redo}"))
        if ca != crt and ca.exists() and not signed_by(ca, crt):
            out.append(Finding(label, "error", f"{crt} is not signed by the CA {ca}: `invoke certs` re-issues it"))
        if key is not None and key.exists() and not key_matches(crt, key):
            out.append(Finding(label, "error", f"{key} does not match {crt}: `invoke certs` re-issues it"))
    return out


def check_present(cfg: Config, now: datetime | None = None) -> str:
    """On a host that did not make the CA (the database's own host): the CA certificate and the database's
    and PostgreSQL's certificates and keys are there, valid, signed by that CA and matching their keys.
    DrError naming each problem; a line saying how long they last otherwise."""
    now = now or datetime.now(UTC)
    problems = [f.line() for f in warnings(cfg, now) if f.level == "error"]
    if problems:
        raise DrError("the database's TLS files are not usable on this host (copy them from the Aggregator's "
                      "host, which keeps the CA; docs/runbook.md, section 12):\n  " + "\n  ".join(problems))
    left = min(read(p).days_left(now) for p in (cert_path(cfg, CA), db_files(cfg)[1], cert_path(cfg, "postgres")))
    return f"CA, db and postgres present and valid ({left} days left)"
