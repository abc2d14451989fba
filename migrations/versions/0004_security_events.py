"""security events

Revision ID: 0004_security_events
Revises: 0003_notes
Create Date: 2026-11-30

"""

import sqlalchemy as sa
from alembic import op

revision = "0004_security_events"
down_revision = "0003_notes"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "security_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=256), nullable=True),
        sa.Column("session_id", sa.String(length=32), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    # The two lists (a user's, newest first; everyone's by type) and the prune by age.
    op.create_index("ix_security_events_user_id_id", "security_events", ["user_id", "id"])
    op.create_index("ix_security_events_type_id", "security_events", ["type", "id"])
    op.create_index("ix_security_events_at", "security_events", ["at"])


def downgrade():
    op.drop_table("security_events")
