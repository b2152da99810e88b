"""POST /webhooks/alertmanager over real HTTP: firing declares, resolved resolves, mapping, bad payloads.

Payloads are written for these tests in the shape of Alertmanager's webhook (version 4).
"""

from __future__ import annotations

import json
import threading

from tests.ingest.conftest import TOKEN

ZERO = "0001-01-01T00:00:00Z"
I = "/api/v1/incidents"


def alert(fingerprint: str, *, status="firing", labels=None, annotations=None,
          starts="2026-11-25T10:00:00.123456789Z", ends=ZERO) -> dict:
    return {
        "status": status,
        "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical", "instance": "10.0.0.1:9100",
                   **(labels or {})},
        "annotations": {"summary": "Checkout 5xx above 5%", "runbook_url": "https://runbooks.example/5xx", **(annotations or {})},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28http_errors%5B5m%5D%29",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict, group="checkout", **extra) -> dict:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    body = {
        "version": "4",
        "groupKey": '{}/{severity=~"critical|error"}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "dora-bot",
        "groupLabels": {"alertname": "HighErrorRate", "group": group},
        "commonLabels": {"alertname": "HighErrorRate"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }
    body.update(extra)
    return body


def send(ingest, payload, expect=200):
    r = ingest.client.alertmanager(payload)
    assert r.status == expect, r
    return r.json()


def incidents(ingest) -> dict[str, dict]:
    items = ingest.client.get(f"{I}?limit=500").json()["items"]
    return {i["id"]: i for i in items}


def ref_id(ref: str) -> int:
    return int(ref.split("-")[1])


def test_firing_declares_one_incident_per_fingerprint_and_a_repeat_changes_nothing(ingest):
    a, b = alert("fa11"), alert("fb22", labels={"instance": "10.0.0.2:9100"})
    out = send(ingest, notification(a, b))
    assert out["status"] == "processed" and len(out["declared"]) == 2
    assert ingest.count("incident") == 2
    assert sorted(ingest.events) == sorted(("incident.declared", ref_id(r)) for r in out["declared"])
    before_events = list(ingest.events)

    # the identical notification repeated (repeat_interval, or an HA peer)
    assert send(ingest, notification(a, b))["status"] == "duplicate"
    # the same alerts in a notification that differs (group grew, annotations changed)
    c = alert("fc33", labels={"instance": "10.0.0.3:9100"}, starts="2026-11-25T10:05:00Z")
    out = send(ingest, notification(a, b, c, truncatedAlerts=0, commonAnnotations={"x": "y"}))
    assert len(out["declared"]) == 1 and out["unchanged"] == 2
    assert ingest.count("incident") == 3
    assert ingest.events == before_events + [("incident.declared", ref_id(out["declared"][0]))]
    for inc in incidents(ingest).values():
        assert inc["state"] == "open" and inc["source"] == "alertmanager"


def test_resolved_resolves_at_ends_at_and_gives_the_time_to_restore(ingest):
    firing = [
        alert("f1", starts="2026-11-25T10:00:00.5Z"),
        alert("f2", starts="2026-11-25T09:00:00Z", labels={"instance": "b"}),
        alert("f3", starts="2026-11-25T10:00:00+02:00", labels={"instance": "c"}),  # 08:00Z
    ]
    declared = send(ingest, notification(*firing))["declared"]
    ingest.events.clear()
    ends = {"f1": "2026-11-25T10:45:00.5Z", "f2": "2026-11-25T11:00:00Z", "f3": "2026-11-25T08:10:00Z"}
    resolved = [dict(a, status="resolved", endsAt=ends[a["fingerprint"]]) for a in firing]
    out = send(ingest, notification(*resolved))
    assert sorted(out["resolved"]) == sorted(declared) and out["declared"] == []
    assert sorted(ingest.events) == sorted(("incident.changed", ref_id(r)) for r in declared)

    by_start = {i["started_at"]: i for i in incidents(ingest).values()}
    assert by_start["2026-11-25T10:00:00.5Z"]["resolved_at"] == "2026-11-25T10:45:00.5Z"
    assert by_start["2026-11-25T10:00:00.5Z"]["time_to_restore_seconds"] == 2700
    assert by_start["2026-11-25T09:00:00Z"]["time_to_restore_seconds"] == 7200
    assert by_start["2026-11-25T08:00:00Z"]["time_to_restore_seconds"] == 600
    m = ingest.client.get("/api/v1/metrics?days=7").json()["time_to_restore"]
    assert m["incidents"] == 3 and m["open_incidents"] == 0
    assert m["median_seconds"] == 2700
    assert m["tier"] == "elite"

    # the resolved notification repeated, or re-sent in another group, changes nothing
    ingest.events.clear()
    assert send(ingest, notification(*resolved))["status"] == "duplicate"
    out = send(ingest, notification(*resolved, group="other"))
    assert out["resolved"] == [] and out["unchanged"] == 3
    assert ingest.events == []
    assert ingest.count("incident") == 3


