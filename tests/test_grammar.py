"""The slash-command grammar (bot/core/grammar.py): every form, channels, options, errors with usage."""

from __future__ import annotations

import pytest

from bot.core import grammar as g
from bot.core.grammar import (
    ChannelRef,
    DeployFail,
    DeployList,
    DeployRecord,
    DeployRollback,
    DigestAdd,
    DigestList,
    DigestRemove,
    DigestSend,
    DoraAlerts,
    DoraCard,
    DoraExplain,
    Help,
    IncidentAction,
    IncidentDeclare,
    IncidentList,
    IncidentModal,
    UsageError,
    parse_channel,
    parse_deploy_command,
    parse_dora_command,
    parse_incident_command,
)


def usage_error(parse, text, *, command, says=None) -> UsageError:
    with pytest.raises(UsageError) as err:
        parse(text)
    exc = err.value
    assert exc.command == command and exc.usage == g.USAGE[command]
    assert exc.message
    if says is not None:
        assert says.lower() in exc.message.lower(), exc.message
    return exc


# --- /deploy ------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "-h", "--help"])
def test_deploy_help(text):
    assert parse_deploy_command(text) == Help("deploy")


def test_deploy_record_minimal():
    assert parse_deploy_command("checkout 1.2.3") == DeployRecord(service="checkout", version="1.2.3")


def test_deploy_record_every_option_anywhere():
    parsed = parse_deploy_command("env=staging checkout commit=abc1234 1.2.3 committed=2h url=https://ci.example/run/9 hotfix for the cart")
    assert parsed == DeployRecord(
        service="checkout", version="1.2.3", environment="staging", commit="abc1234", committed="2h",
        url="https://ci.example/run/9", note="hotfix for the cart",
    )


def test_deploy_record_understands_slack_escapes():
    # With should_escape, Slack sends typed links as <url> or <url|label>, and escapes < > &.
    parsed = parse_deploy_command("checkout 1.2.3 url=<https://ci.example/run/9|ci.example/run/9> fixes &lt;cart&gt; &amp; more")
    assert parsed.url == "https://ci.example/run/9"
    assert parsed.note == "fixes <cart> & more"
    assert parse_deploy_command("checkout 1.2.3 url=<https://ci.example/run/9>").url == "https://ci.example/run/9"


def test_deploy_record_extra_whitespace():
    assert parse_deploy_command("  checkout\t 1.2.3   env=prod  ") == DeployRecord(service="checkout", version="1.2.3", environment="prod")


@pytest.mark.parametrize(
    "text, says",
    [
        ("checkout", "service and a version"),
        ("env=staging checkout", "service and a version"),
        ("checkout 1.2.3 committed=2h", "commit="),
        ("checkout 1.2.3 env=", "env="),
        ("checkout 1.2.3 env=a env=b", "twice"),
    ],
)
def test_deploy_record_errors(text, says):
    usage_error(parse_deploy_command, text, command="deploy", says=says)


@pytest.mark.parametrize("text", ["checkout 1.2.3 enviroment=staging", "checkout envv=staging 1.2.3", "envv=staging checkout 1.2.3"])
def test_deploy_record_rejects_an_unknown_option(text):
    """A mistyped option must not silently become the version or the note (the product: bad argument
    -> usage, nothing stored)."""
    usage_error(parse_deploy_command, text, command="deploy", says="unknown option")


def test_deploy_list():
    assert parse_deploy_command("list") == DeployList()
    assert parse_deploy_command("LIST checkout env=staging limit=5") == DeployList(service="checkout", environment="staging", limit=5)
    assert parse_deploy_command("list limit=50").limit == 50


@pytest.mark.parametrize(
    "text, says",
    [
        ("list a b", "at most one service"),
        ("list limit=0", "limit=0"),
        ("list limit=51", "1 to 50"),
        ("list limit=ten", "whole number"),
        ("list foo=bar", "unknown option `foo=`"),
    ],
)
def test_deploy_list_errors(text, says):
    usage_error(parse_deploy_command, text, command="deploy", says=says)


@pytest.mark.parametrize("ref", ["D-12", "d-12", "D12", "12"])
def test_deploy_fail(ref):
    assert parse_deploy_command(f"fail {ref} broke the cart") == DeployFail(ref="D-12", reason="broke the cart")
    assert parse_deploy_command(f"fail {ref}") == DeployFail(ref="D-12")


