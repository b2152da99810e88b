"""Prometheus metrics: HTTP, Slack API calls, outbox, jobs, and the five keys per service.

One ``Telemetry`` per process with its own registry (tests build their own). The key gauges
(30-day window: DORA's five keys and time to restore over all incidents) are recomputed by a
background thread, never on a scrape or a request. ``deploy/grafana/dora-bot.json`` charts them.

Anyone with an ingest token can create services, so the per-service gauges are bounded: they cover
the services active in the window (a deploy in any environment, an incident started in it, or one
still open), at most ``MAX_GAUGE_SERVICES`` of them, the most active first; ``service="all"``
always counts everything. A service that drops out loses its series, so ``/metrics`` stays small
and a refresh costs at most that many reports, however many names were ever posted. Each series
carries the ``team`` that owns the service (empty for none, and for ``service="all"``); a service
that changes team moves its series to the new label.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlmodel import select

log = logging.getLogger(__name__)

MAX_GAUGE_SERVICES = 100
WINDOW_DAYS = 30


def active_services(session, *, since: datetime, limit: int = MAX_GAUGE_SERVICES) -> list[str]:
    """Names of the services with activity since ``since``, the most active first (then by name)."""
    from sqlalchemy import desc, func, or_, union_all

    from bot.store.models import Deploy, Incident, Service

    deploys = select(Deploy.service_id.label("sid"), func.count().label("n")).where(Deploy.deployed_at >= since).group_by(Deploy.service_id)
    incidents = (
        select(Incident.service_id.label("sid"), func.count().label("n"))
        .where(or_(Incident.started_at >= since, Incident.resolved_at.is_(None)))
        .group_by(Incident.service_id)
    )
    activity = union_all(deploys, incidents).subquery()
    query = (
        select(Service.name, func.sum(activity.c.n).label("n"))
        .join(activity, activity.c.sid == Service.id)
        .group_by(Service.id, Service.name)
        .order_by(desc("n"), Service.name)
        .limit(limit)
    )
    return [name for name, _ in session.exec(query).all()]


def teams_of_services(session, names: list[str]) -> dict[str, str]:
    """Service name -> the name of the team that owns it (services with a team only)."""
    from sqlmodel import col

    from bot.store.models import Service, Team

    if not names:
        return {}
    rows = session.exec(select(Service.name, Team.name).join(Team, Team.id == Service.team_id).where(col(Service.name).in_(names))).all()
    return dict(rows)


class Telemetry:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.http_requests = Counter("dora_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=r)
        self.http_latency = Histogram(
            "dora_http_request_duration_seconds", "HTTP request latency", ["route"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.slack_calls = Counter("dora_slack_api_calls_total", "Slack Web API calls", ["method", "outcome"], registry=r)
        self.outbox_depth = Gauge("dora_outbox_depth", "Slack messages waiting in the outbox", registry=r)
        self.outbox_age = Gauge("dora_outbox_oldest_age_seconds", "Age of the oldest waiting outbox message", registry=r)
        self.job_runs = Counter("dora_job_runs_total", "Scheduler job runs", ["job", "outcome"], registry=r)
        self.scheduler_leader = Gauge("dora_scheduler_leader", "1 when this process runs the scheduler", registry=r)
        labels = ["service", "team"]
        self.df = Gauge("dora_deployment_frequency_per_day", "Production deploys per day, last 30 days", labels, registry=r)
        self.deploy_days = Gauge(
            "dora_deploy_days_per_week", "Median days a week with a production deploy (the frequency tier's input), last 30 days",
            labels, registry=r,
        )
        self.lt = Gauge("dora_lead_time_seconds", "Median lead time for changes, last 30 days", labels, registry=r)
        self.cfr = Gauge("dora_change_failure_rate", "Change failure rate (0-1), last 30 days", labels, registry=r)
        self.ttr = Gauge("dora_time_to_restore_seconds", "Median time to restore (all incidents), last 30 days", labels, registry=r)
        self.fdrt = Gauge(
            "dora_failed_deployment_recovery_time_seconds", "Median failed deployment recovery time, last 30 days", labels, registry=r
        )
        self.rework = Gauge("dora_deployment_rework_rate", "Deployment rework rate (0-1), last 30 days", labels, registry=r)
        self.gauges_updated = Gauge("dora_metrics_computed_timestamp_seconds", "When the four-key gauges were last computed", registry=r)
        self._gauge_labels: set[tuple[str, str]] = set()  # the (service, team) labels the key gauges carry now

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def update_outbox(self, engine, now: datetime) -> None:
        from bot.services.outbox import depth

        n, oldest = depth(engine)
        self.outbox_depth.set(n)
        self.outbox_age.set((now - oldest).total_seconds() if oldest else 0)

    def update_four_keys(self, rt) -> None:
        """Recompute the per-service gauges (and ``service="all"``) from the metrics engine."""
        from bot.services.metrics import build_metrics
        from bot.store.db import session_scope

        now = rt.now()
        settings = rt.settings
        with session_scope(rt.engine, write=False) as session:
            names = active_services(session, since=now - timedelta(days=WINDOW_DAYS), limit=MAX_GAUGE_SERVICES)
            team_of = teams_of_services(session, names)
            labels = {("all", ""), *((n, team_of.get(n, "")) for n in names)}
            for label in self._gauge_labels - labels:  # inactive now (or moved to another team): its series go
                for gauge in (self.df, self.deploy_days, self.lt, self.cfr, self.ttr, self.fdrt, self.rework):
                    try:
                        gauge.remove(*label)
                    except KeyError:
                        pass
            self._gauge_labels = labels
            for name in [None, *names]:
                report = build_metrics(
                    session, service=name, days=WINDOW_DAYS, end=now, timezone_name=settings.timezone_name,
                    production_environments=settings.production_environments,
                )
                label = (name, team_of.get(name, "")) if name else ("all", "")
                self.df.labels(*label).set(report["deployment_frequency"]["per_day"])
                for gauge, value in (
                    (self.deploy_days, report["deployment_frequency"]["deploy_days_per_week"]),
                    (self.lt, report["lead_time"]["median_seconds"]),
                    (self.cfr, report["change_failure_rate"]["rate"]),
                    (self.ttr, report["time_to_restore"]["median_seconds"]),
                    (self.fdrt, report["failed_deployment_recovery_time"]["median_seconds"]),
                    (self.rework, report["deployment_rework_rate"]["rate"]),
                ):
                    if value is None:
                        try:
                            gauge.remove(*label)  # no data: no sample, rather than a misleading 0
                        except KeyError:
                            pass
                    else:
                        gauge.labels(*label).set(value)
        self.gauges_updated.set(now.timestamp())


class GaugeRefresher:
    """Recomputes the four-key and outbox gauges every ``interval`` seconds in the background."""

    def __init__(self, rt, telemetry: Telemetry, *, interval: float = 60.0):
        self.rt, self.telemetry, self.interval = rt, telemetry, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-gauges", daemon=True)

    def start(self) -> "GaugeRefresher":
        self._thread.start()
        return self

    def refresh(self) -> None:
        self.telemetry.update_outbox(self.rt.engine, self.rt.now())
        self.telemetry.update_four_keys(self.rt)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:
                log.exception("could not refresh the metrics gauges")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
