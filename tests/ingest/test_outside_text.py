"""Text and links from outside Slack (API, import, Alertmanager, GitHub) over real HTTP, then the
real cards rendered from what was stored: nothing pings, nothing becomes a disguised link.

A Slack mention is ``<@U123>``, ``<#C123>`` or ``<!channel>``/``<!here>``; a link ``<url|label>``
(https://docs.slack.dev/messaging/formatting-message-text). Only text a Slack user typed may keep
user and channel mentions; everything else must arrive as ``&lt;...&gt;``.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import timedelta

from sqlmodel import Session, select

from bot.services.importer import import_jsonl
from bot.slack import blocks as bk
from bot.store.models import Deploy, Incident, IncidentEvent, Service
from tests.ingest.test_alertmanager import alert, notification, send
from tests.ingest.test_github import deployment_status, push, sha

D, I = "/api/v1/deploys", "/api/v1/incidents"
PINGS = "<!channel> <!here> <@U0ATTACK> <#C0SECRET> <https://evil.example|https://ci.example/ok>"
# Tokens a card may send: the bot's own user mentions (who()), dates (ts()), and checked links.
_ALLOWED = re.compile(r"^<(@U1|!date\^\d+\^[^>]*|https://[^|<>\s]+\|pipeline)>$")


def mrkdwn(node) -> list[str]:
    """The strings Slack parses for mentions and links: messages' ``text`` and mrkdwn objects
    (``plain_text``, as in headers, shows ``<`` literally)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        if node.get("type") == "plain_text":
            return []
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [t for k, v in node.items() if k != "text" for t in mrkdwn(v)]
    if isinstance(node, (list, tuple)):
        return [t for item in node for t in mrkdwn(item)]
    return []


def live_tokens(rendered) -> list[str]:
    """Every ``<...>`` that Slack would read as a mention, a link or a command, but ours."""
    return [t for text in mrkdwn(rendered) for t in re.findall(r"<[^<>]*>", text) if not _ALLOWED.match(t)]


def cards(engine, now) -> list:
    """The deploy and incident cards, list lines and timelines, as the bot renders them."""
    out = []
    with Session(engine) as s:
        names = {svc.id: svc.name for svc in s.exec(select(Service)).all()}
        for d in s.exec(select(Deploy)).all():
            out.append(bk.deploy_card(d, names[d.service_id]))
        rows = [(i, names[i.service_id]) for i in s.exec(select(Incident)).all()]
        for i, name in rows:
            out.append(bk.incident_card(i, name, now=now))
            events = list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == i.id)).all())
            out.append(bk.incident_detail(i, name, events, now=now, cause=None))
            out.extend(bk.timeline_line(e) for e in events)
        out.append(bk.incident_list(rows, now=now))
        out.append(bk.deploy_list([(d, names[d.service_id]) for d in s.exec(select(Deploy)).all()]))
    return out


def test_api_text_cannot_ping_or_disguise_a_link(ingest):
    c = ingest.client
    r = c.post(D, {"id": "run-1", "service": "checkout", "deployed_at": "2026-11-25T11:00:00Z",
                   "version": "1.0 <!channel>", "note": f"shipped {PINGS}", "url": "https://ci.example/run/1?a=1&b=2"})
    assert r.status == 201, r
    r = c.post(I, {"id": "pd-1", "service": "checkout", "started_at": "2026-11-25T11:10:00Z", "title": f"down {PINGS}"})
    assert r.status == 201, r
    r = c.patch(f"{I}/pd-1", {"update": f"still down {PINGS}"})
    assert r.status == 200, r
    r = c.patch(f"{I}/pd-1", {"resolved_at": "2026-11-25T11:40:00Z", "note": f"fixed {PINGS}"})
    assert r.status == 200, r
    rendered = cards(ingest.engine, ingest.clock())
    assert live_tokens(rendered) == []
    raw = json.dumps(rendered)
    assert "&lt;!channel&gt;" in raw and "&lt;@U0ATTACK&gt;" in raw, "shown literally"
    assert "<https://ci.example/run/1?a=1&amp;b=2|pipeline>" in raw, "a checked link is still a link"


