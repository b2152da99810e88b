"""Small helpers the database tests share: load records, count rows, read metrics, wipe."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, inspect, text

from bot.services.importer import ImportReport, import_jsonl
from bot.services.metrics import build_metrics
from bot.store.db import session_scope

PRODUCTION = ("production", "prod")


def jsonl(records: Iterable[Mapping[str, Any] | str]) -> bytes:
    """JSON Lines bytes; a str item is written as the raw line (for bad lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return ("\n".join(lines) + "\n").encode()


def load(
    engine: Engine,
    records: Iterable[Mapping[str, Any] | str],
    *,
    now: datetime,
    production_environments: Sequence[str] = PRODUCTION,
    **kwargs,
) -> ImportReport:
    return import_jsonl(
        engine, io.BytesIO(jsonl(records)), production_environments=production_environments, now=now, **kwargs
    )


def metrics(
    engine: Engine,
    *,
    end: datetime,
    days: int = 30,
    service: str | None = None,
    timezone_name: str = "UTC",
    production_environments: Sequence[str] = PRODUCTION,
) -> dict:
    with session_scope(engine, write=False) as session:
        return build_metrics(
            session,
            service=service,
            days=days,
            end=end,
            timezone_name=timezone_name,
            production_environments=production_environments,
        )


def _tables(engine: Engine) -> list[str]:
    return [t for t in inspect(engine).get_table_names() if t != "alembic_version"]


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in _tables(engine)}


_WIPE_ORDER: dict[tuple[int, str], list[str]] = {}


def wipe(engine: Engine) -> None:
    """Delete every row (keeps the schema), so one test can load many histories."""
    key = (id(engine), engine.url.render_as_string())
    tables = _WIPE_ORDER.get(key)
    if tables is None:
        from sqlmodel import SQLModel

        import bot.store.models  # noqa: F401

        present = set(_tables(engine))
        ordered = [t.name for t in reversed(SQLModel.metadata.sorted_tables) if t.name in present]
        tables = _WIPE_ORDER[key] = sorted(present - set(ordered)) + ordered
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            # deploy.fixes_id and incident.caused_by_id point at each other: check at commit.
            conn.execute(text("PRAGMA defer_foreign_keys = ON"))
            for name in tables:
                conn.execute(text(f'DELETE FROM "{name}"'))