@pytest.mark.parametrize("text, says", [("fail", "needs a deploy"), ("fail checkout", "not a deploy"), ("fail INC-3", "not a deploy")])
def test_deploy_fail_errors(text, says):
    usage_error(parse_deploy_command, text, command="deploy", says=says)


def test_deploy_rollback():
    assert parse_deploy_command("rollback checkout") == DeployRollback(service="checkout")
    assert parse_deploy_command("rollback checkout to=1.0") == DeployRollback(service="checkout", to="1.0")
    assert parse_deploy_command("rollback to=1.0 checkout") == DeployRollback(service="checkout", to="1.0")


@pytest.mark.parametrize("text, says", [
    ("rollback", "exactly one service"), ("rollback a b", "exactly one service"), ("rollback checkout from=1", "unknown option"),
])
def test_deploy_rollback_errors(text, says):
    usage_error(parse_deploy_command, text, command="deploy", says=says)


# --- /incident ----------------------------------------------------------------------------

def test_incident_without_text_opens_the_modal():
    assert parse_incident_command("") == IncidentModal()
    assert parse_incident_command("  ") == IncidentModal()


@pytest.mark.parametrize("text", ["help", "Help", "-h", "--help"])
def test_incident_help(text):
    assert parse_incident_command(text) == Help("incident")


def test_incident_declare():
    assert parse_incident_command("declare sev2 checkout Checkout 5xx") == IncidentDeclare(
        severity="sev2", service="checkout", title="Checkout 5xx"
    )
    assert parse_incident_command("declare SEV1 checkout Down started=15m cause=D-4") == IncidentDeclare(
        severity="sev1", service="checkout", title="Down", started="15m", cause="D-4"
    )
    assert parse_incident_command("declare 3 checkout Slow cause=4").severity == "sev3"
    assert parse_incident_command("declare sev2 checkout cause=d4 Title after option").title == "Title after option"


def test_incident_declare_said_shorter_with_the_severity_first():
    assert parse_incident_command("SEV1 checkout Checkout down started=10m") == IncidentDeclare(
        severity="sev1", service="checkout", title="Checkout down", started="10m"
    )
    usage_error(parse_incident_command, "sev2 checkout", command="incident", says="severity, a service and a title")
    usage_error(parse_incident_command, "sev9 checkout Down", command="incident", says="unknown subcommand")


def test_incident_declare_title_keeps_slack_text():
    parsed = parse_incident_command("declare sev4 search Results empty for <@U123> &amp; others")
    assert parsed.title == "Results empty for <@U123> & others"


@pytest.mark.parametrize(
    "text, says",
    [
        ("declare", "severity, a service and a title"),
        ("declare sev2 checkout", "severity, a service and a title"),
        ("declare sev5 checkout Down", "not a severity"),
        ("declare high checkout Down", "not a severity"),
        ("declare sev2 checkout Down cause=checkout", "not a deploy"),
        ("declare sev2 checkout Down started=", "started="),
        ("declare sev2 checkout Down cause=D-1 cause=D-2", "twice"),
    ],
)
def test_incident_declare_errors(text, says):
    usage_error(parse_incident_command, text, command="incident", says=says)


def test_incident_list():
    assert parse_incident_command("list") == IncidentList()
    usage_error(parse_incident_command, "list all", command="incident", says="no arguments")


@pytest.mark.parametrize("verb, expected", [("show", "show"), ("ack", "ack"), ("acknowledge", "ack"), ("resolve", "resolve")])
@pytest.mark.parametrize("ref", ["INC-7", "inc-7", "INC7", "7"])
def test_incident_actions(verb, expected, ref):
    assert parse_incident_command(f"{verb} {ref}") == IncidentAction(verb=expected, ref="INC-7")


def test_incident_resolve_update_and_cause():
    assert parse_incident_command("resolve INC-7 flag turned off") == IncidentAction(verb="resolve", ref="INC-7", text="flag turned off")
    assert parse_incident_command("update 7 rolled back, watching") == IncidentAction(
        verb="update", ref="INC-7", text="rolled back, watching"
    )
    assert parse_incident_command("cause INC-7 D-12") == IncidentAction(verb="cause", ref="INC-7", deploy="D-12")
    assert parse_incident_command("cause 7 12") == IncidentAction(verb="cause", ref="INC-7", deploy="D-12")


