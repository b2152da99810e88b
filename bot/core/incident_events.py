"""The kinds of event on an incident's timeline (``incident_event.kind``), one definition."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    DECLARED = "declared"
    ACKNOWLEDGED = "acknowledged"
    UPDATE = "update"
    CAUSE = "cause"  # the causing deploy was linked
    NOT_CAUSED = "not_caused"  # answered "not caused by a deploy" (bot.services.nudges)
    ROLLBACK = "rollback"  # the cause (or the suspect) was rolled back from the card
    MITIGATED = "mitigated"  # impact over: the recovery instant (docs/metrics.md)
    RESOLVED = "resolved"
    CANCELLED = "cancelled"  # a false alarm: counted in no metric
    SEVERITY = "severity"  # the severity changed (old -> new)
    CORRECTED = "corrected"  # an acknowledgement/resolution time or a resolution note corrected later
    LEAD = "lead"  # the incident lead was assigned (old -> new)
    NOTE = "note"  # a timeline entry: typed, or a Slack message added with its link
    FOLLOWUP = "followup"  # a follow-up task recorded
    FOLLOWUP_DONE = "followup_done"
    CHANNEL = "channel"  # the dedicated channel was created
    POSTMORTEM = "postmortem"  # a postmortem draft was asked for
    SERVICE = "service"  # the incident's service was renamed or merged into another (the catalogue)
    SNOOZED = "snoozed"  # reminders snoozed: not a change of the incident, no thread line
