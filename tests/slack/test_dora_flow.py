"""``/dora`` over real HTTP: the four-keys card, explain, and the incident alert channel."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from bot.core.report_text import frequency_text
from bot.core.timeutil import format_duration, isoformat_z
from bot.services.app_settings import ALERT_CHANNEL, get_alert_channel
from bot.services.importer import import_jsonl
from bot.services.metrics import build_metrics
from bot.store.db import session_scope
from bot.store.models import AppMeta
from tests.conftest import NOW, PRODUCTION
from tests.slack.conftest import ALERTS
from tests.slack.harness import (
    assert_usage_error,
    ephemeral_answer,
    message_text,
    sqlite_only,
)


def at(**ago) -> str:
    return isoformat_z(NOW - timedelta(**ago))


def history() -> list[dict]:
    """Six weeks of two services: deploys with commits, a caused incident, a rollback, a marked failure."""
    records = []
    n = 0
    for day in range(1, 41, 2):
        for service in ("checkout", "payments"):
            n += 1
            records.append({
                "type": "deploy", "id": f"d{n}", "service": service, "environment": "production", "version": f"{service[0]}{n}",
                "deployed_at": at(days=day, hours=3),
                "commits": [{"sha": f"{n:04x}aa{day:02d}", "committed_at": at(days=day, hours=3 + n % 7 + 1)}],
                "change_failure": n == 7,
            })
    records.append({"type": "deploy", "id": "staging-1", "service": "checkout", "environment": "staging", "version": "s1",
                    "deployed_at": at(days=2)})
    records.append({"type": "deploy", "id": "rb-1", "service": "payments", "environment": "production", "version": "p2",
                    "deployed_at": at(days=3, hours=2), "rollback_of": "d4"})
    records.append({"type": "incident", "id": "i1", "service": "checkout", "severity": "sev2", "title": "Checkout 5xx",
                    "started_at": at(days=5), "acknowledged_at": at(days=5) , "resolved_at": at(days=4, hours=22), "caused_by": "d5"})
    records.append({"type": "incident", "id": "i2", "service": "payments", "severity": "sev3", "title": "Slow payouts",
                    "started_at": at(days=12), "resolved_at": at(days=11, hours=23, minutes=15)})
    records.append({"type": "incident", "id": "i3", "service": "checkout", "severity": "sev1", "title": "Old outage",
                    "started_at": at(days=35), "resolved_at": at(days=34)})
    records.append({"type": "incident", "id": "i4", "service": "checkout", "severity": "sev2", "title": "Still burning",
                    "started_at": at(hours=3)})
    return records


@pytest.fixture
def seeded(slack_app):
    body = "\n".join(json.dumps(r) for r in history()) + "\n"
    report = import_jsonl(slack_app.engine, io.BytesIO(body.encode()), production_environments=PRODUCTION, now=NOW)
    assert not getattr(report, "errors", None), report
    return slack_app


def metrics(app, service=None, days=30, end=NOW):
    with session_scope(app.engine, write=False) as session:
        return build_metrics(session, service=service, days=days, end=end, timezone_name="UTC", production_environments=PRODUCTION)


def sample(count: int, noun: str) -> str:
    return f"n={count} {noun}" + ("" if count == 1 else "s")


def expected_bits(m: dict) -> list[str]:
    df, lt, cfr, ttr = m["deployment_frequency"], m["lead_time"], m["change_failure_rate"], m["time_to_restore"]
    rr = m["deployment_rework_rate"]
    bits = [
        "n/a" if rr["rate"] is None else f"{rr['rate'] * 100:.1f}% ({rr['rework']} of {rr['deploys']})",
        frequency_text(df, m["scope"]["days"]),
        sample(df["deploys"], "deploy"),
        sample(lt["samples"], "commit"),
        sample(ttr["incidents"], "incident"),
        "n/a" if cfr["rate"] is None else f"{cfr['rate'] * 100:.1f}% ({cfr['failed']} of {cfr['deploys']})",
        format_duration(lt["median_seconds"]),
        format_duration(ttr["median_seconds"]),
    ]
    keys = ("deployment_frequency", "lead_time", "change_failure_rate", "failed_deployment_recovery_time", "time_to_restore")
    bits += [f"*{m[k]['tier']}*" for k in keys if m[k]["tier"]]
    return bits


def test_dora_card_matches_build_metrics(seeded):
    app = seeded
    r = app.slack.command("/dora", "")
    assert r.http.status == 200 and r.http.elapsed < 3
    card = r.reply()
    assert card["response_type"] == "in_channel"
    assert card["text"].startswith("DORA five keys")
    body = message_text(card)
    m = metrics(app)
    assert m["deployment_frequency"]["deploys"] > 0 and m["change_failure_rate"]["failed"] > 0 and m["time_to_restore"]["incidents"] == 2
    for bit in expected_bits(m):
        assert bit in body, f"{bit!r} missing from the card:\n{body}"
    assert "all services" in body and "Last 30 days" in body
    assert body.count("vs previous") == 6, "each key (and time to restore) compared with the previous window"
    assert "1 open" in body, "the open incident is mentioned"


def test_dora_card_for_one_service_and_window(seeded):
    app = seeded
    body = message_text(app.slack.command("/dora", "checkout days=7").reply())
    m = metrics(app, service="checkout", days=7)
    assert m["scope"]["service"] == "checkout"
    for bit in expected_bits(m):
        assert bit in body, f"{bit!r} missing from the card:\n{body}"
    assert "Last 7 days" in body and "DORA five keys: checkout" in body
    # The change against the 7 days before, from the same numbers.
    before = metrics(app, service="checkout", days=7, end=NOW - timedelta(days=7))
    df_now, df_before = m["deployment_frequency"]["per_day"], before["deployment_frequency"]["per_day"]
    if df_now != df_before:
        assert f"{df_now - df_before:+.2f}/day vs previous" in body
    cfr_now, cfr_before = m["change_failure_rate"]["rate"], before["change_failure_rate"]["rate"]
    if None not in (cfr_now, cfr_before) and cfr_now != cfr_before:
        assert f"{(cfr_now - cfr_before) * 100:+.1f} pts vs previous" in body


def test_dora_card_on_an_empty_database_says_n_a(slack_app):
    card = slack_app.slack.command("/dora", "").reply()
    assert "n/a" in message_text(card)


def test_dora_errors(seeded):
    app = seeded
    unknown = message_text(ephemeral_answer(app.slack.command("/dora", "nosuch")))
    assert "No service called `nosuch`" in unknown and "checkout" in unknown
    assert_usage_error(app.slack.command("/dora", "checkout days=0"), "/dora [service] [days=N]", says="days")
    assert_usage_error(app.slack.command("/dora", "checkout payments"), "/dora [service] [days=N]",
                       says="I read `checkout` as a service; `payments` is unexpected")
    assert_usage_error(app.slack.command("/dora", "explain xyz"), "/dora explain", says="df, lt, cfr, rework, ttr")


@sqlite_only
def test_dora_help(slack_app):
    body = message_text(ephemeral_answer(slack_app.slack.command("/dora", "help")))
    for form in ("/dora [service] [days=N]", "/dora explain", "/dora alerts", "/dora digest add"):
        assert form in body


def test_dora_explain_cfr_lists_the_failed_deploys_and_why(seeded):
    app = seeded
    answer = app.slack.command("/dora", "explain cfr").reply()
    body = message_text(answer)
    m = metrics(app)["change_failure_rate"]
    assert f"{m['failed']} of {m['deploys']} deploys failed" in body
    # d5 caused i1, d4 was rolled back by the rollback deploy, d7 was marked failed.
    assert "caused INC-1" in body
    assert "rolled back by D-" in body
    assert "marked failed" in body
    n = m["unlinked_incidents"]
    assert n >= 1
    assert f"{n} incident{'' if n == 1 else 's'} in the window with no known cause: not counted" in body, (
        "incidents without a known cause are mentioned"
    )
    assert "(s)" not in body


def test_dora_explain_cfr_does_not_mention_zero_unlinked_incidents(seeded):
    body = message_text(seeded.slack.command("/dora", "explain cfr payments days=7").reply())
    assert "Failed: caused an incident" in body and "no known cause" not in body


@pytest.mark.parametrize("key, title", [("df", "Deployment frequency"), ("lt", "Lead time"), ("ttr", "Time to restore")])
def test_dora_explain_other_keys(seeded, key, title):
    body = message_text(seeded.slack.command("/dora", f"explain {key} checkout days=14").reply())
    assert title in body and "`checkout`" in body
    assert "nothing counted" not in body


# --- /dora alerts -------------------------------------------------------------------------

def alert_setting(app):
    with session_scope(app.engine, write=False) as s:
        return get_alert_channel(s, default=None)


def test_dora_alerts_is_refused_to_non_admins(make_slack_app):
    app = make_slack_app(admins=("UADMIN",))
    before = app.counts()
    r = app.slack.command("/dora", "alerts <#C999|ops>", user="U1")
    answer = ephemeral_answer(r)
    assert answer.get("response_type", "ephemeral") == "ephemeral"
    assert "admins" in message_text(answer) and "DORA_ADMINS" in message_text(answer)
    assert alert_setting(app) is None and app.counts() == before

    app.slack.command("/incident", "declare sev2 checkout Down", channel="C1")
    assert [p["channel"] for p in app.fake.posts()] == [ALERTS, "C1"], "alerts still go to the configured channel"


def test_dora_alerts_by_an_admin_moves_the_incident_cards(make_slack_app):
    app = make_slack_app(admins=("UADMIN",))
    r = app.slack.command("/dora", "alerts <#C999|ops>", user="UADMIN")
    answer = r.reply()
    assert answer["response_type"] == "in_channel" and "<#C999>" in answer["text"]
    assert alert_setting(app) == "C999"
    assert "C999" in message_text(ephemeral_answer(app.slack.command("/dora", "alerts")))

    app.slack.command("/incident", "declare sev2 checkout Down", channel="C1")
    assert [p["channel"] for p in app.fake.posts()] == ["C999", "C1"]
    assert app.fake.posts(ALERTS) == []


def test_dora_alerts_without_admins_anyone_may_set_it(slack_app):
    slack_app.slack.command("/dora", "alerts <#C42>", user="U9")
    assert alert_setting(slack_app) == "C42"


def test_dora_alerts_by_name_is_resolved_with_conversations_list(slack_app):
    app, fake = slack_app, slack_app.fake
    fake.set_channels([("C0ALERTS", "alerts"), ("C1", "general"), ("C2", "random"), ("C3", "eng"), ("C0OPS", "ops-room")])
    fake.page_size = 2  # Slack may return fewer than asked: the bot must follow next_cursor
    r = app.slack.command("/dora", "alerts #ops-room")
    assert "<#C0OPS>" in r.reply()["text"]
    assert alert_setting(app) == "C0OPS"
    lists = fake.calls_of("conversations.list")
    assert len(lists) == 3
    assert [c.params.get("cursor") for c in lists][1:] == ["dGVhbTpD2", "dGVhbTpD4"]

    app.slack.command("/incident", "declare sev3 search Slow", channel="C1")
    assert [p["channel"] for p in fake.posts()] == ["C0OPS", "C1"]


def test_dora_alerts_unknown_name_changes_nothing(slack_app):
    before = slack_app.counts()
    answer = ephemeral_answer(slack_app.slack.command("/dora", "alerts #nope"))
    assert "#nope" in message_text(answer)
    assert slack_app.counts() == before
    with session_scope(slack_app.engine, write=False) as s:
        assert s.get(AppMeta, ALERT_CHANNEL) is None


@sqlite_only
@pytest.mark.parametrize("text", ["alerts ops", "alerts #Bad Name", "alerts <@U123>"])
def test_dora_alerts_needs_a_channel(slack_app, text):
    assert_usage_error(slack_app.slack.command("/dora", text), "/dora alerts")
    assert alert_setting(slack_app) is None


# --- /dora digest -------------------------------------------------------------------------

def test_digest_add_list_send_remove(seeded):
    app, slack, fake = seeded, seeded.slack, seeded.fake
    added = slack.command("/dora", "digest add <#C0ENG|eng-leads> weekly day=fri time=16:30 tz=Europe/Berlin", user="U1").reply()
    assert added["response_type"] == "in_channel" and "C0ENG" in added["text"]

    listing = slack.command("/dora", "digest list").reply()["text"]
    assert "C0ENG" in listing and "16:30" in listing and "Europe/Berlin" in listing

    sent = slack.command("/dora", "digest send 1").reply()
    assert "<#C0ENG>" in sent["text"]
    (digest,) = fake.posts("C0ENG")
    assert digest["text"] and digest["blocks"]
    # The chart is its own outbox message (so a failed upload never re-posts the text): the
    # outbox worker's next round uploads it.
    app.outbox_worker().deliver_due()
    uploads = [f for f in fake.files.values() if f["channel"] == "C0ENG"]
    assert len(uploads) == 1 and uploads[0]["data"].startswith(b"\x89PNG"), "the trend chart is uploaded"

    removed = slack.command("/dora", "digest remove 1").reply()
    assert "removed" in removed["text"]
    assert "No digests yet" in slack.command("/dora", "digest list").reply()["text"]
    assert "1" in message_text(ephemeral_answer(slack.command("/dora", "digest send 1")))


def test_digest_changes_are_for_admins(make_slack_app):
    app = make_slack_app(admins=("UADMIN",))
    before = app.counts()
    for text in ("digest add #eng", "digest remove 1"):
        answer = ephemeral_answer(app.slack.command("/dora", text, user="U1"))
        assert "admins" in message_text(answer)
    assert app.counts() == before
    assert app.fake.calls_of("conversations.list") == [], "refused before looking anything up"
