"""dora-bot: the four key DORA metrics, declared and worked from Slack."""

__version__ = "0.1.0"
