"""more sources: the GitHub-only push table becomes ``commit_push`` with a ``source`` column (GitHub
and GitLab pushes wait in the same pending-commit tables), and deploy freezes for the gate

Existing pushes keep their rows and ids and are marked ``source = 'github'``; their pending commits
still point at them.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def _rename(old: str, new: str, source: sa.Column | None) -> None:
    bind = op.get_bind()
    op.drop_index(f'ix_{old}_service_after', table_name=old)
    # SQLite (3.26+) rewrites the REFERENCES clause of pending_commit.push_id with the rename
    # (https://www.sqlite.org/lang_altertable.html#alter_table_rename); PostgreSQL keeps the
    # constraint by oid, and its names are renamed to what the naming convention gives the new table.
    op.rename_table(old, new)
    if bind.dialect.name == "postgresql":
        op.execute(f'ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}')
        op.execute(f'ALTER TABLE {new} RENAME CONSTRAINT fk_{old}_service_id_service TO fk_{new}_service_id_service')
        op.execute(f'ALTER TABLE pending_commit RENAME CONSTRAINT fk_pending_commit_push_id_{old} TO fk_pending_commit_push_id_{new}')
        op.execute(f'ALTER SEQUENCE IF EXISTS {old}_id_seq RENAME TO {new}_id_seq')
    if source is not None:
        op.add_column(new, source)
    op.create_index(f'ix_{new}_service_after', new, ['service_id', 'after_sha'], unique=False)


def upgrade() -> None:
    _rename('github_push', 'commit_push', sa.Column('source', sa.String(length=32), nullable=False, server_default='github'))
    op.create_table(
        'deploy_freeze',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('service_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('until', bot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_by', sa.String(length=100), nullable=True),
        sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('lifted_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('lifted_by', sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_deploy_freeze_service_id_service')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deploy_freeze')),
    )
    op.create_index('ix_deploy_freeze_lifted', 'deploy_freeze', ['lifted_at', 'service_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_deploy_freeze_lifted', table_name='deploy_freeze')
    op.drop_table('deploy_freeze')
    # GitLab pushes stay as pushes (their commits may already be deployed); only the column goes.
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index('ix_commit_push_service_after', table_name='commit_push')
        op.execute("ALTER TABLE commit_push DROP COLUMN source")
        op.create_index('ix_commit_push_service_after', 'commit_push', ['service_id', 'after_sha'], unique=False)
    else:
        op.drop_column('commit_push', 'source')
    _rename('commit_push', 'github_push', None)
