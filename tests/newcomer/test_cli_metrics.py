"""`dora-bot metrics` as a newcomer uses it: typos, windows out of range, the table's columns, and
deployment frequency in words that say what gave its tier."""

from __future__ import annotations

import json

from tests.newcomer.helpers import run

# Two deploy days in the 30 days to 2025-06-01: fewer than one a week, at least one a month.
HISTORY = [
    {"type": "deploy", "id": "d1", "service": "checkout", "deployed_at": "2025-05-10T10:00:00Z", "version": "1",
     "commits": [{"sha": "abc1234", "committed_at": "2025-05-10T08:00:00Z"}]},
    {"type": "deploy", "id": "d2", "service": "checkout", "deployed_at": "2025-05-20T10:00:00Z", "version": "2"},
    {"type": "deploy", "id": "w1", "service": "web", "deployed_at": "2025-05-21T10:00:00Z", "version": "1"},
    {"type": "incident", "id": "i1", "service": "checkout", "started_at": "2025-05-20T11:00:00Z", "caused_by": "d2"},
]


def loaded(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in HISTORY))
    assert run(tmp_path, "import", str(path)).returncode == 0
    return tmp_path


def test_an_unknown_service_is_an_error_naming_the_known_ones(tmp_path):
    out = run(loaded(tmp_path), "metrics", "--service", "nosuch")
    assert out.returncode == 2 and out.stdout == ""
    assert "No service called `nosuch`. Known services: checkout, web." in out.stderr


def test_a_window_wholly_before_the_history_has_no_tier(tmp_path):
    out = run(loaded(tmp_path), "metrics", "--end", "1970-01-01", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    df = report["deployment_frequency"]
    assert df["tier"] is None and df["deploy_days_per_week"] is None and "before the end of this window" in df["reason"]
    assert all(report[k]["tier"] is None for k in ("lead_time", "change_failure_rate", "time_to_restore"))
    table = run(tmp_path, "metrics", "--end", "1970-01-01").stdout
    assert "low" not in table and "Deployment frequency             0 deploys (0.00 deploys/day)  n/a" in table


def test_an_end_in_the_future_is_refused(tmp_path):
    out = run(loaded(tmp_path), "metrics", "--end", "2099-01-01")
    assert out.returncode == 2 and out.stdout == ""
    assert "--end 2099-01-01 is in the future" in out.stderr
    assert "26326d" not in out.stderr


def test_the_table_columns_line_up_and_one_day_is_singular(tmp_path):
    out = run(loaded(tmp_path), "metrics", "--end", "2025-05-21", "--days", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("DORA five keys: all services, last 1 day to 2025-05-21 00:00 UTC")
    header = next(line for line in lines if line.startswith("metric"))
    rows = [line for line in lines
            if line.startswith(("Change lead time", "Deployment frequency", "Change fail rate", "Time to acknowledge"))]
    tier_at, sample_at = header.index("tier"), header.index("sample")
    for row in rows:  # every tier and sample starts under its header, short tiers (`-`, `n/a`) too
        assert row[tier_at - 1] == " " and row[tier_at] != " ", (header, row)
        assert row[sample_at - 1] == " " and row[sample_at] != " ", (header, row)


def test_deployment_frequency_says_what_gave_the_tier(tmp_path):
    out = run(loaded(tmp_path), "metrics", "--service", "checkout", "--end", "2025-06-01")
    line = next(line for line in out.stdout.splitlines() if line.startswith("Deployment frequency"))
    assert "deploys on 2 of the last 30 days" in line and "medium" in line
    assert "days/week" not in line and "/day" not in line
    report = json.loads(run(tmp_path, "metrics", "--service", "checkout", "--end", "2025-06-01", "--json").stdout)
    df = report["deployment_frequency"]
    assert (df["deploy_days_per_week"], df["deploy_days_per_month"], df["tier"]) == (0.5, 2.0, "medium")
    weekly = run(tmp_path, "metrics", "--end", "2025-05-22", "--days", "7").stdout
    assert "2 deploy days/week (0.29 deploys/day)  high" in weekly


def test_rates_read_the_same_in_the_cli_and_in_slack(tmp_path):
    out = run(loaded(tmp_path), "metrics", "--service", "checkout", "--end", "2025-06-01")
    assert "50.0% (1 of 2)" in out.stdout
    shell = run(tmp_path, "shell", stdin="/dora checkout days=3660\n").stdout
    assert "(1 of 2)" in shell and "1/2" not in shell


def test_deployment_frequency_reads_the_same_on_the_card_home_digest_and_cli(tmp_path):
    from tests.newcomer.helpers import shell

    out = shell(tmp_path, "\n".join([
        "/deploy checkout 1.0",
        "/dora checkout",
        "home",
        "/dora digest add #shell service=checkout",
        "/dora digest send 1",
        "",
    ]))
    card = out[out.index("you> /dora checkout"):out.index("you> home")]
    home = out[out.index("you> home"):out.index("you> /dora digest add")]
    digest = out[out.index("WEEKLY DORA DIGEST"):]
    monthly = "deploys on 1 of the last 30 days"  # fewer than one deploy day a week: the monthly fallback gave medium
    assert f"Deployment frequency: {monthly} · medium" in card
    assert monthly in home
    assert "Deployment frequency: 1 deploy day/week (0.14 deploys/day) · high" in digest  # 7 days: the weekly median
    cli = run(tmp_path, "metrics", "--service", "checkout").stdout
    assert f"Deployment frequency             {monthly}" in cli and "medium" in cli
    for shown in (card, home, digest, cli):
        assert "0 days/week" not in shown and "/day," not in shown
