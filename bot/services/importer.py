"""``dora-bot import``: backfill deploys and incidents from JSON Lines.

The file is streamed in batches (memory stays flat whatever its size) inside one transaction.
Every line is validated with the same rules as the API; references between lines
(``rollback_of``, ``caused_by``, ``fixes``) are collected in a temporary table and checked in SQL
once the whole file is in, so a line may name a deploy or incident that appears later. By default
any bad line rolls the whole import back and every bad line is reported by number; with
``skip_invalid`` the good lines are kept (and a line naming a record whose own line was rejected
is rejected too). Records
whose ``id`` is already stored are left as they are (idempotent).

Rows are handed to the driver as plain tuples (``bot.store.derived.write_rows``: ``executemany``
on SQLite, ``COPY`` on PostgreSQL) and, on SQLite, the import runs with a larger page cache (the
indexes of a big history stay in memory), so little is spent beyond the validation every line
needs and the database's own work; ``benchmarks/run.py`` measures it against plain ``sqlite3`` code.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Callable, Sequence

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from bot.core import jsontext
from bot.core.errors import ValidationError
from bot.core.inputs import DeployInput, IncidentInput, parse_deploy, parse_incident, service_key
from bot.core.rules import (
    CANCELLED,
    ack_seconds,
    is_rework,
    lead_seconds,
    recovery_instant,
    recovery_seconds,
    restore_seconds,
)
from bot.core.rules import qualifies as rule_qualifies
from bot.store.db import restore_sequences
from bot.store.derived import (
    mark_referenced_failures,
    rebuild_lead_samples,
    stored_instant,
    upsert_stored_lead_samples,
    write_rows,
)
from bot.store.models import Deploy, Incident, IncidentEvent, Service

deploy_t = Deploy.__table__
incident_t = Incident.__table__
event_t = IncidentEvent.__table__
service_t = Service.__table__

MAX_REPORTED_ERRORS = 1000
MAX_LINE_BYTES = 1_000_000
SQLITE_IMPORT_CACHE_KIB = 128 * 1024  # page cache while importing (SQLite's default is 2 MiB)

DEPLOY_COLUMNS = (
    "external_id", "service_id", "environment", "version", "deployed_at", "status", "marked_failed",
    "change_failure", "rework", "url", "note", "source", "created_at",
)
COMMIT_COLUMNS = ("deploy_id", "sha", "committed_at")
INCIDENT_COLUMNS = (
    "external_id", "service_id", "environment", "severity", "title", "started_at", "declared_at",
    "acknowledged_at", "resolved_at", "mitigated_at", "recovered_at", "status", "not_caused_by_change", "source",
    "restore_seconds", "ack_seconds", "created_at", "lead",
)
EVENT_COLUMNS = ("incident_id", "at", "kind", "text")
REF_COLUMNS = ("line_no", "kind", "row_id", "ref")

_ref_meta = MetaData()
ref_t = Table(
    "import_ref",
    _ref_meta,
    Column("line_no", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("row_id", Integer, nullable=False),
    Column("ref", String(200), nullable=False),
    Index("ix_import_ref_row", "kind", "row_id"),
    prefixes=["TEMPORARY"],
)


@dataclass
class ImportReport:
    lines: int = 0
    deploys_added: int = 0
    incidents_added: int = 0
    already_stored: int = 0
    invalid: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    committed: bool = False
    # skip_invalid: lines whose references were rejected after their rows were in; the pass is
    # rolled back and the file imported again without them, so that they use up no D-/INC- number.
    rejected_after_insert: dict[int, str] = field(default_factory=dict)
    created_services: list[str] = field(default_factory=list)  # services the import created
    teams: dict[str, str] = field(default_factory=dict)  # service -> team, from the deploy lines' "team"

    def error(self, line_no: int, message: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append((line_no, message))


def _insert(conn: Connection, table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


class _Loader:
    """Batches of validated records written as plain tuples, one multi-row write per table."""

    def __init__(self, conn: Connection, *, production_environments: Sequence[str], now: datetime, batch_size: int):
        self.conn = conn
        self.production = set(production_environments)
        self.instant = stored_instant(conn)
        self.now_aware = now
        self.now = self.instant(now)
        self.batch_size = batch_size
        self.services: dict[str, int] = dict(conn.execute(select(service_t.c.key, service_t.c.id)).all())  # by key
        self.created_services: list[str] = []
        self.teams: dict[int, tuple[str, str]] = {}  # service id -> (service name, team): the last line's team wins
        self.deploys: list[tuple[int, DeployInput]] = []
        self.incidents: list[tuple[int, IncidentInput]] = []
        self.added_deploys = 0
        self.added_incidents = 0
        self.existing = 0
        self.postgresql = conn.dialect.name == "postgresql"
        # SQLite: the writer holds the database lock for the whole import, so the rows a batch
        # adds are exactly those with an id above the largest id before it.
        self.last_id = {
            "deploy": conn.execute(select(func.coalesce(func.max(deploy_t.c.id), 0))).scalar(),
            "incident": conn.execute(select(func.coalesce(func.max(incident_t.c.id), 0))).scalar(),
        }

    def service_id(self, name: str) -> int:
        key = service_key(name)
        sid = self.services.get(key)
        if sid is None:
            stmt = _insert(self.conn, service_t).values(name=name, key=key, created_at=self.now_aware)
            # any conflict (key or the unique display name: a concurrent writer of the same service)
            created = self.conn.execute(stmt.on_conflict_do_nothing().returning(service_t.c.id)).first()
            if created is not None:
                self.created_services.append(name)
            sid = (created[0] if created is not None
                   else self.conn.execute(select(service_t.c.id).where(service_t.c.key == key)).scalar_one())
            self.services[key] = sid
        return sid

    def add_deploy(self, line_no: int, data: DeployInput) -> None:
        self.deploys.append((line_no, data))
        if len(self.deploys) >= self.batch_size:
            self.flush_deploys()

    def add_incident(self, line_no: int, data: IncidentInput) -> None:
        self.incidents.append((line_no, data))
        if len(self.incidents) >= self.batch_size:
            self.flush_incidents()

    def _insert_new(self, table: str, columns: Sequence[str], rows: list[tuple]) -> dict[str, int]:
        """Insert rows whose external id (first column) is new; return external id -> new row id."""
        on_conflict = "ON CONFLICT (external_id) DO NOTHING"
        if self.postgresql and rows:
            # Rows already stored never reach the INSERT: PostgreSQL would draw a sequence value
            # for each of them (a re-import would make D-<n> jump by its size).
            stored = {
                r[0] for r in self.conn.exec_driver_sql(
                    f"SELECT external_id FROM {table} WHERE external_id = ANY(%s)", ([r[0] for r in rows],)
                )
            }
            if stored:
                self.existing += len(stored)
                rows = [r for r in rows if r[0] not in stored]
        if self.postgresql:
            created = dict(write_rows(self.conn, table, columns, rows, suffix=on_conflict, returning="external_id, id"))
        else:
            write_rows(self.conn, table, columns, rows, suffix=on_conflict)
            created = dict(
                self.conn.exec_driver_sql(
                    f"SELECT external_id, id FROM {table} WHERE id > ?", (self.last_id[table],)
                ).all()
            )
            if created:
                self.last_id[table] = max(created.values())
        self.existing += len(rows) - len(created)
        return created

    def flush_deploys(self) -> None:
        batch, self.deploys = self.deploys, []
        if not batch:
            return
        ts, now = self.instant, self.now
        rows, seen = [], set()
        for _, d in batch:
            if d.external_id in seen:  # the same id twice in one batch: a retry
                continue
            seen.add(d.external_id)
            if d.team is not None:
                self.teams[self.service_id(d.service)] = (d.service, d.team)
            rows.append(
                (
                    d.external_id, self.service_id(d.service), d.environment, d.version, ts(d.deployed_at),
                    d.status, d.change_failure, d.change_failure,
                    is_rework(rollback_of=d.rollback_of, fixes=d.fixes, marked_rework=d.rework), d.url, d.note, "import", now,
                )
            )
        self.existing += len(batch) - len(rows)
        created = self._insert_new("deploy", DEPLOY_COLUMNS, rows)
        self.added_deploys += len(created)
        commits, samples, refs = [], [], []
        production = self.production
        for line_no, d in batch:
            row_id = created.pop(d.external_id, None)
            if row_id is None:
                continue
            if d.commits:
                service_id = self.services[service_key(d.service)]
                qualifies = rule_qualifies(d.status, d.environment, production)
                deployed_at = d.deployed_at
                deployed_s = ts(deployed_at)
                for c in d.commits:
                    committed_s = ts(c.committed_at)
                    commits.append((row_id, c.sha, committed_s))
                    if qualifies:
                        samples.append((service_id, c.sha, row_id, deployed_s, committed_s, lead_seconds(deployed_at, c.committed_at)))
            if d.rollback_of is not None:
                refs.append((line_no, "rollback_of", row_id, d.rollback_of))
            if d.fixes is not None:
                refs.append((line_no, "fixes", row_id, d.fixes))
        write_rows(self.conn, "deploy_commit", COMMIT_COLUMNS, commits)
        upsert_stored_lead_samples(self.conn, samples)
        write_rows(self.conn, "import_ref", REF_COLUMNS, refs)

    def flush_incidents(self) -> None:
        batch, self.incidents = self.incidents, []
        if not batch:
            return
        ts, now = self.instant, self.now
        rows, seen = [], set()
        for _, i in batch:
            if i.external_id in seen:
                continue
            seen.add(i.external_id)
            # An imported incident keeps mitigated_at as given (null when not known).
            rows.append(
                (
                    i.external_id, self.service_id(i.service), i.environment, i.severity, i.title,
                    ts(i.started_at), ts(i.started_at), ts(i.acknowledged_at), ts(i.resolved_at), ts(i.mitigated_at),
                    ts(recovery_instant(i.mitigated_at, i.resolved_at)), i.status, i.not_caused_by_change, "import",
                    restore_seconds(i.started_at, i.mitigated_at, i.resolved_at),
                    ack_seconds(i.started_at, i.acknowledged_at),
                    now, i.lead,
                )
            )
        self.existing += len(batch) - len(rows)
        created = self._insert_new("incident", INCIDENT_COLUMNS, rows)
        self.added_incidents += len(created)
        events, refs = [], []
        for line_no, i in batch:
            row_id = created.pop(i.external_id, None)
            if row_id is None:
                continue
            events.append((row_id, ts(i.started_at), "declared", f"{i.severity} {i.title} (imported)"))
            if i.acknowledged_at:
                events.append((row_id, ts(i.acknowledged_at), "acknowledged", None))
            if i.mitigated_at:
                events.append((row_id, ts(i.mitigated_at), "mitigated", None))
            if i.resolved_at:
                events.append((row_id, ts(i.resolved_at), "resolved", None))
            if i.status == CANCELLED:
                events.append((row_id, now, "cancelled", None))
            if i.caused_by is not None:
                refs.append((line_no, "caused_by", row_id, i.caused_by))
        write_rows(self.conn, "incident_event", EVENT_COLUMNS, events)
        write_rows(self.conn, "import_ref", REF_COLUMNS, refs)

    def flush(self) -> None:
        self.flush_deploys()
        self.flush_incidents()


def _parse_line(raw: bytes, now: datetime) -> DeployInput | IncidentInput:
    if len(raw) > MAX_LINE_BYTES:
        raise ValidationError(f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        obj = jsontext.loads(raw)
    except ValidationError as exc:
        raise ValidationError("; ".join(f"{f}: {m}" if f else m.removeprefix("is ") for f, m in exc.errors)) from None
    if not isinstance(obj, dict):
        raise ValidationError("each line must be a JSON object")
    kind = obj.get("type")
    if kind == "deploy":
        return parse_deploy(obj, now=now)
    if kind == "incident":
        return parse_incident(obj, now=now)
    raise ValidationError(f"type: must be \"deploy\" or \"incident\", not {json.dumps(kind)}")


def _reference_errors(conn: Connection, rejected: dict[str, int] | None = None):
    """(line, message, kind, row id) for every reference that is missing or not allowed.

    ``rejected``: external id -> line of deploys whose own line was rejected (and which are gone).
    """
    rejected = rejected or {}
    target = deploy_t.alias("target")
    source_deploy = deploy_t.alias("source_deploy")
    joined = (
        ref_t.outerjoin(target, and_(ref_t.c.kind != "fixes", target.c.external_id == ref_t.c.ref))
        .outerjoin(source_deploy, and_(ref_t.c.kind == "rollback_of", source_deploy.c.id == ref_t.c.row_id))
        .outerjoin(incident_t, and_(ref_t.c.kind == "caused_by", incident_t.c.id == ref_t.c.row_id))
    )
    query = select(
        ref_t.c.line_no, ref_t.c.kind, ref_t.c.row_id, ref_t.c.ref, target.c.id,
        target.c.service_id, target.c.deployed_at,
        func.coalesce(source_deploy.c.service_id, incident_t.c.service_id).label("own_service"),
        source_deploy.c.deployed_at.label("own_deployed_at"),
    ).select_from(joined).where(ref_t.c.kind != "fixes").order_by(ref_t.c.line_no)
    for row in conn.execute(query):
        if row.id is None and row.ref in rejected:
            yield (row.line_no, f"{row.kind}: deploy `{row.ref}` is not stored: its line {rejected[row.ref]} was rejected",
                   row.kind, row.row_id)
        elif row.id is None:
            yield row.line_no, f"{row.kind}: no deploy with id `{row.ref}` in this file or already stored", row.kind, row.row_id
        elif row.service_id != row.own_service:
            yield row.line_no, f"{row.kind}: deploy `{row.ref}` belongs to another service", row.kind, row.row_id
        elif row.kind == "rollback_of" and row.deployed_at > row.own_deployed_at:
            yield (row.line_no, f"rollback_of: deploy `{row.ref}` is later than this deploy; a rollback reverts an earlier deploy",
                   row.kind, row.row_id)
    # fixes: names an incident, which must have started before the deploy that fixes it.
    fixing = deploy_t.alias("fixing")
    query = (
        select(ref_t.c.line_no, ref_t.c.row_id, ref_t.c.ref, incident_t.c.id, incident_t.c.started_at, fixing.c.deployed_at)
        .select_from(
            ref_t.join(fixing, fixing.c.id == ref_t.c.row_id).outerjoin(incident_t, incident_t.c.external_id == ref_t.c.ref)
        )
        .where(ref_t.c.kind == "fixes")
        .order_by(ref_t.c.line_no)
    )
    for row in conn.execute(query):
        if row.id is None:
            yield row.line_no, f"fixes: no incident with id `{row.ref}` in this file or already stored", "fixes", row.row_id
        elif row.started_at > row.deployed_at:
            yield (row.line_no, f"fixes: incident `{row.ref}` started after this deploy; a fix is deployed after the incident began",
                   "fixes", row.row_id)


def _apply_teams(conn: Connection, teams: dict[int, tuple[str, str]], now: datetime) -> dict[str, str]:
    """The deploy lines' ``"team"``: each service joins its team (created if new)."""
    from bot.store.models import Team

    team_t = Team.__table__
    out = {}
    for service_id, (service, team) in teams.items():
        key = service_key(team)
        conn.execute(_insert(conn, team_t).on_conflict_do_nothing(), {"name": team, "key": key, "created_at": now})  # key or name
        team_id = conn.execute(select(team_t.c.id).where(team_t.c.key == key)).scalar_one()
        conn.execute(update(service_t).where(service_t.c.id == service_id).values(team_id=team_id))
        out[service] = team
    return out


