"""the incident lifecycle: lead, dedicated channel, paging state, timeline links, follow-ups

Additive: existing incidents have no lead, no channel and were never paged; existing timeline
entries have no link.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.types import UTCDateTime

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_INCIDENT_COLUMNS = ('lead', 'channel_id', 'channel_name', 'paged')


def upgrade() -> None:
    op.add_column('incident', sa.Column('lead', sa.String(length=100), nullable=True))
    op.add_column('incident', sa.Column('channel_id', sa.String(length=32), nullable=True))
    op.add_column('incident', sa.Column('channel_name', sa.String(length=80), nullable=True))
    op.add_column('incident', sa.Column('paged', sa.String(length=16), nullable=True))
    op.create_index('ix_incident_lead', 'incident', ['lead'], unique=False)
    op.create_index('ix_incident_channel', 'incident', ['channel_id'], unique=False)
    op.add_column('incident_event', sa.Column('url', sa.String(length=2000), nullable=True))
    op.create_table(
        'incident_followup',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('owner', sa.String(length=100), nullable=True),
        sa.Column('created_by', sa.String(length=100), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('done_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('done_by', sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_followup_incident_id_incident'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_followup')),
    )
    op.create_index('ix_incident_followup_open', 'incident_followup', ['done_at', 'owner'], unique=False)
    op.create_index('ix_incident_followup_incident', 'incident_followup', ['incident_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_incident_followup_incident', table_name='incident_followup')
    op.drop_index('ix_incident_followup_open', table_name='incident_followup')
    op.drop_table('incident_followup')
    op.drop_index('ix_incident_channel', table_name='incident')
    op.drop_index('ix_incident_lead', table_name='incident')
    if op.get_bind().dialect.name == "sqlite":  # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), no table copy
        op.execute("ALTER TABLE incident_event DROP COLUMN url")
        for name in _INCIDENT_COLUMNS:
            op.execute(f"ALTER TABLE incident DROP COLUMN {name}")
    else:
        op.drop_column('incident_event', 'url')
        for name in _INCIDENT_COLUMNS:
            op.drop_column('incident', name)
