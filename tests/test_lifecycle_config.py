"""The incident lifecycle's settings: DORA_INCIDENT_CHANNELS and the PagerDuty hand-off."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.core.errors import ConfigError
from bot.logs import redact


def test_defaults():
    s = Settings.from_env({})
    assert s.incident_channels == "none" and s.pagerduty_routing_key is None
    assert s.pagerduty_min_severity == "sev2" and s.pagerduty_events_url == "https://events.pagerduty.com/v2/enqueue"


def test_values_are_read_and_checked():
    s = Settings.from_env({"DORA_INCIDENT_CHANNELS": "SEV1", "PAGERDUTY_ROUTING_KEY": "R0UT1NGKEY0123456789abcdefABCDEF",
                           "PAGERDUTY_MIN_SEVERITY": "sev3", "PAGERDUTY_EVENTS_URL": "http://127.0.0.1:9/v2/enqueue"})
    assert (s.incident_channels, s.pagerduty_min_severity, s.pagerduty_events_url) == ("sev1", "sev3", "http://127.0.0.1:9/v2/enqueue")
    for name, value in (("DORA_INCIDENT_CHANNELS", "sev3"), ("PAGERDUTY_MIN_SEVERITY", "high"), ("PAGERDUTY_EVENTS_URL", "ftp://x")):
        with pytest.raises(ConfigError) as err:
            Settings.from_env({name: value})
        assert name in str(err.value)


def test_the_routing_key_is_a_redacted_secret():
    key = "R0UT1NGKEY0123456789abcdefABCDEF"
    s = Settings.from_env({"PAGERDUTY_ROUTING_KEY": key, "SLACK_BOT_TOKEN": "xoxb-1-2-3"})
    assert key in s.secrets and "xoxb-1-2-3" in s.secrets
    assert redact(f"posting with routing_key={key}", s.secrets) == "posting with routing_key=[redacted]"