def _chunks(ids: list[int], size: int = 500):
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _drop_rejected(
    conn: Connection, deploy_ids: list[int], incident_ids: list[int], rejected: dict[str, int], lines: dict[int, int]
) -> None:
    """Remove rows whose references were rejected (``skip_invalid``), with their references.

    ``lines`` maps a rejected deploy's row id to its line; the deploy's external id is remembered in
    ``rejected`` so that lines naming it are rejected in turn.
    """
    for chunk in _chunks(incident_ids):
        conn.execute(delete(event_t).where(event_t.c.incident_id.in_(chunk)))
        conn.execute(delete(incident_t).where(incident_t.c.id.in_(chunk)))
        conn.execute(delete(ref_t).where(ref_t.c.kind == "caused_by", ref_t.c.row_id.in_(chunk)))
    for chunk in _chunks(deploy_ids):
        for row_id, external_id in conn.execute(select(deploy_t.c.id, deploy_t.c.external_id).where(deploy_t.c.id.in_(chunk))):
            rejected[external_id] = lines[row_id]
        conn.execute(delete(ref_t).where(ref_t.c.kind.in_(("rollback_of", "fixes")), ref_t.c.row_id.in_(chunk)))
        conn.execute(delete(deploy_t).where(deploy_t.c.id.in_(chunk)))


