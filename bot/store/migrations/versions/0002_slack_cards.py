"""slack messages (where each card was posted) and an incident's suspected deploy

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=False),
        sa.Column("created_at", bot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_message")),
        sa.UniqueConstraint("kind", "object_id", "channel", name="uq_slack_message_card"),
    )
    with op.batch_alter_table("incident") as batch_op:
        batch_op.add_column(sa.Column("suspect_deploy_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_incident_suspect_deploy_id_deploy"), "deploy", ["suspect_deploy_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("incident") as batch_op:
        batch_op.drop_constraint(op.f("fk_incident_suspect_deploy_id_deploy"), type_="foreignkey")
        batch_op.drop_column("suspect_deploy_id")
    op.drop_table("slack_message")
