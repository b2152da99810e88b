"""services keep their display name; ``service.key`` is what names are matched by

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('service', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key', sa.String(length=100), nullable=True))
    # Names stored so far were lower-case without spaces (the old rule), so each is its own key.
    op.execute("UPDATE service SET key = lower(name)")
    with op.batch_alter_table('service', schema=None) as batch_op:
        batch_op.alter_column('key', existing_type=sa.String(length=100), nullable=False)
        batch_op.create_unique_constraint('uq_service_key', ['key'])


def downgrade() -> None:
    with op.batch_alter_table('service', schema=None) as batch_op:
        batch_op.drop_constraint('uq_service_key', type_='unique')
        batch_op.drop_column('key')
