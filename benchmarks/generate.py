"""Deterministic generator of a large ``dora-bot import`` file (JSON Lines).

    python benchmarks/generate.py --deploys 1000000            # benchmarks/data/history-1000000.jsonl
    python benchmarks/generate.py --deploys 100000 --out /tmp/h.jsonl

Two years of history ending at ``END`` (a fixed instant, so every run produces the same bytes for
the same ``--deploys`` and ``--seed``) for eight services with different rhythms:

* weekday business-hours teams, a round-the-clock web frontend, a nightly data pipeline, a
  release train on Tuesdays and Thursdays, a team that ships in bursts on a few days a week, a
  year-end change freeze for payments, and traffic that grows over the two years;
* 0-5 commits per deploy, lead times drawn per service (hours to weeks), a few commits with no
  commit time and a few whose commit time is after the deploy (clock skew: invalid samples);
* about 8% staging deploys (the same commits reach production later), 2% failed deploy attempts
  retried with the same commits, production redeploys of the same version (a sha deployed twice),
  explicit change-failure marks, rollbacks (``rollback_of``) that redeploy the previous version,
  hotfixes (``rework``, one production deploy in 40);
* about one incident per 15 deploys: most caused by a deploy (``caused_by``), the rest unlinked,
  a few on staging, most acknowledged and resolved (every other one with a ``mitigated_at``),
  some still open.

Records are written in time order and streamed: memory stays flat whatever ``--deploys`` is.
Every deploy line counts towards ``--deploys`` (staging, failed attempts, redeploys, rollbacks).
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

UTC = timezone.utc
END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 730
START = END - timedelta(days=DAYS)
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Rhythm:
    name: str
    share: float  # of all deploys
    weekday: tuple[float, ...]  # relative weight Monday..Sunday
    hours: tuple[float, float]  # local working window (UTC here), deploys fall inside
    lead_hours: tuple[float, float]  # log-uniform commit waiting time
    failure: float  # probability that a production deploy is a change failure
    restore_hours: tuple[float, float]
    burst: float = 0.0  # 0: steady; >0: share of days that are quiet (bursty team)
    freeze: bool = False  # no deploys from Dec 20 to Jan 3


SERVICES = (
    Rhythm("checkout", 0.20, (1, 1, 1, 1, 0.8, 0.08, 0.05), (8.0, 19.0), (0.3, 30), 0.04, (0.1, 2)),
    Rhythm("web", 0.18, (1, 1, 1, 1, 1, 0.6, 0.5), (0.0, 24.0), (0.5, 48), 0.05, (0.2, 3)),
    Rhythm("payments", 0.10, (1, 1, 1, 1, 0.5, 0, 0), (9.0, 17.0), (6, 200), 0.07, (0.5, 12), freeze=True),
    Rhythm("api-gateway", 0.12, (1, 1, 1, 1, 1, 0.1, 0.1), (7.0, 20.0), (2, 120), 0.06, (0.3, 8)),
    Rhythm("auth", 0.10, (1, 1, 1, 1, 0.7, 0, 0), (8.0, 18.0), (4, 150), 0.05, (0.2, 6)),
    Rhythm("data-pipeline", 0.12, (1, 1, 1, 1, 1, 1, 1), (1.0, 4.5), (12, 300), 0.09, (1, 30)),
    Rhythm("search", 0.10, (1, 1, 1, 1, 1, 0.2, 0), (9.0, 18.0), (24, 500), 0.11, (2, 72), burst=0.55),
    Rhythm("legacy-billing", 0.08, (0, 1, 0, 1, 0, 0, 0), (18.0, 22.0), (72, 1500), 0.16, (6, 240)),
)
SEVERITIES = ("sev1", "sev2", "sev2", "sev3", "sev3", "sev3", "sev4", "sev4")
TITLES = (
    "Elevated 5xx on {s}",
    "{s} latency p99 above SLO",
    "{s} pods crash-looping after rollout",
    "Error budget burn on {s}",
    "{s} queue backlog growing",
    "Timeouts calling {s} from the edge",
)
INCIDENT_EVERY = 15  # about one incident per this many deploys
ROLLBACK_SHARE = 0.45  # of change failures that are rolled back


def iso(t: float) -> str:
    """Epoch seconds -> ISO-8601 UTC with a Z (whole seconds)."""
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _frozen(day: datetime) -> bool:
    return (day.month == 12 and day.day >= 20) or (day.month == 1 and day.day <= 3)


def _day_weights(r: Rhythm, rng: random.Random) -> list[float]:
    weights = []
    for i in range(DAYS):
        day = START + timedelta(days=i)
        w = r.weekday[day.weekday()] * (0.75 + 0.5 * i / DAYS)  # grows over the two years
        if r.freeze and _frozen(day):
            w = 0.0
        if r.burst and rng.random() < r.burst:
            w *= 0.05
        weights.append(w)
    return weights


def _day_counts(n: int, weights: list[float], rng: random.Random) -> list[int]:
    """Split exactly n deploys over the days, proportionally to the weights, with jitter."""
    jittered = [w * rng.uniform(0.6, 1.4) for w in weights]
    total = sum(jittered) or 1.0
    counts, acc, given = [], 0.0, 0
    for w in jittered:
        acc += n * w / total
        c = round(acc) - given
        counts.append(c)
        given += c
    counts[-1] += n - given
    return counts


class ServiceStream:
    """One service's deploys and incidents, in time order, as (epoch, seq, json line)."""

    def __init__(self, r: Rhythm, index: int, n_deploys: int, seed: int):
        self.r = r
        self.index = index
        self.n = n_deploys
        self.rng = random.Random(f"{seed}/{r.name}")
        self.seq = 0
        self.commit_no = 0
        self.deploy_no = 0
        self.version_no = 0
        self.tick = 0

    def _id(self) -> str:
        self.deploy_no += 1
        return f"{self.r.name}-{self.deploy_no:07d}"

    def _sha(self) -> str:
        self.commit_no += 1
        return hashlib.sha1(f"{self.r.name}/{self.commit_no}".encode()).hexdigest()

    def _commits(self, at: float, k: int) -> list[dict]:
        rng, (lo, hi) = self.rng, self.r.lead_hours
        commits = []
        for _ in range(k):
            x = rng.random()
            if x < 0.01:
                commits.append({"sha": self._sha(), "committed_at": None})  # unknown commit time
                continue
            lead = lo * (hi / lo) ** rng.random() * 3600
            if x < 0.012:
                lead = -rng.uniform(60, 3600)  # committer clock ahead of CI: an invalid sample
            commits.append({"sha": self._sha(), "committed_at": iso(at - lead)})
        return commits

    def _deploy(self, at: float, *, env: str, version: str, commits: list[dict], status: str = "success",
                rollback_of: str | None = None, change_failure: bool = False, did: str | None = None) -> tuple[str, dict]:
        did = did or self._id()
        rec = {
            "type": "deploy", "id": did, "service": self.r.name, "environment": env, "version": version,
            "deployed_at": iso(at), "status": status, "commits": commits, "rollback_of": rollback_of,
            "change_failure": change_failure, "url": f"https://ci.example.com/{self.r.name}/runs/{did}",
        }
        # DORA 2024 rework besides rollbacks: about one production deploy in 40 is a hotfix (chosen
        # from the deploy number, so the random stream, and with it the rest of the history, is
        # the same as without it).
        if env == "production" and rollback_of is None and self.deploy_no % 40 == 0:
            rec["rework"] = True
        return did, rec

    def _incident(self, at: float, caused_by: str | None, env: str = "production") -> dict:
        rng, (lo, hi) = self.rng, self.r.restore_hours
        self.seq += 1
        started = at
        ack = started + rng.uniform(30, 1800) if rng.random() < 0.93 else None
        restore = lo * (hi / lo) ** rng.random() * 3600
        resolved = started + max(restore, (ack - started) if ack else 0) if rng.random() < 0.998 else None
        if resolved is not None and resolved >= END.timestamp() - 60:
            resolved = None
        if ack is not None and ack >= END.timestamp() - 60:
            ack = None
        return {
            "type": "incident", "id": f"inc-{self.r.name}-{self.seq:06d}", "service": self.r.name,
            "environment": env, "severity": rng.choice(SEVERITIES),
            "title": rng.choice(TITLES).format(s=self.r.name), "started_at": iso(started),
            "acknowledged_at": iso(ack) if ack else None, "resolved_at": iso(resolved) if resolved else None,
            # every other resolved incident says when impact ended: 60% of the way to its resolution
            "mitigated_at": iso(started + 0.6 * (resolved - started)) if resolved and self.seq % 2 == 0 else None,
            "caused_by": caused_by,
        }

    def events(self):
        """Yield (epoch seconds, service index, emission number, record) in time order."""
        for n, (t, rec) in enumerate(self._events()):
            yield t, self.index, n, rec

    def _events(self):
        rng, r = self.rng, self.r
        weights = _day_weights(r, rng)
        # Plan slots for the budget: a slot is 1.1 deploys on average (staging + production, failed
        # attempt + retry) and 0.97 production deploys that may be rolled back (an extra deploy
        # from the same budget). A little is held back and topped up on the last day.
        per_slot = 1.10 + 0.97 * r.failure * ROLLBACK_SHARE
        counts = _day_counts(int(self.n / per_slot * 0.999), weights, rng)
        pending: list[tuple[float, int, dict]] = []  # incidents and follow-ups waiting for their time
        self.remaining = self.n
        prev_prod: tuple[str, str, list[dict]] | None = None  # id, version, commits of last good prod deploy
        h0, h1 = r.hours
        for i, count in enumerate(counts):
            if self.remaining <= 0:
                break
            day0 = (START + timedelta(days=i)).timestamp()
            times = sorted(day0 + rng.uniform(h0, h1) * 3600 for _ in range(count))
            for at in times:
                while pending and pending[0][0] <= at:
                    t, _, rec = heapq.heappop(pending)
                    yield t, rec
                if self.remaining <= 0:
                    break
                x = rng.random()
                if x < 0.08 and self.remaining >= 2:
                    # staging first, the same commits to production 20-240 minutes later
                    prev_prod = yield from self._then_production(
                        at, (1200, 14400), pending, prev_prod, n_commits=(0, 1, 1, 2, 2, 3, 3, 4, 5), env="staging"
                    )
                    continue
                if x < 0.10 and self.remaining >= 2:
                    # a failed deploy attempt, retried a few minutes later with the same commits
                    prev_prod = yield from self._then_production(
                        at, (120, 1800), pending, prev_prod, n_commits=None, env="production", status="failure"
                    )
                    continue
                if x < 0.13 and prev_prod is not None:
                    # a redeploy of the last production version: its shas are deployed twice
                    did, rec = self._deploy(at, env=rng.choice(("production", "prod")), version=prev_prod[1], commits=prev_prod[2])
                    self.remaining -= 1
                    yield at, rec
                    continue
                self.version_no += 1
                version = f"{r.name}-v{self.version_no}"
                commits = self._commits(at, rng.randint(0, 5))
                did, rec = self._deploy(at, env="production", version=version, commits=commits,
                                        change_failure=False)
                self.remaining -= 1
                mark = rng.random() < 0.012
                if mark:
                    rec["change_failure"] = True
                yield at, rec
                prev_prod = self._after_prod(at, did, version, commits, pending, prev_prod)
        # budget left over (fewer rollbacks than expected): plain deploys on the last day
        last0 = (END - timedelta(days=1)).timestamp()
        extra = sorted(last0 + rng.uniform(h0, h1) * 3600 for _ in range(max(self.remaining, 0)))
        for at in extra:
            while pending and pending[0][0] <= at:
                t, _, rec = heapq.heappop(pending)
                yield t, rec
            self.version_no += 1
            version = f"{r.name}-v{self.version_no}"
            _, rec = self._deploy(at, env="production", version=version, commits=self._commits(at, rng.randint(0, 5)))
            self.remaining -= 1
            yield at, rec
        # whatever is still scheduled (incidents, rollbacks)
        while pending:
            t, _, rec = heapq.heappop(pending)
            yield t, rec

    def _then_production(self, at, delay, pending, prev_prod, *, n_commits, env, status="success"):
        """A first deploy of a new version at ``at`` (staging, or a failed attempt), then the same
        commits to production ``delay`` seconds later (scheduled). Yields the first deploy; returns
        the new last-good production deploy. ``n_commits``: choices for the commit count (None: 0-5)."""
        rng, end_ts = self.rng, END.timestamp()
        self.version_no += 1
        version = f"{self.r.name}-v{self.version_no}"
        commits = self._commits(at, rng.randint(0, 5) if n_commits is None else rng.choice(n_commits))
        _, rec = self._deploy(at, env=env, version=version, commits=commits, status=status)
        self.remaining -= 1
        yield at, rec
        later = min(at + rng.uniform(*delay), end_ts - 1)
        did, rec = self._deploy(later, env="production", version=version, commits=commits)
        self.remaining -= 1
        self._push(pending, later, rec)
        return self._after_prod(later, did, version, commits, pending, prev_prod)

    def _push(self, pending, t, rec):
        self.tick += 1
        heapq.heappush(pending, (t, self.tick, rec))

    def _after_prod(self, at, did, version, commits, pending, prev_prod):
        """Schedule the consequences of a production deploy: a change failure and its incident or
        rollback, or an unrelated incident. Returns the new last-good production deploy."""
        rng, r = self.rng, self.r
        end_ts = END.timestamp()
        # incidents: about one per INCIDENT_EVERY deploys overall (failures plus unlinked ones)
        if rng.random() < r.failure:
            # a change failure: an incident caused by it, and sometimes a rollback
            if rng.random() < 0.8:
                t = at + rng.uniform(120, 7200)
                if t < end_ts - 60:
                    self._push(pending, t, self._incident(t, did))
            if rng.random() < ROLLBACK_SHARE and prev_prod is not None and self.remaining >= 1:
                t = at + rng.uniform(300, 5400)
                if t < end_ts - 1:
                    self.remaining -= 1
                    _, rec = self._deploy(t, env="production", version=prev_prod[1],
                                            commits=prev_prod[2] if rng.random() < 0.5 else [], rollback_of=did)
                    self._push(pending, t, rec)
                    return prev_prod
        base = 1 / INCIDENT_EVERY - r.failure * 0.8
        if rng.random() < max(base, 0.01):
            t = at + rng.uniform(600, 86400)
            if t < end_ts - 60:
                env = "staging" if rng.random() < 0.05 else "production"
                self._push(pending, t, self._incident(t, None, env=env))
        return (did, version, commits)


