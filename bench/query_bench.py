"""The Aggregator's users' queries at 1,000,000 measurements: FerretDB over PostgreSQL scanning (its own
indexes cannot serve a pushed-down filter) against the GIN expression indexes of database/pgsql.py.

    ./run python bench/query_bench.py [--measurements 1000000] [--per-report 100] [--runs 5]

Starts its own database (postgres + db, as the drills' sandbox does), fills it through FerretDB with
measurement-like documents, times each query (median of --runs, every document of the answer read), makes
the indexes (the backup image's `db-indexes`, as `rebuild` does), and times them again. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import config  # noqa: E402
from database import (
    db,  # noqa: E402
    schema,  # noqa: E402
)
from dr.drills import sandbox  # noqa: E402
from dr.engine import docker_api  # noqa: E402
from dr.jobs import backup  # noqa: E402
from dr.services import stack  # noqa: E402

COUNTRIES = ("IT", "BR", "IS", "TR", "IR", "CN", "RU", "US")
TESTS = ("http_requests", "dns_consistency", "tcp_connect", "http_header_field_manipulation")


def fill(d, measurements: int, per_report: int) -> dict:
    reports = measurements // per_report
    start = time.monotonic()
    batch = []
    for r in range(reports):
        key = f"2014{r % 12 + 1:02d}{r % 28 + 1:02d}T000000Z-{COUNTRIES[r % 8]}-AS{r}-{TESTS[r % 4]}"
        d.reports.insert_one({"_id": key, "report_id": f"report-{r:07d}", "probe_cc": COUNTRIES[r % 8],
                              "test_name": TESTS[r % 4], "day": f"2014-{r % 12 + 1:02d}-{r % 28 + 1:02d}",
                              "entries": per_report, "header": {"software": "ooniprobe", "n": r}})
        for m in range(per_report):
            batch.append({"_id": f"{key}:{m:06d}", "report_key": key, "test_name": TESTS[r % 4],
                          "probe_cc": COUNTRIES[r % 8], "index": m,
                          "input": f"http://site{(r * 7 + m) % 5000}.example.org/",
                          "entry": {"body": "x" * 200, "status": 200, "headers": {"Server": "nginx"}}})
            if len(batch) >= 1000:
                d.measurements.insert_many(batch, ordered=False)
                batch = []
    if batch:
        d.measurements.insert_many(batch, ordered=False)
    return {"reports": reports, "measurements": reports * per_report,
            "fill_seconds": round(time.monotonic() - start, 1)}


def queries(d) -> dict:
    return {
        "a report by id": lambda: list(d.reports.find({"report_id": "report-0004242"})),
        "a report's measurements": lambda: list(d.measurements.find(
            {"report_key": d.reports.find_one({"report_id": "report-0004242"})["_id"]})),
        "measurements by input": lambda: list(d.measurements.find({"input": "http://site77.example.org/"})),
        "reports by country, test and day": lambda: list(d.reports.find(
            {"probe_cc": "IT", "test_name": "http_requests", "day": "2014-01-01"})),
    }


def timed(fn, runs: int) -> dict:
    times, n = [], 0
    for _ in range(runs):
        start = time.monotonic()
        n = len(fn())
        times.append(time.monotonic() - start)
    return {"median_s": round(statistics.median(times), 4), "documents": n}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--measurements", type=int, default=1_000_000)
    p.add_argument("--per-report", type=int, default=100)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="query-bench-") as tmp:
        cfg = config.load(overrides={"instance": "aggr-query-bench", "secrets_dir": str(Path(tmp) / "secrets")})
        database = sandbox.start_database(cfg)
        try:
            owner = db.client_as(cfg.db, cfg.secrets_dir, "owner", host="127.0.0.1", port=database.port,
                                 socketTimeoutMS=3_600_000)
            d = owner[cfg.db.database]
            schema.ensure(d)
            result = fill(d, args.measurements, args.per_report)
            print(json.dumps(result), file=sys.stderr, flush=True)
            result["scan"] = {what: timed(fn, args.runs) for what, fn in queries(d).items()}
            print(json.dumps(result["scan"]), file=sys.stderr, flush=True)
            start = time.monotonic()
            result["indexes"] = backup.db_indexes(cfg)
            result["index_seconds"] = round(time.monotonic() - start, 1)
            result["indexed"] = {what: timed(fn, args.runs) for what, fn in queries(d).items()}
            start = time.monotonic()
            result["counts"] = backup.db_counts(cfg)
            result["count_seconds_postgresql"] = round(time.monotonic() - start, 2)
            start = time.monotonic()
            db.count(d, "measurements")
            result["count_seconds_ferretdb"] = round(time.monotonic() - start, 2)
            owner.close()
        finally:
            sandbox.stop_database(database)
            docker_api.remove_network(stack.network_name(cfg))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
