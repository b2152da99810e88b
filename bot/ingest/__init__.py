"""The ingest adapter: JSON API for CI/CD and monitoring, the deploy gate, and the webhook sources (sources.py)."""
