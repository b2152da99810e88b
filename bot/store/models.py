"""SQLModel tables.

Besides the facts (services, deploys with their commits, incidents with their timeline) the store
keeps a few derived columns so that every metric is one indexed aggregate:

* ``lead_sample``: one row per (service, commit sha) fixed at the first qualifying deploy that
  carried it, with ``lead_seconds`` computed exactly when it is written;
* ``deploy.change_failure``: kept current whenever an incident is linked or cancelled, a rollback
  recorded or the deploy marked failed;
* ``deploy.rework``: whether the deploy is rework (a rollback, a fix of an incident, or marked as
  a hotfix); fixed when the deploy is written, since all three are known then;
* ``incident.recovered_at`` (the recovery instant: mitigated, else resolved) and
  ``restore_seconds`` / ``ack_seconds`` / ``recovery_seconds``: written with the state change that
  makes them known (``bot.core.rules`` defines each).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from bot.core.inputs import service_key
from bot.store.types import UTCDateTime

NAME_LEN = 100

# Deterministic constraint names, so migrations can refer to them on every database.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _service_key_default(context) -> str:
    return service_key(context.get_current_parameters()["name"])


class Team(SQLModel, table=True):
    """A team owning services (``service.team_id``); ``key`` matches names like a service's."""

    __tablename__ = "team"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(NAME_LEN), unique=True, nullable=False)
    key: str = Field(
        default=None,
        sa_column=Column(String(NAME_LEN), unique=True, nullable=False, default=_service_key_default),
    )
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class TeamMember(SQLModel, table=True):
    """A Slack user who picked a team in App Home (user groups named like a team count too)."""

    __tablename__ = "team_member"

    team_id: int = Field(
        sa_column=Column(Integer, ForeignKey("team.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    )
    user: str = Field(sa_column=Column(String(32), primary_key=True))


class Service(SQLModel, table=True):
    """A service; ``name`` is its display form, ``key`` (``service_key(name)``) what names match."""

    __tablename__ = "service"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(NAME_LEN), unique=True, nullable=False)
    key: str = Field(
        default=None,
        sa_column=Column(String(NAME_LEN), unique=True, nullable=False, default=_service_key_default),
    )
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # The team that owns it (at most one).
    team_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("team.id"), nullable=True, index=True))