def test_a_link_that_is_not_a_real_url_is_refused_everywhere(ingest, subtests):
    bad = [
        "https://ci.example/run>*X*<!channel>",  # the observed injection, decoded as the grammar decodes it
        "https://ci.example/run|pipeline",
        "https://ci.example/a b",
        "javascript:alert(1)",
        "ftp://ci.example/x",
        "https://",
        'https://ci.example/"x"',
    ]
    for i, url in enumerate(bad):
        with subtests.test(url=url):
            r = ingest.client.post(D, {"id": f"bad-{i}", "service": "checkout", "deployed_at": "2026-11-25T11:00:00Z", "url": url})
            assert r.status == 422, r
            assert r.fields() == ["url"]
    assert ingest.count("deploy") == 0 and ingest.count("service") == 0
    lines = "".join(
        json.dumps({"type": "deploy", "id": f"imp-{i}", "service": "checkout", "deployed_at": "2026-11-25T11:00:00Z", "url": u}) + "\n"
        for i, u in enumerate(bad)
    )
    report = import_jsonl(ingest.engine, io.BytesIO(lines.encode()), production_environments=("production",), now=ingest.clock())
    assert report.invalid == len(bad) and not report.committed
    assert all("url" in message for _, message in report.errors)
    assert ingest.count("deploy") == 0


def test_alertmanager_summaries_cannot_ping(ingest):
    out = send(ingest, notification(alert("fping", annotations={"summary": f"5xx {PINGS}"})))
    assert len(out["declared"]) == 1, out
    assert live_tokens(cards(ingest.engine, ingest.clock())) == []


def test_github_descriptions_and_target_urls_cannot_ping_or_disguise(ingest):
    t = ingest.clock() - timedelta(hours=1)
    r = ingest.client.github("push", push([(sha(1), "2026-11-25T10:00:00Z")]), delivery=str(uuid.uuid4()))
    assert r.status == 200, r
    status = deployment_status(sha(1), t)
    status["deployment_status"]["description"] = f"Deployed {PINGS}"
    status["deployment_status"]["target_url"] = "https://ci.example/x>|<!channel>"
    r = ingest.client.github("deployment_status", status, delivery=str(uuid.uuid4()))
    assert r.status == 200, r
    (deploy,) = ingest.rows("SELECT url, note FROM deploy")
    assert deploy[0] is None, "a target_url that is no real link is dropped"
    assert live_tokens(cards(ingest.engine, ingest.clock())) == []


def test_github_fields_of_the_wrong_kind_cost_nothing(ingest):
    p = push([(sha(2), "2026-11-25T10:00:00Z")])
    p["repository"]["pushed_at"] = 10**20  # no real epoch: the push time is the time it arrived
    r = ingest.client.github("push", p, delivery=str(uuid.uuid4()))
    assert r.status == 200 and r.json()["commits"] == 1, r
    status = deployment_status(sha(2), ingest.clock() - timedelta(minutes=3))
    status["deployment_status"]["description"] = {"text": "<!channel>"}
    r = ingest.client.github("deployment_status", status, delivery=str(uuid.uuid4()))
    assert r.status == 200 and r.json()["created"] is True, r
    assert ingest.rows("SELECT note FROM deploy") == [(None,)], "no Python repr stored as the note"


def test_imported_text_cannot_ping(ingest):
    data = "".join(json.dumps(x) + "\n" for x in (
        {"type": "deploy", "id": "imp-1", "service": "checkout", "deployed_at": "2026-11-25T10:00:00Z",
         "version": "<!here>", "note": PINGS, "url": "https://ci.example/run/1"},
        {"type": "incident", "id": "imp-i1", "service": "checkout", "started_at": "2026-11-25T10:30:00Z",
         "resolved_at": "2026-11-25T11:00:00Z", "title": PINGS},
    ))
    report = import_jsonl(ingest.engine, io.BytesIO(data.encode()), production_environments=("production",), now=ingest.clock())
    assert report.committed and report.deploys_added == 1 and report.incidents_added == 1, report.errors
    rendered = cards(ingest.engine, ingest.clock())
    assert live_tokens(rendered) == []
    assert "<https://ci.example/run/1|pipeline>" in json.dumps(rendered)
