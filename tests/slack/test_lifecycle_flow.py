"""The incident lifecycle from Slack over real signed HTTP: the card's Mitigated, Cancel and I'm the
lead buttons with their confirm dialogs, ``/incident severity|lead|note|followup|followups``, the
**Done** buttons and the **Add to incident timeline** message shortcut."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from bot.slack.ids import Action, Block, View
from bot.store.models import Incident, IncidentEvent, IncidentFollowup
from tests.conftest import NOW
from tests.fake_slack import check_blocks, fill_ids
from tests.slack.conftest import ALERTS
from tests.slack.harness import TEAM_ID, assert_usage_error, button_labels, buttons, message_text


def card(app, channel: str = ALERTS) -> dict:
    (found,) = [m for m in app.fake.top_level(channel) if m["text"].startswith("INC-")]
    return found


def thread(app, channel: str = ALERTS) -> list[str]:
    return [m["text"] for m in app.fake.thread(channel, card(app, channel)["ts"])]


def declare(app, text="sev2 checkout Checkout 5xx", **kw):
    return app.slack.command("/incident", "declare " + text, channel=ALERTS, **kw)


def button(message: dict, action: str) -> dict:
    (el,) = [el for _, el in buttons(message) if el["action_id"] == action]
    return el


def shortcut(app, *, message: dict, channel: str, user: str = "U1"):
    """The message shortcut as Slack sends it (``message_action``), signed, over HTTP."""
    payload = {
        "type": "message_action", "callback_id": "add_to_timeline", "trigger_id": app.slack._trigger(),
        "user": app.slack._user(user), "team": {"id": TEAM_ID, "domain": "dora-tests"}, "token": "verification-token-unused",
        "channel": {"id": channel, "name": "general"}, "message": message, "message_ts": message["ts"],
        "response_url": app.fake.new_response_url(), "action_ts": f"{time.time():.6f}", "is_enterprise_install": False,
    }
    return app.slack.post(app.slack.form(payload))


def test_card_shows_lead_severity_elapsed_and_carries_confirm_dialogs(slack_app):
    app = slack_app
    app.slack.command("/deploy", "checkout 1.0", channel="C1")
    declare(app, "sev2 checkout Checkout 5xx cause=D-1")
    c = card(app)
    body = message_text(c)
    assert "Lead" in body and "none yet" in body and "SEV2" in body and "Open for" in body
    assert button_labels(c) == ["Acknowledge", "Mitigated", "Resolve", "Roll back D-1", "Post update", "I'm the lead", "Cancel"]
    for action in (Action.ROLLBACK, Action.CANCEL, Action.RESOLVE):
        dialog = button(c, action)["confirm"]
        assert dialog["title"]["text"] and dialog["text"]["text"] and dialog["confirm"]["text"] and dialog["deny"]["text"]
        assert len(dialog["title"]["text"]) <= 100 and len(dialog["text"]["text"]) <= 300
        assert len(dialog["confirm"]["text"]) <= 30 and len(dialog["deny"]["text"]) <= 30
    assert button(c, Action.ROLLBACK)["confirm"]["style"] == "danger"
    assert "confirm" not in button(c, Action.ACK) and "confirm" not in button(c, Action.MITIGATE)


def test_fake_slack_refuses_confirm_dialogs_and_messages_past_slacks_limits():
    ok = {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "a",
                                           "confirm": {"title": {"type": "plain_text", "text": "t"},
                                                       "text": {"type": "plain_text", "text": "x"},
                                                       "confirm": {"type": "plain_text", "text": "Yes"},
                                                       "deny": {"type": "plain_text", "text": "No"}}}]}
    assert check_blocks([ok]) == []
    for field, size in (("title", 101), ("text", 301), ("confirm", 31), ("deny", 31)):
        bad = json.loads(json.dumps(ok))
        bad["elements"][0]["confirm"][field]["text"] = "x" * size
        assert check_blocks([bad]), f"a confirm {field} of {size} characters passed"
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    assert check_blocks([section] * 50) == [] and check_blocks([section] * 51)


def test_mitigated_button_edits_the_card_in_place_and_adds_one_thread_line(slack_app):
    app, clock = slack_app, slack_app.clock
    declare(app)
    clock.advance(minutes=25)
    app.slack.press(card(app), "Mitigated", user="U2")
    (incident,) = app.all(Incident)
    assert incident.state == "mitigated" and incident.mitigated_at == NOW + timedelta(minutes=25)
    assert len(app.fake.top_level(ALERTS)) == 1, "edited in place, not posted again"
    body = message_text(card(app))
    assert "Mitigated" in body and "Time to restore" in body and "25m" in body
    assert button_labels(card(app)) == ["Resolve", "Post update", "I'm the lead", "Cancel"]
    assert thread(app) == [":adhesive_bandage: Mitigated by <@U2> after 25m"]
    app.slack.press(card(app), "Resolve", user="U2")
    assert len(thread(app)) == 3 and app.all(Incident)[0].restore_seconds == 25 * 60  # + the cause question


def test_cancel_button_asks_for_a_reason_in_a_form(slack_app):
    app = slack_app
    declare(app)
    stale = card(app)
    app.slack.press(stale, "Cancel", user="U2")
    view = app.fake.last_view()
    assert view["callback_id"] == View.CANCEL and view["private_metadata"] == "1"
    r = app.slack.submit(view, {Block.CANCEL_REASON: "  "}, user="U2")
    assert set(r.http.json()["errors"]) == {Block.CANCEL_REASON}
    assert app.all(Incident)[0].status is None
    r = app.slack.submit(view, {Block.CANCEL_REASON: "false alarm <!channel> & the check broke"}, user="U2")
    assert r.http.status == 200 and not r.http.body
    (incident,) = app.all(Incident)
    assert incident.status == "cancelled" and incident.cancel_reason == "false alarm <!channel> & the check broke"
    assert button_labels(card(app)) == [] and "Cancelled" in message_text(card(app))
    (line,) = thread(app)
    assert "Cancelled by <@U2>" in line and "&lt;!channel&gt;" in line, "outside text is escaped"
    r = app.slack.press(stale, "Cancel", user="U3")  # the old card: no form, the current state
    assert "INC-1 is already cancelled" in r.reply()["text"] and app.fake.last_view()["id"] == view["id"]
    app.slack.submit(view, {Block.CANCEL_REASON: "again"}, user="U2")  # the same form again: nothing changes
    assert app.all(Incident)[0].cancel_reason == "false alarm <!channel> & the check broke" and len(thread(app)) == 1


def test_im_the_lead_button_sets_the_lead_once(slack_app):
    app = slack_app
    declare(app)
    stale = card(app)
    app.slack.press(stale, "I'm the lead", user="U2")
    (incident,) = app.all(Incident)
    assert incident.lead == "U2"
    c = card(app)
    assert "I'm the lead" not in button_labels(c) and "<@U2>" in message_text(c).split("Lead", 1)[1]
    assert thread(app) == [":bust_in_silhouette: <@U2> set the lead: <@U2>"]
    r = app.slack.press(stale, "I'm the lead", user="U3")  # someone on the old card
    assert "<@U2> already leads INC-1" in r.reply()["text"]
    assert app.all(Incident)[0].lead == "U2" and len(thread(app)) == 1


def test_severity_and_lead_commands_keep_old_and_new_on_the_timeline(slack_app):
    app = slack_app
    declare(app)
    r = app.slack.command("/incident", "severity INC-1 sev1", user="U2", channel=ALERTS)
    assert "INC-1 is now sev1" in r.reply()["text"]
    assert app.all(Incident)[0].severity == "sev1" and "SEV1" in message_text(card(app))
    assert thread(app)[-1] == ":arrows_counterclockwise: <@U2> changed the severity: sev2 -&gt; sev1"
    assert "already sev1" in app.slack.command("/incident", "severity INC-1 1", channel=ALERTS).reply()["text"]
    assert_usage_error(app.slack.command("/incident", "severity INC-1 sev9"), "/incident severity", says="not a severity")

    r = app.slack.command("/incident", "lead INC-1", user="U3", channel=ALERTS)
    assert "<@U3> now leads INC-1" in r.reply()["text"]
    r = app.slack.command("/incident", "lead INC-1 <@U4|dana>", user="U3", channel=ALERTS)
    assert app.all(Incident)[0].lead == "U4"
    assert thread(app)[-1] == ":bust_in_silhouette: <@U3> set the lead: <@U3> -&gt; <@U4>"
    assert_usage_error(app.slack.command("/incident", "lead INC-1 dana"), "/incident lead", says="not a person")
    assert len([e for e in app.all(IncidentEvent) if e.kind in ("severity", "lead")]) == 3
    assert "No incident" in message_text(app.slack.command("/incident", "lead INC-9").reply())


def test_note_and_followups_with_done_buttons(slack_app):
    app = slack_app
    declare(app)
    r = app.slack.command("/incident", "note INC-1 error rate <b>back</b> to normal", user="U2", channel=ALERTS)
    assert "Added to the timeline of INC-1" in r.reply()["text"]
    assert thread(app)[-1] == ":pushpin: <@U2> added to the timeline: error rate &lt;b&gt;back&lt;/b&gt; to normal"
    assert_usage_error(app.slack.command("/incident", "note INC-1"), "/incident note", says="needs some text")

    r = app.slack.command("/incident", "followup INC-1 add a retry budget", user="U2", channel=ALERTS)
    assert "F-1 recorded on INC-1 for <@U2>" in r.reply()["text"]
    app.slack.command("/incident", "followup INC-1 <@U5|eve> alert on p99", user="U0ANA0001", channel=ALERTS)
    assert [(f.text, f.owner) for f in app.all(IncidentFollowup)] == [("add a retry budget", "U2"), ("alert on p99", "U5")]
    assert "recorded a follow-up: F-2 (<@U5>) alert on p99" in thread(app)[-1]

    listing = app.slack.command("/incident", "followups", user="U2").reply()
    assert "2 open follow-up" in message_text(listing) and button_labels(listing) == ["Done", "Done"]
    mine = app.slack.command("/incident", "followups mine", user="U5").reply()
    assert "alert on p99" in message_text(mine) and "retry budget" not in message_text(mine)
    # the ephemeral list as Slack shows it (block ids filled in) to the one who presses Done
    listing = dict(listing, channel="C1", ts="1.000001", blocks=fill_ids(listing["blocks"]))
    r = app.slack.press(listing, "Done", user="U2")
    (replaced,) = r.replies()
    assert replaced["replace_original"] is True and "F-1 done" in message_text(replaced) and button_labels(replaced) == ["Done"]
    done = app.all(IncidentFollowup)[0]
    assert done.done_at is not None and done.done_by == "U2"
    assert "finished a follow-up: F-1 add a retry budget" in thread(app)[-1]
    r = app.slack.press(listing, "Done", user="U3")  # the old list again
    assert "F-1 was already done (by <@U2>)" in r.reply()["text"]
    assert_usage_error(app.slack.command("/incident", "followups everyone"), "/incident followups")


def test_add_to_timeline_shortcut_stores_the_message_and_its_link(slack_app):
    app = slack_app
    declare(app, "sev2 checkout Checkout 5xx")
    declare(app, "sev3 search Search slow")
    with app.engine.begin() as conn:  # INC-2 has its own channel (created by /incident channel, tested elsewhere)
        conn.exec_driver_sql("UPDATE incident SET channel_id = 'C0INC2' WHERE id = 2")
    app.fake.set_channels([(ALERTS, "alerts"), ("C1", "general"), ("C0INC2", "inc-2-search-slow")])
    message = {"type": "message", "user": "U7", "ts": "1764060000.000100",
               "text": "root cause: &lt;script&gt; in the <https://example.com/cfg|config> by <@U7>"}
    r = shortcut(app, message=message, channel="C0INC2", user="U2")
    assert r.status == 200 and r.elapsed < 3
    view = app.fake.last_view()
    assert view["callback_id"] == View.TIMELINE
    select = next(b for b in view["blocks"] if b.get("block_id") == Block.TIMELINE_INCIDENT)["element"]
    assert select["initial_option"]["value"] == "2", "pre-selected in the incident's own channel"
    assert {o["value"] for o in select["options"]} == {"1", "2"}
    r = app.slack.submit(view, {}, user="U2")
    assert r.http.status == 200
    (note,) = [e for e in app.all(IncidentEvent) if e.kind == "note"]
    assert note.incident_id == 2 and note.actor == "U2"
    assert note.text == "root cause: <script> in the https://example.com/cfg by <@U7>"
    assert note.url == "https://dora-tests.slack.com/archives/C0INC2/p1764060000000100"
    (alert2,) = [m for m in app.fake.top_level(ALERTS) if m["text"].startswith("INC-2")]
    line = app.fake.thread(ALERTS, alert2["ts"])[-1]["text"]
    assert "&lt;script&gt;" in line and "<https://dora-tests.slack.com/archives/C0INC2/p1764060000000100|message>" in line

    # elsewhere nothing is pre-selected, and the form insists on a pick
    shortcut(app, message=dict(message, ts="1764060000.000200"), channel="C1", user="U2")
    view = app.fake.last_view()
    select = next(b for b in view["blocks"] if b.get("block_id") == Block.TIMELINE_INCIDENT)["element"]
    assert "initial_option" not in select
    r = app.slack.submit(view, {}, user="U2")
    assert set(r.http.json()["errors"]) == {Block.TIMELINE_INCIDENT}
    assert len([e for e in app.all(IncidentEvent) if e.kind == "note"]) == 1


def test_a_long_follow_up_list_stays_within_50_blocks(slack_app):
    from bot.services.lifecycle import add_followup
    from bot.store.db import session_scope

    app = slack_app
    declare(app)
    with session_scope(app.engine) as session:
        for n in range(60):
            add_followup(session, ref="INC-1", text=f"task {n}", now=NOW, actor="U2")
    listing = app.slack.command("/incident", "followups", user="U2").reply()
    assert len(listing["blocks"]) <= 50 and "60 open follow-ups" in message_text(listing)
    assert "12 more not shown" in message_text(listing) and button_labels(listing).count("Done") == 48
