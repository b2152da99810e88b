"""initial schema: services, deploys, commits, lead samples, incidents

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('app_meta',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_app_meta'))
    )
    op.create_table('service',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service')),
    sa.UniqueConstraint('name', name=op.f('uq_service_name'))
    )
    op.create_table('deploy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=200), nullable=False),
    sa.Column('deployed_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rollback_of_id', sa.Integer(), nullable=True),
    sa.Column('marked_failed', sa.Boolean(), nullable=False),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('change_failure', sa.Boolean(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=True),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rollback_of_id'], ['deploy.id'], name=op.f('fk_deploy_rollback_of_id_deploy')),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_deploy_service_id_service')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deploy')),
    sa.UniqueConstraint('external_id', name=op.f('uq_deploy_external_id'))
    )
    with op.batch_alter_table('deploy', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deploy_rollback_of_id'), ['rollback_of_id'], unique=False)
        batch_op.create_index('ix_deploy_service_window', ['service_id', 'deployed_at', 'environment', 'status', 'change_failure'],
                              unique=False)
        batch_op.create_index('ix_deploy_window', ['deployed_at', 'service_id', 'environment', 'status', 'change_failure'], unique=False)

    op.create_table('deploy_commit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deploy_id', sa.Integer(), nullable=False),
    sa.Column('sha', sa.String(length=64), nullable=False),
    sa.Column('committed_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['deploy_id'], ['deploy.id'], name=op.f('fk_deploy_commit_deploy_id_deploy'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deploy_commit')),
    sa.UniqueConstraint('deploy_id', 'sha', name='uq_deploy_commit_sha')
    )
    op.create_table('incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('started_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('declared_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('caused_by_id', sa.Integer(), nullable=True),
    sa.Column('declared_by', sa.String(length=100), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=100), nullable=True),
    sa.Column('resolved_by', sa.String(length=100), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('restore_seconds', sa.Float(), nullable=True),
    sa.Column('ack_seconds', sa.Float(), nullable=True),
    sa.Column('recovery_seconds', sa.Float(), nullable=True),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['caused_by_id'], ['deploy.id'], name=op.f('fk_incident_caused_by_id_deploy')),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_incident_service_id_service')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident')),
    sa.UniqueConstraint('external_id', name=op.f('uq_incident_external_id'))
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index('ix_incident_acknowledged', ['acknowledged_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_caused_by_id'), ['caused_by_id'], unique=False)
        batch_op.create_index('ix_incident_resolved', ['resolved_at'], unique=False)
        batch_op.create_index('ix_incident_service_resolved', ['service_id', 'resolved_at'], unique=False)
        batch_op.create_index('ix_incident_started', ['started_at'], unique=False)

    op.create_table('lead_sample',
    sa.Column('service_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('sha', sa.String(length=64), nullable=False),
    sa.Column('deploy_id', sa.Integer(), nullable=False),
    sa.Column('deployed_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('committed_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lead_seconds', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['deploy_id'], ['deploy.id'], name=op.f('fk_lead_sample_deploy_id_deploy'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_lead_sample_service_id_service')),
    sa.PrimaryKeyConstraint('service_id', 'sha', name=op.f('pk_lead_sample'))
    )
    with op.batch_alter_table('lead_sample', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_sample_deploy_id'), ['deploy_id'], unique=False)
        batch_op.create_index('ix_lead_sample_service_window', ['service_id', 'deployed_at', 'lead_seconds'], unique=False)
        batch_op.create_index('ix_lead_sample_window', ['deployed_at', 'lead_seconds'], unique=False)

    op.create_table('incident_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_event_incident_id_incident'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_event'))
    )
    with op.batch_alter_table('incident_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_event_incident_id'), ['incident_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('incident_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_event_incident_id'))

    op.drop_table('incident_event')
    with op.batch_alter_table('lead_sample', schema=None) as batch_op:
        batch_op.drop_index('ix_lead_sample_window')
        batch_op.drop_index('ix_lead_sample_service_window')
        batch_op.drop_index(batch_op.f('ix_lead_sample_deploy_id'))

    op.drop_table('lead_sample')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_started')
        batch_op.drop_index('ix_incident_service_resolved')
        batch_op.drop_index('ix_incident_resolved')
        batch_op.drop_index(batch_op.f('ix_incident_caused_by_id'))
        batch_op.drop_index('ix_incident_acknowledged')

    op.drop_table('incident')
    op.drop_table('deploy_commit')
    with op.batch_alter_table('deploy', schema=None) as batch_op:
        batch_op.drop_index('ix_deploy_window')
        batch_op.drop_index('ix_deploy_service_window')
        batch_op.drop_index(batch_op.f('ix_deploy_rollback_of_id'))

    op.drop_table('deploy')
    op.drop_table('service')
    op.drop_table('app_meta')
