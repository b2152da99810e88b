"""Persistence: SQLModel tables, engine and sessions, migrations, and the SQL side of the metrics."""
