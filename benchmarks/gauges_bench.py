"""The four-key gauge refresher (``bot.telemetry``) against many junk service names.

Anyone holding an ingest token can create services; this loads N of them (one deploy each, inside
the 30-day window) plus a few real services, then times one refresh of the gauges and measures the
``/metrics`` exposition, bounded (the shipped rule: the ``MAX_GAUGE_SERVICES`` most active services
of the window) and unbounded (every service, as before the bound), on SQLite and PostgreSQL.

    python benchmarks/gauges_bench.py                       # 2000 junk services, SQLite and PostgreSQL
    python benchmarks/gauges_bench.py --services 5000 --backend sqlite
    python benchmarks/gauges_bench.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

Target (issue 11): a refresh well under its 60 s interval and ``/metrics`` a few tens of KB,
whatever the number of services ever posted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import text  # noqa: E402

import bot.telemetry as telemetry  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.services.importer import import_jsonl  # noqa: E402
from bot.store.db import make_engine, upgrade  # noqa: E402

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
PRODUCTION = ("production",)


def history(services: int) -> bytes:
    lines = []
    for s in range(5):  # a few real services with some history
        for i in range(20):
            at = NOW - timedelta(days=i + 1, hours=s)
            lines.append({"type": "deploy", "id": f"real-{s}-{i}", "service": f"real-{s}", "deployed_at": at.isoformat(),
                          "commits": [{"sha": f"{s:02x}{i:06x}", "committed_at": (at - timedelta(hours=3)).isoformat()}]})
    for n in range(services):
        lines.append({"type": "deploy", "id": f"junk-{n}", "service": f"junk-{n:05d}",
                      "deployed_at": (NOW - timedelta(hours=1)).isoformat()})
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def engine_for(backend: str, pg_url: str, tmp: str):
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp}/gauges.db")
    else:
        engine = make_engine(pg_url, connect_args={"options": "-csearch_path=gauges_bench"})
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS gauges_bench CASCADE"))
            conn.execute(text("CREATE SCHEMA gauges_bench"))
    upgrade(engine)
    return engine


def measure(engine, *, bound: int) -> tuple[float, int, int]:
    """(seconds for one refresh, /metrics bytes, service labels) with at most ``bound`` services."""
    settings = replace(Settings(database_url=engine.url.render_as_string(hide_password=False)), production_environments=PRODUCTION)
    rt = Runtime(settings=settings, engine=engine, clock=lambda: NOW)
    tel = telemetry.Telemetry()
    saved = telemetry.MAX_GAUGE_SERVICES
    telemetry.MAX_GAUGE_SERVICES = bound
    try:
        started = time.perf_counter()
        tel.update_four_keys(rt)
        seconds = time.perf_counter() - started
    finally:
        telemetry.MAX_GAUGE_SERVICES = saved
    body = tel.exposition()
    labels = len(tel._gauge_labels)
    return seconds, len(body), labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=2000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench")
    args = ap.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    data = history(args.services)
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            engine = engine_for(backend, args.pg_url, tmp)
            report = import_jsonl(engine, io.BytesIO(data), production_environments=PRODUCTION, now=NOW)
            assert report.committed, report.errors[:3]
            for name, bound in (("bounded", telemetry.MAX_GAUGE_SERVICES), ("unbounded (before)", 10**9)):
                seconds, size, labels = measure(engine, bound=bound)
                print(f"{backend:10} {args.services + 5} services  {name:19} refresh {seconds:7.2f} s"
                      f"   /metrics {size / 1024:7.1f} KiB   {labels} service labels")
            engine.dispose()


if __name__ == "__main__":
    main()
