"""The postmortem draft of incidents without a cause, cancelled, still open (pure rendering on a real store)."""

from __future__ import annotations

from datetime import timedelta

from bot.core.inputs import IncidentInput
from bot.services.incidents import cancel_incident, declare_incident, mitigate_incident
from bot.services.postmortem import markdown
from bot.store.db import session_scope
from tests.conftest import NOW


def test_drafts_say_what_is_not_known_yet(engine):
    with session_scope(engine) as session:
        declare_incident(session,
                         data=IncidentInput(service="search", started_at=NOW, severity="sev3", title="Slow | results\n# not a heading"),
                         now=NOW, actor="U1")
        declare_incident(session, data=IncidentInput(service="search", started_at=NOW, severity="sev4", title="Blip"), now=NOW, actor="U1")
        mitigate_incident(session, ref="INC-1", now=NOW + timedelta(minutes=7), actor="U2")
        cancel_incident(session, ref="INC-2", reason="false alarm", now=NOW + timedelta(minutes=1), actor="U2")
    with session_scope(engine, write=False) as session:
        open_one, cancelled = markdown(session, "INC-1"), markdown(session, "INC-2")
    assert open_one.startswith("# Postmortem (draft): INC-1 Slow \\| results # not a heading\n")
    assert "\n# not a heading" not in open_one, "outside text cannot start a heading"
    assert "- **Lead:** none assigned" in open_one and "| Resolved | — |" in open_one
    assert "- **Time to restore:** 7m" in open_one and "No causing deploy is linked." in open_one
    assert "- **Failed deployment recovery time:** n/a (no causing deploy linked)" in open_one
    assert "None recorded yet" in open_one and "@U2 · mitigated" in open_one
    assert "- **State:** cancelled (false alarm)" in cancelled and "(not restored yet)" in cancelled


def test_import_keeps_the_lead_and_refuses_one_that_is_not_a_slack_user(engine):
    from sqlmodel import select

    from bot.store.models import Incident
    from tests.dbutil import load

    line = {"type": "incident", "id": "i1", "service": "checkout", "severity": "sev2", "started_at": "2026-11-24T09:00:00Z"}
    report = load(engine, [dict(line, lead="U0LEAD1")], now=NOW)
    assert report.committed and report.errors == []
    with session_scope(engine, write=False) as session:
        assert session.exec(select(Incident.lead)).all() == ["U0LEAD1"]
    bad = load(engine, [dict(line, id="i2", lead="ana")], now=NOW)
    assert not bad.committed and "lead" in str(bad.errors)


def test_the_timeline_reads_as_text_not_slack_markup(engine):
    """The draft is a Markdown file people edit outside Slack: the lead, follow-up owners and the
    incident channel read ``@U…`` and ``#inc-…``, not Slack's ``<@U…>`` / ``<#C…>`` markup."""
    from bot.core.incident_events import EventKind
    from bot.services.lifecycle import add_followup, set_lead
    from bot.store.models import Incident, IncidentEvent

    with session_scope(engine) as session:
        declare_incident(session, data=IncidentInput(service="search", started_at=NOW, severity="sev1", title="Search down"),
                         now=NOW, actor="U0DECL1")
        set_lead(session, ref="INC-1", user="U0LEAD1", now=NOW, actor="U0DECL1")
        add_followup(session, ref="INC-1", text="add an alert", now=NOW, actor="U0DECL1", owner="U0OWNER1")
        incident = session.get(Incident, 1)
        incident.channel_id, incident.channel_name = "C0INC1", "inc-1-search-down"
        session.add(IncidentEvent(incident_id=1, at=NOW, kind=EventKind.CHANNEL, actor=None, text="<#C0INC1>"))
    with session_scope(engine, write=False) as session:
        draft = markdown(session, "INC-1")
    timeline = draft[draft.index("## Timeline"):draft.index("## Follow-ups")]
    assert "<@" not in timeline and "<#" not in timeline, timeline
    assert "lead: @U0LEAD1" in timeline and "(@U0OWNER1) add an alert" in timeline
    assert "channel: #inc-1-search-down" in timeline, timeline