class Deploy(SQLModel, table=True):
    __tablename__ = "deploy"
    __table_args__ = (
        # Covering indexes: the window scans of deployment frequency and change failure rate
        # read only the index, for all services or for one.
        Index("ix_deploy_window", "deployed_at", "service_id", "environment", "status", "change_failure", "rework"),
        Index("ix_deploy_service_window", "service_id", "deployed_at", "environment", "status", "change_failure", "rework"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_id: str | None = Field(default=None, sa_type=String(200), unique=True)
    service_id: int = Field(sa_column=Column(Integer, ForeignKey("service.id"), nullable=False))
    environment: str = Field(sa_type=String(64), nullable=False)
    version: str = Field(sa_type=String(200), nullable=False)
    deployed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status: str = Field(sa_type=String(16), nullable=False, default="success")
    rollback_of_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("deploy.id"), nullable=True, index=True)
    )
    marked_failed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    failure_reason: str | None = Field(default=None, sa_type=Text)
    change_failure: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    # The incident this deploy fixes (DORA 2024 rework), like an incident's caused_by names a deploy.
    fixes_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("incident.id", use_alter=True), nullable=True))
    rework: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False, server_default=false()))
    url: str | None = Field(default=None, sa_type=String(2000))
    note: str | None = Field(default=None, sa_type=Text)
    source: str = Field(sa_type=String(32), nullable=False, default="api")
    created_by: str | None = Field(default=None, sa_type=String(100))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class DeployCommit(SQLModel, table=True):
    __tablename__ = "deploy_commit"
    __table_args__ = (UniqueConstraint("deploy_id", "sha", name="uq_deploy_commit_sha"),)

    id: int | None = Field(default=None, primary_key=True)
    deploy_id: int = Field(
        sa_column=Column(Integer, ForeignKey("deploy.id", ondelete="CASCADE"), nullable=False)
    )
    sha: str = Field(sa_type=String(64), nullable=False)
    committed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LeadSample(SQLModel, table=True):
    """A commit's lead time, fixed at its first qualifying deploy in the same service."""

    __tablename__ = "lead_sample"
    __table_args__ = (
        Index("ix_lead_sample_window", "deployed_at", "lead_seconds"),
        Index("ix_lead_sample_service_window", "service_id", "deployed_at", "lead_seconds"),
        # Samples in lead-time order: on SQLite a percentile over a long window is read by walking
        # these to the wanted rank instead of sorting every sample of the window.
        Index("ix_lead_sample_lead", "lead_seconds", "deployed_at"),
        Index("ix_lead_sample_service_lead", "service_id", "lead_seconds", "deployed_at"),
    )

    service_id: int = Field(
        sa_column=Column(Integer, ForeignKey("service.id"), primary_key=True, autoincrement=False)
    )
    sha: str = Field(sa_column=Column(String(64), primary_key=True))
    deploy_id: int = Field(
        sa_column=Column(Integer, ForeignKey("deploy.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    deployed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    committed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lead_seconds: float | None = Field(default=None, sa_type=Float)


class Incident(SQLModel, table=True):
    __tablename__ = "incident"
    __table_args__ = (
        Index("ix_incident_service_resolved", "service_id", "resolved_at"),
        Index("ix_incident_resolved", "resolved_at"),
        Index("ix_incident_recovered", "recovered_at"),
        Index("ix_incident_started", "started_at"),
        Index("ix_incident_acknowledged", "acknowledged_at"),
        Index("ix_incident_lead", "lead"),
        Index("ix_incident_channel", "channel_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_id: str | None = Field(default=None, sa_type=String(200), unique=True)
    service_id: int = Field(sa_column=Column(Integer, ForeignKey("service.id"), nullable=False))
    environment: str = Field(sa_type=String(64), nullable=False, default="production")
    severity: str = Field(sa_type=String(8), nullable=False)
    title: str = Field(sa_type=String(300), nullable=False)
    started_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    declared_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    mitigated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The recovery instant (bot.core.rules.recovery_instant), stored so the window is an index range.
    recovered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # NULL for a live incident; "cancelled" for a false alarm (it takes part in no metric).
    status: str | None = Field(default=None, sa_type=String(16))
    cancel_reason: str | None = Field(default=None, sa_type=Text)
    # Answered "not caused by a deploy": reported apart from the unlinked incidents.
    not_caused_by_change: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, default=False, server_default=false())
    )
    caused_by_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("deploy.id"), nullable=True, index=True)
    )
    suspect_deploy_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("deploy.id"), nullable=True)
    )
    declared_by: str | None = Field(default=None, sa_type=String(100))
    acknowledged_by: str | None = Field(default=None, sa_type=String(100))
    resolved_by: str | None = Field(default=None, sa_type=String(100))
    resolution_note: str | None = Field(default=None, sa_type=Text)
    source: str = Field(sa_type=String(32), nullable=False, default="api")
    restore_seconds: float | None = Field(default=None, sa_type=Float)
    ack_seconds: float | None = Field(default=None, sa_type=Float)
    recovery_seconds: float | None = Field(default=None, sa_type=Float)
    snoozed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The incident lead (a Slack user id), its dedicated channel (created by the outbox worker;
    # the name is fixed when it is asked for) and its PagerDuty hand-off (None | triggered | resolved).
    lead: str | None = Field(default=None, sa_type=String(100))
    channel_id: str | None = Field(default=None, sa_type=String(32))
    channel_name: str | None = Field(default=None, sa_type=String(80))
    paged: str | None = Field(default=None, sa_type=String(16))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

    @property
    def state(self) -> str:
        if self.status == "cancelled":
            return "cancelled"
        if self.resolved_at is not None:
            return "resolved"
        if self.mitigated_at is not None:
            return "mitigated"
        if self.acknowledged_at is not None:
            return "acknowledged"
        return "open"


class IncidentEvent(SQLModel, table=True):
    """One line of an incident's timeline: declared, acknowledged, update, cause, resolved..."""

    __tablename__ = "incident_event"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(
        sa_column=Column(Integer, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    kind: str = Field(sa_type=String(32), nullable=False)
    actor: str | None = Field(default=None, sa_type=String(100))
    text: str | None = Field(default=None, sa_type=Text)
    url: str | None = Field(default=None, sa_type=String(2000))  # a message added from Slack: its permalink


class IncidentFollowup(SQLModel, table=True):
    """A follow-up task of an incident (``/incident followup``); open until marked done."""

    __tablename__ = "incident_followup"
    __table_args__ = (
        Index("ix_incident_followup_open", "done_at", "owner"),
        Index("ix_incident_followup_incident", "incident_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(sa_column=Column(Integer, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False))
    text: str = Field(sa_type=Text, nullable=False)
    owner: str | None = Field(default=None, sa_type=String(100))
    created_by: str | None = Field(default=None, sa_type=String(100))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_by: str | None = Field(default=None, sa_type=String(100))


class AppMeta(SQLModel, table=True):
    """Small key/value facts about the store itself (e.g. the production set samples were built for)."""

    __tablename__ = "app_meta"

    key: str = Field(sa_column=Column(String(100), primary_key=True))
    value: str = Field(sa_type=Text, nullable=False)


class SlackMessage(SQLModel, table=True):
    """Where a card was posted, so every state change edits the same message in place."""

    __tablename__ = "slack_message"
    __table_args__ = (UniqueConstraint("kind", "object_id", "channel", name="uq_slack_message_card"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_type=String(32), nullable=False)  # "incident" | "deploy"
    object_id: int = Field(sa_type=Integer, nullable=False)
    channel: str = Field(sa_type=String(32), nullable=False)
    ts: str = Field(sa_type=String(32), nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class WebhookDelivery(SQLModel, table=True):
    """Every accepted webhook body, stored raw before it is parsed (audit and replay)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (UniqueConstraint("source", "delivery_id", name="uq_webhook_delivery_source"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(sa_type=String(32), nullable=False)  # a row of bot.ingest.sources.SOURCES: "github", "gitlab"...
    delivery_id: str = Field(sa_type=String(200), nullable=False)
    event: str | None = Field(default=None, sa_type=String(64))
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    body: str = Field(sa_type=Text, nullable=False)
    status: str = Field(sa_type=String(16), nullable=False, default="received")  # received|processed|ignored|failed
    error: str | None = Field(default=None, sa_type=Text)


class CommitPush(SQLModel, table=True):
    """A push to a repository's default branch (GitHub, GitLab); its commits wait for the deploy that ships them."""

    __tablename__ = "commit_push"
    __table_args__ = (Index("ix_commit_push_service_after", "service_id", "after_sha"),)

    id: int | None = Field(default=None, primary_key=True)
    service_id: int = Field(sa_column=Column(Integer, ForeignKey("service.id"), nullable=False))
    after_sha: str = Field(sa_type=String(64), nullable=False)
    pushed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Which webhook reported the push: "github" | "gitlab".
    source: str = Field(sa_column=Column(String(32), nullable=False, default="github", server_default="github"))


class PendingCommit(SQLModel, table=True):
    """A pushed commit; ``deploy_id`` is the first production deploy that included it."""

    __tablename__ = "pending_commit"
    __table_args__ = (
        UniqueConstraint("service_id", "sha", name="uq_pending_commit_sha"),
        Index("ix_pending_commit_waiting", "service_id", "deploy_id", "push_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    service_id: int = Field(sa_column=Column(Integer, ForeignKey("service.id"), nullable=False))
    push_id: int = Field(sa_column=Column(Integer, ForeignKey("commit_push.id", ondelete="CASCADE"), nullable=False))
    sha: str = Field(sa_type=String(64), nullable=False)
    committed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pushed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    deploy_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("deploy.id"), nullable=True))


class OutboxMessage(SQLModel, table=True):
    """A Slack side effect written before it is sent; the delivery worker sends it, retrying.

    ``key`` groups the messages of one card (``incident:7``): they are delivered in id order, and a
    card refresh renders the current state when it is sent, so the latest state always wins.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"), Index("ix_outbox_key", "key", "status"))

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_type=String(32), nullable=False)  # card.post | card.refresh | thread.post | message.post | file.upload
    key: str = Field(sa_type=String(100), nullable=False)
    payload: str = Field(sa_type=Text, nullable=False)  # JSON
    status: str = Field(sa_type=String(16), nullable=False, default="pending")  # pending | sent | superseded | dead
    attempts: int = Field(default=0, sa_type=Integer, nullable=False)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DigestSubscription(SQLModel, table=True):
    __tablename__ = "digest_subscription"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(sa_type=String(32), nullable=False)
    cadence: str = Field(sa_type=String(8), nullable=False, default="weekly")  # weekly | daily
    weekday: int = Field(default=0, sa_type=Integer, nullable=False)  # 0 = Monday
    time_of_day: str = Field(sa_type=String(5), nullable=False, default="09:00")
    timezone: str = Field(sa_type=String(64), nullable=False, default="UTC")
    service: str | None = Field(default=None, sa_type=String(NAME_LEN))
    team: str | None = Field(default=None, sa_type=String(NAME_LEN))  # a team's digest (display name)
    created_by: str | None = Field(default=None, sa_type=String(100))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class DigestDelivery(SQLModel, table=True):
    """One row per (subscription, period): the unique key that makes a digest go out once."""

    __tablename__ = "digest_delivery"
    __table_args__ = (UniqueConstraint("subscription_id", "period", name="uq_digest_delivery_period"),)

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(
        sa_column=Column(Integer, ForeignKey("digest_subscription.id", ondelete="CASCADE"), nullable=False)
    )
    period: str = Field(sa_type=String(32), nullable=False)  # local date of the period start, or "manual-<ts>"
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class IncidentReminder(SQLModel, table=True):
    """A reminder that was (or will be) posted; unique per incident and due time, so never twice."""

    __tablename__ = "incident_reminder"
    __table_args__ = (UniqueConstraint("incident_id", "kind", "due_at", name="uq_incident_reminder_due"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(
        sa_column=Column(Integer, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(sa_type=String(16), nullable=False)  # ack | update
    due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class HandledRequest(SQLModel, table=True):
    """A Slack request that was acted on: a replay of it (same timestamp and signature) or Slack's
    retry of the same event is answered without acting again, by every replica.

    Kept a little longer than Slack's five-minute signature window, then pruned.
    """

    __tablename__ = "handled_request"
    __table_args__ = (Index("ix_handled_request_received", "received_at"),)

    key: str = Field(sa_column=Column(String(100), primary_key=True))
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class DeployFreeze(SQLModel, table=True):
    """A deploy freeze of one service (``service_id``) or of every service (NULL): the gate says no
    while it holds (until ``until``, or until lifted)."""

    __tablename__ = "deploy_freeze"
    __table_args__ = (Index("ix_deploy_freeze_lifted", "lifted_at", "service_id"),)

    id: int | None = Field(default=None, primary_key=True)
    service_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("service.id"), nullable=True))
    reason: str | None = Field(default=None, sa_type=Text)
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: str | None = Field(default=None, sa_type=String(100))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_by: str | None = Field(default=None, sa_type=String(100))
class Watch(SQLModel, table=True):
    """A threshold watch (``/dora watch add cfr>15% service=checkout #eng``) and where its checks stand.

    The scope is the org when neither ``service_id`` nor ``team`` is set. ``last_check_at`` is the
    clock hour of the last check: a check of an hour already checked changes nothing.
    """

    __tablename__ = "watch"

    id: int | None = Field(default=None, primary_key=True)
    metric: str = Field(sa_type=String(16), nullable=False)  # cfr | rework | lt | ttr | df
    op: str = Field(sa_type=String(2), nullable=False)  # > | >= | < | <=
    threshold: str = Field(sa_type=String(32), nullable=False)  # canonical text: 15%, 2d, 1/day
    service_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("service.id", ondelete="CASCADE"), nullable=True))
    team: str | None = Field(default=None, sa_type=String(NAME_LEN))
    days: int = Field(default=30, sa_type=Integer, nullable=False)
    channel: str = Field(sa_type=String(32), nullable=False)
    state: str = Field(sa_type=String(8), nullable=False, default="ok")  # ok | firing
    held_checks: int = Field(default=0, sa_type=Integer, nullable=False)  # consecutive holding checks while ok
    cleared_checks: int = Field(default=0, sa_type=Integer, nullable=False)  # consecutive non-holding checks while firing
    streak_since: datetime | None = Field(default=None, sa_type=UTCDateTime)  # first check of the current run
    since: datetime = Field(sa_type=UTCDateTime, nullable=False)  # when the watch entered its state
    last_check_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_value: str | None = Field(default=None, sa_type=String(200))
    created_by: str | None = Field(default=None, sa_type=String(100))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Nudge(SQLModel, table=True):
    """A hygiene nudge that was posted: one per ``key`` ever.

    ``cause:<incident id>``: "was this caused by a deploy?" under a resolved incident with no cause,
    and its answer; ``commits:<service id>:<ISO week>``: the hint to send commits with deploys.
    """

    __tablename__ = "nudge"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_type=String(64), unique=True, nullable=False)
    kind: str = Field(sa_type=String(16), nullable=False)  # cause | commits
    service_id: int = Field(sa_column=Column(Integer, ForeignKey("service.id", ondelete="CASCADE"), nullable=False))
    incident_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("incident.id", ondelete="CASCADE"), nullable=True))
    deploy_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("deploy.id", ondelete="CASCADE"), nullable=True))
    answer: str | None = Field(default=None, sa_type=String(16))  # caused_by | not_caused
    answer_deploy_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("deploy.id", ondelete="SET NULL"), nullable=True)
    )
    answered_by: str | None = Field(default=None, sa_type=String(100))
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
