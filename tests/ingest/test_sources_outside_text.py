"""Text from the new sources (GitLab, Argo CD, PagerDuty, Opsgenie) over real HTTP, then the real
cards rendered from what was stored: nothing pings, nothing becomes a disguised link."""

from __future__ import annotations

from tests.ingest import test_argocd, test_gitlab, test_opsgenie, test_pagerduty_webhook
from tests.ingest.test_outside_text import PINGS, cards, live_tokens


def test_titles_versions_and_notes_from_the_new_sources_cannot_ping(ingest):
    dep = test_gitlab.deployment(test_gitlab.sha(1), "2026-11-25 08:00:00 +0000")
    dep["commit_title"] = PINGS
    dep["deployable_url"] = "https://evil.example|https://ci.example/ok"
    assert test_gitlab.send(ingest, "Deployment Hook", dep).status == 200
    assert test_argocd.send(ingest, test_argocd.body(revision="<!channel>-1.0")).status == 200
    pd = test_pagerduty_webhook.event("incident.triggered", title=PINGS)
    assert test_pagerduty_webhook.send(ingest, pd).status == 200
    assert test_opsgenie.send(ingest, test_opsgenie.body("Create", message=PINGS)).status == 200
    assert ingest.count("deploy") == 2 and ingest.count("incident") == 2
    assert live_tokens(cards(ingest.engine, ingest.clock())) == []
    # the link that is not a real URL was dropped, not refused
    assert ingest.rows("SELECT url FROM deploy WHERE source = 'gitlab'") == [(None,)]
