"""The two-host drill: docs/runbook.md executed, block by block, on two simulated fresh Debian servers (as
the bare-host drill's, dr/drills/bare_host.py): the Aggregator's and the database's, connected only through one
Docker network of the drill's own, each with its own Docker Engine.

The Aggregator's server runs the runbook's one-host sections as the bare-host drill does (restoring the
latest set of a copy of the repository); section 12 then moves the database to the other server, imports
across the two (reports the drill fed into raw/ itself, dr/drills/feed.py: the runbook runs no sample collector),
takes a set, loses both servers, rebuilds both from the repository and rotates every password and
certificate across them (12.5). Which server runs a block and when a server is lost are the runbook's
`two-host drill:` markers (dr/drills/runbook.py); what the operator carries from one server to the other goes
through their off-host medium, /root/recovery. The drill ends by checking, from the Aggregator's last
server, that the database's server answers on its two TLS ports only, refuses plaintext on both, and holds
at least the documents of the set taken before the loss and every report the drill fed.

What each server gets, as an operator would bring it: a fresh copy of the checkout (a new one for each
server, also after a loss); the operator's off-host medium at /root/recovery (the secrets and configuration,
read-write: section 12 keeps the database host's kit there); the repository at its default place (one
folder for both: it stands for the operator's copy, or the off-site one). Both servers have fixed addresses
on the drill's network (a lost server's successor gets the same one), and the shell variable DB_HOST names
the database's server, as the runbook asks the operator to set it.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import time
from pathlib import Path

import docker.errors
import docker.types

from common import log
from common.config import Config
from common.errors import DrError, FailedWithResult
from dr.drills import bare_host, runbook
from dr.drills.drill_reports import RunbookDrillReport
from dr.engine import docker_api
from dr.machine import baseimage

_log = log.get("two-hosts")

HOSTS = {"aggregator": 10, "database": 20}  # the servers and their last address octet
SUBNETS = [f"10.213.{n}.0/24" for n in range(10, 250)]  # candidates for the drill's network
TLS_PORTS = (27017, 5432)  # FerretDB's TLS listener and PostgreSQL (TLS only) on the database's server
CLOSED_PORTS = (22, 80, 2375, 2376, 8080, 27018)  # what must not answer there
SET_RE = re.compile(r"set (\S+) complete \([^)]*\): (\d+) reports, (\d+) database documents")


class TwoHostsFailed(FailedWithResult):
    """The two-host drill failed: `result` is its report (saved), or None when it failed before it had one."""


def network_name(cfg: Config) -> str:
    return f"{cfg.instance}-two-hosts"


def make_network(cfg: Config) -> ipaddress.IPv4Network:
    """The drill's network, on a subnet of its own (fixed addresses need one); returns the subnet. A killed
    drill's network goes first, with the servers it left on it."""
    name = network_name(cfg)
    docker_api.remove_network(name, leftovers_of=cfg.instance)
    client = docker_api.client()
    for candidate in SUBNETS:
        pool = docker.types.IPAMPool(subnet=candidate)
        try:
            client.networks.create(name, driver="bridge", ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                                   labels={"org.aggregator-dr.network": name})
        except docker.errors.APIError as exc:
            if "overlap" in str(exc).lower():
                continue
            raise
        return ipaddress.ip_network(candidate)
    raise TwoHostsFailed("no free subnet for the drill's network among " + f"{SUBNETS[0]} .. {SUBNETS[-1]}")


def address(subnet: ipaddress.IPv4Network, host: str) -> str:
    return str(subnet.network_address + HOSTS[host])


