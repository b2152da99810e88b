"""The domain rules of the metrics, each defined once (pure Python; the SQL forms are in
``bot.store.rules`` and follow these word for word).

The definitions are the project's (``docs/metrics.md``): which deploy counts, which incident
counts, when an incident is recovered, what makes a deploy a change failure or rework, and the
durations measured from them. Every adapter (the live write path, the import, ``/dora explain``,
the cards) asks these functions instead of restating a rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Collection

SUCCESS = "success"
CANCELLED = "cancelled"  # the one incident status besides "live" (stored as NULL)


def qualifies(status: str, environment: str, production_environments: Collection[str]) -> bool:
    """A qualifying deploy: it succeeded, in an environment of the production set."""
    return status == SUCCESS and environment in production_environments


def counts(status: str | None) -> bool:
    """Does an incident take part in the metrics? Every incident but a cancelled one."""
    return status != CANCELLED


def recovery_instant(mitigated_at: datetime | None, resolved_at: datetime | None) -> datetime | None:
    """When service was restored: ``mitigated_at`` when known, else ``resolved_at`` (DORA 2024
    measures recovery to when impact ended, not to when the incident was closed)."""
    return mitigated_at if mitigated_at is not None else resolved_at


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """``end - start`` in seconds, or None when either is unknown."""
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def lead_seconds(deployed_at: datetime, committed_at: datetime | None) -> float | None:
    """A commit's lead time: from its commit to the first qualifying deploy that carried it."""
    return seconds_between(committed_at, deployed_at)


def restore_seconds(started_at: datetime, mitigated_at: datetime | None, resolved_at: datetime | None) -> float | None:
    """Time to restore: from the start of impact to the recovery instant."""
    return seconds_between(started_at, recovery_instant(mitigated_at, resolved_at))


def ack_seconds(started_at: datetime, acknowledged_at: datetime | None) -> float | None:
    return seconds_between(started_at, acknowledged_at)


def recovery_seconds(
    started_at: datetime, mitigated_at: datetime | None, resolved_at: datetime | None, cause_deployed_at: datetime | None
) -> float | None:
    """Failed deployment recovery time: from the causing deploy (or the start of impact, if
    earlier) to the recovery instant; None without a cause."""
    if cause_deployed_at is None:
        return None
    return seconds_between(min(cause_deployed_at, started_at), recovery_instant(mitigated_at, resolved_at))


def is_rework(*, rollback_of: object | None, fixes: object | None, marked_rework: bool) -> bool:
    """Deployment rework (DORA 2024): a rollback, a deploy that fixes an incident, or one marked
    as unplanned work (a hotfix). Counted once however many of these hold."""
    return rollback_of is not None or fixes is not None or bool(marked_rework)


def rework_reasons(*, rollback_of: str | None, fixes: str | None, marked_rework: bool) -> list[str]:
    """Why a deploy counts as rework, in words (``/dora explain rework``)."""
    out = []
    if rollback_of is not None:
        out.append(f"rolls back {rollback_of}")
    if fixes is not None:
        out.append(f"fixes {fixes}")
    if marked_rework and not out:
        out.append("marked as a hotfix")
    return out


# --- the deploy gate -----------------------------------------------------------------------
SEVERITY_ORDER = ("sev1", "sev2", "sev3", "sev4")  # most severe first


def severities_at_or_above(threshold: str) -> tuple[str, ...]:
    """``sev2`` -> (sev1, sev2): the severities that are at least as severe as ``threshold``."""
    return SEVERITY_ORDER[: SEVERITY_ORDER.index(threshold) + 1]


def freeze_holds(lifted_at: datetime | None, until: datetime | None, now: datetime) -> bool:
    """A deploy freeze holds until it is lifted or its ``until`` has come."""
    return lifted_at is None and (until is None or now < until)


def blocks_gate(status: str | None, mitigated_at: datetime | None, resolved_at: datetime | None, severity: str, threshold: str) -> bool:
    """An incident that closes the deploy gate: counted, still burning (neither mitigated nor
    resolved) and at or above the gate's severity."""
    return counts(status) and mitigated_at is None and resolved_at is None and severity in severities_at_or_above(threshold)


def deployed_after_start(deployed_at: datetime, started_at: datetime) -> float | None:
    """Seconds by which a suspected (or linked) deploy came after the incident began, else None.

    Such a deploy is taken (clocks differ, a start can be guessed early) but shown with a note: a
    change made after the impact began is seldom its cause.
    """
    return seconds_between(started_at, deployed_at) if deployed_at > started_at else None


# An incident a PagerDuty webhook declared keeps the PagerDuty incident id in its external id; its
# responders are paged by PagerDuty already, so the Events API hand-off never pages it again.
PAGERDUTY_EXTERNAL_PREFIX = "pagerduty-"


def came_from_pagerduty(external_id: str | None) -> bool:
    return bool(external_id) and external_id.startswith(PAGERDUTY_EXTERNAL_PREFIX)
