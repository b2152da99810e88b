"""Migration 0010 (the incident lifecycle) is additive: incidents stored before it have no lead, no
channel and were never paged, their timeline entries no link; it goes down and up again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from bot.store.db import make_engine, upgrade


def _ts(engine, value: str):
    return value if engine.dialect.name == "sqlite" else datetime.fromisoformat(value).replace(tzinfo=UTC)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0010_adds_lead_channel_paging_links_and_follow_ups(backend, make_database):
    from alembic import command

    from bot.store.db import _alembic_config

    engine = make_engine(make_database(backend))
    try:
        upgrade(engine, "0009")
        at = _ts(engine, "2026-11-24 09:00:00.000000")
        with engine.begin() as c:
            c.execute(text("INSERT INTO service (id, name, key, created_at) VALUES (1, 'checkout', 'checkout', :t)"), {"t": at})
            c.execute(text(
                "INSERT INTO incident (id, service_id, environment, severity, title, started_at, declared_at, source, created_at)"
                " VALUES (1, 1, 'production', 'sev2', 't', :t, :t, 'api', :t)"), {"t": at})
            c.execute(text("INSERT INTO incident_event (incident_id, at, kind, text) VALUES (1, :t, 'declared', 'x')"), {"t": at})
        upgrade(engine, "head")
        with engine.connect() as c:
            assert c.execute(text("SELECT lead, channel_id, channel_name, paged FROM incident")).one() == (None, None, None, None)
            assert c.execute(text("SELECT url FROM incident_event")).one() == (None,)
            assert c.execute(text("SELECT count(*) FROM incident_followup")).scalar() == 0
        with engine.begin() as c:
            c.execute(text("INSERT INTO incident_followup (incident_id, text, created_at) VALUES (1, 'add a canary', :t)"), {"t": at})
        command.downgrade(_alembic_config(engine), "0009")
        insp = inspect(engine)
        assert "incident_followup" not in insp.get_table_names()
        assert {"lead", "channel_id", "channel_name", "paged"}.isdisjoint(c["name"] for c in insp.get_columns("incident"))
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM incident")).scalar() == 1
        upgrade(engine, "head")
        assert "incident_followup" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