class Servers:
    """The drill's servers, made fresh when a block needs one that is not there (at the start, or lost)."""

    def __init__(self, cfg: Config, work: Path, proxy: str, subnet: ipaddress.IPv4Network):
        self.cfg, self.work, self.proxy, self.subnet = cfg, work, proxy, subnet
        self.running: dict[str, object] = {}
        self.made = 0

    def get(self, host: str):
        if host not in self.running:
            self.running[host] = self._start(host)
        return self.running[host]

    def _start(self, host: str):
        self.made += 1
        checkout = self.work / f"checkout-{self.made}-{host}"
        _log.info("a fresh %s server (checkout %s)", host, checkout)
        bare_host.copy_checkout(checkout)
        volumes = {
            str(checkout): {"bind": bare_host.CHECKOUT, "mode": "rw"},
            str(self.work / "recovery"): {"bind": bare_host.RECOVERY, "mode": "rw"},
            str(self.work / "repository"): {"bind": bare_host.REPOSITORY, "mode": "rw"},
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
        }
        if bare_host.HOST_CA.is_file():
            volumes[str(bare_host.HOST_CA)] = {"bind": bare_host.CA_INSIDE, "mode": "ro"}
        return bare_host.start_server(
            self.cfg, volumes, self.proxy, role=f"two-hosts-{host}", hostname=host, network=network_name(self.cfg),
            address=address(self.subnet, host), env={"DB_HOST": address(self.subnet, "database")})

    def lose(self, host: str) -> None:
        server = self.running.pop(host, None)
        if server is not None:
            _log.info("losing the %s server", host)
            bare_host.stop_server(server)

    def stop_all(self) -> None:
        for host in list(self.running):
            self.lose(host)


def probe_inside(db_host: str, documents: int, token: str = "", fed: int = 0) -> int:
    """Run on the Aggregator's server after the runbook (`./run python -c ...`): the database's server
    answers on its TLS ports only, refuses a plaintext client on both, serves the certificates the
    Aggregator's server made last, and the restored database holds at least the set's documents and every
    report the drill fed (read with the Aggregator's passwords: the rotated ones). Exit code for the drill."""
    import socket
    import ssl

    import pymongo

    from common import config
    from database import db
    from dr.services import certs

    cfg = config.load()
    problems = []
    served: dict[str, bytes] = {}
    for port in (*TLS_PORTS, *CLOSED_PORTS):
        try:
            with socket.create_connection((db_host, port), timeout=3):
                answered = True
        except OSError:
            answered = False
        if answered != (port in TLS_PORTS):
            problems.append(f"port {port} {'answers' if answered else 'does not answer'}")
    plain = pymongo.MongoClient(db_host, TLS_PORTS[0], serverSelectionTimeoutMS=3000, directConnection=True)
    try:
        plain.admin.command("ping")
        problems.append(f"a plaintext client is let in on {TLS_PORTS[0]}")
    except pymongo.errors.PyMongoError:
        pass
    finally:
        plain.close()
    try:  # PostgreSQL's SSLRequest is answered, and the TLS handshake verifies against the CA
        ctx = ssl.create_default_context(cafile=db.tls_ca_file(cfg.db, cfg.secrets_dir))
        with socket.create_connection((db_host, TLS_PORTS[1]), timeout=3) as s:
            s.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
            if s.recv(1) != b"S":
                problems.append("PostgreSQL does not offer TLS")
            else:
                with ctx.wrap_socket(s, server_hostname=db_host) as t:
                    if t.version() != "TLSv1.3":
                        problems.append(f"PostgreSQL speaks {t.version()}")
                    served["postgres"] = t.getpeercert(binary_form=True)
        served["db"] = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((db_host, TLS_PORTS[0]), timeout=3))
    except (OSError, ssl.SSLError) as exc:
        problems.append(f"PostgreSQL's or FerretDB's TLS: {exc}")
    for name, der in served.items():  # the certificates the Aggregator's server made last (runbook 12.5)
        if der != ssl.PEM_cert_to_DER_cert(certs.cert_path(cfg, name).read_text()):
            problems.append(f"the database's server serves another {name} certificate than {certs.cert_path(cfg, name)}")
    have = bare_host.documents_held(cfg)
    if have < documents:
        problems.append(f"the database holds {have} documents; the set has {documents}")
    missing = bare_host.fed_missing(cfg, token, fed)
    if missing:
        problems.append(f"the database lacks {len(missing)} of the {fed} reports the drill fed: "
                        + ", ".join(missing[:5]))
    for p in problems:
        print(f"problem: {p}")
    if not problems:
        print(f"verified: only {', '.join(map(str, TLS_PORTS))} answer at {db_host}, TLS only; {have} documents")
    return 1 if problems else 0


