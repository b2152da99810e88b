"""Block Kit builders (bot/slack/blocks.py): Slack's limits hold for any input, every message has a
plain text, and the incident card shows the right buttons in each state.

The limits are checked with the same validator the fake Slack server enforces.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.metrics import Aggregates, Distribution, Window, build_report
from bot.services.reminders import SNOOZE_CHOICES
from bot.slack import blocks as bk
from bot.slack.ids import Action, Block, View
from bot.store.models import Deploy, Incident, IncidentEvent
from tests.conftest import NOW, PRODUCTION
from tests.fake_slack import (
    block_warnings,
    check_blocks,
    check_message,
    check_view,
    text_warnings,
)

LONG = "Checkout returns 5xx for every EU customer after the cart rewrite " * 80  # ~5000 chars
SERVICE = "s" * 100  # the longest service name the store accepts


def ok_message(text: str, blocks: list[dict]) -> None:
    """What Slack would accept without a warning: valid blocks, a non-empty text within limits."""
    assert isinstance(text, str) and text.strip(), "every message has a plain text"
    error, details, soft = check_message({"text": text, "blocks": blocks})
    assert error is None and soft == [], details + soft


def deploy(id=1, version="1.2.3", **kw) -> Deploy:
    base = {"id": id, "service_id": 1, "environment": "production", "version": version, "deployed_at": NOW - timedelta(hours=1),
            "status": "success", "created_by": "U1", "created_at": NOW, "change_failure": False, "marked_failed": False}
    base.update(kw)
    return Deploy(**base)


def incident(state="open", id=7, title="Checkout 5xx", **kw) -> Incident:
    started = NOW - timedelta(minutes=45)
    base = {"id": id, "service_id": 1, "environment": "production", "severity": "sev2", "title": title, "started_at": started,
            "declared_at": started, "declared_by": "U1", "created_at": started}
    if state in ("acknowledged", "resolved"):
        base.update(acknowledged_at=started + timedelta(minutes=5), acknowledged_by="U2")
    if state == "resolved":
        base.update(resolved_at=started + timedelta(minutes=40), resolved_by="U2", restore_seconds=2400.0)
    base.update(kw)
    return Incident(**base)


def actions(blocks: list[dict]) -> list[dict]:
    return [el for b in blocks if b["type"] == "actions" for el in b["elements"]]


def labels(blocks: list[dict]) -> list[str]:
    return [el["text"]["text"] for el in actions(blocks)]


def all_text(blocks) -> str:
    out = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") in ("plain_text", "mrkdwn"):
                out.append(node["text"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(blocks)
    return "\n".join(out)


# --- small pieces -------------------------------------------------------------------------

def test_clip():
    assert bk.clip("abc", 3) == "abc"
    assert bk.clip("abcd", 3) == "ab…" and len(bk.clip("x" * 5000, 3000)) == 3000


def test_primitives_clip_to_slack_limits():
    assert len(bk.md("x" * 5000).to_dict()["text"]["text"]) == 3000
    assert len(bk.header("x" * 500).to_dict()["text"]["text"]) == 150
    b = bk.button("x" * 200, Action.ACK, "7").to_dict()
    assert len(b["text"]["text"]) == 75 and b["action_id"] == Action.ACK and b["value"] == "7"
    ctx = bk.context(*["part"] * 15).to_dict()
    assert len(ctx["elements"]) == 10
    assert check_blocks([bk.md("x" * 5000).to_dict(), bk.header("x" * 500).to_dict(), ctx]) == []


def test_dicts_keeps_at_most_50_blocks_and_says_how_many_were_cut():
    out = bk.dicts([bk.md(f"line {i}") for i in range(80)])
    assert len(out) == 50
    assert "31 more not shown" in all_text(out[-1:])
    assert check_blocks(out) == []
    assert len(bk.dicts([bk.md("x")] * 50)) == 50


def test_who():
    assert bk.who("U123") == "<@U123>" and bk.who("W9") == "<@W9>"
    assert bk.who(None) == "someone" and bk.who("alertmanager") == "alertmanager"


def test_ts_is_a_slack_date_token_with_a_fallback():
    token = bk.ts(datetime(2026, 11, 24, 9, 30, tzinfo=UTC))
    assert token.startswith(f"<!date^{int(datetime(2026, 11, 24, 9, 30, tzinfo=UTC).timestamp())}^")
    assert token.endswith("|2026-11-24 09:30 UTC>")


# --- errors and help ----------------------------------------------------------------------

def test_error_message_with_usage():
    text, blocks = bk.error_message("`x` is not a deploy", "`/deploy fail <D-n>`")
    ok_message(text, blocks)
    assert "x" in text and ":warning:" in all_text(blocks) and "/deploy fail" in all_text(blocks)


def test_error_message_with_a_huge_message():
    text, blocks = bk.error_message(LONG * 3, LONG)
    ok_message(text, blocks)


def test_help_message():
    from bot.core.grammar import DEPLOY_USAGE

    text, blocks = bk.help_message("/deploy", DEPLOY_USAGE)
    ok_message(text, blocks)
    assert "/deploy list" in all_text(blocks)


# --- deploys ------------------------------------------------------------------------------

def test_deploy_card():
    text, blocks = bk.deploy_card(deploy(url="https://ci.example/run/1", note="hotfix"), "checkout", commits=3)
    ok_message(text, blocks)
    body = all_text(blocks)
    assert "Deploy D-1" in text and "checkout" in text
    assert "3 commits" in body and "<https://ci.example/run/1|pipeline>" in body and "hotfix" in body and "<@U1>" in body
    assert actions(blocks) == []


def test_deploy_card_of_a_rollback_with_open_incidents_and_long_everything():
    incidents = [incident(id=i, title=LONG) for i in range(1, 9)]
    d = deploy(id=12, version="v" * 200, rollback_of_id=11, note=LONG * 3, url="https://ci.example/" + "p" * 1900, environment="e" * 64)
    text, blocks = bk.deploy_card(d, SERVICE, commits=1000, open_incidents=incidents, rolled_back=deploy(id=11, version="w" * 200))
    ok_message(text, blocks)
    body = all_text(blocks)
    assert text.startswith("Rollback D-12") and "reverts D-11" in body
    assert body.count("open incident") == 5, "at most five warnings"


def test_failed_deploy_card_says_so():
    _, blocks = bk.deploy_card(deploy(status="failure"), "checkout")
    assert "(failed)" in all_text(blocks)


def test_deploy_list():
    rows = [(deploy(id=i, version="v" * 200, change_failure=i % 3 == 0, rollback_of_id=i - 1 if i % 5 == 0 else None,
                    status="failure" if i % 7 == 0 else "success"), SERVICE) for i in range(1, 51)]
    text, blocks = bk.deploy_list(rows)
    ok_message(text, blocks)
    body = all_text(blocks)
    assert "failure" in body and "rollback of D-4" in body and "deploy failed" in body


def test_empty_deploy_list():
    text, blocks = bk.deploy_list([])
    ok_message(text, blocks)


# --- the incident card ----------------------------------------------------------------------

def test_open_incident_card():
    text, blocks = bk.incident_card(incident(), "checkout", now=NOW)
    ok_message(text, blocks)
    assert labels(blocks) == ["Acknowledge", "Mitigated", "Resolve", "Post update", "I'm the lead", "Cancel"]
    assert [el["action_id"] for el in actions(blocks)] == [
        Action.ACK, Action.MITIGATE, Action.RESOLVE, Action.UPDATE, Action.LEAD, Action.CANCEL,
    ]
    assert {el["value"] for el in actions(blocks)} == {"7"}
    assert actions(blocks)[0]["style"] == "primary"
    assert next(b for b in blocks if b["type"] == "actions")["block_id"] == Block.ACTIONS
    body = all_text(blocks)
    assert "INC-7" in text and "SEV2" in text and "(open)" in text
    assert "Open for" in body and "45m" in body and "<@U1>" in body
    assert "Time to restore" not in body


def test_acknowledged_card_drops_acknowledge_and_makes_mitigated_primary():
    _, blocks = bk.incident_card(incident("acknowledged"), "checkout", now=NOW)
    assert labels(blocks) == ["Mitigated", "Resolve", "Post update", "I'm the lead", "Cancel"]
    assert actions(blocks)[0]["style"] == "primary"
    assert "acknowledged by <@U2>" in all_text(blocks)


def test_resolved_card_has_time_to_restore_and_no_buttons():
    text, blocks = bk.incident_card(incident("resolved", resolution_note="flag off"), "checkout", now=NOW)
    ok_message(text, blocks)
    assert actions(blocks) == []
    body = all_text(blocks)
    assert "Time to restore" in body and "40m" in body and "Open for" not in body
    assert "Resolution:* flag off" in body and "resolved by <@U2>" in body
    assert "(resolved)" in text


@pytest.mark.parametrize("state", ["open", "acknowledged"])
def test_roll_back_button_with_a_suspect_or_a_cause(state):
    _, blocks = bk.incident_card(incident(state), "checkout", now=NOW, suspect=deploy(id=4, version="1.4"))
    rollback = next(el for el in actions(blocks) if el["action_id"] == Action.ROLLBACK)
    assert rollback["text"]["text"] == "Roll back D-4" and rollback["style"] == "danger" and rollback["value"] == "7"
    assert "Suspected deploy" in all_text(blocks)
    assert labels(blocks)[-3:] == ["Post update", "I'm the lead", "Cancel"]
    assert rollback["confirm"]["confirm"]["text"] == "Roll back" and rollback["confirm"]["style"] == "danger"

    _, blocks = bk.incident_card(incident(state), "checkout", now=NOW, cause=deploy(id=5), suspect=deploy(id=4))
    assert "Roll back D-5" in labels(blocks), "a confirmed cause wins over a suspect"
    assert "Caused by" in all_text(blocks) and "Suspected deploy" not in all_text(blocks)


def test_no_roll_back_button_once_rolled_back_or_resolved():
    _, blocks = bk.incident_card(incident(), "checkout", now=NOW, cause=deploy(id=5), rolled_back_by=deploy(id=6, version="1.0"))
    assert not any(el["action_id"] == Action.ROLLBACK for el in actions(blocks))
    assert "rolled back by D-6" in all_text(blocks)
    _, blocks = bk.incident_card(incident("resolved"), "checkout", now=NOW, cause=deploy(id=5))
    assert actions(blocks) == []


@pytest.mark.parametrize("state", ["open", "acknowledged", "resolved"])
def test_incident_card_with_very_long_everything(state):
    inc = incident(state, id=123456789, title=LONG, resolution_note=LONG * 2 if state == "resolved" else None, declared_by="x" * 100)
    text, blocks = bk.incident_card(inc, SERVICE, now=NOW, cause=deploy(id=987654321, version="v" * 200), rolled_back_by=None)
    ok_message(text, blocks)
    header = next(b for b in blocks if b["type"] == "header")
    assert header["text"]["text"].startswith(bk.STATE_ICON[state] + " INC-123456789")


def test_every_state_has_an_icon_and_every_severity_a_label():
    for severity in ("sev1", "sev2", "sev3", "sev4"):
        text, blocks = bk.incident_card(incident(severity=severity), "checkout", now=NOW)
        assert severity.upper() in text and bk.SEVERITY_ICON[severity] in all_text(blocks)


def test_timeline_lines():
    def event(kind, text=None, actor="U1"):
        return IncidentEvent(id=1, incident_id=7, at=NOW, kind=kind, actor=actor, text=text)

    assert bk.timeline_line(event("acknowledged")) == ":eyes: Acknowledged by <@U1>"
    assert (bk.timeline_line(event("resolved", "flag off"), restore_seconds=1800)
            == ":white_check_mark: Resolved by <@U1> after 30m: flag off")
    assert bk.timeline_line(event("declared", "sev2 Checkout 5xx")) == ":rotating_light: Declared by <@U1>"
    assert "rolled back: D-3 back to 1.0" in bk.timeline_line(event("rollback", "D-3 back to 1.0"))
    assert bk.timeline_line(event("snoozed", actor=None)) == "someone: snoozed"
    assert len(bk.timeline_line(event("update", LONG * 10))) < 3000


def test_incident_list():
    rows = [(incident(id=i, title=LONG), SERVICE) for i in range(1, 51)]
    text, blocks = bk.incident_list(rows, now=NOW)
    ok_message(text, blocks)
    assert "50 open" in text
    text, blocks = bk.incident_list([], now=NOW)
    ok_message(text, blocks)
    assert "No open incidents" in all_text(blocks)
    text, blocks = bk.incident_list([(incident(id=1), SERVICE), (incident("acknowledged", id=2), SERVICE)], now=NOW)
    assert text == "2 open incidents"
    first, second = all_text(blocks).splitlines()
    assert first.endswith("Checkout 5xx · open for 45m") and second.endswith("· acknowledged, open for 45m")


def test_incident_detail_has_the_timeline_and_no_buttons():
    events = [IncidentEvent(id=i, incident_id=7, at=NOW, kind="update", actor="U1", text=f"update {i}") for i in range(100)]
    text, blocks = bk.incident_detail(incident(), "checkout", events, now=NOW, cause=deploy(id=2))
    ok_message(text, blocks)
    assert actions(blocks) == []
    body = all_text(blocks)
    assert "update 99" in body and "update 70" in body and "update 69" not in body, "the last 30 events"


def test_incident_detail_with_long_updates_still_shows_the_latest():
    """Updates may be 2000 characters (post_update's limit): the newest must not be cut off."""
    events = [IncidentEvent(id=i, incident_id=7, at=NOW + timedelta(minutes=i), kind="update", actor="U1",
                            text=f"update {i}: " + "x" * 1000)
              for i in range(5)]
    text, blocks = bk.incident_detail(incident(), "checkout", events, now=NOW, cause=None)
    ok_message(text, blocks)
    assert "update 4:" in all_text(blocks), "the latest update is what people look for"


# --- modals ---------------------------------------------------------------------------------

def test_declare_modal_without_services_asks_for_a_name():
    view = bk.declare_modal(services=[], channel="C1")
    assert check_view(view) == []
    assert view["callback_id"] == View.DECLARE and view["private_metadata"] == "C1"
    by_id = {b["block_id"]: b for b in view["blocks"]}
    assert list(by_id) == [Block.TITLE, Block.SERVICE, Block.SEVERITY, Block.STARTED]
    assert by_id[Block.SERVICE]["element"]["type"] == "plain_text_input"
    assert by_id[Block.SEVERITY]["element"]["initial_option"]["value"] == "sev2"
    assert by_id[Block.STARTED]["optional"] is True
    assert by_id[Block.TITLE]["element"]["action_id"] == "value"


def test_declare_modal_with_many_services_and_deploys_stays_within_limits():
    services = [f"{i:03d}-" + "s" * 96 for i in range(150)]
    deploys = [deploy(id=i, version="v" * 200) for i in range(1, 151)]
    view = bk.declare_modal(services=services, service=services[3], deploys=deploys, channel="C1",
                            values={"title": "t" * 300, "started": "15m", "severity": "sev1"})
    assert check_view(view) == [], check_view(view)
    by_id = {b["block_id"]: b for b in view["blocks"]}
    service = by_id[Block.SERVICE]
    assert service["dispatch_action"] is True and service["element"]["action_id"] == Action.DECLARE_SERVICE
    assert len(service["element"]["options"]) == 100
    assert service["element"]["initial_option"]["value"] == services[3]
    assert len(by_id[Block.SUSPECT]["element"]["options"]) == 100
    assert by_id[Block.SUSPECT]["element"]["options"][0]["value"] == "1"
    assert by_id[Block.TITLE]["element"]["initial_value"] == "t" * 300
    assert by_id[Block.SEVERITY]["element"]["initial_option"]["value"] == "sev1"


def test_declare_modal_for_a_service_without_deploys():
    view = bk.declare_modal(services=["checkout"], service="checkout", deploys=[])
    assert check_view(view) == []
    assert Block.SUSPECT not in [b.get("block_id") for b in view["blocks"]]
    assert "No recent deploys" in all_text(view["blocks"])


def test_update_modal():
    view = bk.update_modal(incident(id=123456789012, title=LONG), SERVICE)
    assert check_view(view) == [], check_view(view)
    assert view["callback_id"] == View.UPDATE and view["private_metadata"] == "123456789012"
    assert any(b.get("block_id") == Block.UPDATE_TEXT for b in view["blocks"])


# --- the four keys card -----------------------------------------------------------------------

def report(agg: Aggregates, service: str | None = None, days: int = 30) -> dict:
    return build_report(window=Window(end=NOW, days=days), service=service, environments=PRODUCTION, timezone_name="UTC", agg=agg)


FULL = Aggregates(
    deploys=40, any_deploy_ever=True, deploy_dates=frozenset(date(2026, 11, d) for d in range(1, 25)), failed=6, rework=3,
    lead=Distribution(n=35, median=5400.0, p90=86400.0), invalid_lead_samples=2, unlinked_incidents=3,
    restore=Distribution(n=4, median=2700.0, p90=7200.0), recovery=Distribution(n=2, median=3600.0, p90=4000.0),
    open_incidents=2, oldest_open_started=NOW - timedelta(hours=5), mtta=Distribution(n=4, median=300.0, p90=600.0),
)


def test_dora_card_numbers_and_tiers():
    r, before = report(FULL, "checkout"), report(
        Aggregates(deploys=10, any_deploy_ever=True, failed=4, deploy_dates=frozenset({date(2026, 10, 3)})), "checkout"
    )
    text, blocks = bk.dora_card(r, before)
    ok_message(text, blocks)
    body = all_text(blocks)
    assert f"({r['deployment_frequency']['per_day']:.2f} deploys/day)" in body
    assert "15.0% (6 of 40)" in body and "7.5% (3 of 40)" in body and "1h 30m" in body and "45m" in body
    for key in ("deployment_frequency", "lead_time", "change_failure_rate", "failed_deployment_recovery_time", "time_to_restore"):
        assert r[key]["tier"] and f"*{r[key]['tier']}*" in body
    assert "n=40 deploys" in body and "n=35 commits" in body and "n=4 incidents" in body and "n=2 incidents" in body
    assert body.count("vs previous") == 6  # the five keys and time to restore
    assert "2 open" in body and "3 incidents not linked" in body
    assert "DORA five keys: checkout" in body and text.startswith("DORA five keys for `checkout`")
    assert "DORA 2023 benchmark" in body


def test_dora_card_groups_the_five_keys_by_factor_with_doras_names():
    body = all_text(bk.dora_card(report(FULL, "checkout"), None)[1])
    order = ["*Throughput*", "*Change lead time*", "*Deployment frequency*", "*Failed deployment recovery time*",
             "*Instability*", "*Change fail rate*", "*Deployment rework rate*", "*Time to restore (all incidents)*"]
    positions = [body.index(name) for name in order]
    assert positions == sorted(positions), body
    # rework has no tier of its own: its line shows no tier word
    rework_line = next(line for line in body.splitlines() if "Deployment rework rate" in line)
    assert not any(f"*{t}*" in rework_line for t in ("elite", "high", "medium", "low"))


def test_dora_card_window_end_on_the_report_time_zone_clock():
    berlin = build_report(window=Window(end=NOW, days=7), service=None, environments=PRODUCTION, timezone_name="Europe/Berlin", agg=FULL)
    context_line = all_text(bk.dora_card(berlin, None)[1])
    local = NOW.astimezone(ZoneInfo("Europe/Berlin"))
    assert f"to {local:%Y-%m-%d %H:%M} Europe/Berlin" in context_line and "dates in Europe/Berlin" in context_line
    assert local.hour != NOW.hour, "the test needs an hour that differs from UTC"
    utc = all_text(bk.dora_card(report(FULL), None)[1])
    assert f"to {NOW:%Y-%m-%d %H:%M} UTC" in utc and "dates in" not in utc


def test_dora_card_counts_read_in_the_singular_for_one():
    from dataclasses import replace

    body = all_text(bk.dora_card(report(replace(FULL, unlinked_incidents=1), "checkout"), None)[1])
    assert "1 incident not linked to a deploy" in body and "(s)" not in body


def test_dora_card_with_no_data():
    text, blocks = bk.dora_card(report(Aggregates()))
    ok_message(text, blocks)
    assert "n/a" in all_text(blocks)


def test_dora_card_for_the_longest_service_name():
    text, blocks = bk.dora_card(report(FULL, SERVICE, days=3660), report(FULL, SERVICE, days=3660))
    ok_message(text, blocks)


# --- reminders --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, first", [("ack", "Acknowledge"), ("update", "Post update")])
def test_reminder_message(kind, first):
    text, blocks = bk.reminder_message(incident(title=LONG), SERVICE, kind, now=NOW, snooze_choices=SNOOZE_CHOICES)
    ok_message(text, blocks)
    assert labels(blocks)[0] == first
    ids = [el["action_id"] for el in actions(blocks)]
    assert len(ids) == len(set(ids)) == 1 + len(SNOOZE_CHOICES)
    assert [el["value"] for el in actions(blocks)[1:]] == [f"7:{m}" for m in SNOOZE_CHOICES]


# --- escaping -----------------------------------------------------------------------------------
# In mrkdwn, & < > are control characters: user text and usage strings must be sent as &amp; &lt; &gt;
# (https://docs.slack.dev/messaging/formatting-message-text#escaping).

def test_usage_in_error_and_help_messages_is_escaped_for_mrkdwn():
    from bot.core.grammar import DEPLOY_USAGE

    for text, blocks in (bk.help_message("/deploy", DEPLOY_USAGE), bk.error_message("a deploy needs a version", DEPLOY_USAGE)):
        assert block_warnings(blocks) == [] and text_warnings(text) == [], block_warnings(blocks) + text_warnings(text)


def test_user_text_is_escaped_for_mrkdwn():
    text, blocks = bk.deploy_card(deploy(note="fixes <cart> & more", version="1.0<rc>"), "checkout",
                                  open_incidents=[incident(title="p99 <200ms missed")])
    assert block_warnings(blocks) == [] and text_warnings(text) == [], block_warnings(blocks) + text_warnings(text)
    text, blocks = bk.incident_card(incident(title="p99 <200ms missed", state="resolved", resolution_note="cache <off>"), "checkout",
                                    now=NOW)
    assert block_warnings(blocks) == [] and text_warnings(text) == [], block_warnings(blocks) + text_warnings(text)


def test_links_mentions_and_dates_are_not_escaped():
    _, blocks = bk.deploy_card(deploy(url="https://ci.example/run/1"), "checkout")
    assert block_warnings(blocks) == []
    assert "<https://ci.example/run/1|pipeline>" in all_text(blocks) and "<@U1>" in all_text(blocks) and "<!date^" in all_text(blocks)
