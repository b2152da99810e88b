"""``/dora watch add|list|remove`` over real HTTP: admins only for changes, clear answers for bad
input (naming the part that is wrong) with nothing stored, and the digest's line for a firing watch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.scheduler import jobs
from bot.store.models import Watch
from tests.conftest import NOW
from tests.dbutil import load
from tests.slack.harness import assert_usage_error, ephemeral_answer, message_text, sqlite_only


@pytest.fixture
def bound_jobs():
    """Restore whatever runtime the scheduler's jobs were bound to before the test."""
    before = jobs._runtime
    yield
    jobs._runtime = before


def seed(app) -> None:
    records = [
        {"type": "deploy", "id": f"d{i}", "service": "checkout", "environment": "production", "version": f"1.{i}",
         "deployed_at": (NOW - timedelta(days=i)).isoformat(), "status": "success", "change_failure": i == 1}
        for i in range(1, 5)
    ]
    assert load(app.engine, records, now=NOW).committed


def test_watch_add_list_remove(make_slack_app):
    app = make_slack_app(admins=("UADMIN",))
    seed(app)
    slack = app.slack
    added = slack.command("/dora", "watch add cfr&gt;15% service=Checkout days=14 <#C0ENG|eng>", user="UADMIN").reply()
    assert added["response_type"] == "in_channel"
    text = message_text(added)
    assert ("#1" in text and "`cfr>15%`" in text and "above 15%" in text and "`checkout`" in text and "14 days" in text
            and "<#C0ENG>" in text)
    (watch,) = app.all(Watch)
    assert (watch.metric, watch.op, watch.threshold, watch.days, watch.channel, watch.state) == ("cfr", ">", "15%", 14, "C0ENG", "ok")

    for condition, words in (("lt&gt;2d", "above 2d"), ("ttr &gt; 4h", "failed deployment recovery time above 4h"),
                             ("df&lt;1/day", "below 1/day"), ("df&lt;3/week", "below 3/week"), ("rework&gt;=10%", "at or above 10%")):
        answer = slack.command("/dora", f"watch add {condition} <#C0ENG|eng>", user="UADMIN").reply()
        assert words in message_text(answer) and "all services" in message_text(answer), answer
    dup = message_text(ephemeral_answer(
        slack.command("/dora", "watch add cfr &gt; 15% service=checkout days=14 <#C0ENG|eng>", user="UADMIN")
    ))
    assert "watch #1 already watches `cfr>15%`" in dup
    one_day = message_text(slack.command("/dora", "watch add lt&gt;1d days=1 <#C0ENG|eng>", user="UADMIN").reply())
    assert "over 1 day," in one_day and "1 days" not in one_day
    listing = message_text(slack.command("/dora", "watch list", user="U1").reply())
    assert len(listing.splitlines()) == 7 and "not checked yet" in listing and "`df<3/week`" in listing

    removed = slack.command("/dora", "watch remove 1", user="UADMIN").reply()
    assert "removed" in removed["text"] and "cfr>15%" in message_text(removed)
    assert [w.id for w in app.all(Watch)] == [2, 3, 4, 5, 6, 7]
    assert "No watch `1`" in message_text(ephemeral_answer(slack.command("/dora", "watch remove 1", user="UADMIN")))
    assert app.fake.escaping == [], "conditions like df<1/day are sent as &lt;:\n" + "\n".join(app.fake.escaping)


def test_watch_changes_are_for_admins(make_slack_app):
    app = make_slack_app(admins=("UADMIN",))
    for text in ("watch add cfr&gt;15% #eng", "watch remove 1"):
        answer = ephemeral_answer(app.slack.command("/dora", text, user="U1"))
        assert "admins" in message_text(answer)
    assert app.all(Watch) == []
    assert app.fake.calls_of("conversations.list") == [], "refused before looking anything up"
    assert "No watches yet" in app.slack.command("/dora", "watch list", user="U1").reply()["text"]