@pytest.mark.parametrize(
    "text, says",
    [
        ("ack", "needs an incident"),
        ("show", "needs an incident"),
        ("ack checkout", "not an incident"),
        ("ack D-4", "not an incident"),
        ("ack INC-7 now", "one incident"),
        ("show INC-7 INC-8", "one incident"),
        ("update INC-7", "needs some text"),
        ("cause INC-7", "one deploy"),
        ("cause INC-7 D-1 D-2", "one deploy"),
        ("cause INC-7 checkout", "not a deploy"),
        ("open sev2 checkout", "unknown subcommand `open`"),
    ],
)
def test_incident_errors(text, says):
    usage_error(parse_incident_command, text, command="incident", says=says)


# --- /dora --------------------------------------------------------------------------------

def test_dora_card():
    assert parse_dora_command("") == DoraCard()
    assert parse_dora_command("checkout") == DoraCard(service="checkout")
    assert parse_dora_command("checkout days=7") == DoraCard(service="checkout", days=7)
    assert parse_dora_command("days=90") == DoraCard(days=90)


@pytest.mark.parametrize("text", ["help", "-h", "--help", "HELP"])
def test_dora_help(text):
    assert parse_dora_command(text) == Help("dora")


@pytest.mark.parametrize(
    "text, says",
    [
        ("checkout payments", "I read `checkout` as a service; `payments` is unexpected"),
        ("days=0", "days=0"),
        ("days=3661", "1 to 3660"),
        ("days=-1", "whole number"),
        ("checkout weeks=2", "unknown option `weeks=`"),
    ],
)
def test_dora_card_errors(text, says):
    usage_error(parse_dora_command, text, command="dora", says=says)


@pytest.mark.parametrize("key", ["df", "lt", "cfr", "ttr", "CFR"])
def test_dora_explain(key):
    assert parse_dora_command(f"explain {key}") == DoraExplain(key=key.lower())
    assert parse_dora_command(f"explain {key} checkout days=14") == DoraExplain(key=key.lower(), service="checkout", days=14)


@pytest.mark.parametrize("text, says", [
    ("explain", "df, lt, cfr, rework, ttr"), ("explain mttr", "df, lt, cfr, rework, ttr"), ("explain cfr a b", "one service"),
])
def test_dora_explain_errors(text, says):
    usage_error(parse_dora_command, text, command="dora", says=says)


@pytest.mark.parametrize(
    "token, expected",
    [
        ("<#C0123ABC|ops>", ChannelRef(id="C0123ABC", name="ops")),
        ("<#C0123ABC>", ChannelRef(id="C0123ABC")),
        ("<#G0PRIVATE|secret-room>", ChannelRef(id="G0PRIVATE", name="secret-room")),
        ("#ops", ChannelRef(name="ops")),
        ("#eng-leads.2026_q4", ChannelRef(name="eng-leads.2026_q4")),
    ],
)
def test_channels_in_both_forms(token, expected):
    assert parse_channel(token, command="dora") == expected
    assert parse_dora_command(f"alerts {token}") == DoraAlerts(channel=expected)


def test_channel_mention_text():
    assert ChannelRef(id="C1", name="ops").mention() == "<#C1>"
    assert ChannelRef(name="ops").mention() == "#ops"


@pytest.mark.parametrize("token", ["ops", "#", "#Ops", "<@U123>", "<#X123|x>", "<https://example.com>", "#" + "a" * 81])
def test_not_a_channel(token):
    exc = usage_error(lambda t: parse_dora_command(f"alerts {t}"), token, command="dora", says="not a channel")
    assert "#name" in exc.message


def test_dora_alerts():
    assert parse_dora_command("alerts") == DoraAlerts()
    usage_error(parse_dora_command, "alerts #a #b", command="dora", says="one channel")


def test_dora_digest_add():
    assert parse_dora_command("digest add #eng") == DigestAdd(channel=ChannelRef(name="eng"))
    parsed = parse_dora_command("digest add <#C42|eng> weekly day=fri time=16:30 tz=Europe/Berlin service=checkout")
    assert parsed == DigestAdd(channel=ChannelRef(id="C42", name="eng"), cadence="weekly", day="fri", time="16:30", tz="Europe/Berlin",
                               service="checkout")
    assert parse_dora_command("digest add #eng daily time=08:00").cadence == "daily"


