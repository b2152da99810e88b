"""Property-based tests over every ingest and webhook route, over real HTTP (issue 11).

For any body - well-formed, hostile values in the right places, or junk - the server answers:
- never a 5xx;
- a 4xx stores nothing (a webhook may keep its raw body as one *failed* delivery, for replay);
- a 2xx is stored exactly once: the same request again changes nothing.

Fixed budgets and ``derandomize``: the same cases every run, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.test_github import deployment_status, push

D, I = "/api/v1/deploys", "/api/v1/incidents"
BUDGET = settings(max_examples=100, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
DOMAIN = ("service", "deploy", "deploy_commit", "lead_sample", "incident", "incident_event", "commit_push", "pending_commit",
          "deploy_freeze")

# --- values people and programs really send, and what attackers add ---------------------------
NASTY = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "<!channel>", "<@U123>", "&lt;!here&gt;", "*bold*", "²", "٣", "9" * 30,
    "t" * 5000, "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "999-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
    "2100-12-31T23:59:59Z", "2101-01-01T00:00:00Z", "now", "D-99999999999999999999", "INC-1", "https://ci.example/run&gt;*X*&lt;!channel&gt;",
    "javascript:alert(1)", "node:9100", "Checkout API", ".github", "_site", "checkout", "production", "staging", "sev1", "success",
    "failure", "cancelled", "9fceb02aa", "../../etc/passwd", "ℌ𝔢𝔩𝔩𝔬", "\u202eevil", "null", "{}",
])
TEXT = st.one_of(NASTY, st.text(max_size=40))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False), TEXT)
JSONV = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)


def _iso(at: datetime, offset_minutes: int) -> str:
    return at.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()


INSTANT = st.one_of(
    st.builds(_iso, st.datetimes(min_value=datetime(1969, 12, 30), max_value=datetime(2026, 11, 25), timezones=st.just(timezone.utc)),
              st.integers(min_value=-23 * 60, max_value=23 * 60)),
    NASTY, JSONV,
)
NAME = st.one_of(st.sampled_from(["checkout", "Checkout API", "node:9100", ".github", "payments"]), TEXT, JSONV)
ID = st.one_of(st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12), TEXT, st.integers(), JSONV)
COMMIT = st.one_of(st.fixed_dictionaries({"sha": st.one_of(st.sampled_from(["9fceb02aa", "1a2b3c4d"]), TEXT)},
                                         optional={"committed_at": INSTANT}), JSONV)

DEPLOY = st.fixed_dictionaries(
    {"id": ID, "service": NAME, "deployed_at": INSTANT},
    optional={"environment": st.one_of(st.sampled_from(["production", "staging"]), TEXT, JSONV), "version": st.one_of(TEXT, JSONV),
              "status": st.one_of(st.sampled_from(["success", "failure"]), JSONV),
              "commits": st.one_of(st.lists(COMMIT, max_size=3), JSONV),
              "url": st.one_of(st.just("https://ci.example/run/1"), TEXT, JSONV), "note": st.one_of(TEXT, JSONV),
              "rollback_of": ID, "fixes": ID, "rework": JSONV, "change_failure": JSONV, "type": st.one_of(st.just("deploy"), TEXT)},
)
INCIDENT = st.fixed_dictionaries(
    {"id": ID, "service": NAME},
    optional={"started_at": INSTANT, "resolved_at": INSTANT, "acknowledged_at": INSTANT, "mitigated_at": INSTANT,
              "severity": st.one_of(st.sampled_from(["sev1", "sev2", "2"]), TEXT, JSONV), "title": st.one_of(TEXT, JSONV),
              "environment": st.one_of(st.just("production"), TEXT), "caused_by": ID, "status": st.one_of(st.just("cancelled"), JSONV),
              "not_caused_by_change": JSONV},
)
# Well-formed records with varied real values: most of these must be taken (2xx), once.
GOOD_INSTANT = st.builds(_iso, st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2026, 11, 25),
                                            timezones=st.just(timezone.utc)),
                         st.integers(min_value=-14 * 60, max_value=14 * 60))
GOOD_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ._:/@+-]{0,30}", fullmatch=True).filter(lambda n: n.strip() == n)
GOOD_ID = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.:", min_size=1, max_size=40)
GOOD_DEPLOY = st.fixed_dictionaries(
    {"id": GOOD_ID, "service": GOOD_NAME, "deployed_at": GOOD_INSTANT},
    optional={"environment": st.sampled_from(["production", "staging", "prod"]),
              "version": st.text(min_size=1, max_size=20).filter(str.strip),
              "status": st.sampled_from(["success", "failure"]), "url": st.just("https://ci.example/run/1?x=1&y=2"),
              "note": st.text(max_size=100).filter(lambda t: "\x00" not in t),
              "commits": st.lists(st.fixed_dictionaries({"sha": st.from_regex(r"[0-9a-f]{7,40}", fullmatch=True)}), max_size=3)},
)
GOOD_INCIDENT = st.fixed_dictionaries(
    {"id": GOOD_ID, "service": GOOD_NAME},
    optional={"started_at": GOOD_INSTANT, "severity": st.sampled_from(["sev1", "sev2", "sev3", "sev4", 2]),
              "title": st.text(max_size=100).filter(lambda t: "\x00" not in t), "environment": st.sampled_from(["production", "staging"])},
)
PATCH = st.dictionaries(
    st.sampled_from(["acknowledged_at", "resolved_at", "mitigated_at", "note", "update", "severity", "caused_by", "status", "reason", "x"]),
    st.one_of(INSTANT, TEXT, JSONV), max_size=4,
)
RAW = st.one_of(
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=6000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=6000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
)


def body_of(value) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def domain(ingest) -> dict[str, int]:
    return {t: ingest.count(t) for t in DOMAIN}


def answered(r, before: dict, after: dict, *, what) -> None:
    assert r.status < 500, (what, r)
    if 400 <= r.status < 500:
        assert after == before, (what, r, before, after)


@BUDGET
@given(payload=st.one_of(GOOD_DEPLOY, DEPLOY, JSONV, RAW))
def test_post_deploy_never_5xx_nothing_on_4xx_once_on_2xx(ingest, payload):
    before = domain(ingest)
    r = ingest.client.post(D, raw=body_of(payload))
    after = domain(ingest)
    answered(r, before, after, what=payload)
    if r.status == 201:
        assert after["deploy"] == before["deploy"] + 1
        again = ingest.client.post(D, raw=body_of(payload))
        assert again.status == 200 and again.json()["ref"] == r.json()["ref"], again
        assert domain(ingest) == after
    elif r.status == 200:  # a retry of a deploy an earlier example stored
        assert after == before


@BUDGET
@given(payload=st.one_of(GOOD_INCIDENT, INCIDENT, JSONV, RAW))
def test_post_incident_never_5xx_nothing_on_4xx_once_on_2xx(ingest, payload):
    before = domain(ingest)
    r = ingest.client.post(I, raw=body_of(payload))
    after = domain(ingest)
    answered(r, before, after, what=payload)
    if r.status == 201:
        assert after["incident"] == before["incident"] + 1
        again = ingest.client.post(I, raw=body_of(payload))
        assert again.status == 200 and again.json()["ref"] == r.json()["ref"], again
        assert domain(ingest) == after


@BUDGET
@given(target=st.one_of(st.just("fz-1"), st.just("INC-1"), TEXT.filter(lambda t: "/" not in t and "?" not in t and "#" not in t)),
       payload=st.one_of(st.fixed_dictionaries({}, optional={"acknowledged_at": GOOD_INSTANT, "update": st.text(min_size=1, max_size=50),
                                                             "severity": st.sampled_from(["sev1", "sev4"])}), PATCH, JSONV, RAW))
def test_patch_incident_never_5xx_and_nothing_changes_on_4xx(ingest, target, payload):
    from urllib.parse import quote

    if ingest.count("incident") == 0:
        assert ingest.client.post(I, {"id": "fz-1", "service": "checkout", "started_at": "2026-11-25T10:00:00Z"}).status == 201
    before = domain(ingest)
    r = ingest.client.patch(f"{I}/{quote(target.encode('utf-8', 'surrogatepass'), safe='') or 'x'}", raw=body_of(payload))
    answered(r, before, domain(ingest), what=(target, payload))


@BUDGET
@given(payload=st.one_of(
    st.builds(lambda alerts, extra: {"version": "4", "status": "firing", "receiver": "dora-bot", "groupKey": "g", "alerts": alerts,
                                     **extra},
              st.lists(st.one_of(st.fixed_dictionaries(
                  {"status": st.sampled_from(["firing", "resolved"]), "labels": st.one_of(st.dictionaries(
                      st.sampled_from(["service", "job", "alertname", "severity", "environment", "instance"]), TEXT, max_size=4), JSONV),
                   "startsAt": INSTANT},
                  optional={"endsAt": INSTANT,
                            "annotations": st.one_of(st.dictionaries(st.sampled_from(["summary", "description"]), TEXT), JSONV),
                            "fingerprint": TEXT}), JSONV), max_size=3),
              st.dictionaries(st.sampled_from(["truncatedAlerts", "status", "version"]), JSONV, max_size=2)),
    JSONV, RAW))
def test_alertmanager_never_5xx_nothing_on_4xx_once_on_2xx(ingest, payload):
    before = domain(ingest)
    raw = body_of(payload)
    r = ingest.client.alertmanager(None, raw=raw)
    after = domain(ingest)
    answered(r, before, after, what=payload)
    if r.status == 200 and r.json().get("status") != "duplicate":
        again = ingest.client.alertmanager(None, raw=raw)  # an identical body is a repeat
        assert again.status == 200 and again.json()["status"] == "duplicate", again
        assert domain(ingest) == after


def _push_like(ref, commits, name):
    body = push([("9fceb02aa", "2026-11-25T05:00:00Z")])
    body["repository"]["name"] = name
    body["ref"] = ref
    body["commits"] = commits
    return body


def _status_like(sha, state, env, at):
    body = deployment_status("9fceb02aa", datetime(2026, 11, 25, 11, tzinfo=timezone.utc))
    body["deployment"]["sha"], body["deployment_status"]["state"], body["deployment"]["environment"] = sha, state, env
    body["deployment_status"]["updated_at"] = at
    return body


GITHUB = st.one_of(
    st.tuples(st.just("push"), st.builds(_push_like, st.one_of(st.just("refs/heads/main"), TEXT),
                                         st.one_of(st.lists(st.fixed_dictionaries(
                                             {"id": st.one_of(st.sampled_from(["9fceb02aa", "abcdef12"]), TEXT),
                                              "timestamp": INSTANT}), max_size=3), JSONV), NAME)),
    st.tuples(st.just("deployment_status"), st.builds(_status_like, st.one_of(st.just("9fceb02aa"), TEXT),
                                                      st.one_of(st.sampled_from(["success", "failure", "error", "pending"]), JSONV),
                                                      st.one_of(st.just("production"), TEXT, JSONV), INSTANT)),
    st.tuples(st.sampled_from(["push", "deployment_status", "issues", "ping"]), st.one_of(JSONV, RAW)),
)


@BUDGET
@given(sent=GITHUB, delivery=st.one_of(st.uuids().map(str), st.text(alphabet="abc-123", min_size=1, max_size=10)))
def test_github_webhook_never_5xx_nothing_on_4xx_once_on_2xx(ingest, sent, delivery):
    event, payload = sent
    raw = body_of(payload)
    before = domain(ingest)
    r = ingest.client.github(event, None, raw=raw, delivery=delivery)
    after = domain(ingest)
    answered(r, before, after, what=(event, payload))
    if r.status in (200, 202) and event != "ping" and r.json().get("status") != "duplicate":
        again = ingest.client.github(event, None, raw=raw, delivery=delivery)  # GitHub's redelivery
        assert again.status == 200 and again.json()["status"] == "duplicate", again
        assert domain(ingest) == after


def _mutate(payload: dict, draw) -> dict:
    """``payload`` with some of its top-level values replaced by generated ones."""
    out = dict(payload)
    for key in draw(st.lists(st.sampled_from(sorted(out)), max_size=3, unique=True)):
        out[key] = draw(JSONV)
    return out


@BUDGET
@given(name=st.sampled_from(["gitlab", "argocd", "pagerduty", "opsgenie"]), data=st.data())
def test_every_other_webhook_source_never_5xx_nothing_on_4xx_once_on_2xx(ingest, name, data):
    from tests.ingest.test_sources import _bodies

    payload, send, _ = _bodies()[name]
    body = data.draw(st.one_of(st.builds(lambda: _mutate(payload, data.draw)), st.just(payload), JSONV, RAW))
    raw = body_of(body)
    key = data.draw(st.uuids().map(str))
    before = domain(ingest)
    r = send(ingest, raw, verified=True, key=key)
    after = domain(ingest)
    answered(r, before, after, what=(name, body))
    if r.status in (200, 202) and r.json().get("status") != "duplicate":
        again = send(ingest, raw, verified=True, key=key)  # the sender's retry of that delivery
        assert again.status == 200 and again.json()["status"] == "duplicate", again
        assert domain(ingest) == after
