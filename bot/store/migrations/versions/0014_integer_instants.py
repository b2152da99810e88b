"""SQLite: instants as integer microseconds since the Unix epoch

Every instant column on SQLite held naive UTC text, ``YYYY-MM-DD HH:MM:SS.ffffff``: 26 bytes in
the row and again in every index that carries it. From this revision they hold INTEGER
microseconds since 1970-01-01 UTC (8 bytes or fewer; ``bot.store.types.UTCDateTime``). Order,
comparisons and the microseconds are kept exactly. The columns keep their declared type
(``DATETIME``, NUMERIC affinity), so no table is rebuilt: the values are rewritten in place, and
the indexes with them. ``VACUUM`` afterwards gives the freed pages back to the file system.

PostgreSQL keeps ``timestamptz``: nothing changes there.

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0011'  # the order is 0012, 0013, 0011 (teams landed last)
branch_labels = None
depends_on = None

# Every UTCDateTime column at revision 0011, the head before this one (listed here, not read from the models: a migration
# must keep meaning what it meant when it was written).
INSTANT_COLUMNS = {
    'commit_push': ('pushed_at',),
    'deploy': ('deployed_at', 'created_at'),
    'deploy_commit': ('committed_at',),
    'deploy_freeze': ('until', 'created_at', 'lifted_at'),
    'digest_delivery': ('created_at',),
    'digest_subscription': ('created_at',),
    'handled_request': ('received_at',),
    'incident': ('started_at', 'declared_at', 'acknowledged_at', 'resolved_at', 'mitigated_at', 'recovered_at',
                 'snoozed_until', 'created_at'),
    'incident_event': ('at',),
    'incident_followup': ('created_at', 'done_at'),
    'incident_reminder': ('due_at', 'created_at'),
    'lead_sample': ('deployed_at', 'committed_at'),
    'nudge': ('answered_at', 'created_at'),
    'outbox': ('next_attempt_at', 'created_at', 'sent_at'),
    'pending_commit': ('committed_at', 'pushed_at'),
    'service': ('created_at',),
    'slack_message': ('created_at',),
    'team': ('created_at',),
    'watch': ('streak_since', 'since', 'last_check_at', 'created_at'),
    'webhook_delivery': ('received_at',),
}


def _to_micros(col: str) -> str:
    # whole seconds from the first 19 characters, the fraction's digits (if any) padded to 6
    return (f"CAST(strftime('%s', substr({col}, 1, 19)) AS INTEGER) * 1000000"
            f" + CAST(substr(substr({col}, 21) || '000000', 1, 6) AS INTEGER)")


def _to_text(col: str) -> str:
    return (f"strftime('%Y-%m-%d %H:%M:%S', {col} / 1000000, 'unixepoch')"
            f" || printf('.%06d', {col} % 1000000)")


def _rewrite(kind: str, convert) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table, columns in INSTANT_COLUMNS.items():
        quoted = [f'"{c}"' for c in columns]
        sets = ", ".join(f"{q} = CASE WHEN typeof({q}) = '{kind}' THEN {convert(q)} ELSE {q} END" for q in quoted)
        where = " OR ".join(f"typeof({q}) = '{kind}'" for q in quoted)
        op.execute(f'UPDATE "{table}" SET {sets} WHERE {where}')


def upgrade() -> None:
    _rewrite('text', _to_micros)


def downgrade() -> None:
    _rewrite('integer', _to_text)
