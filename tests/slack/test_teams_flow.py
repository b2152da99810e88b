"""Teams over real HTTP: ``/dora team set|list|remove`` (admins for changes), ``team=`` on the
card, explain and digests, and App Home showing the viewer's teams first."""

from __future__ import annotations

from bot.store.models import DigestSubscription, Service, Team, TeamMember
from tests.slack.harness import ephemeral_answer, message_text


def _history(app):
    slack = app.slack
    for text in ("checkout 1.0", "checkout 1.1", "billing 3.0", "search 9.0", "search 9.1", "search 9.2"):
        slack.command("/deploy", text)
    app.clock.advance(minutes=1)  # windows end now (exclusive)


def test_team_set_is_for_admins_and_names_only_known_services(make_slack_app):
    app = make_slack_app(admins=("UADMIN",))
    slack = app.slack
    assert "Only the admins" in message_text(slack.command("/dora", "team set payments checkout,billing", user="U2").reply())
    assert app.all(Team) == []
    typo = message_text(slack.command("/dora", "team set payments chekout,billing", user="UADMIN").reply())
    assert "No service called `chekout`" in typo and "Did you mean `checkout`?" in typo
    assert app.all(Team) == [] and all(s.team_id is None for s in app.all(Service)), "nothing stored"

    done = slack.command("/dora", "team set payments checkout, billing", user="UADMIN").reply()
    assert done["response_type"] == "in_channel" and "created team *payments*: `checkout`, `billing`" in done["text"]
    (team,) = app.all(Team)
    assert sorted(s.name for s in app.all(Service) if s.team_id == team.id) == ["billing", "checkout"]

    # A service belongs to at most one team: setting it on another moves it.
    moved = slack.command("/dora", "team set Core billing", user="UADMIN").reply()["text"]
    assert "`billing` left team payments" in moved
    listing = message_text(slack.command("/dora", "team list", user="U2").reply())
    assert "*Core*: `billing`" in listing and "*payments*: `checkout`" in listing

    assert "Only the admins" in message_text(slack.command("/dora", "team remove core", user="U2").reply())
    gone = slack.command("/dora", "team remove core", user="UADMIN").reply()["text"]
    assert "Team *Core* removed" in gone and "`billing` keep their history" in gone
    assert [t.name for t in app.all(Team)] == ["payments"]


def test_the_card_and_explain_pool_the_teams_services(slack_app):
    app, slack = slack_app, slack_app.slack
    _history(app)
    slack.command("/dora", "team set payments checkout,billing")
    card = slack.command("/dora", "team=payments days=7").reply()
    assert card["response_type"] == "in_channel"
    text = message_text(card)
    assert "team payments" in text
    assert "n=3 deploys" in text, "checkout's two and billing's one, not search's three"
    listed = message_text(slack.command("/dora", "explain df team=Payments").reply())
    assert "team `payments`" in listed and "3 successful deploys" in listed
    assert "`checkout`" in listed and "`billing`" in listed and "`search`" not in listed
    unknown = message_text(slack.command("/dora", "team=paymnts").reply())
    assert "No team called `paymnts`" in unknown and "payments" in unknown
    both = message_text(ephemeral_answer(slack.command("/dora", "checkout team=payments")))
    assert "a service or a team, not both" in both


def test_a_team_digest_is_stored_on_the_subscription_and_sent_for_the_team(slack_app):
    app, slack, fake = slack_app, slack_app.slack, slack_app.fake
    _history(app)
    slack.command("/dora", "team set payments checkout,billing")
    added = slack.command("/dora", "digest add <#C1|general> team=payments").reply()["text"]
    assert "team `payments`" in added
    (sub,) = app.all(DigestSubscription)
    assert (sub.team, sub.service) == ("payments", None)
    assert "team `payments`" in message_text(slack.command("/dora", "digest list").reply())
    slack.command("/dora", f"digest send {sub.id}")
    app.slack.settle()
    posted = [message_text(p) for p in fake.posts("C1") if "digest" in p["text"].lower()]
    assert posted and "team payments" in posted[0], posted


def test_app_home_shows_the_viewers_teams_first_from_a_pick_or_a_user_group(slack_app):
    app, slack, fake = slack_app, slack_app.slack, slack_app.fake
    _history(app)
    slack.command("/dora", "team set payments checkout,billing")
    slack.command("/dora", "team set Search search")
    fake.set_usergroups([{"id": "S1", "handle": "payments", "name": "Payments Team", "users": ["U5"]}])

    slack.home_opened(user="U5")
    home = fake.published["U5"]
    headers = [b["text"]["text"] for b in home["blocks"] if b["type"] == "header"]
    assert headers[0] == "Your teams", headers
    assert "*payments*" in message_text(home) and "*Search*" not in message_text(home)
    assert len(fake.calls_of("usergroups.list")) == 1 and len(fake.calls_of("usergroups.users.list")) == 1
    slack.home_opened(user="U5")
    assert len(fake.calls_of("usergroups.list")) == 1, "user groups come from the cache"

    # U6 is in no group: picks Search in App Home.
    slack.home_opened(user="U6")
    home = fake.published["U6"]
    assert "Your teams" not in [b["text"]["text"] for b in home["blocks"] if b["type"] == "header"]
    picker = next(b for b in home["blocks"] if b.get("block_id") == "home_teams")["accessory"]
    search = next(o for o in picker["options"] if o["text"]["text"] == "Search")
    slack.post(slack.form(_multi_select(picker, [search], user="U6")))
    slack.settle()
    assert [(m.user, m.team_id) for m in app.all(TeamMember, order=TeamMember.user)] == [("U6", int(search["value"]))]
    home = fake.published["U6"]
    assert "*Search*" in message_text(home)
    picker = next(b for b in home["blocks"] if b.get("block_id") == "home_teams")["accessory"]
    assert [o["value"] for o in picker["initial_options"]] == [search["value"]]


def _multi_select(element: dict, options: list[dict], *, user: str) -> dict:
    """The block_actions payload of a multi_static_select changed in App Home."""
    return {
        "type": "block_actions", "user": {"id": user, "username": user, "team_id": "T0TEST"}, "api_app_id": "A0TEST",
        "token": "x", "trigger_id": "1.2.3", "team": {"id": "T0TEST", "domain": "dora-tests"},
        "container": {"type": "view", "view_id": "V1"}, "view": {"id": "V1", "type": "home"},
        "actions": [{"type": "multi_static_select", "action_id": element["action_id"], "block_id": "home_teams",
                     "selected_options": options, "action_ts": "1.0"}],
    }


def test_bad_names_are_refused_naming_what_is_wrong_and_nothing_is_stored(slack_app):
    app, slack = slack_app, slack_app.slack
    before = app.counts()
    bad_team = message_text(ephemeral_answer(slack.command("/dora", "team set pay!ments checkout")))
    assert "not a team name" in bad_team
    bad_service = message_text(ephemeral_answer(slack.command("/dora", "service rename checkout bad!name")))
    assert "not a service name" in bad_service
    no_team = message_text(ephemeral_answer(slack.command("/dora", "digest add <#C1|general> team=nobody")))
    assert "No team called `nobody`" in no_team
    assert "needs a team and its services" in message_text(ephemeral_answer(slack.command("/dora", "team set payments")))
    assert app.counts() == before and app.all(Team) == []