@sqlite_only
@pytest.mark.parametrize(
    "text, says",
    [
        ("watch add cfr&gt;abc <#C1>", "percentage"),
        ("watch add cfr&gt;15 <#C1>", "percentage"),
        ("watch add cfr&gt;150% <#C1>", "at most 100%"),
        ("watch add mttr&gt;1h <#C1>", "`mttr` is not a metric"),
        ("watch add lt&gt;2x <#C1>", "`2x` is not a duration"),
        ("watch add df&lt;1/year <#C1>", "per day or per week"),
        ("watch add cfr15% <#C1>", "no comparison"),
        ("watch add cfr&gt;15%", "needs a channel"),
        ("watch add <#C1>", "needs a condition"),
        ("watch add cfr&gt;15% <#C1> <#C2>", "one channel"),
        ("watch add cfr&gt;15% days=0 <#C1>", "days=0"),
        ("watch add cfr&gt;15% days=99999999999999999999 <#C1>", "days="),
        ("watch add cfr&gt;15% servce=checkout <#C1>", "unknown option `servce=`"),
        ("watch add cfr&gt;15% service=a team=b <#C1>", "not both"),
        ("watch add cfr&gt;15% ops", "needs a channel"),
        ("watch add cfr&gt;15% #Bad_Name!", "not a channel"),
        ("watch remove", "number"),
        ("watch remove D-1", "number"),
        ("watch remove ²", "number"),  # str.isdigit says yes, int() says no: one digits rule
        ("watch frobnicate", "unknown watch subcommand"),
        ("watch add cfr&gt;15%&lt;script&gt; <#C1>", "percentage"),
    ],
)
def test_bad_watch_input_says_what_is_wrong_and_stores_nothing(slack_app, text, says):
    # the hint line is the form of the subcommand typed (newcomer: one line, not the whole usage)
    form = "/dora watch remove <id>" if text.startswith("watch remove") else "/dora watch add <metric><op><value>"
    assert_usage_error(slack_app.slack.command("/dora", text), form, says=says)
    assert slack_app.all(Watch) == []


def test_unknown_service_and_team_scopes_are_refused_clearly(slack_app):
    seed(slack_app)
    answer = message_text(ephemeral_answer(slack_app.slack.command("/dora", "watch add cfr&gt;15% service=chekout <#C1>")))
    assert "No service called `chekout`" in answer and "checkout" in answer
    answer = message_text(ephemeral_answer(slack_app.slack.command("/dora", "watch add cfr&gt;15% team=payments <#C1>")))
    assert "No team called `payments`" in answer
    remove = message_text(ephemeral_answer(slack_app.slack.command("/dora", "watch remove 99999999999999999999")))
    assert "No watch" in remove
    assert slack_app.all(Watch) == []


def test_a_firing_watch_gets_a_line_in_the_digest_of_its_scope(slack_app, bound_jobs):
    app = slack_app
    seed(app)
    app.slack.command("/dora", "watch add cfr&gt;15% service=checkout <#C0ENG|eng>")
    app.slack.command("/dora", "watch add lt&gt;1h <#C0ENG|eng>")  # n/a: no commits, never fires
    jobs.bind(app.rt)
    for hours in (0, 1):
        app.clock.now = NOW + timedelta(hours=hours)
        jobs.check_watches()
    app.slack.settle()
    (post,) = [p for p in app.fake.posts("C0ENG") if p["text"].startswith("Watch #")]
    assert "Watch #1 fired" in post["text"] and "25.0%" in post["text"]

    app.slack.command("/dora", "digest add <#C0DIG|digests> daily service=checkout")
    app.slack.command("/dora", "digest send 1")
    (digest,) = [p for p in app.fake.posts("C0DIG") if "digest" in p["text"].lower()]
    body = message_text(digest)
    assert "Watches firing (1)" in body and "#1 change fail rate for `checkout` is 25.0% (1 of 4 deploys), above 15%" in body
    assert "#2" not in body.split("Watches firing")[1]
    listing = message_text(app.slack.command("/dora", "watch list").reply())
    assert "firing since" in listing and "ok (last n/a)" in listing
    assert app.fake.escaping == [], "\n".join(app.fake.escaping)


def test_a_team_watch_reads_the_teams_pooled_numbers(slack_app):
    seed(slack_app)
    slack_app.slack.command("/dora", "team set payments checkout")
    answer = message_text(ephemeral_answer(slack_app.slack.command("/dora", "watch add cfr&gt;15% team=Payments <#C1>")))
    assert "team `payments`" in answer, answer
    (watch,) = slack_app.all(Watch)
    assert watch.team == "payments" and watch.service_id is None
