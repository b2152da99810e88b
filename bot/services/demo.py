"""``dora-bot demo``: a realistic, reproducible sample history.

Six services from elite to low performers over the last 120 days: weekday-heavy deploy rhythms,
commits that wait hours to weeks, failed changes that are rolled back or cause incidents, incidents
not linked to any change, staging deploys, a failed deploy attempt, and one incident still open.
The records go through the same importer as ``dora-bot import``, so ids make a re-run harmless.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

from bot.core.timeutil import isoformat_z

DEMO_DAYS = 120


@dataclass(frozen=True)
class Profile:
    name: str
    deploys_per_week: float  # on production
    lead_hours: tuple[float, float]  # log-uniform range of commit waiting times
    failure_rate: float
    restore_hours: tuple[float, float]
    commits: tuple[int, int]


PROFILES = (
    Profile("checkout", 14, (0.5, 20), 0.03, (0.2, 1.5), (1, 4)),
    Profile("web", 9, (1, 30), 0.05, (0.3, 2), (1, 5)),
    Profile("payments", 3, (10, 120), 0.08, (1, 10), (2, 6)),
    Profile("api-gateway", 2, (24, 150), 0.10, (2, 20), (1, 4)),
    Profile("search", 0.5, (100, 600), 0.14, (12, 120), (3, 8)),
    Profile("legacy-billing", 0.15, (500, 1500), 0.35, (48, 300), (5, 12)),
)
SEVERITIES = ("sev1", "sev2", "sev2", "sev3", "sev3", "sev3", "sev4")
TITLES = (
    "Elevated 5xx on {s}",
    "{s} latency p99 above SLO",
    "{s} pods crash-looping after rollout",
    "Error budget burn on {s}",
    "{s} queue backlog growing",
    "Timeouts calling {s} from the edge",
)


def _sha(*parts) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return lo * (hi / lo) ** rng.random()


def demo_records(now: datetime, *, seed: int = 7, days: int = DEMO_DAYS) -> Iterator[dict]:
    """Deploy and incident objects of the import format, oldest first per service."""
    rng = random.Random(seed)
    start = now - timedelta(days=days)
    for p in PROFILES:
        n = 0
        version = 0
        day = start
        while day < now - timedelta(hours=2):
            weekday = day.weekday() < 5
            rate = p.deploys_per_week / 5 if weekday else p.deploys_per_week / 50
            count = sum(1 for _ in range(6) if rng.random() < rate / 6) if rate < 1 else rng.randint(max(0, int(rate) - 1), int(rate) + 1)
            for _ in range(count):
                at = day.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
                    hours=rng.uniform(8.5, 18.5) if weekday else rng.uniform(10, 16)
                )
                if at >= now - timedelta(minutes=10):
                    continue
                n += 1
                version += 1
                commits = []
                for c in range(rng.randint(*p.commits)):
                    waited = timedelta(hours=_log_uniform(rng, *p.lead_hours))
                    commits.append({"sha": _sha(p.name, version, c), "committed_at": isoformat_z(at - waited)})
                deploy_id = f"demo-{p.name}-{n}"
                tag = f"{at:%Y.%m.%d}-{version}"
                if rng.random() < 0.3:  # the same build went to staging first
                    yield {
                        "type": "deploy", "id": f"{deploy_id}-staging", "service": p.name,
                        "environment": "staging", "version": tag,
                        "deployed_at": isoformat_z(at - timedelta(minutes=rng.randint(20, 240))),
                        "commits": commits, "url": f"https://ci.example.com/{p.name}/runs/{n}s",
                    }
                if rng.random() < 0.02:  # a deploy that itself failed: stored, counted nowhere
                    yield {
                        "type": "deploy", "id": f"{deploy_id}-attempt", "service": p.name,
                        "version": tag, "status": "failure",
                        "deployed_at": isoformat_z(at - timedelta(minutes=5)), "commits": commits,
                    }
                yield {
                    "type": "deploy", "id": deploy_id, "service": p.name, "environment": "production",
                    "version": tag, "deployed_at": isoformat_z(at), "status": "success",
                    "commits": commits, "url": f"https://ci.example.com/{p.name}/runs/{n}",
                }
                if rng.random() < p.failure_rate:
                    started = at + timedelta(minutes=rng.randint(3, 90))
                    took = timedelta(hours=_log_uniform(rng, *p.restore_hours))
                    resolved = started + took
                    if resolved >= now:
                        continue
                    if rng.random() < 0.4:  # rolled back; the incident closes soon after
                        n += 1
                        yield {
                            "type": "deploy", "id": f"demo-{p.name}-{n}", "service": p.name,
                            "version": f"{tag}-rollback", "deployed_at": isoformat_z(resolved - timedelta(minutes=2)),
                            "rollback_of": deploy_id,
                        }
                    yield {
                        "type": "incident", "id": f"demo-inc-{p.name}-{n}", "service": p.name,
                        "severity": rng.choice(SEVERITIES), "title": rng.choice(TITLES).format(s=p.name),
                        "started_at": isoformat_z(started),
                        "acknowledged_at": isoformat_z(started + min(took / 3, timedelta(minutes=rng.randint(1, 25)))),
                        "resolved_at": isoformat_z(resolved),
                        "caused_by": deploy_id,
                    }
            if rng.random() < 0.04 * (1 + p.failure_rate * 4):  # an outage no change caused
                started = day.replace(hour=rng.randint(0, 23), minute=rng.randint(0, 59))
                resolved = started + timedelta(hours=_log_uniform(rng, *p.restore_hours))
                if resolved < now:
                    yield {
                        "type": "incident", "id": f"demo-inc-{p.name}-{day:%Y%m%d}", "service": p.name,
                        "severity": rng.choice(SEVERITIES), "title": rng.choice(TITLES).format(s=p.name),
                        "started_at": isoformat_z(started), "resolved_at": isoformat_z(resolved),
                    }
            day += timedelta(days=1)
    # One incident is still being worked: open, acknowledged, no cause known yet.
    yield {
        "type": "incident", "id": f"demo-inc-open-{now:%Y%m%d}", "service": "payments", "severity": "sev2",
        "title": "Card authorisations timing out for some issuers",
        "started_at": isoformat_z(now - timedelta(minutes=95)),
        "acknowledged_at": isoformat_z(now - timedelta(minutes=88)),
    }


def demo_lines(now: datetime, *, seed: int = 7, days: int = DEMO_DAYS) -> Iterator[bytes]:
    for record in demo_records(now, seed=seed, days=days):
        yield json.dumps(record).encode() + b"\n"


def service_names() -> list[str]:
    return [p.name for p in PROFILES]
