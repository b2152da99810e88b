"""lead-time samples in lead-time order, for percentiles over long windows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lead_sample', schema=None) as batch_op:
        batch_op.create_index('ix_lead_sample_lead', ['lead_seconds', 'deployed_at'], unique=False)
        batch_op.create_index('ix_lead_sample_service_lead', ['service_id', 'lead_seconds', 'deployed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lead_sample', schema=None) as batch_op:
        batch_op.drop_index('ix_lead_sample_service_lead')
        batch_op.drop_index('ix_lead_sample_lead')