def test_dora_digest_add_said_without_option_names():
    parsed = parse_dora_command("digest add #eng Friday 16:30 Europe/Berlin service=checkout")
    assert parsed == DigestAdd(channel=ChannelRef(name="eng"), cadence="weekly", day="fri", time="16:30", tz="Europe/Berlin",
                               service="checkout")
    daily = parse_dora_command("digest add #ops daily 8:15 UTC")
    assert (daily.cadence, daily.day, daily.time, daily.tz) == ("daily", "mon", "8:15", "UTC")


def test_dora_digest_other_verbs():
    assert parse_dora_command("digest list") == DigestList()
    assert parse_dora_command("digest remove 3") == DigestRemove(id="3")
    assert parse_dora_command("digest send #3") == DigestSend(id="3")


@pytest.mark.parametrize(
    "text, says",
    [
        ("digest", "add, list, remove or send"),
        ("digest add", "needs a channel"),
        ("digest add eng", "not a channel"),
        ("digest add #eng hourly", "weekly or daily"),
        ("digest add #eng fri day=mon", "given twice"),
        ("digest add #eng 16:30 time=09:00", "given twice"),
        ("digest add #eng daily fri", "only goes with weekly"),
        ("digest add #eng daily day=mon", "only goes with weekly"),
        ("digest add #eng cadence=weekly", "unknown option"),
        ("digest list all", "no arguments"),
        ("digest remove", "digest's number"),
        ("digest remove abc", "digest's number"),
        ("digest send 1 2", "digest's number"),
        ("digest pause 1", "unknown digest subcommand"),
    ],
)
def test_dora_digest_errors(text, says):
    usage_error(parse_dora_command, text, command="dora", says=says)


def test_every_usage_lists_help():
    for usage in g.USAGE.values():
        assert "help" in usage
    for form in ("/deploy <service> <version>", "/deploy list", "/deploy fail", "/deploy rollback"):
        assert form in g.DEPLOY_USAGE
    for form in ("/incident declare", "/incident list", "/incident show", "/incident ack", "/incident update", "/incident cause",
                 "/incident resolve"):
        assert form in g.INCIDENT_USAGE
    for form in ("/dora [service] [days=N]", "/dora explain", "/dora alerts", "/dora digest add", "/dora digest list",
                 "/dora digest remove", "/dora digest send"):
        assert form in g.DORA_USAGE


def test_unescape():
    assert g.unescape("<https://x.example/a|label>") == "https://x.example/a"
    assert g.unescape("<http://x.example>") == "http://x.example"
    assert g.unescape("a&lt;b&gt;c&amp;d") == "a<b>c&d"
    assert g.unescape("plain") == "plain"


# --- DORA 2024 inputs: fixes=, hotfix, mitigate, cancel -----------------------------------------

def test_deploy_fixes_and_hotfix():
    assert g.parse_deploy_command("checkout 1.2 fixes=inc-7 patched the cart") == g.DeployRecord(
        service="checkout", version="1.2", note="patched the cart", fixes="INC-7"
    )
    assert g.parse_deploy_command("hotfix checkout 1.2.1 env=prod cache bust") == g.DeployRecord(
        service="checkout", version="1.2.1", environment="prod", note="cache bust", hotfix=True
    )
    assert g.parse_deploy_command("hotfix checkout 1.2.1 fixes=INC-3").fixes == "INC-3"
    for text, says in (("hotfix checkout", "service and a version"), ("checkout 1.2 fixes=D-4", "not an incident")):
        with pytest.raises(g.UsageError) as exc:
            g.parse_deploy_command(text)
        assert says in exc.value.message


def test_incident_mitigate_and_cancel():
    assert g.parse_incident_command("mitigate INC-7 flag off") == g.IncidentAction(verb="mitigate", ref="INC-7", text="flag off")
    assert g.parse_incident_command("mitigate 7") == g.IncidentAction(verb="mitigate", ref="INC-7", text=None)
    assert g.parse_incident_command("cancel inc-7 false alarm") == g.IncidentAction(verb="cancel", ref="INC-7", text="false alarm")
    with pytest.raises(g.UsageError) as exc:
        g.parse_incident_command("cancel INC-7")
    assert "needs a reason" in exc.value.message
