"""teams own services; digests for a team; who belongs to a team (picked in App Home)

Additive: no service has a team, no digest is a team's, so every number keeps its meaning.

Revision ID: 0011
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision = '0011'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'team',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_team')),
        sa.UniqueConstraint('key', name=op.f('uq_team_key')),
        sa.UniqueConstraint('name', name=op.f('uq_team_name')),
    )
    op.create_table(
        'team_member',
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('user', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_team_member_team_id_team'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('team_id', 'user', name=op.f('pk_team_member')),
    )
    if op.get_bind().dialect.name == "sqlite":
        # ADD COLUMN with its REFERENCES clause (allowed for a NULL default); a named constraint
        # would need the service table copied, which the other tables' foreign keys refuse.
        columns = {row[1] for row in op.get_bind().exec_driver_sql("PRAGMA table_info(service)")}
        if "team_id" not in columns:
            op.execute("ALTER TABLE service ADD COLUMN team_id INTEGER REFERENCES team (id)")
        else:  # left by a downgrade (SQLite cannot drop a column with REFERENCES)
            op.execute("UPDATE service SET team_id = NULL")
    else:
        op.add_column('service', sa.Column('team_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_service_team_id_team'), 'service', 'team', ['team_id'], ['id'])
    op.create_index(op.f('ix_service_team_id'), 'service', ['team_id'], unique=False)
    op.add_column('digest_subscription', sa.Column('team', sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_index(op.f('ix_service_team_id'), table_name='service')
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE digest_subscription DROP COLUMN team")
        op.execute("UPDATE service SET team_id = NULL")  # the column stays (see upgrade)
    else:
        op.drop_column('digest_subscription', 'team')
        op.drop_constraint(op.f('fk_service_team_id_team'), 'service', type_='foreignkey')
        op.drop_column('service', 'team_id')
    op.drop_table('team_member')
    op.drop_table('team')
