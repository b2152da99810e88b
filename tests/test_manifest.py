"""The Slack app manifest declares what the app actually handles."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_declares_the_three_commands_on_the_one_endpoint():
    m = manifest()
    commands = {c["command"]: c for c in m["features"]["slash_commands"]}
    assert set(commands) == {"/deploy", "/incident", "/dora"}
    for c in commands.values():
        assert c["url"].endswith("/slack/events")
        assert c["should_escape"] is True  # channel and user mentions arrive escaped: <#C123|name>
        assert c["usage_hint"] and len(c["usage_hint"]) <= 1000
        assert c["description"] and len(c["description"]) <= 2000


def test_manifest_enables_interactivity_home_tab_and_events_on_the_same_endpoint():
    m = manifest()
    settings = m["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert m["features"]["app_home"]["home_tab_enabled"] is True


def test_manifest_requests_the_scopes_the_app_calls_need():
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/update, conversations.list/join, slash commands
    assert {"commands", "chat:write", "channels:read", "channels:join"} <= scopes


def test_manifest_requests_the_history_scopes_the_exactly_once_check_reads_with():
    """A post whose answer was lost is looked for (conversations.history/replies) before it is sent again."""
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    assert {"channels:history", "groups:history"} <= scopes


def test_manifest_is_valid_against_slacks_schema():
    import json

    import jsonschema

    schema = json.loads((ROOT / "tests" / "data" / "slack-app-manifest.schema.json").read_text())
    jsonschema.validate(manifest(), schema)


def test_manifest_declares_the_timeline_shortcut_and_the_lifecycle_scopes():
    from bot.slack.ids import Shortcut

    m = manifest()
    (shortcut,) = m["features"]["shortcuts"]
    assert shortcut == {"name": "Add to incident timeline", "type": "message", "callback_id": Shortcut.ADD_TO_TIMELINE,
                        "description": shortcut["description"]}
    scopes = m["oauth_config"]["scopes"]["bot"]
    # conversations.create/invite (the incident channel), files.* (postmortem drafts), the shortcut (commands)
    assert {"channels:manage", "files:write", "commands"} <= set(scopes)
    assert len(scopes) == len(set(scopes))
    text = (ROOT / "manifest.yml").read_text()
    for scope in scopes:  # each one says why it is there
        (line,) = [raw for raw in text.splitlines() if raw.strip().startswith(f"- {scope} ")]
        assert "#" in line, f"{scope} has no reason next to it"
