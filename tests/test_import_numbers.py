"""``dora-bot import --skip-invalid`` uses up no D-/INC- number for a skipped line (issue 11):
also not for a line refused only once the whole file is in (a reference to a later or a skipped
line), whose row had been written already. SQLite and PostgreSQL; a file or a pipe."""

from __future__ import annotations

import io

from sqlalchemy import text

from bot.core.inputs import parse_deploy
from bot.services.deploys import write_deploy
from bot.services.importer import import_jsonl
from bot.store.db import connection_scope
from tests.conftest import NOW, PRODUCTION
from tests.dbutil import jsonl
from tests.test_importer import H, before, deploy, incident

LINES = [
    deploy("d1", before(9 * H)),
    deploy("later", before(3 * H)),
    deploy("bad", before(5 * H), rollback_of="later"),  # rolls back a later deploy: refused once all is in
    incident("i-bad", before(2 * H), caused_by="bad"),  # names the refused deploy: refused in turn
    "not json",
    deploy("d2", before(2 * H)),
    incident("i-ok", before(H), caused_by="d2"),
    deploy("rb", before(H - 60), rollback_of="bad"),
    deploy("d3", before(H - 30)),
    incident("i-ok2", before(H - 20)),
]


class Pipe(io.RawIOBase):
    """stdin: read once, not seekable."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def numbers(engine, table: str) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT id, external_id FROM {table} ORDER BY id"))]


def next_deploy_number(engine) -> int:
    with connection_scope(engine) as conn:
        data = parse_deploy({"id": "api-after", "service": "checkout", "deployed_at": before(10)}, now=NOW)
        return write_deploy(conn, data, production_environments=PRODUCTION, now=NOW, source="api", actor="api").id


def check(engine, report) -> None:
    assert report.committed
    assert [n for n, _ in report.errors] == [3, 4, 5, 8], report.errors
    assert (report.deploys_added, report.incidents_added, report.invalid) == (4, 2, 4)
    assert numbers(engine, "deploy") == [(1, "d1"), (2, "later"), (3, "d2"), (4, "d3")]
    assert numbers(engine, "incident") == [(1, "i-ok"), (2, "i-ok2")]
    assert next_deploy_number(engine) == 5


def test_skipped_lines_use_up_no_number_from_a_file(engine):
    report = import_jsonl(engine, io.BytesIO(jsonl(LINES)), production_environments=PRODUCTION, now=NOW, skip_invalid=True)
    check(engine, report)


def test_skipped_lines_use_up_no_number_from_a_pipe(engine):
    stream = io.BufferedReader(Pipe(jsonl(LINES)))
    report = import_jsonl(engine, stream, production_environments=PRODUCTION, now=NOW, skip_invalid=True)
    check(engine, report)


def test_the_messages_of_the_second_pass_are_those_of_the_first(engine):
    report = import_jsonl(engine, io.BytesIO(jsonl(LINES)), production_environments=PRODUCTION, now=NOW, skip_invalid=True)
    messages = dict(report.errors)
    assert "later" in messages[3] or "forward" in messages[3] or "after" in messages[3], messages[3]
    assert "bad" in messages[4] and "bad" in messages[8]
