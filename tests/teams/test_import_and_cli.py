"""Import lines with ``"team"``, the import's and the CLI's report of new services and teams, and
``dora-bot metrics --team``."""

from __future__ import annotations

import json

from sqlalchemy import text

from bot.services.metrics import build_metrics
from bot.store.db import session_scope
from tests.conftest import NOW, PRODUCTION
from tests.dbutil import load, metrics
from tests.test_cli import cli, write_lines

LINES = [
    {"type": "deploy", "id": "d1", "service": "checkout", "deployed_at": "2026-11-20T10:00:00Z", "team": "Payments"},
    {"type": "deploy", "id": "d2", "service": "billing", "deployed_at": "2026-11-21T10:00:00Z", "team": "payments"},
    {"type": "deploy", "id": "d3", "service": "search", "deployed_at": "2026-11-22T10:00:00Z"},
    {"type": "incident", "id": "i1", "service": "ledger", "started_at": "2026-11-22T11:00:00Z"},
]


def test_import_assigns_teams_and_reports_the_services_it_created(engine):
    report = load(engine, LINES, now=NOW)
    assert report.committed and report.errors == []
    assert report.created_services == ["checkout", "billing", "search", "ledger"]
    assert report.teams == {"checkout": "Payments", "billing": "payments"}
    with engine.connect() as c:
        rows = c.execute(text("SELECT s.name, t.name FROM service s LEFT JOIN team t ON t.id = s.team_id ORDER BY s.id")).all()
    assert rows == [("checkout", "Payments"), ("billing", "Payments"), ("search", None), ("ledger", None)]
    with session_scope(engine, write=False) as session:
        team = build_metrics(session, team="PAYMENTS", end=NOW, days=30, timezone_name="UTC", production_environments=PRODUCTION)
    assert team["scope"]["team"] == "Payments" and team["deployment_frequency"]["deploys"] == 2
    assert metrics(engine, end=NOW, days=30)["deployment_frequency"]["deploys"] == 3
    again = load(engine, LINES, now=NOW)
    assert again.created_services == [] and again.already_stored == 4


def test_a_bad_team_on_a_line_is_reported_with_its_line_and_nothing_is_stored(engine):
    bad = [LINES[0], {**LINES[1], "team": "bad!name"}]
    report = load(engine, bad, now=NOW)
    assert not report.committed
    assert [(n, "team" in m) for n, m in report.errors] == [(2, True)]


def test_the_cli_prints_the_new_services_and_metrics_for_a_team(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    out = cli(tmp_path, "import", str(write_lines(tmp_path / "t.jsonl", LINES)), **env)
    assert out.returncode == 0, out.stderr
    assert "new services created: checkout, billing, search, ledger" in out.stdout
    assert "teams set for 2 services: checkout -> Payments, billing -> payments" in out.stdout
    m = json.loads(cli(tmp_path, "metrics", "--team", "payments", "--json", "--end", "2026-11-25T00:00Z", **env).stdout)
    assert m["scope"]["team"] == "Payments" and m["deployment_frequency"]["deploys"] == 2
    text_out = cli(tmp_path, "metrics", "--team", "payments", "--end", "2026-11-25T00:00Z", **env).stdout
    assert "team Payments" in text_out
    unknown = cli(tmp_path, "metrics", "--team", "nobody", **env)
    assert "No team called `nobody`" in unknown.stderr
    both = cli(tmp_path, "metrics", "--team", "payments", "--service", "checkout", **env)
    assert both.returncode != 0 and "not both" in both.stderr