def generate(path: Path, deploys: int, seed: int = 2026) -> dict:
    """Write the file; return counts."""
    shares = [r.share for r in SERVICES]
    total = sum(shares)
    sizes = [int(deploys * s / total) for s in shares]
    sizes[0] += deploys - sum(sizes)
    streams = [ServiceStream(r, i, n, seed) for i, (r, n) in enumerate(zip(SERVICES, sizes, strict=True))]
    counts = {"deploys": 0, "incidents": 0, "commits": 0, "lines": 0}
    tmp = path.with_suffix(path.suffix + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = heapq.merge(*(s.events() for s in streams), key=lambda e: (e[0], e[1], e[2]))
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    with open(tmp, "w", encoding="utf-8", buffering=1 << 20) as out:
        for _t, _i, _n, rec in merged:
            if rec["type"] == "deploy":
                counts["deploys"] += 1
                counts["commits"] += len(rec["commits"])
            else:
                counts["incidents"] += 1
            counts["lines"] += 1
            out.write(dumps(rec))
            out.write("\n")
    assert counts["deploys"] == deploys, counts
    os.replace(tmp, path)
    counts["bytes"] = path.stat().st_size
    return counts


def default_path(deploys: int, seed: int = 2026) -> Path:
    suffix = "" if seed == 2026 else f"-s{seed}"
    return DATA_DIR / f"history-{deploys}{suffix}.jsonl"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deploys", type=int, default=1_000_000, help="deploy lines to write (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, help="output file (default benchmarks/data/history-N.jsonl)")
    args = ap.parse_args(argv)
    path = args.out or default_path(args.deploys, args.seed)
    t0 = time.perf_counter()
    counts = generate(path, args.deploys, args.seed)
    dt = time.perf_counter() - t0
    print(
        f"{path}: {counts['deploys']:,} deploys, {counts['commits']:,} commits, {counts['incidents']:,} incidents, "
        f"{counts['bytes'] / 1e6:,.0f} MB in {dt:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