def last_set(outputs: list[tuple[str, str]]) -> tuple[str, int] | None:
    """(set id, documents) of the last set an `invoke snapshot` on the Aggregator's server reported."""
    found = None
    for host, output in outputs:
        if host == "aggregator":
            for m in SET_RE.finditer(output):
                found = (m.group(1), int(m.group(3)))
    return found


def final_check(servers: Servers, outputs: list[tuple[str, str]], lost_after: int, fed: bare_host.Feed) -> list[str]:
    """The set taken before the loss was restored on both new servers, and the probe passes (with the
    reports the drill fed)."""
    taken = last_set(outputs[:lost_after])
    if taken is None:
        return ["no `invoke snapshot` on the Aggregator's server reported a complete set before the servers "
                "were lost"]
    set_id, documents = taken
    problems = []
    for host in HOSTS:
        if not any(h == host and f"set {set_id} (taken" in o for h, o in outputs[lost_after:]):
            problems.append(f"no runbook command on the new {host} server said it restored set {set_id}")
    db_host = address(servers.subnet, "database")
    code, output = bare_host.execute(
        servers.get("aggregator"), f"cd {bare_host.CHECKOUT} && ./run python -c 'import sys; from dr.drills import "
                                   f"two_hosts; sys.exit(two_hosts.probe_inside(\"{db_host}\", {documents}, "
                                   f"\"{fed.token}\", {fed.count}))'")
    if code != 0:
        problems += [line.removeprefix("problem: ") for line in output.splitlines() if line.startswith("problem: ")] \
            or [f"the probe failed: {' '.join(output.splitlines()[-3:])}"]
    return problems


def run(cfg: Config, keep: bool = False) -> RunbookDrillReport:
    """The whole drill; returns its report (also saved in <drill.history_dir>/two-hosts/). Raises
    TwoHostsFailed after saving a failing report, or BareHostFailed up front (no report) when the host lacks
    the disk."""
    steps = runbook.parse(runbook.RUNBOOK.read_text(), "two-host")
    report = bare_host.begin(cfg, "two-hosts")
    t0 = time.monotonic()
    # Two servers at a time (each lost one is removed before its successor starts); a checkout for each server
    # the drill makes.
    with bare_host.work_folder(cfg, "two-hosts", servers=len(HOSTS), checkouts=2 * len(HOSTS)) as work:
        servers = None
        fed = bare_host.Feed()
        try:
            shutil.copytree(cfg.secrets_dir, work / "recovery" / "secrets")
            bare_host.copy_repository(cfg, work / "repository")
            report.set_id = bare_host.latest_complete_set(cfg, work / "repository").set_id
            baseimage.ensure(cfg)
            subnet = make_network(cfg)
            proxy = bare_host.start_aptcache(cfg, network_name(cfg))
            servers = Servers(cfg, work, proxy, subnet)
            report.prepare_seconds = round(time.monotonic() - t0, 1)
            outputs: list[tuple[str, str]] = []
            lost_after = None
            for step in steps:
                for host in step.lose:
                    servers.lose(host)
                    lost_after = len(outputs)
                output = bare_host.run_block(report, None if step.skip else servers.get(step.host), step, fed,
                                             step.host)
                if output is None:
                    break
                if not step.skip:
                    outputs.append((step.host, output))
            if not report.problems:
                if lost_after is None:
                    report.problems.append("the runbook never loses the servers (a `two-host drill: lose` marker)")
                else:
                    report.problems += final_check(servers, outputs, lost_after, fed)
        except DrError as exc:
            report.problems.append(str(exc))
        finally:
            if servers is not None and not keep:
                servers.stop_all()
            bare_host.clean_up(cfg, network_name(cfg), work, keep)
    report.fed_reports = fed.count
    return bare_host.conclude(cfg, report, t0, TwoHostsFailed)
