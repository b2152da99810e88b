"""Settings from the environment: names of product.md, defaults, and one clear line per wrong value."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.config import Settings
from bot.core.errors import ConfigError


def test_defaults_with_nothing_set():
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///dora-bot.db"
    assert s.port == 3000 and s.timezone_name == "UTC"
    assert s.production_environments == ("production", "prod")
    assert s.run_scheduler is True


@pytest.mark.parametrize("url, expected", [
    ("postgres://u:p%40ss@db:5432/dora", "postgresql+psycopg://u:p%40ss@db:5432/dora"),
    ("postgresql://u@db/dora?sslmode=require", "postgresql+psycopg://u@db/dora?sslmode=require"),
    ("postgresql+psycopg://u@db/dora", "postgresql+psycopg://u@db/dora"),
    ("sqlite:////var/lib/dora/dora.db", "sqlite:////var/lib/dora/dora.db"),
])
def test_postgres_urls_as_providers_write_them_use_the_installed_driver(url, expected):
    assert Settings.from_env({"DATABASE_URL": url}).database_url == expected


def test_the_webhook_secrets_and_the_gate_severity_are_read():
    s = Settings.from_env({"GITLAB_WEBHOOK_TOKEN": " gl ", "PAGERDUTY_WEBHOOK_SECRET": "pd", "DORA_GATE_SEVERITY": "SEV2"})
    assert (s.gitlab_webhook_token, s.pagerduty_webhook_secret, s.gate_severity) == ("gl", "pd", "sev2")
    assert Settings.from_env({}).gate_severity == "sev1"


def test_tokens_are_taken_as_given():
    # Slack decides whether it accepts a token (/readyz asks it); the ingest tokens are the operator's choice.
    s = Settings.from_env({"SLACK_BOT_TOKEN": "test-token", "SLACK_APP_TOKEN": "app", "INGEST_TOKENS": "ci, alerts ,"})
    assert s.slack_bot_token == "test-token" and s.slack_app_token == "app"
    assert s.ingest_tokens == ("ci", "alerts")


@pytest.mark.parametrize("name, value, words", [
    ("DATABASE_URL", "mysql://db/dora", "not supported"),
    ("DATABASE_URL", "postgresql+psycopg2://db/dora", "psycopg"),
    ("DATABASE_URL", "nonsense", "not a database URL"),
    ("PORT", "80a", "not a port"),
    ("PORT", "70000", "not a port"),
    ("DORA_TIMEZONE", "Mars/Olympus", "IANA"),
    ("DORA_PRODUCTION_ENVIRONMENTS", " , ", "comma-separated"),
    ("RUN_SCHEDULER", "maybe", "true or false"),
    ("DORA_ACK_REMINDER", "soon", ""),
    ("LOG_LEVEL", "LOUD", "CRITICAL"),
    ("LOG_FORMAT", "xml", "text or json"),
    ("SLACK_API_URL", "ftp://slack", "http"),
    ("DORA_GATE_SEVERITY", "critical", "sev1, sev2, sev3, sev4"),
])
def test_a_wrong_value_names_its_variable(name, value, words):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert message.startswith(name) and words in message


def test_the_cli_stops_with_one_line_naming_the_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(DORA_TIMEZONE="Mars/Olympus", DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    out = subprocess.run([sys.executable, "-m", "bot.cli", "metrics"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "DORA_TIMEZONE" in lines[0], out.stderr
    assert not (tmp_path / "x.db").exists()  # nothing was touched


@pytest.mark.parametrize("url, words", [
    ("postgres//u:pw-s3cret@host/db", "not a database URL"),
    ("postgresql://u:pw-s3cret@host:abc/db", "port"),
    ("postgresql+psycopg://u:pw-s3cret@host:99999/db", "port"),
    ("mysql://u:pw-s3cret@host/db", "not supported"),
])
def test_a_bad_database_url_is_one_line_naming_the_variable_without_the_password(tmp_path, url, words):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DATABASE_URL": url})
    assert str(caught.value).startswith("DATABASE_URL") and words in str(caught.value)
    assert "pw-s3cret" not in str(caught.value)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_URL"] = url
    out = subprocess.run([sys.executable, "-m", "bot.cli", "metrics"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "DATABASE_URL" in lines[0], out.stderr
    assert "Traceback" not in out.stderr + out.stdout and "pw-s3cret" not in out.stderr + out.stdout


@pytest.mark.parametrize("port", ["²", "٣٠٠٠", "+80", "0", "65536", "1e3"])
def test_a_port_that_is_not_plain_digits_in_range_names_the_variable(port):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"PORT": port})
    assert str(caught.value).startswith("PORT")