def _apply_references(conn: Connection) -> None:
    for table, col, kind, target in (
        (deploy_t, deploy_t.c.rollback_of_id, "rollback_of", deploy_t.alias("target")),
        (incident_t, incident_t.c.caused_by_id, "caused_by", deploy_t.alias("target")),
        (deploy_t, deploy_t.c.fixes_id, "fixes", incident_t.alias("target")),
    ):
        found = (
            select(target.c.id)
            .select_from(ref_t.join(target, target.c.external_id == ref_t.c.ref))
            .where(ref_t.c.kind == kind, ref_t.c.row_id == table.c.id)
            .scalar_subquery()
        )
        conn.execute(
            update(table)
            .where(table.c.id.in_(select(ref_t.c.row_id).where(ref_t.c.kind == kind)))
            .values({col.name: found})
        )


def _fill_recovery_times(conn: Connection, since_incident_id: int, batch: int = 5000) -> None:
    """Failed-deployment recovery time of newly loaded, resolved incidents with a cause.

    Walks the new incidents in id ranges so memory stays flat however many there are.
    """
    last = conn.execute(select(func.max(incident_t.c.id))).scalar() or 0
    stmt = update(incident_t).where(incident_t.c.id == bindparam("b_id")).values(recovery_seconds=bindparam("b_recovery"))
    for lo in range(since_incident_id, last, batch):
        rows = conn.execute(
            select(
                incident_t.c.id, incident_t.c.started_at, incident_t.c.mitigated_at, incident_t.c.resolved_at,
                deploy_t.c.deployed_at,
            )
            .join(deploy_t, deploy_t.c.id == incident_t.c.caused_by_id)
            .where(incident_t.c.id > lo, incident_t.c.id <= lo + batch, incident_t.c.recovered_at.is_not(None))
        ).all()
        if rows:
            conn.execute(
                stmt,
                [
                    {"b_id": r.id, "b_recovery": recovery_seconds(r.started_at, r.mitigated_at, r.resolved_at, r.deployed_at)}
                    for r in rows
                ],
            )


