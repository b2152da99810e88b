"""webhook deliveries, github pushes and pending commits

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('delivery_id', sa.String(length=200), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=True),
    sa.Column('received_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery')),
    sa.UniqueConstraint('source', 'delivery_id', name='uq_webhook_delivery_source')
    )
    op.create_table('github_push',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('after_sha', sa.String(length=64), nullable=False),
    sa.Column('pushed_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_github_push_service_id_service')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_github_push'))
    )
    with op.batch_alter_table('github_push', schema=None) as batch_op:
        batch_op.create_index('ix_github_push_service_after', ['service_id', 'after_sha'], unique=False)

    op.create_table('pending_commit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('push_id', sa.Integer(), nullable=False),
    sa.Column('sha', sa.String(length=64), nullable=False),
    sa.Column('committed_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pushed_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deploy_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['deploy_id'], ['deploy.id'], name=op.f('fk_pending_commit_deploy_id_deploy')),
    sa.ForeignKeyConstraint(['push_id'], ['github_push.id'], name=op.f('fk_pending_commit_push_id_github_push'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_pending_commit_service_id_service')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_commit')),
    sa.UniqueConstraint('service_id', 'sha', name='uq_pending_commit_sha')
    )
    with op.batch_alter_table('pending_commit', schema=None) as batch_op:
        batch_op.create_index('ix_pending_commit_waiting', ['service_id', 'deploy_id', 'push_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('pending_commit', schema=None) as batch_op:
        batch_op.drop_index('ix_pending_commit_waiting')

    op.drop_table('pending_commit')
    with op.batch_alter_table('github_push', schema=None) as batch_op:
        batch_op.drop_index('ix_github_push_service_after')

    op.drop_table('github_push')
    op.drop_table('webhook_delivery')
