"""the DORA 2024 model: incidents mitigated / cancelled / not caused by a change, deploys that fix
an incident or are rework

Additive: existing incidents are live, never mitigated (so their recovery instant is their
resolution, as before), and existing deploys are rework exactly when they are rollbacks.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision = '0009'
down_revision = '0006'
branch_labels = None
depends_on = None

_WINDOW = ['deployed_at', 'service_id', 'environment', 'status', 'change_failure']
_SERVICE_WINDOW = ['service_id', 'deployed_at', 'environment', 'status', 'change_failure']


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on every database (no batch copy: other tables' foreign
    # keys point at incident and deploy, and a copy of a big deploy table would take long).
    op.add_column('incident', sa.Column('mitigated_at', bot.store.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('incident', sa.Column('recovered_at', bot.store.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('incident', sa.Column('status', sa.String(length=16), nullable=True))
    op.add_column('incident', sa.Column('cancel_reason', sa.Text(), nullable=True))
    op.add_column('incident', sa.Column('not_caused_by_change', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE incident SET recovered_at = resolved_at WHERE resolved_at IS NOT NULL")
    op.create_index('ix_incident_recovered', 'incident', ['recovered_at'], unique=False)

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # ALTER TABLE ... ADD COLUMN with its REFERENCES clause (SQLite allows it for a column
        # whose default is NULL); a named constraint would need the table copied. A downgrade
        # on SQLite leaves the column in place (see below): then it is there already.
        columns = {row[1] for row in bind.exec_driver_sql("PRAGMA table_info(deploy)")}
        if "fixes_id" not in columns:
            op.execute("ALTER TABLE deploy ADD COLUMN fixes_id INTEGER REFERENCES incident (id)")
        else:
            op.execute("UPDATE deploy SET fixes_id = NULL")
    else:
        op.add_column('deploy', sa.Column('fixes_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_deploy_fixes_id_incident'), 'deploy', 'incident', ['fixes_id'], ['id'])
    op.add_column('deploy', sa.Column('rework', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.drop_index('ix_deploy_window', table_name='deploy')
    op.drop_index('ix_deploy_service_window', table_name='deploy')
    op.execute("UPDATE deploy SET rework = true WHERE rollback_of_id IS NOT NULL")
    op.create_index('ix_deploy_window', 'deploy', [*_WINDOW, 'rework'], unique=False)
    op.create_index('ix_deploy_service_window', 'deploy', [*_SERVICE_WINDOW, 'rework'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_deploy_service_window', table_name='deploy')
    op.drop_index('ix_deploy_window', table_name='deploy')
    op.drop_index('ix_incident_recovered', table_name='incident')
    incident_columns = ('not_caused_by_change', 'cancel_reason', 'status', 'recovered_at', 'mitigated_at')
    if op.get_bind().dialect.name == "sqlite":
        # ALTER TABLE ... DROP COLUMN (SQLite 3.35+) rather than copying the tables, which the
        # other tables' foreign keys to them would refuse. SQLite cannot drop a column with a
        # REFERENCES clause: deploy.fixes_id stays, unused and NULL-able, which the older code
        # never reads.
        op.execute("ALTER TABLE deploy DROP COLUMN rework")
        for name in incident_columns:
            op.execute(f"ALTER TABLE incident DROP COLUMN {name}")
    else:
        op.drop_constraint(op.f('fk_deploy_fixes_id_incident'), 'deploy', type_='foreignkey')
        op.drop_column('deploy', 'fixes_id')
        op.drop_column('deploy', 'rework')
        for name in incident_columns:
            op.drop_column('incident', name)
    op.create_index('ix_deploy_window', 'deploy', _WINDOW, unique=False)
    op.create_index('ix_deploy_service_window', 'deploy', _SERVICE_WINDOW, unique=False)
