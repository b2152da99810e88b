"""threshold watches and hygiene nudges

Additive: two new tables, nothing existing changes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.types import UTCDateTime

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'watch',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('metric', sa.String(length=16), nullable=False),
        sa.Column('op', sa.String(length=2), nullable=False),
        sa.Column('threshold', sa.String(length=32), nullable=False),
        sa.Column('service_id', sa.Integer(), nullable=True),
        sa.Column('team', sa.String(length=100), nullable=True),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('held_checks', sa.Integer(), nullable=False),
        sa.Column('cleared_checks', sa.Integer(), nullable=False),
        sa.Column('streak_since', UTCDateTime(timezone=True), nullable=True),
        sa.Column('since', UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_check_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_value', sa.String(length=200), nullable=True),
        sa.Column('created_by', sa.String(length=100), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_watch_service_id_service'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_watch')),
    )
    op.create_table(
        'nudge',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('service_id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=True),
        sa.Column('deploy_id', sa.Integer(), nullable=True),
        sa.Column('answer', sa.String(length=16), nullable=True),
        sa.Column('answer_deploy_id', sa.Integer(), nullable=True),
        sa.Column('answered_by', sa.String(length=100), nullable=True),
        sa.Column('answered_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_nudge_service_id_service'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_nudge_incident_id_incident'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['deploy_id'], ['deploy.id'], name=op.f('fk_nudge_deploy_id_deploy'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['answer_deploy_id'], ['deploy.id'], name=op.f('fk_nudge_answer_deploy_id_deploy'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_nudge')),
        sa.UniqueConstraint('key', name=op.f('uq_nudge_key')),
    )


def downgrade() -> None:
    op.drop_table('nudge')
    op.drop_table('watch')
