"""``merge_services`` keeps every record: a commit both services deployed keeps one lead-time
sample (its first deploy's), a freeze of the merged service still holds, and the merged numbers
are what one history recorded under one name gives."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.services import catalogue, gate, watches
from bot.store.db import session_scope
from bot.store.models import Deploy, DeployFreeze, LeadSample, Service, Watch
from tests.conftest import NOW
from tests.dbutil import load, metrics, wipe

END = NOW + timedelta(days=1)


def deploy(id_, service, day, *shas):
    at = NOW - timedelta(days=day)
    return {"type": "deploy", "id": id_, "service": service, "deployed_at": at.isoformat(),
            "commits": [{"sha": s, "committed_at": (at - timedelta(hours=2)).isoformat()} for s in shas]}


HISTORY = [
    deploy("a1", "checkout", 5, "aaaa0010"),
    deploy("a2", "checkout", 2, "5ba4ed1"),   # checkout deployed the shared commit later...
    deploy("b1", "chekout", 4, "5ba4ed1"),    # ...than its typo did: the typo's sample is the first
    deploy("b2", "chekout", 1, "bbbb0020"),
]


def test_merge_keeps_every_deploy_and_the_first_sample_of_a_shared_commit(engine):
    assert load(engine, HISTORY, now=NOW).committed
    with session_scope(engine) as session:
        gate.freeze(session, target="chekout", until=None, reason="release week", actor="U1", now=NOW)
        watches.add_watch(session, condition="cfr>15%", channel="C1", service="chekout", now=NOW)
    with session_scope(engine) as session:
        change = catalogue.merge_services(session, source="chekout", into="checkout", actor="U1", now=NOW)
    assert (change.deploys, change.incidents) == (2, 0)
    with session_scope(engine, write=False) as session:
        (checkout,) = session.exec(select(Service).where(col(Service.key).in_(["checkout", "chekout"]))).all()
        assert checkout.name == "checkout"
        assert {d.service_id for d in session.exec(select(Deploy))} == {checkout.id}
        samples = {s.sha: s.deploy_id for s in session.exec(select(LeadSample))}
        b1 = session.exec(select(Deploy).where(Deploy.external_id == "b1")).one().id
        assert samples.keys() == {"aaaa0010", "5ba4ed1", "bbbb0020"} and samples["5ba4ed1"] == b1
        assert [f.service_id for f in session.exec(select(DeployFreeze))] == [checkout.id], "the freeze holds on"
        assert [w.service_id for w in session.exec(select(Watch))] == [checkout.id], "the watch follows the service"
    merged = metrics(engine, service="checkout", end=END)

    # The same history recorded under one name gives the same numbers.
    wipe(engine)
    assert load(engine, [{**r, "service": "checkout"} for r in HISTORY], now=NOW).committed
    assert merged == metrics(engine, service="checkout", end=END)
