"""Generate a legacy-style report set of a given total size (for benchmarks): http_requests-like entries
with headers as nested lists, bodies, binary payloads and the probe IP hidden in a few places.

    python bench/gen_reports.py OUT_DIR TOTAL_MB [--report-mb N] [--seed S]
"""

import argparse
import random
from pathlib import Path

import yaml

PROBE_IP = "198.51.100.23"


def entry(rng: random.Random, i: int) -> dict:
    body = "".join(rng.choice("abcdefghij <>/=\"\n") for _ in range(rng.randint(200, 6000)))
    return {
        "input": f"http://site{i}.example.org/",
        "agent": "agent",
        "requests": [{
            "request": {"url": f"http://site{i}.example.org/", "method": "GET",
                        "headers": [["User-Agent", ["Mozilla/5.0"]], ["X-Forwarded-For", [PROBE_IP]]]},
            "response": {"code": 200, "body": body,
                         "headers": [["Server", ["nginx"]], ["Content-Type", ["text/html"]]]},
        }],
        "queries": [{"addrs": [f"203.0.113.{i % 250}"], "query_type": "A", "resolver": ["8.8.8.8", 53],
                     "answers": [[f"<RR name=site{i} type=A>", f"<A address=203.0.113.{i % 250}>"]]}],
        "raw": (b"\x45\x00" + bytes(rng.getrandbits(8) for _ in range(rng.randint(20, 400)))),
        "client_note": f"probe at {PROBE_IP} saw {rng.random():.6f}",
        "test_runtime": rng.random(),
    }


def write_report(path: Path, rng: random.Random, n: int, target_bytes: int) -> int:
    header = {"probe_asn": "AS64500", "probe_cc": "IT", "probe_ip": PROBE_IP, "software_name": "ooniprobe",
              "software_version": "1.3.1", "start_time": 1.4e9 + n, "test_name": "http_requests",
              "test_version": "0.2.4", "report_id": f"bench{n:06d}"}
    size = 0
    with open(path, "w") as fh:
        fh.write("###########################################\n# OONI Probe Report\n")
        fh.write("---\n" + yaml.dump(header, Dumper=yaml.CSafeDumper) + "...\n")
        i = 0
        while size < target_bytes:
            text = yaml.dump(entry(rng, i), Dumper=yaml.CSafeDumper, default_flow_style=rng.random() < 0.3)
            fh.write("---\n" + text + "...\n")
            size += len(text) + 8
            i += 1
    return size


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("total_mb", type=float)
    p.add_argument("--report-mb", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    total, n = 0, 0
    while total < args.total_mb * 1e6:
        size = int(rng.uniform(0.25, 1.75) * args.report_mb * 1e6)
        total += write_report(args.out / f"report-{n:05d}.yaml", rng, n, size)
        n += 1
    print(f"{n} reports, {total / 1e6:.0f} MB in {args.out}")


if __name__ == "__main__":
    main()
