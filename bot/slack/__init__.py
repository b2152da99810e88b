"""The Slack adapter: Bolt app factory, listeners, Block Kit builders, message delivery."""
