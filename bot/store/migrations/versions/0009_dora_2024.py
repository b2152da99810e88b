"""the DORA 2024 model: incidents mitigated / cancelled / not caused by a change, deploys that fix
an incident or are rework

Additive: existing incidents are live, never mitigated (so their recovery instant is their
resolution, as before), and existing deploys are rework exactly when they are rollbacks.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision = '0009'
down_revision = '0005'
branch_labels = None
depends_on = None

_WINDOW = ['deployed_at', 'service_id', 'environment', 'status', 'change_failure']
_SERVICE_WINDOW = ['service_id', 'deployed_at', 'environment', 'status', 'change_failure']


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mitigated_at', bot.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('recovered_at', bot.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('not_caused_by_change', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE incident SET recovered_at = resolved_at WHERE resolved_at IS NOT NULL")
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index('ix_incident_recovered', ['recovered_at'], unique=False)

    with op.batch_alter_table('deploy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fixes_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rework', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key(op.f('fk_deploy_fixes_id_incident'), 'incident', ['fixes_id'], ['id'])
        batch_op.drop_index('ix_deploy_window')
        batch_op.drop_index('ix_deploy_service_window')
    op.execute("UPDATE deploy SET rework = true WHERE rollback_of_id IS NOT NULL")
    with op.batch_alter_table('deploy', schema=None) as batch_op:
        batch_op.create_index('ix_deploy_window', [*_WINDOW, 'rework'], unique=False)
        batch_op.create_index('ix_deploy_service_window', [*_SERVICE_WINDOW, 'rework'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deploy', schema=None) as batch_op:
        batch_op.drop_index('ix_deploy_service_window')
        batch_op.drop_index('ix_deploy_window')
        batch_op.drop_constraint(op.f('fk_deploy_fixes_id_incident'), type_='foreignkey')
        batch_op.drop_column('rework')
        batch_op.drop_column('fixes_id')
        batch_op.create_index('ix_deploy_window', _WINDOW, unique=False)
        batch_op.create_index('ix_deploy_service_window', _SERVICE_WINDOW, unique=False)
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_recovered')
        batch_op.drop_column('not_caused_by_change')
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('status')
        batch_op.drop_column('recovered_at')
        batch_op.drop_column('mitigated_at')
