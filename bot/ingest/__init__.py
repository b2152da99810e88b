"""The ingest adapter: JSON API for CI/CD and monitoring, GitHub and Alertmanager webhooks."""