@contextmanager
def _import_cache(conn: Connection):
    """SQLite: a larger page cache while importing (the indexes of a big history stay in memory)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.dbapi_connection  # a PRAGMA outside SQLAlchemy's transaction handling
    previous = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {int(previous)}")


def import_jsonl(
    engine: Engine,
    stream: BinaryIO,
    *,
    production_environments: Sequence[str],
    now: datetime,
    skip_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 2000,
) -> ImportReport:
    """Load a JSON Lines stream; see the module docstring for the guarantees."""
    restore_sequences(engine)  # after an import that was killed: numbers go on from the last stored one
    spool = None
    if skip_invalid and not _seekable(stream):  # a second pass may be needed (stdin): keep a copy on disk
        spool = tempfile.TemporaryFile()
        shutil.copyfileobj(stream, spool, 1024 * 1024)
        spool.seek(0)
        stream = spool
    skip: dict[int, str] = {}
    try:
        while True:
            report = ImportReport()
            try:
                _import(engine, stream, report, production_environments=production_environments, now=now,
                        skip_invalid=skip_invalid, progress=progress, batch_size=batch_size, skip=skip)
            finally:
                if not report.committed:  # rolled back (bad lines, an error, a second pass): give the numbers back
                    restore_sequences(engine)
            if report.committed or not report.rejected_after_insert:
                return report
            # Lines rejected for their references had rows (and numbers) already: import the file
            # again without them, so the numbers of the lines kept have no holes.
            skip.update(report.rejected_after_insert)
            stream.seek(0)
            progress = None  # the bar has seen the whole file once
    finally:
        if spool is not None:
            spool.close()


def _seekable(stream) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _import(engine: Engine, stream: BinaryIO, report: ImportReport, *, production_environments: Sequence[str], now: datetime,
            skip_invalid: bool, progress: Callable[[int], None] | None, batch_size: int, skip: dict[int, str]) -> None:
    with engine.connect() as conn, _import_cache(conn):
        with conn.begin() as tx:
            ref_t.create(conn)
            since_deploy = conn.execute(select(func.coalesce(func.max(deploy_t.c.id), 0))).scalar()
            since_incident = conn.execute(select(func.coalesce(func.max(incident_t.c.id), 0))).scalar()
            loader = _Loader(conn, production_environments=production_environments, now=now, batch_size=batch_size)
            for line_no, raw in enumerate(stream, start=1):
                report.lines = line_no
                if progress is not None:
                    progress(len(raw))
                if not raw.strip():
                    continue
                if line_no in skip:  # rejected for its references by an earlier pass
                    report.error(line_no, skip[line_no])
                    continue
                try:
                    record = _parse_line(raw, now)
                except ValidationError as exc:
                    report.error(line_no, exc.message)
                    continue
                if isinstance(record, DeployInput):
                    loader.add_deploy(line_no, record)
                else:
                    loader.add_incident(line_no, record)
            loader.flush()

            bad_deploys, bad_incidents = [], []
            if skip_invalid:
                found = list(_reference_errors(conn))
            else:
                found = []
                for line_no, message, _, _ in _reference_errors(conn):
                    report.error(line_no, message)
            rejected: dict[str, int] = {}
            while found and skip_invalid:
                # Reject the lines with bad references; lines naming a deploy rejected here are
                # rejected in turn on the next pass (a chain ends when nothing new is rejected).
                new_deploys, new_incidents, lines = [], [], {}
                for line_no, message, kind, row_id in found:
                    report.error(line_no, message)
                    report.rejected_after_insert[line_no] = message
                    if kind in ("rollback_of", "fixes"):
                        new_deploys.append(row_id)
                        lines[row_id] = line_no
                    else:
                        new_incidents.append(row_id)
                _drop_rejected(conn, new_deploys, new_incidents, rejected, lines)
                bad_deploys += new_deploys
                bad_incidents += new_incidents
                found = list(_reference_errors(conn, rejected)) if new_deploys or new_incidents else []
            report.errors.sort()
            if (report.invalid and not skip_invalid) or report.rejected_after_insert:
                tx.rollback()  # bad lines without skip_invalid; or another pass without the rejected ones
                return
            if bad_deploys:
                rebuild_lead_samples(conn, sorted(set(production_environments)))
            _apply_references(conn)
            _fill_recovery_times(conn, since_incident)
            mark_referenced_failures(conn, since_deploy_id=since_deploy, since_incident_id=since_incident)
            ref_t.drop(conn)
            report.deploys_added = loader.added_deploys - len(bad_deploys)
            report.incidents_added = loader.added_incidents - len(bad_incidents)
            report.already_stored = loader.existing
            report.created_services = loader.created_services
            report.teams = _apply_teams(conn, loader.teams, now)
            report.committed = True
        if conn.dialect.name == "postgresql" and (report.deploys_added or report.incidents_added):
            # Fresh planner statistics: right after a big backfill, before autovacuum's first
            # autoanalyze (or where it is off), PostgreSQL would plan the metrics queries for
            # empty tables (a 730-day /dora took 46 s instead of 1 s on a million deploys).
            with conn.begin():
                conn.execute(text("ANALYZE deploy, deploy_commit, lead_sample, incident, incident_event"))
        elif conn.dialect.name == "sqlite" and report.incidents_added:
            # Statistics for the incident table only (a quarter of a second at 65k incidents): without
            # them SQLite reads a team's incidents through the (service_id, resolved_at) index for
            # every window, all of their history, instead of the window's time index (30 days of
            # three services' acks: 76 ms -> 11 ms on the 1M-deploy history). The deploy and lead
            # time queries name their indexes and are not affected.
            with conn.begin():
                conn.execute(text("ANALYZE incident"))
