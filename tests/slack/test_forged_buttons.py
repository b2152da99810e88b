"""A signed request whose button value is not one the app sent (a replayed or hand-made payload):
answered "not one of mine", nothing changed, nothing logged as an error (``_no_unexpected_errors``)."""

from __future__ import annotations

import pytest

from bot.store.models import IncidentFollowup
from tests.fake_slack import fill_ids
from tests.slack.conftest import ALERTS
from tests.slack.harness import ephemeral_answer, message_text


@pytest.mark.parametrize("value", ["abc", "99999999999999999999", "", "1:2"])
def test_a_forged_done_value_is_refused_and_changes_nothing(slack_app, value):
    app = slack_app
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    app.slack.command("/incident", "followup INC-1 add an alert", channel=ALERTS)
    listing = app.slack.command("/incident", "followups", channel="C1").reply()
    blocks = fill_ids(listing["blocks"])
    for block in blocks:
        if (block.get("accessory") or {}).get("text", {}).get("text") == "Done":
            block["accessory"]["value"] = value
    message = {**listing, "ts": "1700000000.000001", "channel": "C1", "blocks": blocks}
    answer = ephemeral_answer(app.slack.press(message, "Done"))
    assert "not one of mine" in message_text(answer), answer
    assert [f.done_at for f in app.all(IncidentFollowup)] == [None]
