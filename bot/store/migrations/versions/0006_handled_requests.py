"""handled Slack requests (replays and event retries act once)

Revision ID: 0006
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.types import UTCDateTime

revision = '0006'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'handled_request',
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('received_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_handled_request')),
    )
    with op.batch_alter_table('handled_request', schema=None) as batch_op:
        batch_op.create_index('ix_handled_request_received', ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('handled_request', schema=None) as batch_op:
        batch_op.drop_index('ix_handled_request_received')
    op.drop_table('handled_request')