def test_a_resolved_alert_never_seen_firing_is_recorded_resolved(ingest):
    out = send(ingest, notification(alert("f9", status="resolved", starts="2026-11-25T09:00:00Z", ends="2026-11-25T09:30:00Z")))
    assert len(out["declared"]) == 1
    [inc] = incidents(ingest).values()
    assert inc["state"] == "resolved" and inc["time_to_restore_seconds"] == 1800


def test_the_same_alert_firing_again_after_it_resolved_is_a_new_incident(ingest):
    send(ingest, notification(alert("f1", starts="2026-11-25T08:00:00Z")))
    send(ingest, notification(alert("f1", status="resolved", starts="2026-11-25T08:00:00Z", ends="2026-11-25T08:20:00Z")))
    send(ingest, notification(alert("f1", starts="2026-11-25T10:00:00Z")))
    states = sorted((i["started_at"], i["state"]) for i in incidents(ingest).values())
    assert states == [("2026-11-25T08:00:00Z", "resolved"), ("2026-11-25T10:00:00Z", "open")]


def test_a_flapping_alert_keeps_its_one_open_incident_whatever_its_starts_at(ingest):
    # It fired, cleared and fired again before the resolution reached us: a new startsAt.
    send(ingest, notification(alert("f2", starts="2026-11-25T08:00:00Z")))
    out = send(ingest, notification(alert("f2", starts="2026-11-25T08:07:00Z")))
    assert out["declared"] == [] and out["unchanged"] == 1
    [inc] = incidents(ingest).values()
    assert inc["state"] == "open" and inc["started_at"] == "2026-11-25T08:00:00Z"
    # the resolution of the later occurrence resolves that one incident
    out = send(ingest, notification(alert("f2", status="resolved", starts="2026-11-25T08:07:00Z", ends="2026-11-25T08:30:00Z")))
    assert out["resolved"] == [inc["ref"]]
    [inc] = incidents(ingest).values()
    assert inc["state"] == "resolved" and inc["time_to_restore_seconds"] == 1800
    # a late copy of the first firing notification (in another group's body) changes nothing
    out = send(ingest, notification(alert("f2", starts="2026-11-25T08:00:00Z"), group="other"))
    assert out["declared"] == [] and len(incidents(ingest)) == 1


def test_a_late_resolution_of_an_old_occurrence_leaves_the_new_one_open(ingest):
    send(ingest, notification(alert("f3", starts="2026-11-25T08:00:00Z")))
    send(ingest, notification(alert("f3", status="resolved", starts="2026-11-25T08:00:00Z", ends="2026-11-25T08:20:00Z")))
    send(ingest, notification(alert("f3", starts="2026-11-25T10:00:00Z")))
    late = notification(alert("f3", status="resolved", starts="2026-11-25T08:00:00Z", ends="2026-11-25T08:20:00Z"), group="other")
    out = send(ingest, late)
    assert out["resolved"] == [] and out["declared"] == []
    states = sorted((i["started_at"], i["state"]) for i in incidents(ingest).values())
    assert states == [("2026-11-25T08:00:00Z", "resolved"), ("2026-11-25T10:00:00Z", "open")]


def test_service_title_and_severity_mapping(ingest, subtests):
    cases = [
        # (fingerprint, labels (replacing the defaults), annotations (replacing), service, title, severity)
        ("m1", {"service": "Checkout", "job": "node", "alertname": "HighErrorRate", "severity": "critical"},
         {"summary": "5xx above 5%"}, "Checkout", "5xx above 5%", "sev1"),  # display form kept
        ("m2", {"job": "payments-api", "alertname": "LatencyHigh", "severity": "error"}, {}, "payments-api", "LatencyHigh", "sev2"),
        ("m3", {"alertname": "DiskFull", "severity": "high"}, {"description": "only a description"}, "DiskFull", "DiskFull", "sev2"),
        ("m4", {"service": "search", "alertname": "Slow", "severity": "warning"}, {"summary": "p99 slow"}, "search", "p99 slow", "sev3"),
        ("m5", {"service": "search", "alertname": "Info", "severity": "info"}, {}, "search", "Info", "sev4"),
        ("m6", {"service": "search", "alertname": "NoSev"}, {}, "search", "NoSev", "sev4"),
        ("m7", {"service": "search", "alertname": "Upper", "severity": "CRITICAL"}, {}, "search", "Upper", "sev1"),
        ("m8", {"service": "search", "alertname": "Page", "severity": "page"}, {}, "search", "Page", "sev4"),
        ("m9", {"service": "", "job": "billing", "alertname": "EmptyService"}, {"summary": ""}, "billing", "EmptyService", "sev4"),
    ]
    alerts = []
    for fp, labels, notes, *_ in cases:
        a = alert(fp)
        a["labels"], a["annotations"] = labels, notes
        alerts.append(a)
    out = send(ingest, notification(*alerts))
    assert len(out["declared"]) == len(cases)
    by_title = {i["title"]: i for i in incidents(ingest).values()}
    for fp, _, _, service, title, severity in cases:
        with subtests.test(case=fp):
            inc = by_title[title]
            assert (inc["service"], inc["severity"]) == (service, severity)
            assert inc["started_at"] == "2026-11-25T10:00:00.123456Z"
            assert inc["environment"] == "production"


