"""``/incident severity|lead|note|followup|followups|channel|postmortem``: text in, a typed command or a UsageError out."""

from __future__ import annotations

import pytest

from bot.core import grammar as g


@pytest.mark.parametrize("text, expected", [
    ("severity INC-7 sev1", g.IncidentLifecycle(verb="severity", ref="INC-7", severity="sev1")),
    ("sev 7 2", g.IncidentLifecycle(verb="severity", ref="INC-7", severity="sev2")),
    ("lead inc-7", g.IncidentLifecycle(verb="lead", ref="INC-7")),
    ("lead INC-7 <@U0ANA|ana>", g.IncidentLifecycle(verb="lead", ref="INC-7", user="U0ANA")),
    ("note INC-7 error rate &lt;1% now", g.IncidentLifecycle(verb="note", ref="INC-7", text="error rate <1% now")),
    ("followup INC-7 <@U5> add a canary", g.IncidentLifecycle(verb="followup", ref="INC-7", text="add a canary", user="U5")),
    ("follow-up INC-7 add a canary", g.IncidentLifecycle(verb="followup", ref="INC-7", text="add a canary")),
    ("followups", g.IncidentLifecycle(verb="followups")),
    ("followups MINE", g.IncidentLifecycle(verb="followups", mine=True)),
    ("channel INC-7", g.IncidentLifecycle(verb="channel", ref="INC-7")),
    ("postmortem 7", g.IncidentLifecycle(verb="postmortem", ref="INC-7")),
])
def test_parses(text, expected):
    assert g.parse_incident_command(text) == expected


@pytest.mark.parametrize("text, says", [
    ("severity INC-7", "not a severity"), ("severity INC-7 critical", "not a severity"), ("severity", "needs an incident"),
    ("lead INC-7 ana", "not a person"), ("note INC-7", "needs some text"), ("followup INC-7 <@U5>", "needs some text"),
    ("followups all", "nothing or `mine`"), ("channel INC-7 now", "takes one incident"), ("postmortem D-3", "not an incident"),
])
def test_refuses_with_a_reason_and_the_usage(text, says):
    with pytest.raises(g.UsageError) as err:
        g.parse_incident_command(text)
    assert says in err.value.message and "/incident severity" in err.value.usage