def test_a_bad_envelope_is_422_and_declares_nothing(ingest, subtests):
    good = alert("f1")
    cases = [
        ("invalid-json", b'{"version": "4", "alerts": ['),
        ("not-an-object", json.dumps([good]).encode()),
        ("no-alerts", json.dumps({"version": "4", "status": "firing"}).encode()),
        ("alerts-not-a-list", json.dumps(notification() | {"alerts": {"0": good}}).encode()),
        ("version-3", json.dumps(notification(good) | {"version": "3"}).encode()),
    ]
    for case, raw in cases:
        with subtests.test(case=case):
            r = ingest.client.alertmanager(None, raw=raw)
            assert r.status == 422, r
            assert r.json()["error"]
            assert ingest.count("incident") == 0
    assert ingest.events == []


def test_each_alert_is_taken_on_its_own_a_bad_one_is_skipped_naming_its_field(ingest, subtests, caplog):
    """Alertmanager does not retry a 4xx and repeats carry the same alerts: one alert the bot cannot
    map must not cost its group the valid ones. The good alert is declared; the bad one is listed
    in the 2xx body and the log with the field and why; the raw delivery is kept."""
    cases = [
        ("alert-not-an-object", "firing", "alerts[1]"),
        ("alert-bad-status", dict(alert("f2"), status="pending"), "alerts[1].status"),
        ("alert-without-startsAt", {k: v for k, v in alert("f3").items() if k != "startsAt"}, "alerts[1].startsAt"),
        ("alert-bad-startsAt", dict(alert("f4"), startsAt="a while ago"), "alerts[1].startsAt"),
        ("alert-startsAt-a-number", dict(alert("f5"), startsAt=7), "alerts[1].startsAt"),
        ("alert-without-any-name", dict(alert("f6"), labels={"severity": "critical"}), "alerts[1].labels"),
        ("labels-not-an-object", dict(alert("f7"), labels=["service=checkout"]), "alerts[1].labels"),
        ("annotations-not-an-object", dict(alert("f8"), annotations="down"), "alerts[1].annotations"),
        ("service-is-markup", alert("f9", labels={"service": "<!channel>"}), "alerts[1].labels.service"),
        ("environment-label", alert("f10", labels={"environment": "prod west!"}), "alerts[1].labels.environment"),
        ("resolved-bad-endsAt", alert("f11", status="resolved", ends="later"), "alerts[1].endsAt"),
    ]
    for n, (case, bad, field) in enumerate(cases):
        with subtests.test(case=case):
            caplog.clear()
            before = ingest.count("incident")
            first = alert(f"good{n}", labels={"instance": f"10.0.1.{n}:9100"})
            out = send(ingest, notification(first, bad))
            assert out["status"] == "processed" and len(out["declared"]) == 1, out
            assert ingest.count("incident") == before + 1
            (skipped,) = out["skipped"]
            assert skipped["index"] == 1 and skipped["field"] == field and skipped["reason"], skipped
            assert any(field in r.getMessage() for r in caplog.records if r.levelname == "WARNING"), "the log says so"
            assert not any(r.exc_info for r in caplog.records), "no traceback"
    rows = ingest.rows("SELECT status, error, body FROM webhook_delivery ORDER BY id")
    assert len(rows) == len(cases)
    assert all(status == "processed" and "skipped alerts[1]" in error and '"alerts"' in body for status, error, body in rows)


def test_concurrent_identical_notifications_declare_once(ingest):
    """An Alertmanager HA pair may deliver the same notification at the same moment."""
    payload = notification(alert("fa"), alert("fb", labels={"instance": "b"}))
    results: list = []
    barrier = threading.Barrier(6)

    def worker():
        barrier.wait()
        results.append(ingest.client.alertmanager(payload))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r.status == 200 for r in results), results
    assert ingest.count("incident") == 2
    assert len([e for e in ingest.events if e[0] == "incident.declared"]) == 2


def test_alertmanager_with_the_second_token(ingest):
    r = ingest.client.alertmanager(notification(alert("f1")), token=TOKEN)
    assert r.status == 200, r


def test_a_body_over_1_mb_is_413_and_declares_nothing(ingest):
    r = ingest.client.alertmanager(notification(alert("f1"), commonAnnotations={"x": "y" * 1_000_001}))
    assert r.status == 413, r
    assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)
